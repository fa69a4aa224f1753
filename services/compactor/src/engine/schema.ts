import type { DuckDBConnection } from '@duckdb/node-api';
import { type ColumnType, type DatasetDef, storageType } from '@parquetry/lake';
import { type ColumnInfo, describe, parquetSource } from './duck.js';

export interface DatasetSchema {
  /** Column → type for filters and expressions: the registry's columns, plus what the files add to an open schema. */
  types: Record<string, ColumnType>;
  /** DuckDB type of each column as the files store it (registry type when no file has it). */
  storage: Map<string, string>;
  /** Columns of the files, in order. */
  columns: ColumnInfo[];
}

/**
 * The schema an op validates filters and expressions against. The registry is authoritative
 * for fixed columns; open-schema datasets (products) add the columns their files carry. Read
 * from Parquet footers only.
 */
export async function datasetSchema(
  conn: DuckDBConnection,
  def: DatasetDef,
  localPaths: readonly string[],
): Promise<DatasetSchema> {
  const columns = localPaths.length > 0 ? await describe(conn, parquetSource(localPaths)) : [];
  const types: Record<string, ColumnType> = { ...def.columns };
  const storage = new Map<string, string>(Object.entries(def.columns).map(([c, t]) => [c, storageType(t)]));
  for (const c of columns) {
    if (Object.hasOwn(def.columns, c.name)) {
      storage.set(c.name, c.duckType);
    } else if (def.openSchema) {
      storage.set(c.name, c.duckType);
      // defineProperty: a column named `__proto__` must become a key, not a prototype.
      if (c.type)
        Object.defineProperty(types, c.name, {
          value: c.type,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
  }
  return { types, storage, columns };
}
