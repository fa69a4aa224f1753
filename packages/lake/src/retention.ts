import { createHash } from 'node:crypto';
import { ConflictError, InvalidInputError } from '@parquetry/service';
import type { Catalog } from './catalog/catalog.js';
import type { FileEntry, PartitionManifest } from './catalog/types.js';
import { getDataset } from './datasets.js';
import { parsePartitionPath, partitionPath } from './partition.js';
import type { LakeCommitted } from './schemas.js';
import type { ObjectStore } from './store/types.js';

export interface RetentionOptions {
  catalog: Catalog;
  store: ObjectStore;
  dataset: string;
  /** Partitions dated before `now - maxAgeDays` (UTC calendar days) are dropped. */
  maxAgeDays: number;
  now?: Date;
  /** Report what would be dropped; change nothing. */
  dryRun?: boolean;
}

export interface RetainedPartition {
  /** Partition path, e.g. `retailer=jumbo/date=2024-11-03`. */
  partition: string;
  /** The catalog commit that removes them (in a dry run, the one that would). */
  commitId: string;
  /** Keys of the files removed from the catalog (they stay in the store until vacuum). */
  paths: string[];
  files: number;
  rows: number;
  bytes: number;
}

export interface RetentionResult {
  dataset: string;
  dryRun: boolean;
  /** First date kept (`YYYY-MM-DD`); partitions dated before it are dropped. */
  keepFrom: string;
  /** False for datasets without a `date` partition column (nothing to do). */
  applicable: boolean;
  partitions: number;
  files: number;
  rows: number;
  bytes: number;
  dropped: RetainedPartition[];
}

const DAY_MS = 86_400_000;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
/** A partition whose files a compaction replaced between our read and our commit: read again. */
const MAX_CONFLICT_RETRIES = 5;

/** The first date kept: `now - maxAgeDays` as a UTC calendar date. */
export function retentionKeepFrom(now: Date, maxAgeDays: number): string {
  if (!Number.isSafeInteger(maxAgeDays) || maxAgeDays < 0) {
    throw new InvalidInputError(`retention days must be a non-negative integer, got ${maxAgeDays}`);
  }
  return new Date(now.getTime() - maxAgeDays * DAY_MS).toISOString().slice(0, 10);
}

/** `_metadata_<YYYYMMDD>.json` of a partition directory (products write one per partition). */
export function partitionMetadataKey(dir: string, date: string): string {
  return `${dir}/_metadata_${date.replaceAll('-', '')}.json`;
}

/**
 * One commit id per (partition, set of files removed): a retried run that finds the same files
 * reports `already`; files appended later (late data for an old date) get a new id and go too.
 */
function retentionCommitId(path: string, files: readonly FileEntry[]): string {
  // A file's own commit id is part of its identity: a file restored after an earlier retention is new.
  const ids = files.map((f) => `${f.path} ${f.commitId}`).sort();
  const h = createHash('sha256').update(path).update('\n').update(ids.join('\n')).digest('hex');
  return `retention-${h.slice(0, 32)}`;
}

/**
 * Drops partitions older than the retention window. Each partition goes in ONE catalog commit
 * that removes every live file and forgets its source keys, then its `_metadata_<YYYYMMDD>.json`
 * is deleted. The Parquet files stay in the store until `vacuum` deletes them after its grace
 * period, so a reader holding an earlier snapshot never loses a file mid-read. Partitions left
 * empty by an earlier run (a crash between commit and metadata delete) get their metadata
 * deleted again and are not counted.
 */
export async function applyRetention(opts: RetentionOptions): Promise<RetentionResult> {
  const def = getDataset(opts.dataset);
  const now = opts.now ?? new Date();
  const dryRun = opts.dryRun ?? false;
  const keepFrom = retentionKeepFrom(now, opts.maxAgeDays);
  const result: RetentionResult = {
    dataset: def.name,
    dryRun,
    keepFrom,
    applicable: def.partitionColumns.includes('date'),
    partitions: 0,
    files: 0,
    rows: 0,
    bytes: 0,
    dropped: [],
  };
  if (!result.applicable) return result;

  const isOld = (date: string | undefined) => date !== undefined && ISO_DATE.test(date) && date < keepFrom;
  const old = await opts.catalog.partitions(def.name, (v) => isOld(v.date));
  for (const snapshot of old) {
    const path = partitionPath(def.partitionColumns, snapshot.partition);
    const dir = `${def.root}/${path}`;
    const dropped = dryRun
      ? summarize(path, snapshot)
      : await dropPartition(opts.catalog, def.name, path, snapshot);
    if (!dryRun) await opts.store.delete(partitionMetadataKey(dir, snapshot.partition.date!));
    if (dropped.files === 0) continue;
    result.dropped.push(dropped);
    result.partitions += 1;
    result.files += dropped.files;
    result.rows += dropped.rows;
    result.bytes += dropped.bytes;
  }
  return result;
}

function summarize(path: string, m: Pick<PartitionManifest, 'files'>): RetainedPartition {
  return {
    partition: path,
    commitId: retentionCommitId(path, m.files),
    paths: m.files.map((f) => f.path),
    files: m.files.length,
    rows: m.files.reduce((n, f) => n + f.rows, 0),
    bytes: m.files.reduce((n, f) => n + f.bytes, 0),
  };
}

/** Commits the removal of every live file; on a conflict (a compaction swapped files) reads again. */
async function dropPartition(
  catalog: Catalog,
  dataset: string,
  path: string,
  first: PartitionManifest,
): Promise<RetainedPartition> {
  let m = first;
  for (let attempt = 0; ; attempt++) {
    if (m.files.length === 0 && m.sources.length === 0) return summarize(path, m);
    const dropped = summarize(path, m);
    try {
      await catalog.commit({
        dataset,
        commitId: dropped.commitId,
        changes: [{ partition: m.partition, add: [], remove: dropped.paths, forgetSources: [...m.sources] }],
      });
      return dropped;
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      m = await catalog.partition(dataset, m.partition);
    }
  }
}

/**
 * The `lake.committed.<dataset>` events announcing what a retention run dropped: one `remove`
 * per partition with the removed paths, so followers (pg-loader) delete the same rows. The commit
 * id is the catalog's own retention commit id, so a re-announcement is deduplicated by JetStream.
 */
export function retentionEvents(result: RetentionResult, now = new Date()): LakeCommitted[] {
  if (result.dryRun) return [];
  const { partitionColumns } = getDataset(result.dataset);
  return result.dropped.map((dropped) => ({
    dataset: result.dataset,
    commit_id: dropped.commitId,
    committed_at: now.toISOString(),
    operation: 'remove',
    partitions: [
      { values: parsePartitionPath(partitionColumns, dropped.partition), added: [], removed: dropped.paths },
    ],
  }));
}
