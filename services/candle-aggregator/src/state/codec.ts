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
 * Stored as gzipped JSON; trade ids, the bulk of it, are written as runs of consecutive
 * integers (exchange ids are sequential), so the state stays small at high trade rates.
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
  /** The aggregator snapshot, trade ids encoded by `encodeTradeIds`. */
  aggregator: z.unknown(),
  /** Closed or revised candles not yet committed to the lake (the latest revision of each). */
  outbox: z.array(candleRecord),
});

export type PartitionState = Omit<z.infer<typeof partitionState>, 'aggregator' | 'outbox'> & {
  aggregator: AggregatorSnapshot;
  outbox: z.infer<typeof candleRecord>[];
};

/** An id list entry: one id, or `[first, count]` for the integer ids first … first + count − 1. */
export type EncodedIds = (string | [number, number])[];

const SAFE_UINT = /^(?:0|[1-9][0-9]{0,14})$/;

export function encodeTradeIds(ids: readonly string[]): EncodedIds {
  const out: EncodedIds = [];
  let run: [number, number] | undefined;
  for (const id of ids) {
    if (SAFE_UINT.test(id)) {
      const n = Number(id);
      if (run && run[0] + run[1] === n) {
        run[1] += 1;
        continue;
      }
      run = [n, 1];
      out.push(run);
    } else {
      run = undefined;
      out.push(id);
    }
  }
  return out.map((e) => (typeof e !== 'string' && e[1] === 1 ? String(e[0]) : e));
}

export function decodeTradeIds(encoded: EncodedIds): string[] {
  const out: string[] = [];
  for (const e of encoded) {
    if (typeof e === 'string') out.push(e);
    else for (let i = 0; i < e[1]; i++) out.push(String(e[0] + i));
  }
  return out;
}

const encodedIds = z.array(
  z.union([z.string(), z.tuple([z.number().int().nonnegative(), z.number().int().positive()])]),
);

function mapTradeIds<A, B>(
  snapshot: { symbols: { tradeIds: { minute: number; ids: A }[] }[] },
  f: (ids: A) => B,
) {
  return {
    ...snapshot,
    symbols: snapshot.symbols.map((s) => ({
      ...s,
      tradeIds: s.tradeIds.map((t) => ({ minute: t.minute, ids: f(t.ids) })),
    })),
  };
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export async function encodePartitionState(state: PartitionState): Promise<Buffer> {
  const stored = { ...state, aggregator: mapTradeIds(state.aggregator, encodeTradeIds) };
  return await gzipAsync(Buffer.from(JSON.stringify(stored)), { level: 1 });
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
  const agg = parsed.data.aggregator as { symbols?: { tradeIds?: { minute: number; ids: unknown }[] }[] };
  const symbols = (agg.symbols ?? []).map((s) => ({
    ...s,
    tradeIds: (s.tradeIds ?? []).map((t) => {
      const ids = encodedIds.safeParse(t.ids);
      if (!ids.success)
        throw new InvalidInputError('invalid candle state: bad trade id list', { cause: ids.error });
      return { minute: t.minute, ids: decodeTradeIds(ids.data) };
    }),
  }));
  // The aggregator validates the rest itself in CandleAggregator.restore.
  return { ...parsed.data, aggregator: { ...agg, symbols } as unknown as AggregatorSnapshot };
}
