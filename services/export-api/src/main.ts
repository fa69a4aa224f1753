import { readFileSync } from 'node:fs';
import { connectBus } from '@parquetry/bus';
import { openCatalog, openObjectStore } from '@parquetry/lake';
import { createLogger, loadConfig, Metrics, onShutdown, runMain } from '@parquetry/service';
import { candleConfigSchema } from './candles/config.js';
import { createCandleModule } from './candles/module.js';
import { exportApiConfigSchema } from './config.js';
import { createExportApi, exportApiPaths } from './server.js';

const SERVICE = 'export-api';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Process entry: config, logger, connections, listen, signals. The wiring is in server.ts. */
async function main(): Promise<void> {
  const config = loadConfig(exportApiConfigSchema);
  const candleConfig = loadConfig(candleConfigSchema);
  const logger = createLogger(SERVICE, config.LOG_LEVEL);
  if (config.signingSecretEphemeral) {
    // EXPORT_SIGNING_SECRET is not set: download links are signed with a per-process secret.
    logger.warn({ setting: 'EXPORT_SIGNING_SECRET' }, 'signing_secret_ephemeral');
  }
  const metrics = new Metrics(SERVICE);
  const bus = await connectBus({ url: config.NATS_URL, name: SERVICE, logger, waitOnFirstConnect: true });
  const store = openObjectStore(config.LAKE_URL, config, { cacheDir: exportApiPaths(config).s3Cache });
  const catalog = await openCatalog({ nc: bus.nc, logger, metrics, replicas: config.STREAM_REPLICAS });
  const api = await createExportApi({
    config,
    logger,
    metrics,
    nc: bus.nc,
    catalog,
    store,
    isConnected: () => bus.isConnected(),
    version: packageVersion(),
    routeModules: (ctx) => [createCandleModule(ctx, candleConfig)],
  });
  const address = await api.app.listen({ port: config.HTTP_PORT, host: config.HTTP_HOST });
  logger.info({ lake: config.LAKE_URL, address, duckdb: api.duck.version }, 'started');
  onShutdown(logger, async () => {
    await api.stop();
    await bus.close();
    await store.close();
  });
}

runMain(SERVICE, main);
