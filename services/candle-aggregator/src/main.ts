import { connectBus } from '@parquetry/bus';
import { openDuckDB, openObjectStore } from '@parquetry/lake';
import { createLogger, loadConfig, Metrics, onShutdown, runMain, startProbeServer } from '@parquetry/service';
import { createCandleAggregator, SERVICE } from './app.js';
import { candleConfigSchema } from './config.js';

/** Process entry: config, logger, connections, probes, signals. The wiring is in app.ts. */
async function main(): Promise<void> {
  const config = loadConfig(candleConfigSchema);
  const logger = createLogger(SERVICE, config.LOG_LEVEL);
  const metrics = new Metrics(SERVICE);
  const bus = await connectBus({ url: config.NATS_URL, name: SERVICE, logger, waitOnFirstConnect: true });
  const store = openObjectStore(config.LAKE_URL, config);
  const duck = await openDuckDB({ threads: config.DUCKDB_THREADS });
  const app = await createCandleAggregator({
    config,
    bus,
    store,
    duck,
    logger,
    metrics,
    // Another instance owns our partitions now, or the consumer broke: exit and let the
    // supervisor restart us (state is persisted; nothing is lost by exiting).
    onFatal: () => setTimeout(() => process.exit(1), 100),
  });
  const probes = await startProbeServer({
    port: config.HTTP_PORT,
    metrics,
    logger,
    ready: app.ready,
    health: () => {
      const s = app.stats();
      return {
        partitions: app.partitions,
        last_seq: s.lastSeq,
        pending_candles: s.pendingCandles,
        pending_publishes: s.pendingPublishes,
      };
    },
  });
  logger.info({ lake: config.LAKE_URL, port: probes.port }, 'listening');
  onShutdown(logger, async () => {
    await app.stop();
    probes.close();
    await bus.close();
    await store.close();
    duck.close();
  });
}

runMain(SERVICE, main);
