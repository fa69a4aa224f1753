import { TIMEFRAMES, type Tick } from '@parquetry/lake';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameCandles } from '../../test/candle-expect.js';
import { type Duck, openDuck } from '../../test/duckdb.js';
import { BINANCE_CAPTURES, readBinanceTrades } from '../../test/market-data.js';
import { type AggregatorEvent, CandleAggregator } from './aggregator.js';
import type { CaptureTrade } from './binance.js';
import type { CandleRecord } from './candle.js';
import { latestCandles } from './reference.js';
import { TIMEFRAME_MS } from './time.js';

/**
 * The real Binance BTCUSDT capture (2024-08-08 23:54 → 2024-08-09 00:05 UTC) through the
 * aggregator, checked against DuckDB SQL that parses the raw gzip files on its own
 * (read_csv + JSON functions) and builds OHLCV with arg_min/arg_max on (time, trade id).
 */
const CONFIG = { graceMs: 2_000, latenessMs: 15 * 60_000, maxFutureMs: 60_000 };
const END_OF_TIME = Number.MAX_SAFE_INTEGER;

let duck: Duck;
let trades: CaptureTrade[];

beforeAll(async () => {
  trades = readBinanceTrades();
  duck = await openDuck();
  const files = BINANCE_CAPTURES.map((f) => `'${f}'`).join(', ');
  // One VARCHAR column per line: a delimiter and quote that never occur in the capture.
  await duck.conn.run(`
    CREATE TABLE trades AS
    WITH lines AS (
      SELECT line FROM read_csv([${files}], columns = {'line': 'VARCHAR'}, delim = E'\\x01', quote = '',
        escape = '', header = false, auto_detect = false, compression = 'gzip', max_line_size = 10000000)
    ), msgs AS (
      SELECT CAST(substr(line, strpos(line, ' ') + 1) AS JSON) AS j FROM lines
    ), events AS (
      SELECT coalesce(j -> '$.data', j) AS d FROM msgs
    )
    SELECT CAST(d ->> '$.T' AS BIGINT) AS ts, CAST(d ->> '$.t' AS BIGINT) AS tid,
           CAST(d ->> '$.p' AS DOUBLE) AS price, CAST(d ->> '$.q' AS DOUBLE) AS size,
           CASE WHEN CAST(d ->> '$.m' AS BOOLEAN) THEN 'sell' ELSE 'buy' END AS side
    FROM events WHERE d ->> '$.e' = 'trade'`);
});

afterAll(() => duck?.close());

function feed(
  agg: CandleAggregator,
  arrivals: readonly { tick: Tick; now: number }[],
  seqFrom = 1,
): AggregatorEvent[] {
  return arrivals.flatMap((a, i) => agg.ingest(a.tick, { now: a.now, seq: seqFrom + i }));
}

const inFileOrder = () => trades.map((t) => ({ tick: t.tick, now: t.receivedAtMs }));
const withoutRevision = (cs: CandleRecord[]) => cs.map(({ revision: _, ...c }) => c);

describe('Binance capture → candles', () => {
  it('parses the same trades as DuckDB reading the raw files', async () => {
    const rows = await duck.rows<{ tid: bigint; ts: bigint; price: number; size: number; side: string }>(
      'SELECT tid, ts, price, size, side FROM trades ORDER BY tid',
    );
    const ours = [...trades]
      .map((t) => t.tick)
      .sort((a, b) => Number(a.trade_id) - Number(b.trade_id))
      .map((t) => [t.trade_id, t.ts, t.price, t.size, t.side]);
    expect(ours.length).toBeGreaterThan(10_000);
    expect(ours).toEqual(rows.map((r) => [String(r.tid), Number(r.ts), r.price, r.size, r.side]));
  });

  it('builds every timeframe exactly as DuckDB SQL does', async () => {
    const agg = new CandleAggregator(CONFIG);
    const events = [...feed(agg, inFileOrder()), ...agg.advance(END_OF_TIME)];
    expect(events.filter((e) => e.type === 'rejected')).toEqual([]);
    const candles = latestCandles(events);
    for (const tf of TIMEFRAMES) {
      const ms = TIMEFRAME_MS[tf];
      const expected = await duck.rows<Omit<CandleRecord, 'symbol' | 'timeframe' | 'revision'>>(`
        SELECT CAST(b AS DOUBLE) AS "start", CAST(b + ${ms} AS DOUBLE) AS "end",
               arg_min(price, (ts, tid)) AS open, max(price) AS high, min(price) AS low,
               arg_max(price, (ts, tid)) AS close, sum(size) AS volume, CAST(count(*) AS INTEGER) AS trades,
               CASE WHEN sum(size) = 0 THEN arg_max(price, (ts, tid)) ELSE sum(price * size) / sum(size) END AS vwap
        FROM (SELECT *, (ts // ${ms}) * ${ms} AS b FROM trades) GROUP BY b ORDER BY b`);
      const ours = candles
        .filter((c) => c.timeframe === tf)
        .map(({ symbol: _, timeframe: __, revision: ___, ...c }) => c);
      expect(ours.length, tf).toBeGreaterThan(0);
      expectSameCandles(ours, expected, tf);
    }
    // the capture crosses midnight: two days and two 4h buckets
    expect(candles.filter((c) => c.timeframe === '1d').map((c) => new Date(c.start).toISOString())).toEqual([
      '2024-08-08T00:00:00.000Z',
      '2024-08-09T00:00:00.000Z',
    ]);
  });

  it('gives bit-identical candles when the feed arrives shuffled within the window, or restarts midway', () => {
    const baseline = new CandleAggregator(CONFIG);
    const expected = withoutRevision(
      latestCandles([...feed(baseline, inFileOrder()), ...baseline.advance(END_OF_TIME)]),
    );

    // Deterministic shuffle: each trade delayed by up to the lateness window.
    let seed = 20240808;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const shuffled = trades
      .map((t) => ({ tick: t.tick, now: t.tick.ts + Math.floor(random() * CONFIG.latenessMs) }))
      .sort((a, b) => a.now - b.now);
    const late = new CandleAggregator(CONFIG);
    const lateEvents = [...feed(late, shuffled), ...late.advance(END_OF_TIME)];
    expect(lateEvents.filter((e) => e.type === 'rejected')).toEqual([]);
    expect(lateEvents.some((e) => e.type === 'revised')).toBe(true);
    expect(withoutRevision(latestCandles(lateEvents))).toEqual(expected);

    // kill -9 after a snapshot at the middle, restore, replay from 1000 messages earlier
    const mid = Math.floor(shuffled.length / 2);
    const first = new CandleAggregator(CONFIG);
    const before = feed(first, shuffled.slice(0, mid));
    const restored = CandleAggregator.restore(JSON.parse(JSON.stringify(first.snapshot())));
    const replay = feed(restored, shuffled.slice(mid - 1_000, mid), mid - 1_000 + 1);
    expect(replay.every((e) => e.type === 'rejected' && e.reason === 'duplicate')).toBe(true);
    const after = [...feed(restored, shuffled.slice(mid), mid + 1), ...restored.advance(END_OF_TIME)];
    expect([...before, ...after]).toEqual(lateEvents);
  });
});
