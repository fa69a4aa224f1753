import { STREAM_NAMES } from '@parquetry/bus';
import { TIMEFRAMES, type Tick } from '@parquetry/lake';
import { type NatsServerHandle, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestRevisions } from '../src/lake/rows.js';
import { loadBinanceTrades, sqlCandles } from './binance-sql.js';
import { readCandleBus } from './bus-read.js';
import { expectSameCandles } from './candle-expect.js';
import { type Duck, openDuck } from './duckdb.js';
import { lakeCandles, publishTicks, startCandles, waitFor } from './harness.js';
import { readBinanceTrades } from './market-data.js';

const skip = await requireServers({ nats: true });

/**
 * End to end on real data: the Binance BTCUSDT capture is published on NATS (most trades one
 * per message, some as `{symbol, ticks}` arrays), the service builds candles, and the candles
 * read back from the lake with DuckDB — and the latest revision of each on the bus — equal
 * DuckDB SQL over the raw capture files, for every timeframe.
 */
describe.skipIf(skip)('candle-aggregator end to end on the Binance capture', () => {
  let nats: NatsServerHandle;
  let duck: Duck;
  const tmp = tempDir('pq-candles-e2e-');
  beforeAll(async () => {
    nats = await startNats();
    duck = await openDuck();
    await loadBinanceTrades(duck);
  });
  afterAll(async () => {
    duck?.close();
    await nats?.stop();
    tmp.remove();
  });

  it('lake candles equal DuckDB SQL over the raw trades for every timeframe', async () => {
    const lakeUrl = `file://${tmp.path}/lake`;
    const h = await startCandles({
      NATS_URL: nats.url,
      LAKE_URL: lakeUrl,
      CANDLE_PARTITIONS: '2',
      INSTANCE_COUNT: '1',
    });
    try {
      const trades = readBinanceTrades().map((t) => t.tick);
      const half = Math.floor(trades.length / 2);
      await publishTicks(h.bus, trades.slice(0, half));
      await publishTicks(h.bus, trades.slice(half), 7);
      // A tick two days later moves BTCUSDT's event time past every real candle, so all of them
      // close; its own candles stay open and never reach the lake.
      const last = Math.max(...trades.map((t) => t.ts));
      const sentinel: Tick = {
        symbol: 'BTCUSDT',
        ts: last + 2 * 86_400_000,
        price: 1,
        size: 0,
        trade_id: 'sentinel',
      };
      await publishTicks(h.bus, [sentinel]);

      const expected = new Map<string, Awaited<ReturnType<typeof sqlCandles>>>();
      for (const tf of TIMEFRAMES) expected.set(tf, await sqlCandles(duck, tf));
      const total = [...expected.values()].reduce((n, c) => n + c.length, 0);
      const candles = await waitFor('every candle in the lake', async () => {
        const c = await lakeCandles(nats.url, lakeUrl);
        return c.length >= total ? c : undefined;
      });
      expect(candles).toHaveLength(total);
      for (const tf of TIMEFRAMES) {
        const ours = candles.filter((c) => c.timeframe === tf);
        expect(ours.length, tf).toBeGreaterThan(0);
        expectSameCandles(
          ours,
          expected.get(tf)!.map((c) => ({ ...c, timeframe: tf })),
          tf,
        );
      }
      expect(candles.filter((c) => c.timeframe === '1d').map((c) => new Date(c.start).toISOString())).toEqual(
        ['2024-08-08T00:00:00.000Z', '2024-08-09T00:00:00.000Z'],
      );

      // The bus carries every candle; its latest revisions are the lake's candles.
      const published = await readCandleBus(h.bus, total);
      expect(latestRevisions(published)).toEqual(candles);
      const info = await h.bus.jsm.streams.info(STREAM_NAMES.candles);
      expect(info.state.messages).toBe(published.length);
    } finally {
      await h.close();
    }
  });
});
