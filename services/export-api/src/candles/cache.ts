import { lowerBound, type StoredCandle } from './types.js';

/**
 * The candle cache: whole partitions (a month of 1m candles, a year of 1h…) as the lake held
 * them, each tagged with the signature of the live files it was read from, in a byte-bounded
 * LRU. A partition whose files changed (its signature differs) is a miss; a commit notice drops
 * it at once. Sizes are estimates: BYTES_PER_CANDLE covers the object (measured ≈ 216 bytes on
 * Node 20), its rendered JSON (≈ 130) and the array slot.
 */
export const BYTES_PER_CANDLE = 400;
const ENTRY_OVERHEAD = 256;

interface Entry {
  signature: string;
  candles: StoredCandle[];
  bytes: number;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  loads: number;
  evictions: number;
  invalidations: number;
}

export class PartitionCache {
  private readonly entries = new Map<string, Entry>();
  private used = 0;
  readonly counters: CacheCounters = { hits: 0, misses: 0, loads: 0, evictions: 0, invalidations: 0 };

  constructor(readonly maxBytes: number) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** Whether a partition of about `rows` candles may be cached (at most half the cache). */
  fits(rows: number): boolean {
    return this.enabled && rows * BYTES_PER_CANDLE + ENTRY_OVERHEAD <= this.maxBytes / 2;
  }

  /** The cached candles of a partition read from exactly these files, refreshing its LRU place. */
  get(key: string, signature: string): StoredCandle[] | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.signature !== signature) {
      this.remove(key);
      this.counters.invalidations++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.candles;
  }

  has(key: string, signature: string): boolean {
    return this.entries.get(key)?.signature === signature;
  }

  set(key: string, signature: string, candles: StoredCandle[]): void {
    if (!this.enabled) return;
    const bytes = candles.length * BYTES_PER_CANDLE + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes / 2) return;
    this.remove(key);
    this.entries.set(key, { signature, candles, bytes });
    this.used += bytes;
    this.counters.loads++;
    for (const [k] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.remove(k);
      this.counters.evictions++;
    }
  }

  /** Drops a partition (a commit notice named it). */
  invalidate(key: string): boolean {
    if (!this.remove(key)) return false;
    this.counters.invalidations++;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  private remove(key: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    this.used -= e.bytes;
    return true;
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Closed candles from `market.candles.>` that the lake may not hold yet, per series, sorted by
 * start, the highest revision of each. A series keeps at most `perSeries` (the oldest go first:
 * by then the aggregator has long written them), and a candle leaves once a partition read
 * from the lake holds the same or a newer revision.
 */
export class LiveCandles {
  private readonly series = new Map<string, StoredCandle[]>();
  private count = 0;

  constructor(private readonly perSeries = 5000) {}

  /** Adds or replaces a candle; false when an equal or newer revision is already here. */
  add(seriesKey: string, c: StoredCandle): boolean {
    let list = this.series.get(seriesKey);
    if (!list) {
      list = [];
      this.series.set(seriesKey, list);
    }
    const i = lowerBound(list, c.start);
    const at = list[i];
    if (at && at.start === c.start) {
      if (at.revision > c.revision) return false;
      list[i] = c;
      return true;
    }
    list.splice(i, 0, c);
    this.count++;
    if (list.length > this.perSeries) {
      list.shift();
      this.count--;
    }
    return true;
  }

  get(seriesKey: string): readonly StoredCandle[] {
    return this.series.get(seriesKey) ?? [];
  }

  /** Drops the live candles of [fromMs, toMs) that `lake` (sorted) holds at the same or a newer revision. */
  prune(seriesKey: string, lake: readonly StoredCandle[], fromMs: number, toMs: number): void {
    const list = this.series.get(seriesKey);
    if (!list || list.length === 0 || lake.length === 0) return;
    const kept = list.filter((c) => {
      if (c.start < fromMs || c.start >= toMs) return true;
      const j = lowerBound(lake, c.start);
      const l = lake[j];
      return !(l && l.start === c.start && l.revision >= c.revision);
    });
    this.count -= list.length - kept.length;
    if (kept.length === 0) this.series.delete(seriesKey);
    else this.series.set(seriesKey, kept);
  }

  seriesKeys(): string[] {
    return [...this.series.keys()];
  }

  get size(): number {
    return this.count;
  }
}
