/**
 * Input files through DuckDB: resolve files, describe their schema, estimate their size, and
 * stream the planned query as record batches whose vectors the COPY encoders read in place.
 * Nothing is loaded whole into JS: DuckDB streams (or, in eager mode, materializes natively)
 * and each chunk of ≤ 2048 rows is encoded and let go.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { type DuckDBConnection, type DuckDBDataChunk, DuckDBInstance } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { InvalidInputError, NotFoundError } from '@parquetry/service';
import { type RawBatch, type RawColumn, SOURCE_WIDTH, type WireKind } from './copy-binary.js';
import {
  type ColumnPlan,
  duckBaseType,
  estimateRowBytes,
  type MemoryEstimate,
  quoteIdent,
  quoteLiteral,
  type SourceColumn,
} from './plan.js';

export type SourceFormat = 'parquet' | 'csv' | 'ndjson';

export interface CsvOptions {
  delimiter?: string | undefined;
  header?: boolean | undefined;
  quote?: string | undefined;
  null_string?: string | undefined;
}

export interface ReadOptions {
  csv?: CsvOptions;
  /** Rows DuckDB's sniffer inspects (`validation_data.sample_size`). */
  sampleSize: number;
}

const EXTENSIONS: Record<string, SourceFormat> = {
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.csv': 'csv',
  '.tsv': 'csv',
  '.txt': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.json': 'ndjson',
};

export function detectFormat(path: string): SourceFormat | undefined {
  return EXTENSIONS[extname(path).toLowerCase()];
}

function sqlList(files: readonly string[]): string {
  return `[${files.map(quoteLiteral).join(', ')}]`;
}

function csvArgs(csv: CsvOptions | undefined, sampleSize: number): string {
  const args = [`sample_size=${sampleSize}`];
  if (csv?.delimiter !== undefined) args.push(`delim=${quoteLiteral(csv.delimiter)}`);
  if (csv?.header !== undefined) args.push(`header=${csv.header}`);
  if (csv?.quote !== undefined) args.push(`quote=${quoteLiteral(csv.quote)}`);
  if (csv?.null_string !== undefined) args.push(`nullstr=${quoteLiteral(csv.null_string)}`);
  return args.join(', ');
}

/** A DuckDB struct literal `{'a': 'VARCHAR', …}` naming the type each JSON key is read as. */
function columnsStruct(columns: readonly SourceColumn[]): string {
  return `{${columns.map((c) => `${quoteLiteral(c.name)}: ${quoteLiteral(c.duckType)}`).join(', ')}}`;
}

/** NDJSON keys are read as text, except nested or mixed values, kept as JSON text. */
function ndjsonReadType(inferred: string): string {
  return ['STRUCT', 'LIST', 'MAP', 'JSON', 'ARRAY', 'UNION'].includes(duckBaseType(inferred))
    ? 'JSON'
    : 'VARCHAR';
}

/**
 * The `read_…` call for files. CSV and NDJSON are read as text (types were sniffed apart) so a
 * value that doesn't fit its sniffed type becomes a reject with its row number instead of
 * stopping DuckDB; CSV lines DuckDB can't split go to `rejectsTable`.
 */
export function readerSql(
  files: readonly string[],
  format: SourceFormat,
  opts: ReadOptions & { columns?: readonly SourceColumn[] | undefined; rejectsTable?: string | undefined },
): string {
  switch (format) {
    case 'parquet':
      // Lake files carry their partition columns inside: hive paths add nothing.
      return `read_parquet(${sqlList(files)}, hive_partitioning=false, union_by_name=true)`;
    case 'csv': {
      const rejects = opts.rejectsTable
        ? `, store_rejects=true, rejects_table=${quoteLiteral(opts.rejectsTable)}, rejects_scan=${quoteLiteral(`${opts.rejectsTable}_scan`)}`
        : '';
      return `read_csv(${sqlList(files)}, all_varchar=true, ${csvArgs(opts.csv, opts.sampleSize)}${rejects})`;
    }
    case 'ndjson':
      return opts.columns
        ? `read_json(${sqlList(files)}, format='newline_delimited', columns=${columnsStruct(opts.columns)})`
        : `read_json_auto(${sqlList(files)}, format='newline_delimited', sample_size=${opts.sampleSize})`;
  }
}

export interface DescribedSource {
  /** Columns as the reader yields them (text for CSV/NDJSON), with the sniffed type in inferredType. */
  columns: SourceColumn[];
  /** strptime formats DuckDB's CSV sniffer found for dates and timestamps. */
  dateFormat?: string | undefined;
  timestampFormat?: string | undefined;
}

/** Formats tried, in order, when `date_format: auto` meets a text column cast to a date or time. */
export const DATE_FORMAT_CANDIDATES = [
  '%d/%m/%Y',
  '%m/%d/%Y',
  '%d-%m-%Y',
  '%Y/%m/%d',
  '%d.%m.%Y',
  '%Y%m%d',
  '%d-%b-%y',
  '%d-%b-%Y',
  '%d %b %Y',
  '%b %d, %Y',
];
export const TIME_SUFFIXES = ['', ' %H:%M:%S', ' %H:%M', ' %H:%M:%S.%f', 'T%H:%M:%S'];

export interface DuckSourceOptions {
  threads?: number | undefined;
  memoryLimitBytes?: number | undefined;
}

/** One DuckDB connection for a load. Owns its instance unless one is passed in. */
export class DuckSource {
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly connection: DuckDBConnection,
    private readonly ownsInstance: boolean,
  ) {}

  static async open(opts: DuckSourceOptions & { instance?: DuckDBInstance } = {}): Promise<DuckSource> {
    const instance = opts.instance ?? (await DuckDBInstance.create(':memory:'));
    const connection = await instance.connect();
    const src = new DuckSource(instance, connection, opts.instance === undefined);
    await connection.run(`SET TimeZone = 'UTC'`);
    await connection.run(
      `SET temp_directory = ${quoteLiteral(join(tmpdir(), `parquetry-duckdb-${process.pid}`))}`,
    );
    if (opts.threads !== undefined) await connection.run(`SET threads = ${opts.threads}`);
    if (opts.memoryLimitBytes !== undefined) await src.setMemoryLimit(opts.memoryLimitBytes);
    return src;
  }

  async setMemoryLimit(bytes: number): Promise<void> {
    await this.connection.run(`SET memory_limit = '${Math.max(32, Math.floor(bytes / 1024 / 1024))}MB'`);
  }

  async query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as T[];
  }

  /**
   * Files named by inputs: files as they are, directories walked for files of the format
   * (names starting with `_` or `.` are metadata and skipped), anything else a glob.
   */
  async resolveFiles(
    inputs: readonly string[],
    format?: SourceFormat,
  ): Promise<{ files: string[]; format: SourceFormat }> {
    const named: string[] = []; // files given by name: taken whatever their extension
    const found: string[] = []; // files found by walking or globbing: only those of the format
    for (const input of inputs) {
      const st = await stat(input).catch(() => undefined);
      if (st?.isFile()) named.push(resolve(input));
      else if (st?.isDirectory()) found.push(...(await walk(resolve(input))));
      else {
        const rows = await this.query<{ file: string }>(
          `SELECT file FROM glob(${quoteLiteral(input)}) ORDER BY file`,
        );
        if (rows.length === 0) throw new NotFoundError(`no input matches ${input}`);
        found.push(...rows.map((r) => resolve(r.file)));
      }
    }
    const fmt = format ?? commonFormat([...named, ...found]);
    const files = [...named, ...found.filter((f) => detectFormat(f) === fmt)];
    if (files.length === 0) throw new NotFoundError(`no ${fmt} files in ${inputs.join(', ')}`);
    return { files: [...new Set(files)].sort(), format: fmt };
  }

  /** Column names and types; CSV and NDJSON types come from DuckDB's sniffer over `sampleSize` rows. */
  async describe(
    files: readonly string[],
    format: SourceFormat,
    opts: ReadOptions,
  ): Promise<DescribedSource> {
    const describe = async (reader: string) =>
      (
        await this.query<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${reader}`)
      ).map((r) => ({ name: r.column_name, duckType: r.column_type }));
    if (format === 'parquet') return { columns: await describe(readerSql(files, format, opts)) };
    if (format === 'ndjson') {
      const sniffed = await describe(readerSql(files, format, opts));
      return {
        columns: sniffed.map((c) => ({
          name: c.name,
          duckType: ndjsonReadType(c.duckType),
          inferredType: c.duckType,
        })),
      };
    }
    const read = await describe(readerSql(files, 'csv', opts));
    const sniff = await this.query<{
      Columns: { name: string; type: string }[];
      DateFormat: string | null;
      TimestampFormat: string | null;
    }>(
      `SELECT Columns, DateFormat, TimestampFormat FROM sniff_csv(${quoteLiteral(files[0]!)}, ${csvArgs(opts.csv, opts.sampleSize)})`,
    );
    const types = new Map((sniff[0]?.Columns ?? []).map((c) => [c.name, c.type]));
    return {
      columns: read.map((c) => ({
        name: c.name,
        duckType: 'VARCHAR',
        inferredType: types.get(c.name) ?? 'VARCHAR',
      })),
      dateFormat: sniff[0]?.DateFormat ?? undefined,
      timestampFormat: sniff[0]?.TimestampFormat ?? undefined,
    };
  }

  /**
   * A strptime format that parses every non-NULL sampled value of a text column, or undefined
   * when ISO casts already do (or nothing fits: the casts then send the rows to the rejects).
   */
  async detectDateFormat(
    reader: string,
    column: string,
    withTime: boolean,
    sampleRows: number,
  ): Promise<string | undefined> {
    const ref = `s.${quoteIdent(column)}`;
    const formats = DATE_FORMAT_CANDIDATES.flatMap((d) => (withTime ? TIME_SUFFIXES.map((t) => d + t) : [d]));
    const counts = formats.map((f, i) => `count(try_strptime(${ref}, ${quoteLiteral(f)})) AS f${i}`);
    const sql = `SELECT count(${ref}) AS n, count(TRY_CAST(${ref} AS ${withTime ? 'TIMESTAMP' : 'DATE'})) AS iso, ${counts.join(', ')} FROM (SELECT * FROM ${reader} LIMIT ${sampleRows}) AS s`;
    const [row] = await this.query<Record<string, bigint>>(sql);
    if (!row || row.n === 0n || row.iso === row.n) return undefined;
    const i = formats.findIndex((_, k) => row[`f${k}`] === row.n);
    return i < 0 ? undefined : formats[i];
  }

  /** Rows (exact for Parquet) and bytes per row measured on the first `sampleRows` rows of the planned query. */
  async estimate(
    files: readonly string[],
    format: SourceFormat,
    reader: string,
    plans: readonly ColumnPlan[],
    sampleRows: number,
  ): Promise<MemoryEstimate> {
    const stringy = (w: WireKind) => SOURCE_WIDTH[w] === 16 && w !== 'interval';
    const avgs = plans.map((p, i) =>
      stringy(p.wire) ? `coalesce(avg(strlen(CAST(c${i} AS VARCHAR))), 0) AS a${i}` : `0 AS a${i}`,
    );
    const sample = `SELECT ${plans.map((p, i) => `${p.expr} AS c${i}`).join(', ') || '1 AS c0'} FROM ${reader} AS s LIMIT ${sampleRows}`;
    const [row] = await this.query<Record<string, number | bigint>>(
      `SELECT count(*) AS n, ${avgs.join(', ') || '0 AS a0'} FROM (${sample})`,
    );
    const sampled = Number(row?.n ?? 0);
    const { rowBytes, encodedRowBytes } = estimateRowBytes(
      plans.map((p, i) => ({ wire: p.wire, avgBytes: Number(row?.[`a${i}`] ?? 0) })),
    );
    if (format === 'parquet') {
      const [meta] = await this.query<{ rows: bigint | null }>(
        `SELECT sum(num_rows) AS rows FROM parquet_file_metadata(${sqlList(files)})`,
      );
      return { rows: Number(meta?.rows ?? 0), rowsExact: true, rowBytes, encodedRowBytes };
    }
    // A sample that came back short is the whole input.
    if (sampled < sampleRows) return { rows: sampled, rowsExact: true, rowBytes, encodedRowBytes };
    let bytes = 0;
    for (const f of files) bytes += (await stat(f)).size;
    const lineBytes = await averageLineBytes(files[0]!);
    return { rows: Math.ceil(bytes / Math.max(1, lineBytes)), rowsExact: false, rowBytes, encodedRowBytes };
  }

  /**
   * Chunks of `sql`, one at a time: streamed (DuckDB produces as we consume) or, when
   * `materialize` is set, computed whole by DuckDB first and then handed over chunk by chunk.
   */
  async *chunks(sql: string, materialize: boolean): AsyncGenerator<DuckDBDataChunk> {
    const result = materialize ? await this.connection.run(sql) : await this.connection.stream(sql);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) return;
      yield chunk;
    }
  }

  /** Stop a running query (the chunk iterator then throws). */
  interrupt(): void {
    this.connection.interrupt();
  }

  close(): void {
    this.connection.closeSync();
    if (this.ownsInstance) this.instance.closeSync();
  }
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('_') && !e.name.startsWith('.') && detectFormat(e.name))
    .map((e) => join(e.parentPath, e.name));
}

function commonFormat(files: readonly string[]): SourceFormat {
  const formats = new Set(files.map(detectFormat).filter((f) => f !== undefined));
  if (formats.size === 1) return [...formats][0]!;
  if (formats.size === 0) {
    throw new InvalidInputError(
      `cannot tell the format of ${files[0] ?? 'the input'}: set "format" in the config`,
    );
  }
  // A dataset directory mixing formats: Parquet wins (the lake's own files).
  if (formats.has('parquet')) return 'parquet';
  throw new InvalidInputError(`input mixes formats (${[...formats].join(', ')}): set "format" in the config`);
}

/** Average line length over the first MB of a text file. */
async function averageLineBytes(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let lines = 0;
    for (let i = 0; i < bytesRead; i++) if (buf[i] === 10) lines++;
    return lines === 0 ? bytesRead : bytesRead / lines;
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw vector access

function rawColumn(chunk: DuckDBDataChunk, index: number, width: number, rows: number): RawColumn {
  const vector = duckdb.data_chunk_get_vector(chunk.chunk, index);
  const data = duckdb.vector_get_data(vector, rows * width);
  // The binding returns null for "all valid", though its type says Uint8Array.
  const validity =
    (duckdb.vector_get_validity(vector, Math.ceil(rows / 64) * 8) as Uint8Array | null) ?? null;
  return {
    data,
    validity,
    readOutOfLine: (offset, length) =>
      duckdb.get_data_from_pointer(data.buffer as ArrayBuffer, data.byteOffset + offset, length),
  };
}

/** The first `kinds.length` columns of a chunk as raw vectors, plus `extraText` VARCHAR columns after them. */
export function rawBatch(chunk: DuckDBDataChunk, kinds: readonly WireKind[], extraText = 0): RawBatch {
  const rows = chunk.rowCount;
  const columns = kinds.map((k, i) => rawColumn(chunk, i, SOURCE_WIDTH[k], rows));
  for (let i = 0; i < extraText; i++) columns.push(rawColumn(chunk, kinds.length + i, 16, rows));
  return { rows, columns };
}
