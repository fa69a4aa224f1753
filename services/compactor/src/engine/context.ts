import type { DuckDBConnection } from '@duckdb/node-api';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Catalog, ObjectStore } from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';
import type { CrashHook } from './crash.js';

/** What every operation runs with; the service and the CLI each build one. */
export interface OpContext {
  catalog: Catalog;
  store: ObjectStore;
  /** A connection of a DuckDB opened with a memory limit and a temp directory (spilling). */
  conn: DuckDBConnection;
  /** Where `lake.committed.<dataset>` is published; without it nothing is announced. */
  js?: JetStreamClient;
  logger: Logger;
  metrics?: Metrics;
  /** Local scratch space for staged outputs. */
  workDir: string;
  /** Names this process in catalog intents (recover() rolls its own intents forward). */
  writerId: string;
  crash: CrashHook;
  defaults: { targetFileSizeMb: number; vacuumGraceMinutes: number };
  /** Whether an upsert may read a local file path (the CLI), not only an object of the store (jobs). */
  allowLocalFiles: boolean;
  clock: () => Date;
  /** Called while long work runs (the job keeps its lease on the work queue). */
  heartbeat?: () => void;
}
