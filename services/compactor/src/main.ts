import { connectBus } from '@parquetry/bus';
import { openObjectStore } from '@parquetry/lake';
import { createLogger, loadConfig, Metrics, onShutdown, runMain, startProbeServer } from '@parquetry/service';
import { createCompactor, SERVICE } from './app.js';
import { compactorConfigSchema } from './config.js';

/** Process entry: config, logger, connections, probes, signals. The wiring is in app.ts. */
async function main(): Promise<void> {
  const config = loadConfig(compactorConfigSchema);
  const logger = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = new Metrics(SERVICE);
  const bus = await connectBus({ url: config.NATS_URL, name: SERVICE, logger, waitOnFirstConnect: true });
  const store = openObjectStore(config.LAKE_URL, config, { cacheDir: `${config.WORK_DIR}/s3-cache` });
  const app = await createCompactor({ config, bus, store, logger, metrics });
  const probes = await startProbeServer({
    port: config.HTTP_PORT,
    metrics,
    logger,
    ready: app.ready,
    health: () => ({ instance: config.INSTANCE_ID }),
  });
  logger.info(
    {
      lake: config.LAKE_URL,
      port: probes.port,
      instance: config.INSTANCE_ID,
      memory_limit: config.DUCKDB_MEMORY_LIMIT,
      policy: config.POLICY_ENABLED
        ? { interval_ms: config.POLICY_INTERVAL_MS, max_small_files: config.POLICY_MAX_SMALL_FILES }
        : false,
    },
    'started',
  );
  onShutdown(logger, async () => {
    await app.stop();
    probes.close();
    await bus.close();
    await store.close();
  });
}

runMain(SERVICE, main);
