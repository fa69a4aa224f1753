import { TIMEFRAMES, type Tick } from '@parquetry/lake';
import { ConfigError, InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectSameCandles } from '../../test/candle-expect.js';
import { type Arrival, BASE, scenarioArb } from '../../test/tick-scenarios.js';
import {
  type AggregatorConfig,
  type AggregatorEvent,
  CandleAggregator,
  type CandlesClosed,
  type CandlesRevised,
  type TickRejected,
} from './aggregator.js';
import type { CandleRecord } from './candle.js';
import { latestCandles, referenceCandles } from './reference.js';
import { TIMEFRAME_MS } from './time.js';

const MIN = 60_000;
const END_OF_TIME = Number.MAX_SAFE_INTEGER;
const T0 = Date.UTC(2024, 7, 8, 10, 0); // an hour boundary
const CONFIG: AggregatorConfig = { graceMs: 2_000, latenessMs: 15 * MIN, maxFutureMs: 60_000 };

let nextId = 1;
function tick(ts: number, price: number, size = 1, extra: Partial<Tick> = {}): Tick {
  return { symbol: 'ES', ts, price, size, trade_id: String(nextId++), ...extra };
}

const closedOf = (events: AggregatorEvent[]) => events.filter((e): e is CandlesClosed => e.type === 'closed');
const revisedOf = (events: AggregatorEvent[]) =>
  events.filter((e): e is CandlesRevised => e.type === 'revised');
const rejectedOf = (events: AggregatorEvent[]) =>
  events.filter((e): e is TickRejected => e.type === 'rejected');
const brief = (c: CandleRecord) =>
  `${c.timeframe}@${new Date(c.start).toISOString().slice(11, 16)}#${c.revision}`;

function feed(agg: CandleAggregator, arrivals: readonly Arrival[], seqFrom?: number): AggregatorEvent[] {
  return arrivals.flatMap((a, i) =>
    agg.ingest(a.tick, { now: a.now, seq: seqFrom === undefined ? undefined : seqFrom + i }),
  );
}

describe('CandleAggregator: closing', () => {
  it('closes a 1m candle once the watermark reaches end + grace, not before', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 10 * MIN;
    expect(agg.ingest(tick(T0 + 1_000, 100), { now })).toEqual([]);
    expect(agg.ingest(tick(T0 + MIN + 1_999, 101), { now })).toEqual([]);
    const events = agg.ingest(tick(T0 + MIN + 2_000, 102), { now });
    expect(closedOf(events).flatMap((e) => e.candles.map(brief))).toEqual(['1m@10:00#0']);
    expect(closedOf(events)[0]).toMatchObject({ symbol: 'ES', end: T0 + MIN });
  });

  it('closes each roll-up with the 1m candle ending at the same instant, skipping empty ones', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 2 * 3_600_000;
    const events = [
      ...agg.ingest(tick(T0 - 30_000, 99), { now }), // 09:59:30 — last minute of the 09:00 hour
      ...agg.ingest(tick(T0 + 30_000, 100), { now }),
      ...agg.ingest(tick(T0 + 3 * MIN, 101), { now }),
    ];
    // 10:00 closes 09:59 (1m, 5m, 15m, 1h); 10:01 closes 10:00 (1m). 10:01-10:03 were empty.
    expect(
      closedOf(events).map((e) => [new Date(e.end).toISOString().slice(11, 16), e.candles.map(brief)]),
    ).toEqual([
      ['10:00', ['1m@09:59#0', '5m@09:55#0', '15m@09:45#0', '1h@09:00#0']],
      ['10:01', ['1m@10:00#0']],
    ]);
  });

  it('computes roll-ups from all their minutes', () => {
    const agg = new CandleAggregator({ ...CONFIG, graceMs: 0 });
    const now = T0 + 3_600_000;
    for (const [m, price] of [
      [0, 100],
      [1, 105],
      [3, 95],
      [4, 101],
    ] as const) {
      agg.ingest(tick(T0 + m * MIN + 5_000, price, 2), { now });
    }
    const events = agg.advance(T0 + 5 * MIN);
    const fiveMin = closedOf(events)
      .flatMap((e) => e.candles)
      .find((c) => c.timeframe === '5m');
    expect(fiveMin).toEqual({
      symbol: 'ES',
      timeframe: '5m',
      start: T0,
      end: T0 + 5 * MIN,
      open: 100,
      high: 105,
      low: 95,
      close: 101,
      volume: 8,
      trades: 4,
      vwap: (100 + 105 + 95 + 101) / 4,
      revision: 0,
    });
  });

  it('keeps watermarks per symbol: a busy symbol does not close a quiet one', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 3_600_000;
    agg.ingest(tick(T0, 10, 1, { symbol: 'QUIET' }), { now });
    const events = agg.ingest(tick(T0 + 30 * MIN, 20, 1, { symbol: 'BUSY' }), { now });
    expect(closedOf(events)).toEqual([]);
    expect(agg.watermark('QUIET')).toBe(T0);
    // and the quiet symbol's own late ticks are not judged by the busy one's clock
    expect(rejectedOf(agg.ingest(tick(T0 + 1, 11, 1, { symbol: 'QUIET' }), { now }))).toEqual([]);
    const advanced = agg.advance(T0 + MIN + CONFIG.graceMs, 'QUIET');
    expect(closedOf(advanced).flatMap((e) => e.candles.map((c) => `${c.symbol} ${brief(c)}`))).toEqual([
      'QUIET 1m@10:00#0',
    ]);
    expect(agg.advance(T0, 'QUIET')).toEqual([]); // never backwards
  });
});

describe('CandleAggregator: late ticks', () => {
  it('revises the closed 1m candle and closed roll-ups, leaving open roll-ups alone', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 3_600_000;
    agg.ingest(tick(T0 + 10_000, 100), { now });
    agg.ingest(tick(T0 + 6 * MIN, 100), { now }); // closes 10:00-10:05 (1m, 5m)
    const events = agg.ingest(tick(T0 + 20_000, 90, 3), { now });
    expect(revisedOf(events).flatMap((e) => e.candles.map(brief))).toEqual(['1m@10:00#1', '5m@10:00#1']);
    expect(revisedOf(events)[0]!.candles[0]).toMatchObject({ low: 90, close: 90, volume: 4, trades: 2 });
    // a second correction counts on
    const again = agg.ingest(tick(T0 + 30_000, 80), { now });
    expect(revisedOf(again).flatMap((e) => e.candles.map(brief))).toEqual(['1m@10:00#2', '5m@10:00#2']);
    // the 15m roll-up was still open: it shows up once, at close, with every tick
    const closed = closedOf(agg.advance(T0 + 15 * MIN + CONFIG.graceMs)).flatMap((e) => e.candles);
    expect(closed.find((c) => c.timeframe === '15m')).toMatchObject({ revision: 0, trades: 4, low: 80 });
  });

  it('publishes a late tick in a minute that closed empty as a revision numbered 0', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 3_600_000;
    agg.ingest(tick(T0 + 10_000, 100), { now });
    agg.ingest(tick(T0 + 6 * MIN, 100), { now });
    const events = agg.ingest(tick(T0 + 2 * MIN, 101), { now });
    expect(revisedOf(events).flatMap((e) => e.candles.map(brief))).toEqual(['1m@10:02#0', '5m@10:00#1']);
  });

  it('accepts a tick until its minute is final, then rejects it as too_late', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + 3_600_000;
    agg.ingest(tick(T0, 100), { now });
    const finalAt = T0 + MIN + CONFIG.graceMs + CONFIG.latenessMs;
    agg.advance(finalAt - 1);
    const lastChance = agg.ingest(tick(T0 + 59_999, 101), { now });
    expect(revisedOf(lastChance).flatMap((e) => e.candles.map(brief))).toEqual([
      '1m@10:00#1',
      '5m@10:00#1',
      '15m@10:00#1',
    ]);
    expect(revisedOf(lastChance)[0]!.candles[0]).toMatchObject({ trades: 2, open: 100, close: 101 });
    agg.advance(finalAt);
    const late = tick(T0 + 59_999, 100);
    const [rejected] = rejectedOf(agg.ingest(late, { now }));
    expect(rejected).toMatchObject({ type: 'rejected', reason: 'too_late', tick: late });
    expect(agg.stats()).toMatchObject({ accepted: 2, too_late: 1 });
  });

  it('rejects ticks too far in the future without moving the watermark', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0;
    expect(rejectedOf(agg.ingest(tick(now + 60_000, 1), { now }))).toEqual([]);
    const [rejected] = rejectedOf(agg.ingest(tick(now + 60_001 + 3_600_000, 1), { now }));
    expect(rejected?.reason).toBe('future');
    expect(agg.watermark('ES')).toBe(now + 60_000);
  });
});

describe('CandleAggregator: duplicates and replays', () => {
  it('counts a trade id once, and says so', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + MIN;
    const t = tick(T0, 100, 2);
    agg.ingest(t, { now });
    const [dup] = rejectedOf(agg.ingest({ ...t }, { now }));
    expect(dup?.reason).toBe('duplicate');
    const candles = closedOf(agg.advance(END_OF_TIME)).flatMap((e) => e.candles);
    expect(candles.map((c) => [c.timeframe, c.trades, c.volume])).toEqual(TIMEFRAMES.map((tf) => [tf, 1, 2]));
  });

  it('drops whole messages at or below the high-water seq, counting every tick of a message once', () => {
    const agg = new CandleAggregator(CONFIG);
    const now = T0 + MIN;
    const noIds = [tick(T0, 100, 1, { trade_id: undefined }), tick(T0 + 1, 101, 1, { trade_id: undefined })];
    expect(agg.ingestBatch(noIds, { now, seq: 7 })).toEqual([]);
    const replay = agg.ingestBatch(noIds, { now, seq: 7 });
    expect(replay.map((e) => e.type === 'rejected' && e.reason)).toEqual(['duplicate', 'duplicate']);
    expect(rejectedOf(agg.ingest(tick(T0 + 2, 1, 1, { trade_id: undefined }), { now, seq: 3 }))).toHaveLength(
      1,
    );
    expect(agg.ingest(tick(T0 + 3, 1), { now, seq: 8 })).toEqual([]);
    expect(agg.seq).toBe(8);
    expect(agg.stats()).toMatchObject({ accepted: 3, duplicate: 3 });
  });

  it('rejects invalid input with typed errors', () => {
    expect(() => new CandleAggregator({ graceMs: -1 })).toThrow(ConfigError);
    expect(() => new CandleAggregator({ latenessMs: Number.NaN })).toThrow(ConfigError);
    const agg = new CandleAggregator(CONFIG);
    expect(() => agg.ingest(tick(Number.NaN, 1), { now: T0 })).toThrow(InvalidInputError);
    expect(() => agg.ingest(tick(T0, 1, -1), { now: T0 })).toThrow(InvalidInputError);
    expect(() => agg.ingest(tick(T0, 1), { now: T0, seq: 1.5 })).toThrow(InvalidInputError);
    expect(() => agg.advance(Number.POSITIVE_INFINITY)).toThrow(InvalidInputError);
    expect(() => CandleAggregator.restore({ version: 2 })).toThrow(InvalidInputError);
    agg.ingest(tick(T0 + 5_000, 1), { now: T0 });
    const snap = JSON.parse(JSON.stringify(agg.snapshot()));
    snap.symbols[0].candles[1].start += 60_000; // a 5m candle starting at 10:01
    expect(() => CandleAggregator.restore(snap)).toThrow(/off-bucket/);
  });

  it('refuses a snapshot whose trade id runs leave the ids they encode', () => {
    const agg = new CandleAggregator(CONFIG);
    for (const id of ['17', '18', '19', '007', '008'])
      agg.ingest(tick(T0 + 1_000, 1, 1, { trade_id: id }), { now: T0 });
    const saved = JSON.parse(JSON.stringify(agg.snapshot()));
    expect(saved.symbols[0].tradeIds[0].ids).toEqual(
      expect.arrayContaining([
        [17, 3],
        [7, 2, 3],
      ]),
    );
    expect(CandleAggregator.restore(saved).snapshot()).toEqual(saved);
    const withIds = (ids: unknown) => {
      const snap = structuredClone(saved);
      snap.symbols[0].tradeIds[0].ids = ids;
      return snap;
    };
    const bad: [unknown, RegExp][] = [
      [[[10 ** 15 - 1, 2]], /beyond 15 digits/],
      [[[5, 10, 2]], /beyond its width/], // '05'..'14': the last ones are not zero-padded
      [[[7, 0, 3]], /invalid candle aggregator snapshot/],
      [[[-1, 2]], /invalid candle aggregator snapshot/],
      [[[7, 2, 16]], /invalid candle aggregator snapshot/],
      [[[1.5, 2]], /invalid candle aggregator snapshot/],
    ];
    for (const [ids, why] of bad) expect(() => CandleAggregator.restore(withIds(ids))).toThrow(why);
  });
});

describe('CandleAggregator: bounded state', () => {
  it('holds only candles and trade ids that can still change', () => {
    const config = { graceMs: 5_000, latenessMs: 10 * MIN, maxFutureMs: 0 };
    const agg = new CandleAggregator(config);
    const keep = config.graceMs + config.latenessMs;
    const candleBound = TIMEFRAMES.reduce((n, tf) => n + Math.floor(keep / TIMEFRAME_MS[tf]) + 2, 0);
    let maxCandles = 0;
    let maxIds = 0;
    const start = Date.UTC(2024, 7, 8, 20, 0);
    for (let s = 0; s < 6 * 3_600; s += 1) {
      const ts = start + s * 1_000;
      agg.ingest(tick(ts, 100 + (s % 7)), { now: ts });
      maxCandles = Math.max(maxCandles, agg.size().candles);
      maxIds = Math.max(maxIds, agg.size().tradeIds);
    }
    expect(maxCandles).toBeLessThanOrEqual(candleBound);
    // one tick per second: ids of at most the non-final minutes are kept
    expect(maxIds).toBeLessThanOrEqual((keep + MIN) / 1_000 + 60);
    expect(maxIds).toBeGreaterThanOrEqual(keep / 1_000); // and the window really is kept
    agg.advance(END_OF_TIME);
    expect(agg.size()).toEqual({ symbols: 1, candles: 0, tradeIds: 0 });
  });
});

describe('CandleAggregator: properties', () => {
  it('counts the same candles whether or not the open minutes are folded into their roll-ups yet', () => {
    fc.assert(
      fc.property(scenarioArb(), fc.array(fc.nat(), { maxLength: 6 }), ({ config, arrivals }, cuts) => {
        const lazy = new CandleAggregator(config);
        const folded = new CandleAggregator(config);
        const at = new Set(cuts.map((c) => c % (arrivals.length + 1)));
        arrivals.forEach((a, i) => {
          lazy.ingest(a.tick, { now: a.now });
          folded.ingest(a.tick, { now: a.now });
          folded.snapshot(); // folds every open minute
          if (at.has(i)) {
            expect(lazy.size()).toEqual(folded.size());
            const { stats: x, ...lazySnap } = lazy.snapshot(); // folds lazy too, from here on
            const { stats: y, ...foldedSnap } = folded.snapshot();
            expect(lazySnap).toEqual(foldedSnap);
          }
        });
        expect(lazy.size()).toEqual(folded.size());
      }),
      { numRuns: 100 },
    );
  });

  it('converges to the reference candles for shuffled, duplicated and late (within the window) ticks', () => {
    fc.assert(
      fc.property(scenarioArb(), ({ config, ticks, arrivals, duplicates }) => {
        const agg = new CandleAggregator(config);
        const events = [...feed(agg, arrivals), ...agg.advance(END_OF_TIME)];
        const rejected = rejectedOf(events);
        expect(rejected.map((r) => r.reason)).toEqual(Array(duplicates).fill('duplicate'));
        expectSameCandles(latestCandles(events), referenceCandles(ticks));
        expect(agg.stats().accepted).toBe(ticks.length);
      }),
      { numRuns: 150 },
    );
  });

  it('gives bit-identical candles whatever the arrival order', () => {
    fc.assert(
      fc.property(scenarioArb(), ({ config, ticks, arrivals }) => {
        const inOrder = new CandleAggregator(config);
        const sorted = [...ticks].sort((a, b) => a.ts - b.ts);
        const a = [
          ...sorted.flatMap((t) => inOrder.ingest(t, { now: t.ts })),
          ...inOrder.advance(END_OF_TIME),
        ];
        const shuffled = new CandleAggregator(config);
        const b = [...feed(shuffled, arrivals), ...shuffled.advance(END_OF_TIME)];
        expect(latestCandles(b).map(({ revision: _, ...c }) => c)).toEqual(
          latestCandles(a).map(({ revision: _, ...c }) => c),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('rejects ticks beyond the lateness window and is unchanged by them', () => {
    fc.assert(
      fc.property(scenarioArb(), fc.nat(), fc.integer({ min: 0, max: 3_600_000 }), (s, at, back) => {
        const agg = new CandleAggregator(s.config);
        const cut = at % s.arrivals.length;
        const events = feed(agg, s.arrivals.slice(0, cut + 1));
        const symbol = s.arrivals[cut]!.tick.symbol;
        const w = agg.watermark(symbol)!;
        // the minute of this tick ends at least grace + lateness before the watermark
        const ts = w - s.config.graceMs - s.config.latenessMs - MIN - back;
        const stale: Tick = { symbol, ts, price: 1, size: 1_000, trade_id: 'stale' };
        const rejected = rejectedOf(agg.ingest(stale, { now: w }));
        expect(rejected.map((r) => r.reason)).toEqual(['too_late']);
        events.push(...feed(agg, s.arrivals.slice(cut + 1)), ...agg.advance(END_OF_TIME));
        expectSameCandles(latestCandles(events), referenceCandles(s.ticks));
      }),
      { numRuns: 100 },
    );
  });

  it('continues from a snapshot exactly as an uninterrupted run, and ignores a replayed overlap', () => {
    fc.assert(
      fc.property(scenarioArb(), fc.nat(), fc.nat(), (s, at, back) => {
        const whole = new CandleAggregator(s.config);
        const perArrival = s.arrivals.map((a, i) => whole.ingest(a.tick, { now: a.now, seq: i + 1 }));
        const tail = whole.advance(END_OF_TIME);

        const cut = at % (s.arrivals.length + 1);
        const first = new CandleAggregator(s.config);
        feed(first, s.arrivals.slice(0, cut), 1);
        const saved = JSON.parse(JSON.stringify(first.snapshot()));
        const restored = CandleAggregator.restore(saved);
        expect(restored.snapshot()).toEqual(saved);

        // kill -9 after the snapshot: the stream redelivers from some earlier point
        const from = cut - (back % (cut + 1));
        const replayed = feed(restored, s.arrivals.slice(from, cut), from + 1);
        expect(replayed.every((e) => e.type === 'rejected' && e.reason === 'duplicate')).toBe(true);
        expect(replayed).toHaveLength(cut - from);
        const after = [...feed(restored, s.arrivals.slice(cut), cut + 1), ...restored.advance(END_OF_TIME)];
        expect(after).toEqual([...perArrival.slice(cut).flat(), ...tail]);
        const { stats: a, ...restA } = restored.snapshot();
        const { stats: b, ...restB } = whole.snapshot();
        expect(restA).toEqual(restB);
        expect({ ...a, duplicate: a.duplicate - (cut - from) }).toEqual(b);
      }),
      { numRuns: 100 },
    );
  });

  it('needs nothing but trade ids to make a replay without seq harmless', () => {
    fc.assert(
      fc.property(scenarioArb(), fc.nat(), (s, at) => {
        const arrivals = s.arrivals.filter((a) => a.tick.trade_id !== undefined);
        fc.pre(arrivals.length > 0);
        const ticks = s.ticks.filter((t) => t.trade_id !== undefined);
        const cut = at % arrivals.length;
        const agg = new CandleAggregator(s.config);
        const events = feed(agg, arrivals.slice(0, cut + 1));
        const restored = CandleAggregator.restore(JSON.parse(JSON.stringify(agg.snapshot())));
        events.push(...feed(restored, arrivals), ...restored.advance(END_OF_TIME));
        expectSameCandles(latestCandles(events), referenceCandles(ticks));
      }),
      { numRuns: 50 },
    );
  });
});

describe('scenario generator', () => {
  it('really produces late, duplicated and same-timestamp ticks', () => {
    const samples = fc.sample(scenarioArb(), { numRuns: 50, seed: 42 });
    const late = samples.some((s) =>
      s.arrivals.some((a, i) => i > 0 && a.tick.ts < s.arrivals[i - 1]!.tick.ts - MIN),
    );
    const dups = samples.some((s) => s.duplicates > 0);
    const ties = samples.some((s) => new Set(s.ticks.map((t) => t.ts)).size < s.ticks.length);
    expect({ late, dups, ties }).toEqual({ late: true, dups: true, ties: true });
    expect(samples.every((s) => s.arrivals.every((a) => a.tick.ts >= BASE))).toBe(true);
  });
});
