import type { CandleRecord } from '../domain/candle.js';
import { candleKey, compareCandles } from '../lake/rows.js';
import { sameValues } from './build.js';

/**
 * What a rebuild may do to a candle partition (pure). `existing` holds the latest revision of
 * each candle in the partition, `rebuilt` the candles recomputed for the keys in scope.
 * - add:    a rebuilt candle the lake lacks is written (revision 0);
 * - change: a rebuilt candle whose values differ replaces the lake's (its revision + 1, so
 *           every reader, and the compaction, prefer it);
 * - remove: a candle in scope that the rebuild does not produce is dropped.
 * Candles out of scope are kept as they are.
 */
export interface RebuildPolicy {
  add: boolean;
  change: boolean;
  remove: boolean;
}

export interface PartitionDiff {
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  /** Rebuilt values differ but the policy keeps the lake's (backfill without --force). */
  differing: number;
  /** In scope, not rebuilt, kept because the policy does not remove. */
  stale: number;
  /** The partition's whole content after the change, sorted. */
  content: CandleRecord[];
}

export function diffPartition(
  existing: readonly CandleRecord[],
  rebuilt: readonly CandleRecord[],
  inScope: (c: CandleRecord) => boolean,
  policy: RebuildPolicy,
): PartitionDiff {
  const diff: PartitionDiff = {
    added: 0,
    changed: 0,
    removed: 0,
    unchanged: 0,
    differing: 0,
    stale: 0,
    content: [],
  };
  const fresh = new Map<string, CandleRecord>();
  for (const c of rebuilt) fresh.set(candleKey(c), c);
  for (const old of existing) {
    const key = candleKey(old);
    const next = fresh.get(key);
    fresh.delete(key);
    if (!inScope(old)) {
      diff.content.push(old);
    } else if (next === undefined) {
      if (policy.remove) diff.removed++;
      else {
        diff.stale++;
        diff.content.push(old);
      }
    } else if (sameValues(old, next)) {
      diff.unchanged++;
      diff.content.push(old);
    } else if (policy.change) {
      diff.changed++;
      diff.content.push({ ...next, revision: old.revision + 1 });
    } else {
      diff.differing++;
      diff.content.push(old);
    }
  }
  for (const c of fresh.values()) {
    if (!policy.add) continue;
    diff.added++;
    diff.content.push({ ...c, revision: 0 });
  }
  diff.content.sort(compareCandles);
  return diff;
}

export const changesOf = (d: Pick<PartitionDiff, 'added' | 'changed' | 'removed'>) =>
  d.added + d.changed + d.removed;
