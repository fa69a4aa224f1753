import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  type DuckDBType,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import {
  type BoundType,
  type ColumnType,
  DEFAULT_ROW_GROUP_SIZE,
  type ParamList,
  sqlIdent,
  sqlString,
} from '@parquetry/lake';

const DUCKDB_TYPES: Record<BoundType, DuckDBType> = { VARCHAR, DOUBLE, BIGINT, INTEGER, BOOLEAN };

export const emptyParams = (): ParamList => ({ params: [], types: [] });

/**
 * Parquet files as one relation. Partition columns are stored in every file, so hive
 * partitioning stays off; union_by_name because product files of one partition differ in columns.
 */
/** `filename` adds each row's source path as a column (named `filename`, or the given name). */
export function parquetSource(paths: readonly string[], opts: { filename?: boolean | string } = {}): string {
  if (paths.length === 0) throw new Error('parquetSource needs at least one file');
  const list = paths.map(sqlString).join(', ');
  const filename =
    typeof opts.filename === 'string'
      ? `, filename = ${sqlString(opts.filename)}`
      : opts.filename
        ? ', filename = true'
        : '';
  return `read_parquet([${list}], union_by_name = true, hive_partitioning = false${filename})`;
}

/** Runs a statement with its parameters bound with explicit types (never guessed from JS values). */
export async function runSql(conn: DuckDBConnection, sql: string, p: ParamList = emptyParams()) {
  if (p.params.length === 0) return conn.run(sql);
  return conn.run(
    sql,
    p.params as never,
    p.types.map((t) => DUCKDB_TYPES[t]),
  );
}

export async function queryRows(
  conn: DuckDBConnection,
  sql: string,
  p: ParamList = emptyParams(),
): Promise<Record<string, unknown>[]> {
  const reader =
    p.params.length === 0
      ? await conn.runAndReadAll(sql)
      : await conn.runAndReadAll(
          sql,
          p.params as never,
          p.types.map((t) => DUCKDB_TYPES[t]),
        );
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

export interface ColumnInfo {
  name: string;
  /** DuckDB type text, e.g. `TIMESTAMP WITH TIME ZONE`. */
  duckType: string;
  /** The filter/expression type, when the column has one (nested types do not). */
  type?: ColumnType;
}

/** Maps DuckDB type text to the filter language's column types. */
export function columnTypeOf(duckType: string): ColumnType | undefined {
  const t = duckType.toUpperCase();
  if (t === 'VARCHAR' || t === 'JSON') return t;
  if (t === 'BIGINT' || t === 'HUGEINT' || t === 'UINTEGER' || t === 'UBIGINT') return 'BIGINT';
  if (t === 'INTEGER' || t === 'SMALLINT' || t === 'TINYINT' || t === 'USMALLINT' || t === 'UTINYINT')
    return 'INTEGER';
  if (t === 'DOUBLE' || t === 'FLOAT' || t.startsWith('DECIMAL')) return 'DOUBLE';
  if (t === 'BOOLEAN') return 'BOOLEAN';
  if (t === 'DATE') return 'DATE';
  if (t === 'TIMESTAMP WITH TIME ZONE' || t.startsWith('TIMESTAMP')) return 'TIMESTAMPTZ';
  return undefined;
}

/** Columns of a relation (from Parquet footers only when it is a read_parquet). */
export async function describe(conn: DuckDBConnection, relationSql: string): Promise<ColumnInfo[]> {
  const rows = await queryRows(conn, `DESCRIBE SELECT * FROM ${relationSql}`);
  return rows.map((r) => {
    const duckType = String(r.column_type);
    const type = columnTypeOf(duckType);
    return { name: String(r.column_name), duckType, ...(type ? { type } : {}) };
  });
}

export interface StagedFile {
  /** Local path of the written file. */
  local: string;
  rows: number;
  bytes: number;
}

export interface CopyOptions {
  compression?: string;
  /** Split into files of about this size (DuckDB FILE_SIZE_BYTES); one file when absent. */
  fileSizeBytes?: number;
}

/** Row counts from the Parquet footers of written files (what a reader will see). */
export async function footerRows(
  conn: DuckDBConnection,
  paths: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (paths.length === 0) return out;
  const rows = await queryRows(
    conn,
    `SELECT file_name, num_rows FROM parquet_file_metadata([${paths.map(sqlString).join(', ')}])`,
  );
  for (const r of rows) out.set(String(r.file_name), Number(r.num_rows));
  return out;
}

/**
 * `COPY (<select>) TO <dir>`: DuckDB streams the result into Parquet, spilling beyond its
 * memory_limit, so a partition larger than memory rewrites in bounded memory. Returns the
 * files written with their row counts read back from their footers; empty files are dropped.
 */
export async function copyToDir(
  conn: DuckDBConnection,
  selectSql: string,
  params: ParamList,
  dir: string,
  opts: CopyOptions = {},
): Promise<{ files: StagedFile[]; rowsReported: number }> {
  const codec = opts.compression ?? 'snappy';
  const options = [`FORMAT parquet`, `COMPRESSION ${codec}`, `ROW_GROUP_SIZE ${DEFAULT_ROW_GROUP_SIZE}`];
  let target: string;
  if (opts.fileSizeBytes !== undefined) {
    options.push(`FILE_SIZE_BYTES ${Math.floor(opts.fileSizeBytes)}`);
    target = dir;
  } else {
    target = join(dir, 'data_0.parquet');
  }
  await mkdir(dir, { recursive: true });
  const result = await runSql(
    conn,
    `COPY (${selectSql}) TO ${sqlString(target)} (${options.join(', ')})`,
    params,
  );
  return { files: await stagedFiles(conn, dir), rowsReported: Number(result.rowsChanged) };
}

/** The Parquet files of a staging directory with their footer row counts, in name order. */
export async function stagedFiles(conn: DuckDBConnection, dir: string): Promise<StagedFile[]> {
  const names = (await readdir(dir))
    .filter((n) => n.endsWith('.parquet'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const paths = names.map((n) => join(dir, n));
  const rows = await footerRows(conn, paths);
  const out: StagedFile[] = [];
  for (const p of paths) {
    const n = rows.get(p) ?? 0;
    if (n === 0) continue;
    out.push({ local: p, rows: n, bytes: (await stat(p)).size });
  }
  return out;
}

/**
 * Min and max of a timestamp column of one file, as ISO strings, for time pruning: from the
 * row-group statistics in the footer when every row group has them, else by scanning the column.
 */
export async function timeRange(
  conn: DuckDBConnection,
  path: string,
  column: string,
): Promise<{ minTime?: string; maxTime?: string }> {
  const [s] = await queryRows(
    conn,
    `SELECT count(*)::BIGINT AS groups, count(stats_min_value)::BIGINT AS with_stats,
            epoch_ms(min(TRY_CAST(stats_min_value AS TIMESTAMPTZ)))::BIGINT AS lo,
            epoch_ms(max(TRY_CAST(stats_max_value AS TIMESTAMPTZ)))::BIGINT AS hi
       FROM parquet_metadata(${sqlString(path)}) WHERE path_in_schema = ${sqlString(column)}`,
  );
  let r = s;
  const complete =
    s !== undefined && Number(s.groups) > 0 && Number(s.groups) === Number(s.with_stats) && s.lo !== null;
  if (!complete) {
    [r] = await queryRows(
      conn,
      `SELECT epoch_ms(min(${sqlIdent(column)}))::BIGINT AS lo, epoch_ms(max(${sqlIdent(column)}))::BIGINT AS hi FROM read_parquet(${sqlString(path)})`,
    );
  }
  if (r?.lo === null || r?.lo === undefined) return {};
  return { minTime: new Date(Number(r.lo)).toISOString(), maxTime: new Date(Number(r.hi)).toISOString() };
}
