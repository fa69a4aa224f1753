import { type ColumnType, DATASETS, type DatasetDef, type Filter } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { type ApiKey, canReadDataset } from './auth/keys.js';
import { assertDatasetAllowed } from './auth/plugin.js';

/** A dataset as the API shows it (`GET /v1/datasets`) and as the query compiler reads it. */
export interface DatasetInfo {
  name: string;
  description?: string;
  partition_columns: string[];
  /** Column → DuckDB type. For open-schema datasets (products) this includes discovered fields. */
  schema: Record<string, ColumnType>;
  /** Column names, in file order. */
  columns: string[];
  time_column?: string;
  /**
   * The dataset this one is built from (`candles_1m` from `candles`, `product_prices_daily`
   * from `products`): a key that may read the parent may read it too, and the parent's row
   * scopes apply to it as well as its own.
   */
  derived_from?: string;
}

/** Whether the key may read this dataset, directly or through the dataset it derives from. */
export function canReadDatasetInfo(key: ApiKey, d: Pick<DatasetInfo, 'name' | 'derived_from'>): boolean {
  return canReadDataset(key, d.name) || (d.derived_from !== undefined && canReadDataset(key, d.derived_from));
}

/** The key's row scopes for a dataset: its own and its parent's, ANDed (hasOwn: no prototype names). */
export function rowScopesFor(
  key: ApiKey,
  d: Pick<DatasetInfo, 'name' | 'derived_from'>,
): Filter[] | undefined {
  const own = Object.hasOwn(key.rowScopes, d.name) ? key.rowScopes[d.name]! : [];
  const parent =
    d.derived_from !== undefined && Object.hasOwn(key.rowScopes, d.derived_from)
      ? key.rowScopes[d.derived_from]!
      : [];
  const all = [...parent, ...own];
  return all.length > 0 ? all : undefined;
}

/**
 * Where the API learns which datasets exist and their columns. The static catalog knows the
 * fixed columns of `@parquetry/lake`'s definitions; the engine provides one that adds the fields
 * it discovered in open-schema datasets (products' free-form fields).
 */
export interface DatasetCatalog {
  list(): Promise<DatasetInfo[]>;
}

export function datasetInfo(def: DatasetDef, extraColumns: Record<string, ColumnType> = {}): DatasetInfo {
  const schema: Record<string, ColumnType> = { ...def.columns };
  if (def.openSchema) {
    for (const [name, type] of Object.entries(extraColumns)) if (!(name in schema)) schema[name] = type;
  }
  return {
    name: def.name,
    description: def.description,
    partition_columns: [...def.partitionColumns],
    schema,
    columns: Object.keys(schema),
    ...(def.timeColumn ? { time_column: def.timeColumn } : {}),
  };
}

export function staticDatasetCatalog(defs: readonly DatasetDef[] = DATASETS): DatasetCatalog {
  const infos = defs.map((d) => datasetInfo(d));
  return { list: async () => infos.map((i) => structuredClone(i)) };
}

/**
 * The dataset a key asked for: 403 when it exists but is outside the key's scope, 400 listing
 * the datasets this key may read when it does not exist.
 */
export function resolveDataset(all: readonly DatasetInfo[], name: string, key: ApiKey): DatasetInfo {
  const found = all.find((d) => d.name === name);
  if (found) {
    if (!canReadDatasetInfo(key, found)) assertDatasetAllowed(key, found.name);
    return found;
  }
  const valid = all.filter((d) => canReadDatasetInfo(key, d)).map((d) => d.name);
  throw new InvalidInputError(
    `unknown dataset ${JSON.stringify(name.slice(0, 64))}; valid: ${valid.join(', ')}`,
    {
      code: 'unknown_dataset',
      details: { valid },
    },
  );
}
