import { listDeadLetters, publishBytes, publishJson, subjects } from '@parquetry/bus';
import type { Tick } from '@parquetry/lake';
import { requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import type { CandleRecord } from '../src/domain/candle.js';
import { readCandleBus } from './bus-read.js';
import { lakeCandles, publishTicks, startCandles, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

const T0 = Date.UTC(2025, 8, 3, 10, 0); // 2025-09-03 10:00 UTC
const at = (min: number, sec: number) => T0 + min * 60_000 + sec * 1000;
const tick = (symbol: string, ts: number, price: number, id: string, size = 1): Tick => ({
  symbol,
  ts,
  price,
  size,
  trade_id: id,
});
const find = (cs: readonly CandleRecord[], symbol: string, tf: string, start: number) =>
  cs.find((c) => c.symbol === symbol && c.timeframe === tf && c.start === start);

/** Each test gets its own NATS server (streams, catalog, state) and lake directory. */
async function world(env: Record<string, string> = {}) {
  const nats = await startNats();
  const tmp = tempDir('pq-candles-');
  const lakeUrl = `file://${tmp.path}/lake`;
  const h = await startCandles({ NATS_URL: nats.url, LAKE_URL: lakeUrl, ...env });
  return {
    nats,
    lakeUrl,
    h,
    candles: () => lakeCandles(nats.url, lakeUrl),
    async close() {
      await h.close().catch(() => {});
      await nats.stop();
      tmp.remove();
    },
  };
}

describe.skipIf(skip)('candle-aggregator service', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('dead-letters each kind of bad input with its reason and keeps going', async () => {
    const w = await world();
    cleanups.push(w.close);
    const { js } = w.h.bus;
    const good = (id: string, extra: Record<string, unknown> = {}) => ({
      symbol: 'ES',
      ts: at(0, 10),
      price: 5000,
      size: 1,
      trade_id: id,
      ...extra,
    });
    await publishJson(js, subjects.ticks('ES'), good('g1'));
    await publishJson(js, subjects.ticks('ES'), good('b1', { price: 0 }));
    await publishJson(js, subjects.ticks('ES'), good('b2', { price: -3 }));
    await publishBytes(
      js,
      subjects.ticks('ES'),
      new TextEncoder().encode('{"symbol":"ES","ts":1756893610000,"price":1e999,"size":1}'),
    );
    await publishJson(js, subjects.ticks('ES'), good('b4', { size: -1 }));
    await publishJson(js, subjects.ticks('ES'), good('b5', { ts: 'yesterday-ish' }));
    await publishJson(js, subjects.ticks('ES'), good('b6', { symbol: 'E S' }));
    await publishJson(js, 'market.ticks.ES.x', good('b7'));
    await publishJson(js, subjects.ticks('ES'), good('b8', { ts: Date.now() + 86_400_000 }));
    await publishJson(js, subjects.ticks('ES'), good('b9', { symbol: 'NQ' }));
    await publishBytes(js, subjects.ticks('ES'), new TextEncoder().encode('{"symbol": "ES", nope'));
    await publishJson(js, subjects.ticks('ES'), [good('b11')]);
    // An array with one bad tick: only that tick is dead-lettered, the others count.
    await publishJson(js, subjects.ticks('ES'), {
      symbol: 'ES',
      ticks: [
        { ts: at(0, 20), price: 5001, size: 2, trade_id: 'g2' },
        { ts: at(0, 21), price: Number.NaN, size: 2, trade_id: 'b10' },
        { ts: at(0, 22), price: 4999, size: 1, trade_id: 'g3' },
      ],
    });
    await publishJson(js, subjects.ticks('ES'), good('g4', { ts: at(1, 5), price: 5002 }));

    const letters = await waitFor('12 dead letters', async () => {
      const l = await listDeadLetters(w.h.bus, { service: 'candle-aggregator', limit: 100 });
      return l.length >= 12 ? l : undefined;
    });
    expect(letters.map((l) => l.reason).sort()).toEqual(
      [
        'future',
        'invalid_json',
        'invalid_price',
        'invalid_price',
        'invalid_price',
        'invalid_price',
        'invalid_size',
        'invalid_symbol',
        'invalid_symbol',
        'invalid_timestamp',
        'subject_mismatch',
        'schema_violation',
      ].sort(),
    );
    for (const l of letters) {
      expect(l.originalSubject).toMatch(/^market\.ticks\./);
      expect(l.originalStream).toBe('TICKS');
      expect(l.error, l.reason).toBeTruthy();
    }
    // The minute 10:00 closed with exactly the good ticks g1, g2, g3.
    const candles = await waitFor('the 10:00 candle', async () => {
      const c = await w.candles();
      return find(c, 'ES', '1m', at(0, 0)) ? c : undefined;
    });
    expect(find(candles, 'ES', '1m', at(0, 0))).toMatchObject({
      open: 5000,
      high: 5001,
      low: 4999,
      close: 4999,
      volume: 4,
      trades: 3,
    });
    const metrics = await w.h.metrics.text();
    expect(metrics).toMatch(
      /parquetry_ticks_rejected_total\{reason="invalid_price",service="candle-aggregator"\} 4/,
    );
  });

  it('corrects a closed candle and its roll-ups for a late tick, and dead-letters one beyond the window', async () => {
    const w = await world();
    cleanups.push(w.close);
    const feed = [
      tick('LATE', at(0, 10), 100, 'l1'),
      tick('LATE', at(1, 5), 101, 'l2'), // closes 10:00 → 1m 10:00 rev 0
      tick('LATE', at(0, 30), 105, 'l3'), // late: 1m 10:00 rev 1
      tick('LATE', at(6, 0), 102, 'l4'), // closes 5m 10:00 (rev 0)
      tick('LATE', at(2, 0), 99, 'l5'), // late: 1m 10:02 first published, 5m 10:00 rev 1
      tick('LATE', at(20, 0), 103, 'l6'), // minute 10:00 is final now
      tick('LATE', at(0, 40), 90, 'l7'), // too late
    ];
    await publishTicks(w.h.bus, feed);
    const letters = await waitFor('the too_late dead letter', async () => {
      const l = await listDeadLetters(w.h.bus, { service: 'candle-aggregator' });
      return l.length > 0 ? l : undefined;
    });
    expect(letters.map((l) => [l.reason, l.originalSubject])).toEqual([['too_late', 'market.ticks.LATE']]);
    expect(letters[0]!.error).toMatch(/final/);

    const published = await readCandleBus(w.h.bus, 7, 'market.candles.*.LATE');
    const revisions = (tf: string, start: number) =>
      published.filter((c) => c.timeframe === tf && c.start === start).map((c) => c.revision);
    expect(revisions('1m', at(0, 0))).toEqual([0, 1]);
    expect(revisions('5m', at(0, 0))).toEqual([0, 1]);
    expect(revisions('1m', at(2, 0))).toEqual([0]);
    expect(
      published.find((c) => c.timeframe === '1m' && c.start === at(0, 0) && c.revision === 0),
    ).toMatchObject({
      open: 100,
      close: 100,
      trades: 1,
    });

    const candles = await waitFor('the corrected candles in the lake', async () => {
      const c = await w.candles();
      return find(c, 'LATE', '5m', at(0, 0))?.revision === 1 && find(c, 'LATE', '1m', at(2, 0))
        ? c
        : undefined;
    });
    expect(find(candles, 'LATE', '1m', at(0, 0))).toMatchObject({
      revision: 1,
      open: 100,
      high: 105,
      low: 100,
      close: 105,
      volume: 2,
      trades: 2,
    });
    expect(find(candles, 'LATE', '5m', at(0, 0))).toMatchObject({
      revision: 1,
      open: 100,
      high: 105,
      low: 99,
      close: 99,
      volume: 4,
      trades: 4,
    });
    expect(find(candles, 'LATE', '1m', at(2, 0))).toMatchObject({ revision: 0, open: 99, trades: 1 });
    const metrics = await w.h.metrics.text();
    expect(metrics).toMatch(
      /parquetry_ticks_rejected_total\{reason="too_late",service="candle-aggregator"\} 1/,
    );
    expect(metrics).toMatch(
      /parquetry_candles_revised_total\{timeframe="5m",service="candle-aggregator"\} 1/,
    );
  });

  it('never counts a duplicate tick twice, also across a restart', async () => {
    const w = await world({ SNAPSHOT_INTERVAL_MS: '60000' });
    cleanups.push(w.close);
    const { js } = w.h.bus;
    const x1 = tick('DUP', at(0, 10), 10, 'x1', 2);
    await publishJson(js, subjects.ticks('DUP'), x1, { msgId: 'm1' });
    await publishJson(js, subjects.ticks('DUP'), x1, { msgId: 'm1' }); // dropped by JetStream
    await publishJson(js, subjects.ticks('DUP'), x1, { msgId: 'm1-again' }); // dropped by trade id
    await publishJson(js, subjects.ticks('DUP'), {
      symbol: 'DUP',
      ticks: [
        { ts: at(0, 10), price: 10, size: 2, trade_id: 'x1' },
        { ts: at(0, 20), price: 11, size: 1, trade_id: 'x2' },
      ],
    });
    await waitFor('the first four messages handled', async () => (w.h.app.lastSeq() >= 3 ? true : undefined));
    // A graceful restart (state saved on stop) and a new process reading on from there.
    await w.h.close();
    w.h = await startCandles({ NATS_URL: w.nats.url, LAKE_URL: w.lakeUrl, SNAPSHOT_INTERVAL_MS: '60000' });
    await publishJson(w.h.bus.js, subjects.ticks('DUP'), x1, { msgId: 'm1-after-restart' });
    await publishTicks(w.h.bus, [tick('DUP', at(0, 50), 9, 'x3'), tick('DUP', at(1, 5), 12, 'x4')]);
    const candles = await waitFor('the 10:00 candle', async () => {
      const c = await w.candles();
      return find(c, 'DUP', '1m', at(0, 0)) ? c : undefined;
    });
    expect(find(candles, 'DUP', '1m', at(0, 0))).toMatchObject({
      open: 10,
      high: 11,
      low: 9,
      close: 9,
      volume: 4,
      trades: 3,
      revision: 0,
    });
    expect(await w.h.metrics.text()).toMatch(
      /parquetry_duplicates_dropped_total\{dataset="candles",service="candle-aggregator"\} 1/,
    );
  });

  it('closes a quiet symbol’s candle on the wall clock once the stream is idle', async () => {
    const w = await world({ QUIET_CLOSE_MS: '300', IDLE_CLOSE_MS: '0', CANDLE_GRACE_MS: '300' });
    cleanups.push(w.close);
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    await publishTicks(w.h.bus, [tick('QUIET', minute + 59_500, 7, 'q1')]);
    const started = Date.now();
    const published = await readCandleBus(w.h.bus, 1, 'market.candles.1m.QUIET');
    expect(published.map((c) => [c.start, c.close, c.revision])).toEqual([[minute, 7, 0]]);
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor('the candle in the lake', async () =>
      find(await w.candles(), 'QUIET', '1m', minute) ? true : undefined,
    );
  });
});
