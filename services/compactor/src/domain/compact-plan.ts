import type { FileEntry } from '@parquetry/lake';

export const MB = 1024 * 1024;

export interface CompactOptions {
  /** Size of each merged file. */
  targetBytes: number;
  /** Compact a partition only when it has at least this many small files (≥ 2). */
  minFileCount: number;
  /** Files of this size or more are already compact and stay as they are. */
  maxFileBytes: number;
}

export interface CompactSelection {
  /** Files to merge, oldest data first so the merged files keep the time order of ingest. */
  merge: FileEntry[];
  /** How many files the merge should produce. */
  outputs: number;
  bytes: number;
  rows: number;
}

/** Oldest data first: by the time column's minimum when known, then commit time, then path. */
export function byDataTime(a: FileEntry, b: FileEntry): number {
  const ka = a.minTime ?? a.committedAt;
  const kb = b.minTime ?? b.committedAt;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

export function smallFiles(files: readonly FileEntry[], maxFileBytes: number): FileEntry[] {
  return files.filter((f) => f.bytes < maxFileBytes).sort(byDataTime);
}

/**
 * Which files of one partition to merge, or nothing. Only small files take part (large ones
 * are already where compaction would put them), and only when there are at least
 * `minFileCount` of them. The merge is sized into ⌈bytes / target⌉ outputs.
 */
export function planCompaction(files: readonly FileEntry[], o: CompactOptions): CompactSelection | undefined {
  const merge = smallFiles(files, o.maxFileBytes);
  if (merge.length < Math.max(2, o.minFileCount)) return undefined;
  const bytes = merge.reduce((n, f) => n + f.bytes, 0);
  const rows = merge.reduce((n, f) => n + f.rows, 0);
  return { merge, outputs: Math.max(1, Math.ceil(bytes / o.targetBytes)), bytes, rows };
}

/** The policy's test: more than `maxSmallFiles` files below `smallBytes`. */
export function needsCompaction(
  files: readonly FileEntry[],
  smallBytes: number,
  maxSmallFiles: number,
): boolean {
  let n = 0;
  for (const f of files) if (f.bytes < smallBytes && ++n > maxSmallFiles) return true;
  return false;
}

/**
 * FILE_SIZE_BYTES for DuckDB so `bytes` splits into `outputs` files of about equal size: DuckDB
 * starts a new file once the current one passes the limit (checked per row group), so the limit
 * sits a little under the even share, and the last file is not left as a small remainder.
 */
export function fileSizeLimit(bytes: number, outputs: number): number | undefined {
  if (outputs <= 1) return undefined;
  return Math.max(1024 * 1024, Math.floor((bytes / outputs) * 0.95));
}
