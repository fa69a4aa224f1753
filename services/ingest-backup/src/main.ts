import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus } from '@parquetry/bus';
import { fileUrlToDir, openDuckDB, openObjectStore } from '@parquetry/lake';
import {
  createLogger,
  loadConfig,
  Metrics,
  onShutdown,
  runMain,
  startProbeServer,
  watchDiskFree,
} from '@parquetry/service';
import { createIngestBackup } from './app.js';
import { ingestConfigSchema } from './config.js';

const SERVICE = 'ingest-backup';

/** Process entry: config, logger, connections, probes, signals. The wiring is in app.ts. */
async function main(): Promise<void> {
  const config = loadConfig(ingestConfigSchema);
  const logger = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = new Metrics(SERVICE);
  const bus = await connectBus({ url: config.NATS_URL, name: SERVICE, logger, waitOnFirstConnect: true });
  const store = openObjectStore(config.LAKE_URL, config);
  const duck = await openDuckDB({
    threads: config.DUCKDB_THREADS,
    memoryLimit: `${config.DUCKDB_MEMORY_MB}MB`,
    tempDirectory: join(tmpdir(), `parquetry-${SERVICE}-duckdb`),
  });
  const app = await createIngestBackup({ config, bus, store, duck, logger, metrics });
  const probes = await startProbeServer({ port: config.HTTP_PORT, metrics, logger, ready: app.ready });
  // Parquet files are written under the temp directory first, then moved into a file lake.
  const stopDiskWatch = watchDiskFree(metrics, {
    tmp: tmpdir(),
    ...(config.LAKE_URL.startsWith('file://') ? { lake: fileUrlToDir(config.LAKE_URL) } : {}),
  });
  logger.info({ lake: config.LAKE_URL, port: probes.port }, 'started');
  onShutdown(logger, async () => {
    stopDiskWatch();
    await app.stop();
    probes.close();
    await bus.close();
    await store.close();
    duck.close();
  });
}

runMain(SERVICE, main);
