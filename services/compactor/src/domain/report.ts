import type { FileEntry, PartitionValues } from '@parquetry/lake';

/** What an operation did (or, in a dry run, would do) to one partition. */
export interface PartitionReport {
  /** `retailer=x/date=y` */
  partition: string;
  values: PartitionValues;
  files_before: number;
  bytes_before: number;
  rows_before: number;
  files_removed: number;
  bytes_removed: number;
  rows_removed: number;
  files_added: number;
  bytes_added: number;
  rows_added: number;
  /** Row-level effect, by operation: deleted, updated, inserted. */
  rows_deleted?: number;
  rows_updated?: number;
  rows_inserted?: number;
  /** Files and bytes after the change (for a dry run, the estimate). */
  files_after: number;
  bytes_after: number;
  rows_after: number;
  /** Paths replaced (live before, removed by the commit). */
  removed: string[];
  /** Paths added (empty in a dry run). */
  added: string[];
}

export interface OpTotals {
  partitions: number;
  files_before: number;
  files_after: number;
  bytes_before: number;
  bytes_after: number;
  rows_before: number;
  rows_after: number;
  files_removed: number;
  files_added: number;
  rows_deleted?: number;
  rows_updated?: number;
  rows_inserted?: number;
}

export type OpStatus = 'committed' | 'already_committed' | 'dry_run' | 'nothing_to_do';

export interface OpResult {
  op: string;
  op_id: string;
  dataset: string;
  status: OpStatus;
  dry_run: boolean;
  /** The catalog commit (absent when nothing was committed). */
  commit_id?: string;
  partitions: PartitionReport[];
  totals: OpTotals;
  /** `_backups/<op-id>/` when replaced files were backed up. */
  backup?: string;
  /** Whole attempts made (a conflict with a concurrent writer re-plans). */
  attempts: number;
  duration_ms: number;
  /** Milliseconds spent in each step (plan, copy, hash, upload, commit, …) of a committed run. */
  timings_ms?: Record<string, number>;
  /** Op-specific notes, e.g. repartition's estimate of the new layout. */
  details?: Record<string, unknown>;
}

const sum = <T>(xs: readonly T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);

export interface PartitionChangeSummary {
  partition: string;
  values: PartitionValues;
  /** Live files of the partition in the snapshot the op planned from. */
  live: readonly FileEntry[];
  remove: readonly FileEntry[];
  /** Added files (known after the write), or an estimate in a dry run. */
  added: readonly { path: string; rows: number; bytes: number }[];
  /** Estimated rows and bytes added when `added` is not known yet (dry run). */
  estimate?: { files: number; rows: number; bytes: number };
  rowsDeleted?: number;
  rowsUpdated?: number;
  rowsInserted?: number;
}

export function partitionReport(c: PartitionChangeSummary): PartitionReport {
  const filesAdded = c.estimate ? c.estimate.files : c.added.length;
  const bytesAdded = c.estimate ? c.estimate.bytes : sum(c.added, (f) => f.bytes);
  const rowsAdded = c.estimate ? c.estimate.rows : sum(c.added, (f) => f.rows);
  const before = {
    files: c.live.length,
    bytes: sum(c.live, (f) => f.bytes),
    rows: sum(c.live, (f) => f.rows),
  };
  const removed = {
    files: c.remove.length,
    bytes: sum(c.remove, (f) => f.bytes),
    rows: sum(c.remove, (f) => f.rows),
  };
  return {
    partition: c.partition,
    values: c.values,
    files_before: before.files,
    bytes_before: before.bytes,
    rows_before: before.rows,
    files_removed: removed.files,
    bytes_removed: removed.bytes,
    rows_removed: removed.rows,
    files_added: filesAdded,
    bytes_added: bytesAdded,
    rows_added: rowsAdded,
    ...(c.rowsDeleted !== undefined ? { rows_deleted: c.rowsDeleted } : {}),
    ...(c.rowsUpdated !== undefined ? { rows_updated: c.rowsUpdated } : {}),
    ...(c.rowsInserted !== undefined ? { rows_inserted: c.rowsInserted } : {}),
    files_after: before.files - removed.files + filesAdded,
    bytes_after: before.bytes - removed.bytes + bytesAdded,
    rows_after: before.rows - removed.rows + rowsAdded,
    removed: c.remove.map((f) => f.path),
    added: c.added.map((f) => f.path),
  };
}

export function totalsOf(parts: readonly PartitionReport[]): OpTotals {
  const opt = (k: 'rows_deleted' | 'rows_updated' | 'rows_inserted') =>
    parts.some((p) => p[k] !== undefined) ? { [k]: sum(parts, (p) => p[k] ?? 0) } : {};
  return {
    partitions: parts.length,
    files_before: sum(parts, (p) => p.files_before),
    files_after: sum(parts, (p) => p.files_after),
    bytes_before: sum(parts, (p) => p.bytes_before),
    bytes_after: sum(parts, (p) => p.bytes_after),
    rows_before: sum(parts, (p) => p.rows_before),
    rows_after: sum(parts, (p) => p.rows_after),
    files_removed: sum(parts, (p) => p.files_removed),
    files_added: sum(parts, (p) => p.files_added),
    ...opt('rows_deleted'),
    ...opt('rows_updated'),
    ...opt('rows_inserted'),
  };
}
