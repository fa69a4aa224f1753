import { DuckDBInstance } from '@duckdb/node-api';
import { connectBus } from '@parquetry/bus';
import { openObjectStore } from '@parquetry/lake';
import { createLogger, loadConfig, Metrics, onShutdown, runMain, startProbeServer } from '@parquetry/service';
import pg from 'pg';
import { createPgLoader } from './app.js';
import { pgLoaderServiceSchema } from './service-config.js';

const SERVICE = 'pg-loader';

/** Process entry: config, logger, connections, probes, signals. The wiring is in app.ts. */
async function main(): Promise<void> {
  const config = loadConfig(pgLoaderServiceSchema);
  const logger = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = new Metrics(SERVICE);
  const bus = await connectBus({ url: config.NATS_URL, name: SERVICE, logger, waitOnFirstConnect: true });
  const store = openObjectStore(config.LAKE_URL, config);
  // One instance for every load; each load opens its own connection (in UTC) on it.
  const duckdb = await DuckDBInstance.create(':memory:', {
    threads: String(config.DUCKDB_THREADS),
    autoinstall_known_extensions: 'false',
  });
  // One connection per followed table (tables load one change at a time each).
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: config.datasets.length + 1 });
  // An idle connection dropped by the server (a restart) must not crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'pg_idle_client_error'));
  const app = await createPgLoader({ config, bus, store, duckdb, pool, logger, metrics });
  const probes = await startProbeServer({
    port: config.HTTP_PORT,
    metrics,
    logger,
    ready: app.ready,
    health: () => ({
      tables: config.datasets.map((d) => `${d.dataset} → ${d.table.schema}.${d.table.name}`),
    }),
  });
  logger.info(
    { lake: config.LAKE_URL, port: probes.port, datasets: config.datasets.map((d) => d.dataset) },
    'started',
  );
  onShutdown(logger, async () => {
    await app.stop();
    probes.close();
    await bus.close();
    await pool.end();
    await store.close();
    duckdb.closeSync();
  });
}

runMain(SERVICE, main);
