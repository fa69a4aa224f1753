import type { FileEntry, PartitionManifest } from '@parquetry/lake';

/** Pure summaries of catalog snapshots for `lake stats | list | info`. */

export interface Totals {
  partitions: number;
  files: number;
  rows: number;
  bytes: number;
  /** From the `date` partition value, else from the files' time range; null when unknown. */
  oldest_date: string | null;
  newest_date: string | null;
}

function datesOf(m: PartitionManifest): string[] {
  if (m.partition.date) return [m.partition.date];
  return m.files
    .flatMap((f) => [f.minTime, f.maxTime])
    .filter((t): t is string => !!t)
    .map((t) => t.slice(0, 10));
}

/** Totals over partitions; partitions without live files (emptied by retention) do not count. */
export function totals(manifests: readonly PartitionManifest[]): Totals {
  const t: Totals = { partitions: 0, files: 0, rows: 0, bytes: 0, oldest_date: null, newest_date: null };
  for (const m of manifests) {
    if (m.files.length === 0) continue;
    t.partitions += 1;
    for (const f of m.files) {
      t.files += 1;
      t.rows += f.rows;
      t.bytes += f.bytes;
    }
    for (const d of datesOf(m)) {
      if (t.oldest_date === null || d < t.oldest_date) t.oldest_date = d;
      if (t.newest_date === null || d > t.newest_date) t.newest_date = d;
    }
  }
  return t;
}

/** Totals per value of one partition column, sorted by that value. */
export function totalsBy<K extends string>(
  manifests: readonly PartitionManifest[],
  column: K,
): (Record<K, string> & Totals)[] {
  const groups = new Map<string, PartitionManifest[]>();
  for (const m of manifests) {
    if (m.files.length === 0) continue;
    const v = m.partition[column] ?? '';
    groups.set(v, [...(groups.get(v) ?? []), m]);
  }
  return [...groups.keys()]
    .sort()
    .map((v) => ({ [column]: v, ...totals(groups.get(v)!) }) as Record<K, string> & Totals);
}

/** The last segment of a key (tables show it; JSON has the whole key). */
export function fileName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** `<category>_<YYYYMMDD>_<HHMMSS>_<backup_id>[_<part>].parquet` → category, or null for other names. */
export function productFileCategory(path: string): string | null {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const m = /^(.+)_\d{8}_\d{6}_[A-Za-z0-9]+(?:_\d+)?\.parquet$/.exec(name);
  return m ? m[1]! : null;
}

export interface ProductFileRow {
  path: string;
  retailer: string;
  date: string;
  category: string | null;
  rows: number;
  bytes: number;
  committed_at: string;
}

export function productFileRows(manifests: readonly PartitionManifest[]): ProductFileRow[] {
  return manifests.flatMap((m) =>
    m.files.map((f: FileEntry) => ({
      path: f.path,
      retailer: m.partition.retailer ?? '',
      date: m.partition.date ?? '',
      category: productFileCategory(f.path),
      rows: f.rows,
      bytes: f.bytes,
      committed_at: f.committedAt,
    })),
  );
}

/** 1536 → `1.5 KB`; binary units, as `ls -h` and `du -h` print them. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
