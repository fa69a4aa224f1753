/**
 * Configuration of the pg-loader service (environment, parsed once in main()): which datasets
 * it follows and into which tables, and how it loads them.
 */
import { DATASETS } from '@parquetry/lake';
import { env } from '@parquetry/service';
import { z } from 'zod';
import { type LoadConfig, parseLoadConfig, pgLoaderEnvSchema } from './config.js';
import type { TableRef } from './table.js';

export interface FollowedDataset {
  dataset: string;
  table: TableRef;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * `products,ticks:lake_ticks` → products into `<schema>.products`, ticks into `<schema>.lake_ticks`.
 * Each entry is `dataset` or `dataset:table`; a dataset or a table may appear once.
 */
export function parseDatasetTables(value: string, schema: string): FollowedDataset[] {
  const valid = DATASETS.map((d) => d.name);
  const out: FollowedDataset[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const [dataset = '', table = dataset, ...rest] = entry.split(':').map((s) => s.trim());
    if (rest.length > 0) throw new Error(`"${entry}": expected dataset or dataset:table`);
    if (!valid.includes(dataset)) {
      throw new Error(`unknown dataset "${dataset}" (valid: ${valid.join(', ')})`);
    }
    if (!IDENT.test(table)) throw new Error(`"${table}" is not a plain table name (letters, digits, _)`);
    if (out.some((o) => o.dataset === dataset)) throw new Error(`dataset "${dataset}" is listed twice`);
    if (out.some((o) => o.table.name === table)) throw new Error(`table "${table}" is listed twice`);
    out.push({ dataset, table: { schema, name: table } });
  }
  if (out.length === 0) throw new Error('no dataset listed');
  return out;
}

export const pgLoaderServiceSchema = pgLoaderEnvSchema
  .extend({
    /** Datasets followed, each `dataset` or `dataset:table` (default table: the dataset's name). */
    PG_LOADER_DATASETS: z.string().default('products,ticks,candles'),
    /** PostgreSQL schema of the tables. */
    PG_LOADER_SCHEMA: z.string().regex(IDENT, 'must be a plain identifier').default('public'),
    /** A lake schema change: evolve (add new columns), ignore (keep the table's columns), fail. */
    PG_LOADER_SCHEMA_DRIFT: z.enum(['fail', 'evolve', 'ignore']).default('evolve'),
    /** Memory budget of one load (DuckDB plus the COPY batches in flight). */
    PG_LOADER_MEMORY_MB: env.int(256, 64),
    /** Full comparison of every table with the catalog: at start and this often. */
    PG_LOADER_RECONCILE_MS: env.int(300_000, 1000),
    /** Redelivery of an event whose load stopped answering (a load in progress keeps it alive). */
    PG_LOADER_ACK_WAIT_MS: env.int(60_000, 1000),
    MAX_DELIVER: env.int(10, 1),
    DUCKDB_THREADS: env.int(2, 1, 64),
  })
  .transform((c, ctx) => {
    try {
      return { ...c, datasets: parseDatasetTables(c.PG_LOADER_DATASETS, c.PG_LOADER_SCHEMA) };
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['PG_LOADER_DATASETS'], message: (err as Error).message });
      return z.NEVER;
    }
  });

export type PgLoaderServiceConfig = z.infer<typeof pgLoaderServiceSchema>;

/**
 * The load settings of a followed table: lake column names kept as they are, the drift policy
 * and memory budget of the environment, rejects in `<table>_rejects`, the ledger on.
 */
export function followLoadConfig(c: PgLoaderServiceConfig, table: TableRef): LoadConfig {
  return parseLoadConfig({
    schema_config: { column_naming: 'preserve' },
    os_configuration: { memory_limit_mb: c.PG_LOADER_MEMORY_MB, threads: c.DUCKDB_THREADS },
    database: {
      table_name: table.name,
      schema: table.schema,
      if_table_exists: 'append',
      schema_drift: c.PG_LOADER_SCHEMA_DRIFT,
      rejects: { to: 'table' },
      ledger: true,
    },
  });
}
