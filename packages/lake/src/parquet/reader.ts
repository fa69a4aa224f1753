import { stat } from 'node:fs/promises';
import {
  type DuckDBConnection,
  type DuckDBDateValue,
  type DuckDBTimestampTZValue,
  DuckDBTypeId,
  type DuckDBValue,
  type DuckDBValueConverter,
  type JS,
  JSDuckDBValueConverter,
} from '@duckdb/node-api';
import { InvalidInputError } from '@parquetry/service';
import { sqlIdent, sqlString } from './duckdb.js';

/** A JSON-safe JS value as the reader returns it. */
export type ParquetValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | ParquetValue[]
  | { [key: string]: ParquetValue };
export type ParquetRow = Record<string, ParquetValue>;

export interface SqlFragment {
  /** SQL with `?` or `$name` placeholders, built from validated identifiers only. */
  sql: string;
  params?: DuckDBValue[] | Record<string, DuckDBValue>;
}

export interface ReadParquetOptions {
  /** Columns to read (default all), quoted as identifiers. */
  columns?: readonly string[];
  where?: SqlFragment;
  /** SQL ORDER BY list built from validated identifiers, e.g. `"ts" DESC`. */
  orderBy?: string;
  limit?: number;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO-8601 in UTC with milliseconds, or microseconds when there are any; ±infinity as words. */
export function isoFromMicros(micros: bigint): string {
  if (micros >= 9223372036854775807n) return 'infinity';
  if (micros <= -9223372036854775807n) return '-infinity';
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const sub = Number(micros - ms * 1000n);
  const iso = new Date(Number(ms)).toISOString();
  return sub === 0 ? iso : `${iso.slice(0, -1)}${pad(sub, 3)}Z`;
}

export function isoDateFromDays(days: number): string {
  if (!Number.isFinite(days)) return days > 0 ? 'infinity' : '-infinity';
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * DuckDB values → JSON-safe JS: BIGINT (and wider) → number when safe, else decimal string;
 * TIMESTAMP[TZ] → ISO string; DATE → 'YYYY-MM-DD'; the rest as the JS converter does, recursing
 * through lists and structs with these rules.
 */
export const parquetValueConverter: DuckDBValueConverter<ParquetValue> = (value, type, converter) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.BIGNUM: {
      const b = value as bigint;
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(b)
        : b.toString();
    }
    case DuckDBTypeId.TIMESTAMP_TZ:
    case DuckDBTypeId.TIMESTAMP:
      return isoFromMicros((value as DuckDBTimestampTZValue).micros);
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_NS:
      return (JSDuckDBValueConverter(value, type, JSDuckDBValueConverter) as Date).toISOString();
    case DuckDBTypeId.DATE:
      return isoDateFromDays((value as DuckDBDateValue).days);
    case DuckDBTypeId.TIME:
    case DuckDBTypeId.TIME_NS:
    case DuckDBTypeId.TIME_TZ:
    case DuckDBTypeId.INTERVAL:
    case DuckDBTypeId.UUID:
      return String(value);
    default:
      return JSDuckDBValueConverter(
        value,
        type,
        converter as unknown as DuckDBValueConverter<JS>,
      ) as ParquetValue;
  }
};

function parquetSource(paths: readonly string[]): string {
  // Partition columns are stored in every file: hive_partitioning off so path segments never
  // shadow them; union_by_name because product files of one partition differ in columns.
  return `read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true, hive_partitioning = false)`;
}

/** The SELECT the reader runs, exposed for callers that stream it elsewhere (COPY, export). */
export function parquetSelectSql(paths: readonly string[], opts: ReadParquetOptions = {}): string {
  if (paths.length === 0) throw new InvalidInputError('no Parquet files to read');
  const cols = opts.columns && opts.columns.length > 0 ? opts.columns.map(sqlIdent).join(', ') : '*';
  let sql = `SELECT ${cols} FROM ${parquetSource(paths)}`;
  if (opts.where?.sql) sql += ` WHERE ${opts.where.sql}`;
  if (opts.orderBy) sql += ` ORDER BY ${opts.orderBy}`;
  if (opts.limit !== undefined) {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 0)
      throw new InvalidInputError(`bad limit ${opts.limit}`);
    sql += ` LIMIT ${opts.limit}`;
  }
  return sql;
}

/**
 * Streams rows of Parquet files as batches of JSON-safe row objects (one DuckDB chunk, ≤ 2048
 * rows, per batch). No files → no batches.
 */
export async function* readParquetRows(
  conn: DuckDBConnection,
  paths: readonly string[],
  opts: ReadParquetOptions = {},
): AsyncGenerator<ParquetRow[]> {
  if (paths.length === 0) return;
  const result = await conn.stream(parquetSelectSql(paths, opts), opts.where?.params);
  for await (const batch of result.yieldConvertedRowObjects(parquetValueConverter)) {
    if (batch.length > 0) yield batch as ParquetRow[];
  }
}

export interface ParquetFileStats {
  rows: number;
  bytes: number;
  rowGroups: number;
  /** Codec of the first column chunk (`SNAPPY`, `ZSTD`, …), or undefined for an empty file. */
  compression: string | undefined;
  /** DuckDB types as DuckDB reads the file. */
  columns: { name: string; type: string }[];
}

/** ParquetRow count, size, row groups and schema from the file footer only (no data pages read). */
export async function parquetFileStats(conn: DuckDBConnection, path: string): Promise<ParquetFileStats> {
  const st = await stat(path).catch((err: unknown) => {
    throw new InvalidInputError(`no such Parquet file ${path}`, { cause: err });
  });
  const src = sqlString(path);
  // One connection runs one query at a time: sequential on purpose.
  const meta = await conn.runAndReadAll(`SELECT num_rows, num_row_groups FROM parquet_file_metadata(${src})`);
  const codec = await conn.runAndReadAll(`SELECT compression FROM parquet_metadata(${src}) LIMIT 1`);
  const schema = await conn.runAndReadAll(
    `DESCRIBE SELECT * FROM read_parquet(${src}, hive_partitioning = false)`,
  );
  const m = meta.getRowObjectsJS()[0] ?? {};
  return {
    rows: Number(m.num_rows ?? 0),
    bytes: st.size,
    rowGroups: Number(m.num_row_groups ?? 0),
    compression: (codec.getRowObjectsJS()[0]?.compression as string | undefined) ?? undefined,
    columns: schema
      .getRowObjectsJS()
      .map((r) => ({ name: String(r.column_name), type: String(r.column_type) })),
  };
}
