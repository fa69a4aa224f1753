import { timeframe } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { z } from 'zod';

/**
 * The aggregator's persisted state. Version it: a service restoring a snapshot written by
 * an older release must either understand it or refuse it loudly, never misread it.
 */
const finite = z.number().finite();
const partials = z.array(finite);
const tradeKey = z.object({ ts: finite, tradeId: z.string().optional(), price: finite, size: finite });

const accumulator = z.object({
  first: tradeKey,
  last: tradeKey,
  high: finite,
  low: finite,
  trades: z.number().int().positive(),
  volume: partials.min(1),
  notional: partials.min(1),
});

/** `EncodedIds` (trade-ids.ts): every run within the exact ids of at most 15 digits, of its width. */
const run = (first: number, count: number, width: number) =>
  first + count - 1 < (width === 0 ? 10 ** 15 : 10 ** (width - 1));
const encodedIds = z.array(
  z.union([
    z.string(),
    z
      .tuple([z.number().int().nonnegative(), z.number().int().positive()])
      .refine(([first, count]) => run(first, count, 0), 'trade id run beyond 15 digits'),
    z
      .tuple([z.number().int().nonnegative(), z.number().int().positive(), z.number().int().min(2).max(15)])
      .refine(
        ([first, count, width]) => run(first, count, width),
        'zero-padded trade id run beyond its width',
      ),
  ]),
);

const symbolSnapshot = z.object({
  symbol: z.string().min(1),
  watermark: finite.nullable(),
  candles: z.array(
    z.object({
      timeframe,
      start: finite,
      closed: z.boolean(),
      published: z.number().int().nonnegative(),
      acc: accumulator,
    }),
  ),
  tradeIds: z.array(z.object({ minute: finite, ids: encodedIds })),
});

const count = z.number().int().nonnegative();

export const aggregatorSnapshot = z.object({
  version: z.literal(1),
  config: z.object({ graceMs: finite, latenessMs: finite, maxFutureMs: finite }),
  /** High-water stream sequence covered by this state; null when ticks came without seq. */
  seq: z.number().int().nonnegative().nullable(),
  stats: z.object({
    accepted: count,
    duplicate: count,
    too_late: count,
    future: count,
    closed: count,
    revised: count,
  }),
  symbols: z.array(symbolSnapshot),
});

export type AggregatorSnapshot = z.infer<typeof aggregatorSnapshot>;
export type SymbolSnapshot = z.infer<typeof symbolSnapshot>;

export function parseSnapshot(input: unknown): AggregatorSnapshot {
  const parsed = aggregatorSnapshot.safeParse(input);
  if (!parsed.success) {
    throw new InvalidInputError(`invalid candle aggregator snapshot: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
