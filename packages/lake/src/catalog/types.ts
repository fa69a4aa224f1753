import type { PartitionValues } from '../partition.js';

/** One live Parquet file of a partition. */
export interface FileEntry {
  /** Key relative to LAKE_URL, e.g. `products/retailer=x/date=2025-09-03/phones_20250903_143022_ab12cd34.parquet`. */
  path: string;
  rows: number;
  bytes: number;
  /** sha256 hex of the file's bytes, recorded at commit; `candles verify` checks it. */
  sha256: string;
  /** Stamped by the catalog when the commit is made. */
  committedAt: string;
  /** Stamped by the catalog: the commit that added the file. */
  commitId: string;
  /** Optional min/max of the dataset's time column, for pruning. */
  minTime?: string;
  maxTime?: string;
}

/** A file to add: the catalog stamps `committedAt` and `commitId`. */
export type NewFile = Omit<FileEntry, 'committedAt' | 'commitId'> &
  Partial<Pick<FileEntry, 'committedAt' | 'commitId'>>;

export interface RemovedEntry {
  path: string;
  /** Size when it was live, so vacuum can report what it frees. */
  bytes: number;
  removedAt: string;
  commitId: string;
}

/**
 * A change of a multi-partition commit, reserved in a partition before any partition applies it
 * (docs/adr/0002-catalog-commit-protocol.md). Its `remove` paths are locked against other commits.
 */
export interface PendingChange {
  commitId: string;
  writerId: string;
  change: PartitionChange;
  /** Catalog keys of every partition of the commit. */
  partitions: string[];
}

/** A multi-partition commit applied here, so readers can tell whether they saw all of it. */
export interface LinkedCommit {
  commitId: string;
  partitions: string[];
}

/** The committed state of one partition; `revision` is the compare-and-set token. */
export interface PartitionManifest {
  dataset: string;
  partition: PartitionValues;
  files: FileEntry[];
  /** Replaced files, deleted from the store by vacuum after the grace period. */
  removed: RemovedEntry[];
  /** Commit ids applied to this partition (bounded), for idempotent retries and reconciliation. */
  commits: string[];
  /** Source idempotency keys (e.g. product batch ids) already in live files of this partition. */
  sources: string[];
  /** Reserved changes of multi-partition commits in flight. */
  pending: PendingChange[];
  /** Recent multi-partition commits applied here (bounded). */
  linked: LinkedCommit[];
  updatedAt: string;
  /** KV revision this manifest was read at; 0 when the partition has no manifest yet. */
  revision: number;
}

/** A change to one partition inside a commit. */
export interface PartitionChange {
  partition: PartitionValues;
  add: NewFile[];
  /** Paths of live files this change replaces; a commit fails with ConflictError if any is no longer live. */
  remove?: string[];
  /** Source keys that the added files carry (added to `sources`); removed files' keys are dropped by the caller. */
  sources?: string[];
  /** Source keys to forget (retention, deletes). */
  forgetSources?: string[];
}

export interface Commit {
  dataset: string;
  /** Idempotency key: a commit with an id the partition already has is a no-op that reports `already`. */
  commitId: string;
  changes: PartitionChange[];
}

export interface CommitResult {
  commitId: string;
  /** Per partition path (`retailer=x/date=y`): applied now, or found already applied (a retried or reconciled commit). */
  partitions: Record<string, 'applied' | 'already'>;
}
