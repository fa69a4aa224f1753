import { type Bus, connectBus, publishFast, subjects } from '@parquetry/bus';
import {
  type DuckDB,
  type ObjectStore,
  openCatalog,
  openDuckDB,
  openObjectStore,
  type Tick,
} from '@parquetry/lake';
import { loadConfig, Metrics, silentLogger } from '@parquetry/service';
import { type CandleAggregatorApp, createCandleAggregator } from '../src/app.js';
import { type CandleConfig, candleConfigSchema } from '../src/config.js';
import type { CandleRecord } from '../src/domain/candle.js';
import { CandleLake } from '../src/lake/candle-lake.js';

export interface Harness {
  app: CandleAggregatorApp;
  bus: Bus;
  store: ObjectStore;
  duck: DuckDB;
  config: CandleConfig;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Test defaults: quick flushes and snapshots, no wall-clock closes unless a test asks. */
export const TEST_ENV = {
  LOG_LEVEL: 'silent',
  HTTP_PORT: '0',
  LAKE_FLUSH_MS: '200',
  SNAPSHOT_INTERVAL_MS: '1000',
  QUIET_CLOSE_MS: '0',
  OWNERSHIP_TTL_MS: '3000',
};

/** candle-aggregator in-process against a real NATS server and a real lake. */
export async function startCandles(
  env: Record<string, string>,
  buckets: { catalogBucket?: string; stateBucket?: string } = {},
): Promise<Harness> {
  const config = loadConfig(candleConfigSchema, { ...TEST_ENV, ...env });
  const logger = silentLogger();
  const bus = await connectBus({ url: config.NATS_URL, name: 'candles-test', logger });
  const store = openObjectStore(config.LAKE_URL, config);
  const duck = await openDuckDB({ threads: 1 });
  const metrics = new Metrics('candle-aggregator', { defaults: false });
  const app = await createCandleAggregator({ config, bus, store, duck, logger, metrics, ...buckets });
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

/** The latest revision of every candle in the lake, read through the catalog with DuckDB. */
export async function lakeCandles(
  natsUrl: string,
  lakeUrl: string,
  catalogBucket?: string,
): Promise<CandleRecord[]> {
  const bus = await connectBus({ url: natsUrl, name: 'candles-reader', logger: silentLogger() });
  const store = openObjectStore(lakeUrl);
  const duck = await openDuckDB({ threads: 1 });
  try {
    const catalog = await openCatalog({ nc: bus.nc, bucket: catalogBucket });
    const lake = new CandleLake({ catalog, store, conn: duck.conn, writerId: 'reader' });
    return await lake.read();
  } finally {
    duck.close();
    await store.close();
    await bus.close();
  }
}

/** One tick per message (Nats-Msg-Id = symbol + trade id), or `{symbol, ticks}` arrays of `perMessage`. */
export async function publishTicks(bus: Bus, ticks: readonly Tick[], perMessage = 1): Promise<void> {
  const messages = [];
  for (let i = 0; i < ticks.length; i += perMessage) {
    const group = ticks.slice(i, i + perMessage);
    const first = group[0]!;
    messages.push({
      subject: subjects.ticks(first.symbol),
      payload:
        perMessage === 1 ? first : { symbol: first.symbol, ticks: group.map(({ symbol: _, ...t }) => t) },
      msgId: `${first.symbol}-${first.trade_id ?? i}-${group.length}`,
    });
  }
  await publishFast(bus.nc, messages);
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
