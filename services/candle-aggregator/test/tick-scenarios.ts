import type { Tick } from '@parquetry/lake';
import fc from 'fast-check';
import type { AggregatorConfig } from '../src/domain/aggregator.js';

/**
 * Random tick streams for the aggregator's property tests. Ticks fall on a 15 s grid over
 * two hours around midnight UTC (so equal timestamps are common and 4h/1d buckets are
 * crossed), prices and sizes are decimal fractions (so float sums are not trivially
 * exact), and trade ids mix numeric ids of different lengths, other ids and none.
 *
 * Arrival order: each tick arrives `delay ∈ [0, latenessMs]` after its event time, so the
 * stream is shuffled but every tick is within the lateness window when it arrives: the
 * watermark then is at most ts + delay ≤ ts + latenessMs < end of its minute + grace +
 * lateness. Redelivered copies (same trade id) arrive the same way.
 */
export interface Arrival {
  tick: Tick;
  /** The injected wall clock at arrival. */
  now: number;
}

export interface Scenario {
  config: AggregatorConfig;
  /** Every distinct tick (what the reference model sees). */
  ticks: Tick[];
  /** The stream the aggregator sees: the ticks shuffled within the window, plus duplicates. */
  arrivals: Arrival[];
  duplicates: number;
}

export const BASE = Date.UTC(2024, 7, 8, 23, 0);
const SYMBOLS = ['BTCUSDT', 'ES'] as const;

const rawTick = fc.record({
  symbol: fc.constantFrom(...SYMBOLS),
  // Hot slots (start, midnight, end) make equal timestamps and tie-breaks common.
  slot: fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 480 }) },
    { weight: 2, arbitrary: fc.constantFrom(0, 3, 239, 240, 241, 480) },
  ),
  jitter: fc.constantFrom(0, 0, 0, 1, 999, 14_999),
  price: fc.integer({ min: 9_990, max: 10_010 }).map((p) => p / 100),
  size: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 5_000 }).map((s) => s / 1_000),
  ),
  idKind: fc.constantFrom('numeric', 'numeric', 'numeric', 'other', 'none'),
  // In thousandths of the lateness window; 1000 = as late as still accepted.
  delay: fc.oneof(fc.constant(0), fc.constant(1_000), fc.integer({ min: 0, max: 1_000 })),
  redeliveries: fc.array(fc.integer({ min: 0, max: 1_000 }), { maxLength: 2 }),
  order: fc.nat(),
});

export function scenarioArb(opts: { maxTicks?: number } = {}): fc.Arbitrary<Scenario> {
  return fc
    .record({
      config: fc.record({
        graceMs: fc.constantFrom(0, 2_000, 30_000),
        latenessMs: fc.constantFrom(60_000, 300_000, 900_000),
        maxFutureMs: fc.constant(60_000),
      }),
      raw: fc.array(rawTick, { minLength: 1, maxLength: opts.maxTicks ?? 150 }),
    })
    .map(({ config, raw }) => {
      const ticks: Tick[] = [];
      const keyed: { key: number; order: number; arrival: Arrival }[] = [];
      let duplicates = 0;
      raw.forEach((r, i) => {
        const tick: Tick = {
          symbol: r.symbol,
          ts: BASE + r.slot * 15_000 + r.jitter,
          price: r.price,
          size: r.size,
        };
        // ×37 gives ids of different lengths whose lexicographic order is not numeric order.
        if (r.idKind === 'numeric') tick.trade_id = String(i * 37);
        if (r.idKind === 'other') tick.trade_id = `x-${i}`;
        ticks.push(tick);
        const arrive = (delay: number, order: number) => {
          const at = tick.ts + Math.floor((config.latenessMs * delay) / 1_000);
          keyed.push({ key: at, order, arrival: { tick: { ...tick }, now: at } });
        };
        arrive(r.delay, r.order);
        if (tick.trade_id !== undefined) {
          for (const [k, d] of r.redeliveries.entries()) arrive(d, r.order + k + 1);
          duplicates += r.redeliveries.length;
        }
      });
      keyed.sort((a, b) => a.key - b.key || a.order - b.order);
      return { config, ticks, arrivals: keyed.map((k) => k.arrival), duplicates };
    });
}
