import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { InvalidInputError } from '@parquetry/service';
import type { NewFile } from './catalog/types.js';
import type { ColumnType } from './datasets.js';
import { LAKE_WRITE_TEMP_DIR, putLakeFiles } from './lake-files.js';
import { writeNdjsonFile } from './ndjson-spill.js';
import { sqlIdent, sqlString } from './parquet/duckdb.js';
import { identifierKey } from './parquet/infer.js';
import { duckdbType } from './parquet/values.js';
import { DEFAULT_ROW_GROUP_SIZE, type ParquetCompression, sha256File } from './parquet/writer.js';
import type { ObjectStore } from './store/types.js';

/** Where a column's value comes from. */
export type JsonColumnSource =
  /** the same value on every row (a backup id, a partition value) */
  | { constant: string | number | boolean }
  /** a top-level field of the document (e.g. the batch id) */
  | { docField: string }
  /** a field of each record in the document's records array */
  | { field: string };

export type JsonColumn = {
  name: string;
  type: ColumnType;
  /** VARCHAR holding the JSON text of the value (mixed or nested fields). */
  json?: boolean;
} & JsonColumnSource;

export interface WriteJsonLakeFilesOptions {
  conn: DuckDBConnection;
  store: ObjectStore;
  /** Directory key of the partition. */
  dir: string;
  /** File name for part n (1-based) of `parts`. */
  fileName: (part: number, parts: number) => string;
  /**
   * Raw JSON documents (message bodies), each an object holding `recordsField`: in memory, or
   * already in NDJSON files (an NdjsonSpill's pieces), which are read, not removed.
   */
  documents: readonly Uint8Array[] | { ndjsonFiles: readonly string[]; largestDocument: number };
  /** The array of records inside each document; one Parquet row per record. */
  recordsField: string;
  columns: readonly JsonColumn[];
  compression?: ParquetCompression;
  maxFileBytes?: number;
  tempDir?: string;
}

const MIN_OBJECT_BYTES = 16 * 1024 * 1024;
/**
 * The documents go to DuckDB in NDJSON files of about this size. DuckDB's JSON reader holds a
 * file's parsed documents and their unnested records at once: two writes of 32 MB of product
 * batches at once grew RSS by ~440 MB from one file each, by ~295 MB from four files each, and
 * ran 15% faster (measured on 2 cores with bench/ingest's products). The Parquet output is
 * still one file per call.
 */
export const NDJSON_PIECE_BYTES = 8 * 1024 * 1024;

/** Cuts the documents into runs of about `bytes` each (a larger document is a run of its own). */
export function ndjsonPieces<T extends Uint8Array>(documents: readonly T[], bytes: number): T[][] {
  const pieces: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const d of documents) {
    if (current.length > 0 && size + d.byteLength > bytes) {
      pieces.push(current);
      current = [];
      size = 0;
    }
    current.push(d);
    size += d.byteLength + 1;
  }
  if (current.length > 0) pieces.push(current);
  return pieces;
}

function storageType(c: { type: ColumnType; json?: boolean }): string {
  return c.json ? 'JSON' : duckdbType(c.type).toString();
}

function valueSql(c: JsonColumn): string {
  if ('constant' in c) return `CAST(${sqlString(String(c.constant))} AS ${duckdbType(c.type).toString()})`;
  const ref = 'docField' in c ? `d.${sqlIdent(c.docField)}` : `r.${sqlIdent(c.field)}`;
  return c.json ? `CAST(${ref} AS VARCHAR)` : ref;
}

/** The SELECT that turns the NDJSON files into rows; throws InvalidInputError for what DuckDB cannot map. */
export function jsonRecordsSelect(
  paths: readonly string[],
  recordsField: string,
  columns: readonly JsonColumn[],
  maxObjectBytes: number,
): string {
  const docFields = new Map<string, string>();
  const recordFields: string[] = [];
  const seen = new Set<string>();
  for (const c of columns) {
    if ('docField' in c) docFields.set(c.docField, storageType(c));
    if ('field' in c) {
      // DuckDB matches struct entries case-insensitively and refuses empty or NUL names.
      const key = identifierKey(c.field);
      if (c.field === '' || c.field.includes('\u0000') || seen.has(key)) {
        throw new InvalidInputError(
          `record field ${JSON.stringify(c.field)} cannot be read by name in DuckDB`,
        );
      }
      seen.add(key);
      recordFields.push(`${sqlIdent(c.field)} ${storageType(c)}`);
    }
  }
  if (docFields.has(recordsField))
    throw new InvalidInputError(`${recordsField} is both a document and a records field`);
  const struct = recordFields.length > 0 ? `STRUCT(${recordFields.join(', ')})[]` : 'JSON[]';
  const docColumns = [...docFields, [recordsField, struct] as const]
    .map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`)
    .join(', ');
  return (
    `SELECT ${columns.map((c) => `${valueSql(c)} AS ${sqlIdent(c.name)}`).join(', ')} ` +
    `FROM read_json([${paths.map(sqlString).join(', ')}], format = 'newline_delimited', maximum_object_size = ${maxObjectBytes}, ` +
    `columns = {${docColumns}}) AS d, unnest(d.${sqlIdent(recordsField)}) AS u(r)`
  );
}

/**
 * Writes the records of raw JSON documents as Parquet files of one partition, with DuckDB doing
 * the parsing and conversion (no per-value work in JS): the documents go to a temporary NDJSON
 * file that DuckDB reads with explicit column types straight into one Parquet file; when that
 * file is above `maxFileBytes`, the rows are materialized once and cut into evenly sized parts. Returns
 * catalog entries, ready to commit. A document DuckDB cannot convert to the given types fails
 * the whole call with InvalidInputError (callers fall back to a JS writer); store errors pass
 * through unchanged.
 */
export async function writeJsonLakeFiles(opts: WriteJsonLakeFilesOptions): Promise<NewFile[]> {
  const { conn } = opts;
  const tmp = opts.tempDir ?? LAKE_WRITE_TEMP_DIR;
  mkdirSync(tmp, { recursive: true });
  const id = randomBytes(8).toString('hex');
  const given = 'ndjsonFiles' in opts.documents ? opts.documents : undefined;
  const pieces = given ? [] : ndjsonPieces(opts.documents as readonly Uint8Array[], NDJSON_PIECE_BYTES);
  const written = pieces.map((_, i) => join(tmp, `${id}-${i}.ndjson`));
  const inputs = given ? given.ndjsonFiles : written;
  const table = `__pq_json_${id}`;
  const largest = given
    ? given.largestDocument
    : pieces.flat().reduce((n, d) => Math.max(n, d.byteLength), 0);
  const select = jsonRecordsSelect(
    inputs,
    opts.recordsField,
    opts.columns,
    Math.max(MIN_OBJECT_BYTES, largest + 1),
  );
  const codec = (opts.compression ?? 'snappy') === 'none' ? 'uncompressed' : (opts.compression ?? 'snappy');
  const outputs: { path: string; rows: number; bytes: number; sha256: string }[] = [];
  let materialized = false;
  /** COPY one SELECT to a local file; DuckDB's conversion errors become InvalidInputError. */
  const copy = async (query: string) => {
    const path = join(tmp, `${randomBytes(8).toString('hex')}.parquet`);
    const out = { path, rows: 0, bytes: 0, sha256: '' };
    outputs.push(out);
    const result = await conn.runAndReadAll(
      `COPY (${query}) TO ${sqlString(path)} (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE ${DEFAULT_ROW_GROUP_SIZE})`,
    );
    out.rows = Number(result.getRows()[0]?.[0] ?? 0);
    [out.bytes, out.sha256] = await Promise.all([stat(path).then((st) => st.size), sha256File(path)]);
    return out;
  };
  const invalid = (err: unknown) =>
    new InvalidInputError(`DuckDB could not read the documents: ${(err as Error).message}`, { cause: err });
  try {
    for (const [i, piece] of pieces.entries()) await writeNdjsonFile(written[i]!, piece);
    // One pass straight from the documents to the file: the common case.
    const whole = await copy(select).catch((err) => {
      throw invalid(err);
    });
    const max = opts.maxFileBytes;
    if (max !== undefined && whole.bytes > max && whole.rows > 1) {
      // Rare: too big for one file. Materialize once, then cut evenly sized parts by row id.
      const total = whole.rows;
      const parts = Math.min(total, Math.ceil(whole.bytes / (max * 0.9)));
      const per = Math.ceil(total / parts);
      await unlink(whole.path).catch(() => {});
      outputs.length = 0;
      materialized = true;
      await conn.run(`CREATE TEMP TABLE ${sqlIdent(table)} AS ${select}`);
      for (let from = 0; from < total; from += per) {
        await copy(
          `SELECT * FROM temp.main.${sqlIdent(table)} WHERE rowid >= ${from} AND rowid < ${from + per} ORDER BY rowid`,
        );
      }
    }
    return await putLakeFiles(opts.store, opts.dir, opts.fileName, outputs);
  } finally {
    if (materialized) await conn.run(`DROP TABLE IF EXISTS temp.main.${sqlIdent(table)}`).catch(() => {});
    await Promise.all(written.map((input) => unlink(input).catch(() => {})));
    await Promise.all(outputs.map((o) => unlink(o.path).catch(() => {})));
  }
}
