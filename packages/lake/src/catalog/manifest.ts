import { ConflictError } from '@parquetry/service';
import type { PartitionValues } from '../partition.js';
import type { FileEntry, PartitionChange, PartitionManifest, PendingChange, RemovedEntry } from './types.js';

/**
 * Pure manifest logic: what a commit does to one partition's file list, and how a reader turns
 * the manifests it read (at slightly different times) into one consistent snapshot. No I/O.
 */

/** Commit ids remembered per partition: a retry or reconciliation older than this many commits re-applies. */
export const MAX_COMMITS = 1000;
/** Multi-partition commits remembered per partition for readers' consistency checks. */
export const MAX_LINKED = 100;

export function emptyManifest(dataset: string, partition: PartitionValues, now: string): PartitionManifest {
  return {
    dataset,
    partition: { ...partition },
    files: [],
    removed: [],
    commits: [],
    sources: [],
    pending: [],
    linked: [],
    updatedAt: now,
    revision: 0,
  };
}

export function hasCommit(m: PartitionManifest, commitId: string): boolean {
  return m.commits.includes(commitId);
}

export function pendingOf(m: PartitionManifest, commitId: string): PendingChange | undefined {
  return m.pending.find((p) => p.commitId === commitId);
}

/**
 * Throws ConflictError when the change cannot apply to this manifest: a path to remove is not
 * live (someone else replaced it) or is reserved by another commit in flight, or a path to add
 * is already live (a file must never be listed twice).
 */
export function checkChange(m: PartitionManifest, commitId: string, change: PartitionChange): void {
  const live = new Set(m.files.map((f) => f.path));
  const gone = (change.remove ?? []).filter((p) => !live.has(p));
  if (gone.length > 0) {
    throw new ConflictError(`commit ${commitId}: ${gone.length} file(s) to remove are no longer live`, {
      details: { commitId, paths: gone.slice(0, 10) },
    });
  }
  const remove = new Set(change.remove ?? []);
  const locked = m.pending.find(
    (p) => p.commitId !== commitId && (p.change.remove ?? []).some((x) => remove.has(x)),
  );
  if (locked) {
    throw new ConflictError(`commit ${commitId}: files to remove are reserved by commit ${locked.commitId}`, {
      details: { commitId, by: locked.commitId },
    });
  }
  const twice = change.add.filter((f) => live.has(f.path) && !remove.has(f.path));
  if (twice.length > 0) {
    throw new ConflictError(`commit ${commitId}: ${twice.length} file(s) to add are already live`, {
      details: { commitId, paths: twice.slice(0, 10).map((f) => f.path) },
    });
  }
}

export interface ApplyArgs {
  commitId: string;
  change: PartitionChange;
  now: string;
  /** For a multi-partition commit: the keys of all its partitions (recorded in `linked`). */
  linkedPartitions?: string[];
}

/**
 * The manifest after the change: files added (stamped), removed files moved to `removed`,
 * sources added and forgotten, the commit id remembered, this commit's reservation released.
 * The caller has checked `hasCommit` (idempotency) and `checkChange` (conflicts).
 */
export function applyChange(m: PartitionManifest, a: ApplyArgs): PartitionManifest {
  const remove = new Set(a.change.remove ?? []);
  const added: FileEntry[] = a.change.add.map((f) => ({
    ...f,
    commitId: a.commitId,
    committedAt: f.committedAt ?? a.now,
  }));
  const addedPaths = new Set(added.map((f) => f.path));
  const removedNow: RemovedEntry[] = m.files
    .filter((f) => remove.has(f.path))
    .map((f) => ({ path: f.path, bytes: f.bytes, removedAt: a.now, commitId: a.commitId }));
  const forget = new Set(a.change.forgetSources ?? []);
  const sources = [...new Set([...m.sources, ...(a.change.sources ?? [])])].filter((s) => !forget.has(s));
  return {
    ...m,
    files: [...m.files.filter((f) => !remove.has(f.path)), ...added],
    // A path added again (a restore) must not stay queued for deletion.
    removed: [...m.removed.filter((r) => !addedPaths.has(r.path)), ...removedNow],
    commits: [...m.commits, a.commitId].slice(-MAX_COMMITS),
    sources,
    pending: m.pending.filter((p) => p.commitId !== a.commitId),
    linked: a.linkedPartitions
      ? [...m.linked, { commitId: a.commitId, partitions: a.linkedPartitions }].slice(-MAX_LINKED)
      : m.linked,
    updatedAt: a.now,
  };
}

export function reserveChange(m: PartitionManifest, p: PendingChange, now: string): PartitionManifest {
  return { ...m, pending: [...m.pending, p], updatedAt: now };
}

export function releaseChange(m: PartitionManifest, commitId: string, now: string): PartitionManifest {
  return { ...m, pending: m.pending.filter((p) => p.commitId !== commitId), updatedAt: now };
}

/**
 * Keys a reader must (re)read before its snapshot is consistent: a multi-partition commit that
 * one manifest shows applied touches a partition whose copy shows it neither applied nor
 * reserved (that copy was read before the commit reserved it) or that was not read at all.
 */
export function staleLinks(manifests: ReadonlyMap<string, PartitionManifest>): string[] {
  const stale = new Set<string>();
  for (const m of manifests.values()) {
    for (const link of m.linked) {
      for (const key of link.partitions) {
        const other = manifests.get(key);
        if (!other || (!hasCommit(other, link.commitId) && !pendingOf(other, link.commitId))) stale.add(key);
      }
    }
  }
  return [...stale];
}

/**
 * The snapshot readers see: a multi-partition commit that is applied in any partition is shown
 * in all of them (its reserved changes applied virtually), one that is applied nowhere yet is
 * shown nowhere. So a reader never sees half of a commit.
 */
export function settleSnapshot(manifests: ReadonlyMap<string, PartitionManifest>): PartitionManifest[] {
  const applied = new Set<string>();
  for (const m of manifests.values()) for (const link of m.linked) applied.add(link.commitId);
  return [...manifests.values()].map((m) => {
    let out = m;
    for (const p of m.pending) {
      if (applied.has(p.commitId))
        out = applyChange(out, { commitId: p.commitId, change: p.change, now: m.updatedAt });
    }
    return out;
  });
}

export function matchesWhere(values: PartitionValues, where: Record<string, string> | undefined): boolean {
  if (!where) return true;
  return Object.entries(where).every(([k, v]) => values[k] === v);
}
