import type { DuckDBConnection } from '@duckdb/node-api';
import { type ColumnType, sqlIdent, sqlString } from '@parquetry/lake';
import { DESCRIBED_AS } from './column-types.js';

/**
 * FROM-clause relations over lake files with exactly a dataset's columns and types, whatever
 * the files hold: open-schema files (products) differ from each other, and a column the
 * dataset lists may be missing from every file an export selected. Paths are local paths from
 * the object store, never request text; every identifier is quoted.
 */

/** `read_parquet` over files: partition columns come from inside the files, files may differ in columns. */
export function readParquetSql(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true, hive_partitioning = false)`;
}

/** Columns of the union of these files, name → DuckDB type, as DESCRIBE prints them. */
export async function describeFiles(
  conn: DuckDBConnection,
  paths: readonly string[],
): Promise<Record<string, string>> {
  if (paths.length === 0) return {};
  const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${readParquetSql(paths)}`);
  const out: Record<string, string> = {};
  for (const row of r.getRowObjectsJS()) out[String(row.column_name)] = String(row.column_type);
  return out;
}

const castTarget = (t: ColumnType) => (t === 'JSON' ? 'VARCHAR' : t);

/**
 * `(SELECT <schema columns> FROM <source>)`: a column the files lack is a typed NULL, a column
 * of another type is TRY_CAST to the schema's type (a value that does not fit becomes NULL —
 * the dataset schema is the contract of every export). DuckDB matches names ignoring case.
 */
export function projectedSql(
  source: string,
  fileColumns: Readonly<Record<string, string>>,
  schema: Readonly<Record<string, ColumnType>>,
): string {
  const byLower = new Map(
    Object.entries(fileColumns).map(([name, type]) => [name.toLowerCase(), { name, type }]),
  );
  const cols = Object.entries(schema).map(([name, type]) => {
    const found = byLower.get(name.toLowerCase());
    if (!found) return `CAST(NULL AS ${castTarget(type)}) AS ${sqlIdent(name)}`;
    if (found.type === DESCRIBED_AS[type]) return `${sqlIdent(found.name)} AS ${sqlIdent(name)}`;
    return `TRY_CAST(${sqlIdent(found.name)} AS ${castTarget(type)}) AS ${sqlIdent(name)}`;
  });
  return `(SELECT ${cols.join(', ')} FROM ${source})`;
}

/** No files: a relation with the schema's columns and no rows. */
export function emptyRelationSql(schema: Readonly<Record<string, ColumnType>>): string {
  const cols = Object.entries(schema).map(
    ([name, type]) => `CAST(NULL AS ${castTarget(type)}) AS ${sqlIdent(name)}`,
  );
  return `(SELECT ${cols.join(', ')} WHERE false)`;
}

/** Candles may hold several revisions of one candle: keep the highest (docs/adr/0003). */
export function latestRevisionSql(relation: string): string {
  return (
    `(SELECT * FROM ${relation} ` +
    `QUALIFY row_number() OVER (PARTITION BY "symbol", "timeframe", "start" ORDER BY "revision" DESC) = 1)`
  );
}
