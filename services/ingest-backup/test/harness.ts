import { type Bus, connectBus } from '@parquetry/bus';
import { type DuckDB, type ObjectStore, openDuckDB, openObjectStore } from '@parquetry/lake';
import { loadConfig, Metrics, silentLogger } from '@parquetry/service';
import { createIngestBackup, type IngestBackup } from '../src/app.js';
import { type IngestConfig, ingestConfigSchema } from '../src/config.js';

export interface Harness {
  app: IngestBackup;
  bus: Bus;
  store: ObjectStore;
  duck: DuckDB;
  config: IngestConfig;
  metrics: Metrics;
  close(): Promise<void>;
}

/** ingest-backup in-process against a real NATS server and a real lake (fs or s3rver). */
export async function startIngest(env: Record<string, string>): Promise<Harness> {
  const config = loadConfig(ingestConfigSchema, { FLUSH_MAX_AGE_MS: '200', LOG_LEVEL: 'silent', ...env });
  const logger = silentLogger();
  const bus = await connectBus({ url: config.NATS_URL, name: 'ingest-test', logger });
  const store = openObjectStore(config.LAKE_URL, config);
  const duck = await openDuckDB({ threads: 1 });
  const metrics = new Metrics('ingest-backup', { defaults: false });
  const app = await createIngestBackup({
    config,
    bus,
    store,
    duck,
    logger,
    metrics,
  });
  return {
    app,
    bus,
    store,
    duck,
    config,
    metrics,
    async close() {
      await app.stop();
      await bus.close();
      duck.close();
      await store.close();
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
