/**
 * The whole system as child processes: `instances` of each of the five built services, each
 * with its own INSTANCE_ID, HTTP port and work directories, sharing one bus, one lake and one
 * database; an API key made with export-api's own key functions.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createKeyInFile } from '@parquetry/export-api/auth';
import { freePort } from '@parquetry/testkit';
import { type ServiceName, ServiceProcess } from './procs.js';

export interface SystemOptions {
  natsUrl: string;
  lakeUrl: string;
  databaseUrl: string;
  /** Scratch space: keys file, compactor and export work directories. */
  dir: string;
  /** Instances of each service (default 2), or per service. */
  instances?: number | Partial<Record<ServiceName, number>>;
  /** Services left out (e.g. only ingest-backup for a fault test). */
  only?: readonly ServiceName[];
  /** Added to every service's environment (S3 settings, STREAM_REPLICAS, …). */
  env?: Record<string, string>;
  /** Per-service additions. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
}

export interface System {
  all: ServiceProcess[];
  of(service: ServiceName): ServiceProcess[];
  apiKey: string;
  /** Environment for the operator CLI (same bus and lake). */
  cliEnv: Record<string, string>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Graceful stop of everything (SIGTERM, drain); the exits. */
  stop(): Promise<void>;
  /** Every running instance's output tail, for a failure message. */
  tails(): string;
}

const BASE_ENV: Record<ServiceName, Record<string, string>> = {
  'ingest-backup': {
    FLUSH_MAX_AGE_MS: '400',
    // The real data is years old: retention (30 days by default) would drop all of it.
    PARQUET_MAX_AGE_DAYS: '100000',
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_MB: '128',
  },
  'candle-aggregator': {
    CANDLE_PARTITIONS: '4',
    LAKE_FLUSH_MS: '500',
    SNAPSHOT_INTERVAL_MS: '1000',
    // Candles close on stream time only (the sentinels), never because the wall clock moved on.
    QUIET_CLOSE_MS: '0',
    OWNERSHIP_TTL_MS: '3000',
    DUCKDB_THREADS: '1',
  },
  compactor: {
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '256MB',
    TARGET_FILE_SIZE_MB: '16',
    POLICY_INTERVAL_MS: '2500',
    POLICY_MAX_SMALL_FILES: '3',
    POLICY_SMALL_FILE_MB: '4',
    JOB_ACK_WAIT_MS: '15000',
  },
  'pg-loader': {
    PG_LOADER_DATASETS: 'products,ticks,candles',
    // The default drift policy (evolve) is under test: real scrapes type one column differently
    // per retailer (Lider's regularPrice "1190" is text, Tottus' 4490 a number), and the column
    // widens to text in the load's transaction, every row kept.
    PG_LOADER_RECONCILE_MS: '5000',
    PG_LOADER_ACK_WAIT_MS: '15000',
    DUCKDB_THREADS: '1',
  },
  'export-api': {
    HTTP_HOST: '127.0.0.1',
    NODE_ENV: 'test',
    EXPORT_SIGNING_SECRET: 'e2e-signing-secret-of-at-least-32-characters',
    RATE_LIMIT_PER_MIN: '100000',
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_MB: '256',
    CACHE_MB: '32',
  },
};

export async function createSystem(o: SystemOptions): Promise<System> {
  const count = (service: ServiceName) =>
    typeof o.instances === 'number' ? o.instances : (o.instances?.[service] ?? 2);
  const services = (o.only ?? (Object.keys(BASE_ENV) as ServiceName[])).slice();
  const keysFile = join(o.dir, 'api-keys.json');
  const { key } = await createKeyInFile({ file: keysFile, name: 'e2e', datasets: ['*'], admin: true });
  const common = {
    NATS_URL: o.natsUrl,
    LAKE_URL: o.lakeUrl,
    // info: a failing test's output tails then show what each service was doing.
    LOG_LEVEL: 'info',
    ...o.env,
  };
  const all: ServiceProcess[] = [];
  for (const service of services) {
    const n = count(service);
    for (let i = 0; i < n; i++) {
      const id = `${service}-${i + 1}`;
      const work = join(o.dir, id);
      mkdirSync(work, { recursive: true });
      const port = await freePort();
      const perInstance: Record<string, string> = { INSTANCE_ID: id };
      if (service === 'candle-aggregator') {
        perInstance.INSTANCE_INDEX = String(i);
        perInstance.INSTANCE_COUNT = String(n);
      }
      if (service === 'compactor') perInstance.WORK_DIR = work;
      if (service === 'pg-loader') perInstance.DATABASE_URL = o.databaseUrl;
      if (service === 'export-api') {
        perInstance.API_KEYS_FILE = keysFile;
        perInstance.EXPORT_WORK_DIR = work;
        perInstance.PUBLIC_BASE_URL = `http://127.0.0.1:${port}`;
      }
      const env = { ...common, ...BASE_ENV[service], ...perInstance, ...o.serviceEnv?.[service] };
      all.push(new ServiceProcess(`${service}#${i + 1}`, service, env, port));
    }
  }
  const system: System = {
    all,
    of: (service) => all.filter((p) => p.service === service),
    apiKey: key,
    cliEnv: { ...common },
    async waitReady(timeoutMs = 90_000) {
      await Promise.all(all.map((p) => p.waitReady(timeoutMs)));
    },
    async stop() {
      await Promise.all(all.map((p) => p.stop()));
    },
    tails() {
      return all
        .map((p) => `--- ${p.label} (starts ${p.starts}, crashes ${p.crashes}) ---\n${p.tail(15)}`)
        .join('\n');
    },
  };
  return system;
}

/** Starts every instance, writers first (they create the streams), and waits until all are ready. */
export async function startSystem(o: SystemOptions): Promise<System> {
  const system = await createSystem(o);
  for (const p of system.all) p.start();
  try {
    await system.waitReady();
  } catch (err) {
    await Promise.all(system.all.map((p) => p.kill9()));
    throw err;
  }
  return system;
}
