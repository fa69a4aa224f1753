import { z } from 'zod';

/** DESIGN.md "Bus": names that become subjects and partition directories. */
export const NAME_PATTERN = /^[a-z0-9_-]{1,64}$/;
export const SYMBOL_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export const retailerName = z.string().regex(NAME_PATTERN, 'must match [a-z0-9_-]{1,64}');
export const categoryName = z.string().regex(NAME_PATTERN, 'must match [a-z0-9_-]{1,64}');
export const symbolName = z.string().regex(SYMBOL_PATTERN, 'must match [A-Za-z0-9_-]{1,32}');

/** ISO-8601 string or epoch milliseconds → epoch ms; rejects anything Date cannot parse. */
export const timestamp = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms) || (typeof v === 'string' && !/^\d{4}-\d{2}-\d{2}/.test(v))) {
    ctx.addIssue({ code: 'custom', message: `unparseable timestamp: ${String(v).slice(0, 40)}` });
    return z.NEVER;
  }
  return ms;
});

/**
 * A scraped product: free-form, every field kept. Checked as "a JSON object" only: walking every
 * key with a record schema cost more than the whole Parquet write (bench/ingest).
 */
export const product = z.custom<Record<string, unknown>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  'each product must be a JSON object',
);

export const productBatch = z.object({
  batch_id: z.string().min(1).max(200),
  retailer: retailerName,
  category: categoryName,
  scraped_at: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'must be an ISO-8601 timestamp'),
  session_id: z.string().max(200).optional(),
  source_urls: z.array(z.string()).optional(),
  execution_time: z.number().nonnegative().optional(),
  success_rate: z.number().min(0).max(1).optional(),
  errors: z.array(z.unknown()).optional(),
  warnings: z.array(z.unknown()).optional(),
  /** A batch too large for one message is sent in parts (DESIGN.md). */
  part: z.number().int().min(1).optional(),
  parts: z.number().int().min(1).optional(),
  products: z.array(product).min(1, 'products must not be empty'),
});
export type ProductBatch = z.infer<typeof productBatch>;

export const tick = z.object({
  symbol: symbolName,
  ts: timestamp,
  price: z.number().finite().positive('price must be positive'),
  size: z.number().finite().nonnegative('size must not be negative'),
  side: z.enum(['buy', 'sell']).optional(),
  trade_id: z
    .union([z.string().min(1).max(128), z.number().int()])
    .transform(String)
    .optional(),
});
export type Tick = z.infer<typeof tick>;
export type TickInput = z.input<typeof tick>;

/** A tick message is one tick or `{symbol, ticks:[...]}`; both normalise to an array. */
export const tickMessage = z
  .union([
    z.object({ symbol: symbolName, ticks: z.array(z.record(z.string(), z.unknown())).min(1) }),
    z.record(z.string(), z.unknown()),
  ])
  .transform((msg, ctx) => {
    const raw = Array.isArray((msg as { ticks?: unknown }).ticks)
      ? ((msg as { ticks: Record<string, unknown>[] }).ticks.map((t) => ({
          symbol: msg.symbol,
          ...t,
        })) as unknown[])
      : [msg];
    const out: Tick[] = [];
    for (const [i, r] of raw.entries()) {
      const p = tick.safeParse(r);
      if (!p.success) {
        for (const issue of p.error.issues)
          ctx.addIssue({ ...issue, path: ['ticks', i, ...issue.path] } as never);
        return z.NEVER;
      }
      out.push(p.data);
    }
    return out;
  });

export const TIMEFRAMES = ['1m', '5m', '15m', '1h', '4h', '1d'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];
export const timeframe = z.enum(TIMEFRAMES);

export const candle = z.object({
  symbol: symbolName,
  timeframe,
  start: z.string(),
  end: z.string(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
  trades: z.number().int(),
  vwap: z.number(),
  /** 0 for the first publication; each late-tick correction increments it. */
  revision: z.number().int().nonnegative().optional(),
});
export type Candle = z.infer<typeof candle>;

/** JSON Schema of the bus payloads, for publishers in other languages. */
export function messageJsonSchemas(): Record<string, unknown> {
  return {
    productBatch: z.toJSONSchema(productBatch, { io: 'input', unrepresentable: 'any' }),
    tick: z.toJSONSchema(tick, { io: 'input' }),
    candle: z.toJSONSchema(candle, { io: 'input' }),
  };
}

/** `lake.committed.<dataset>`: published by every writer after a catalog commit. */
export const lakeCommitted = z.object({
  dataset: z.string(),
  commit_id: z.string(),
  committed_at: z.string(),
  /** What the commit did: append (ingest), replace (compaction, row-level ops), remove (retention). */
  operation: z.enum(['append', 'replace', 'remove']).default('append'),
  partitions: z.array(
    z.object({
      values: z.record(z.string(), z.string()),
      added: z.array(z.object({ path: z.string(), rows: z.number().int(), bytes: z.number().int() })),
      removed: z.array(z.string()).default([]),
    }),
  ),
});
export type LakeCommitted = z.infer<typeof lakeCommitted>;
