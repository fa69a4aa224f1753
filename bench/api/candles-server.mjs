// Child process of bench/api/candles.mjs: export-api's HTTP app with the candle module, composed
// as main.ts composes the service (bus, catalog, filesystem lake, sandboxed DuckDB, keys file),
// listening on a free port. Prints one JSON line `{"port": n}` when ready; SIGTERM stops it.
// Env: NATS_URL, LAKE_DIR, WORK_DIR, API_KEYS_FILE, CACHE_MB.
import { join } from 'node:path';
import { connectBus } from '@parquetry/bus';
import {
  buildApp,
  createCandleModule,
  KeyStore,
  SandboxedDuckDB,
  staticDatasetCatalog,
} from '@parquetry/export-api';
import { FsObjectStore, openCatalog } from '@parquetry/lake';
import { createLogger } from '@parquetry/service';

const env = process.env;
const logger = createLogger('export-api-bench', 'warn');
const bus = await connectBus({ url: env.NATS_URL, name: 'export-api-bench', logger });
const catalog = await openCatalog({ nc: bus.nc, logger });
const store = new FsObjectStore(env.LAKE_DIR);
const duck = await SandboxedDuckDB.open({
  allowedDirectories: [env.LAKE_DIR, env.WORK_DIR],
  tempDirectory: join(env.WORK_DIR, `spill-${process.pid}`),
  memoryLimitMb: 512,
  preserveInsertionOrder: false,
});
const keys = await KeyStore.fromFile(env.API_KEYS_FILE);
const module = createCandleModule(
  { config: { CACHE_MB: Number(env.CACHE_MB) }, logger, nc: bus.nc, catalog, store, duck },
  {},
);
const app = await buildApp({
  config: {
    BODY_LIMIT_BYTES: 256 * 1024,
    RATE_LIMIT_PER_MIN: 100_000_000,
    DOWNLOAD_URL_TTL_S: 3600,
    DOWNLOAD_URL_MAX_TTL_S: 86_400,
    EXPORT_SIGNING_SECRET: 'bench-secret-bench-secret-bench-secret',
    PUBLIC_BASE_URL: 'http://127.0.0.1',
    EXPORT_SYNC_WAIT_MS: 30_000,
  },
  logger,
  keys,
  datasets: staticDatasetCatalog(),
  store,
  routeModules: [module],
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ port: app.server.address().port })}\n`);
const stop = async () => {
  await app.close();
  duck.close();
  await bus.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
