import { InvalidInputError } from '@parquetry/service';

/**
 * Subject builders for DESIGN.md "Bus: streams and subjects". A token that could change the
 * subject's shape (a dot, a wildcard, whitespace) is rejected instead of published.
 */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function subjectToken(value: string, what: string): string {
  if (!TOKEN.test(value)) {
    throw new InvalidInputError(`${what} ${JSON.stringify(value)} is not a valid subject token`, {
      code: 'invalid_subject',
    });
  }
  return value;
}

export const LAKE_OPS = [
  'compact',
  'repartition',
  'delete',
  'update',
  'upsert',
  'vacuum',
  'cleanup',
] as const;
export type LakeOp = (typeof LAKE_OPS)[number];

export const subjects = {
  products: (retailer: string, category: string) =>
    `scraper.products.${subjectToken(retailer, 'retailer')}.${subjectToken(category, 'category')}`,
  ticks: (symbol: string) => `market.ticks.${subjectToken(symbol, 'symbol')}`,
  candles: (timeframe: string, symbol: string) =>
    `market.candles.${subjectToken(timeframe, 'timeframe')}.${subjectToken(symbol, 'symbol')}`,
  lakeCommitted: (dataset: string) => `lake.committed.${subjectToken(dataset, 'dataset')}`,
  lakeOps: (op: LakeOp) => `lake.ops.${subjectToken(op, 'op')}`,
  /** Where `service` dead-letters a message that arrived on `originalSubject`. */
  deadLetter: (service: string, originalSubject: string) =>
    `dlq.${subjectToken(service, 'service')}.${originalSubject}`,
} as const;

/** Filter for every dead letter, or those of one service. */
export function deadLetterFilter(service?: string): string {
  return service === undefined ? 'dlq.>' : `dlq.${subjectToken(service, 'service')}.>`;
}
