import {
  CANDLES,
  type Catalog,
  type FileEntry,
  type LakeCommitted,
  type PartitionManifest,
  type PartitionValues,
  TIMEFRAMES,
  type Timeframe,
} from '@parquetry/lake';

/**
 * The candle routes' view of the catalog: the live files of every candle partition
 * (`candles/timeframe=<tf>/symbol=<S>/period=<P>`), grouped by series. Reading the catalog for
 * each request would cost one KV read per partition of the whole dataset (manifest keys are
 * hashes, so one series cannot be listed alone); instead the view reads the whole dataset once,
 * then re-reads exactly the partitions that `lake.committed.candles` events name (one KV read
 * each, on the next request of that series), and reads everything again every `refreshMs`
 * (events lost while disconnected) or when told to (a reconnect).
 *
 * Candle commits touch one partition each (candle-aggregator), so a single-partition read is
 * a consistent state of that partition.
 */

export interface CandlePartition {
  timeframe: Timeframe;
  symbol: string;
  period: string;
  /** `<tf>/<symbol>/<period>`, unique per partition. */
  key: string;
  files: FileEntry[];
  /** Identifies the set of live files: a cached copy made from another set is stale. */
  signature: string;
  /** Rows of the live files (revisions included, so at least the number of candles). */
  rows: number;
  /** [startMs, endMs) of the period: every candle of the partition starts in it. */
  fromMs: number;
  toMs: number;
}

export const seriesKey = (tf: string, symbol: string) => `${tf}/${symbol}`;

/** Time span of a candle period (datasets.ts candlePeriod): `YYYY-MM`, `YYYY`, `all`; anything else: unbounded. */
export function periodBounds(period: string): { fromMs: number; toMs: number } {
  let m = /^(\d{4})-(\d{2})$/.exec(period);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    return { fromMs: Date.UTC(y, mo - 1, 1), toMs: Date.UTC(y, mo, 1) };
  }
  m = /^(\d{4})$/.exec(period);
  if (m) {
    const y = Number(m[1]);
    return { fromMs: Date.UTC(y, 0, 1), toMs: Date.UTC(y + 1, 0, 1) };
  }
  return { fromMs: Number.NEGATIVE_INFINITY, toMs: Number.POSITIVE_INFINITY };
}

function toPartition(values: PartitionValues, files: readonly FileEntry[]): CandlePartition | undefined {
  const tf = values.timeframe as Timeframe;
  const { symbol, period } = values;
  if (!TIMEFRAMES.includes(tf) || !symbol || period === undefined || files.length === 0) return undefined;
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    timeframe: tf,
    symbol,
    period,
    key: `${tf}/${symbol}/${period}`,
    files: sorted,
    signature: sorted.map((f) => `${f.path}:${f.sha256}`).join('\n'),
    rows: sorted.reduce((n, f) => n + f.rows, 0),
    ...periodBounds(period),
  };
}

const RETRY_MS = 5000;

type CatalogReads = Pick<Catalog, 'partitions' | 'partition'>;

interface Dirty {
  values: PartitionValues;
  seq: number;
}

export class CandleCatalogView {
  /** series key → period → partition */
  private series = new Map<string, Map<string, CandlePartition>>();
  private dirty = new Map<string, Map<string, Dirty>>();
  private seq = 0;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;
  private loadedOnce = false;
  private staleAll = false;

  constructor(
    private readonly deps: {
      catalog: CatalogReads;
      /** Full re-read after this long (0: only at start and when told). */
      refreshMs: number;
      clock?: () => number;
      onError?: (err: unknown) => void;
    },
  ) {}

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  /** Reads every candle partition; the first call waits for it, later refreshes run in the background. */
  private async ensureLoaded(): Promise<void> {
    const expired = this.deps.refreshMs > 0 && this.now() - this.loadedAt > this.deps.refreshMs;
    if (this.loadedOnce && !expired && !this.staleAll) return;
    if (!this.loading) {
      this.staleAll = false;
      const startedSeq = this.seq;
      const started = this.now();
      this.loading = this.deps.catalog
        .partitions(CANDLES.name)
        .then((manifests) => {
          this.replaceAll(manifests, startedSeq);
          this.loadedAt = started;
          this.loadedOnce = true;
        })
        .finally(() => {
          this.loading = undefined;
        });
      this.loading.catch((err) => {
        if (!this.loadedOnce) return; // the waiting request gets the error
        // Stale-while-revalidate: keep the current view, report, and try again in a few seconds.
        this.loadedAt = Math.max(this.loadedAt, this.now() - this.deps.refreshMs + RETRY_MS);
        this.staleAll = false;
        this.deps.onError?.(err);
      });
    }
    if (!this.loadedOnce) await this.loading;
  }

  private replaceAll(manifests: readonly PartitionManifest[], startedSeq: number): void {
    const next = new Map<string, Map<string, CandlePartition>>();
    for (const m of manifests) {
      const p = toPartition(m.partition, m.files);
      if (!p) continue;
      const sk = seriesKey(p.timeframe, p.symbol);
      let periods = next.get(sk);
      if (!periods) {
        periods = new Map();
        next.set(sk, periods);
      }
      periods.set(p.period, p);
    }
    // Partitions marked after the read began may have been read before their commit: keep them dirty.
    for (const [sk, marks] of this.dirty) {
      for (const [period, d] of marks) if (d.seq <= startedSeq) marks.delete(period);
      if (marks.size === 0) this.dirty.delete(sk);
    }
    this.series = next;
  }

  /** A commit notice: its partitions are re-read before their series is next used. */
  markCommitted(event: Pick<LakeCommitted, 'dataset' | 'partitions'>): number {
    if (event.dataset !== CANDLES.name) return 0;
    let n = 0;
    for (const p of event.partitions) {
      const { timeframe, symbol, period } = p.values;
      if (!timeframe || !symbol || period === undefined) continue;
      const sk = seriesKey(timeframe, symbol);
      let marks = this.dirty.get(sk);
      if (!marks) {
        marks = new Map();
        this.dirty.set(sk, marks);
      }
      marks.set(period, { values: { timeframe, symbol, period }, seq: ++this.seq });
      n++;
    }
    return n;
  }

  /** Everything is re-read on next use (after a reconnect: notices may have been missed). */
  markAllStale(): void {
    this.staleAll = true;
  }

  private async settle(sk: string): Promise<void> {
    const marks = this.dirty.get(sk);
    if (!marks || marks.size === 0) return;
    const work = [...marks.entries()];
    await Promise.all(
      work.map(async ([period, d]) => {
        const manifest = await this.deps.catalog.partition(CANDLES.name, d.values);
        const p = toPartition(d.values, manifest.files);
        let periods = this.series.get(sk);
        if (!periods) {
          periods = new Map();
          this.series.set(sk, periods);
        }
        if (p) periods.set(period, p);
        else periods.delete(period);
        if (periods.size === 0) this.series.delete(sk);
        // A newer notice for this partition arrived during the read: leave it marked.
        if (marks.get(period)?.seq === d.seq) marks.delete(period);
      }),
    );
    if (marks.size === 0 && this.dirty.get(sk) === marks) this.dirty.delete(sk);
  }

  /** The partitions of one series, oldest period first. */
  async partitionsOf(tf: Timeframe, symbol: string): Promise<CandlePartition[]> {
    await this.ensureLoaded();
    const sk = seriesKey(tf, symbol);
    await this.settle(sk);
    const periods = this.series.get(sk);
    if (!periods) return [];
    return [...periods.values()].sort((a, b) => a.fromMs - b.fromMs || (a.period < b.period ? -1 : 1));
  }

  /** Every series in the lake: symbol → timeframes. */
  async allSeries(): Promise<{ timeframe: Timeframe; symbol: string }[]> {
    await this.ensureLoaded();
    for (const sk of [...this.dirty.keys()]) await this.settle(sk);
    return [...this.series.keys()].map((sk) => {
      const i = sk.indexOf('/');
      return { timeframe: sk.slice(0, i) as Timeframe, symbol: sk.slice(i + 1) };
    });
  }
}
