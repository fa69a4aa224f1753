import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { timeframe } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { z } from 'zod';
import type { AggregatorSnapshot } from '../domain/snapshot.js';

/**
 * The persisted state of one partition (docs/adr/0003-candle-layout.md, "State"): the
 * aggregator snapshot plus what the service adds around it — the stream position it covers,
 * the stream clock that drives idle closes, and the candles not yet committed to the lake.
 * Stored as gzipped JSON; trade ids, the bulk of it, are kept and written as runs of
 * consecutive ids (exchange ids are sequential; see domain/trade-ids.ts), so the state stays
 * small at high trade rates.
 */
const finite = z.number().finite();

export const candleRecord = z.object({
  symbol: z.string(),
  timeframe,
  start: finite,
  end: finite,
  open: finite,
  high: finite,
  low: finite,
  close: finite,
  volume: finite,
  trades: z.number().int().nonnegative(),
  vwap: finite,
  revision: z.number().int().nonnegative(),
});

export const partitionState = z.object({
  version: z.literal(1),
  partitions: z.number().int().positive(),
  partition: z.number().int().nonnegative(),
  /** Last stream sequence handled (messages of every partition move the clock). */
  seq: z.number().int().nonnegative(),
  /** Stream clock (epoch ms): the latest stored-at time seen, or a journaled wall-clock time. */
  clock: finite.nullable(),
  /** Last idle-close evaluation step (floor(clock / step)). */
  clockStep: finite.nullable(),
  /** Id of the last journal entry applied. */
  journalId: z.number().int().nonnegative(),
  symbols: z.array(z.object({ symbol: z.string(), lastTs: finite, lastClock: finite })),
  /** The aggregator snapshot (domain/snapshot.ts). */
  aggregator: z.unknown(),
  /** Closed or revised candles not yet committed to the lake (the latest revision of each). */
  outbox: z.array(candleRecord),
});

export type PartitionState = Omit<z.infer<typeof partitionState>, 'aggregator' | 'outbox'> & {
  aggregator: AggregatorSnapshot;
  outbox: z.infer<typeof candleRecord>[];
};

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export async function encodePartitionState(state: PartitionState): Promise<Buffer> {
  return await gzipAsync(Buffer.from(JSON.stringify(state)), { level: 1 });
}

export async function decodePartitionState(bytes: Uint8Array): Promise<PartitionState> {
  let json: unknown;
  try {
    json = JSON.parse((await gunzipAsync(bytes)).toString('utf8'));
  } catch (cause) {
    throw new InvalidInputError('candle state is not gzipped JSON', { cause });
  }
  const parsed = partitionState.safeParse(json);
  if (!parsed.success) {
    throw new InvalidInputError(`invalid candle state: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  // The aggregator validates its snapshot itself in CandleAggregator.restore.
  return { ...parsed.data, aggregator: parsed.data.aggregator as AggregatorSnapshot };
}
