import { type Catalog, type FileEntry, type PartitionValues, partitionPath } from '@parquetry/lake';
import type { OpResult, PartitionReport } from '../domain/report.js';
import { totalsOf } from '../domain/report.js';

export interface FoundCommit {
  commitId: string;
  partitions: {
    values: PartitionValues;
    path: string;
    live: FileEntry[];
    added: FileEntry[];
    removed: { path: string; bytes: number }[];
  }[];
}

/**
 * Looks for a commit of this operation (any attempt: ids share `prefix`) in the dataset's
 * snapshot. An op that crashed after its commit, or whose job was delivered again, finds it here
 * and reports it instead of applying the change twice.
 */
export async function findCommitted(
  catalog: Catalog,
  dataset: string,
  prefix: string,
): Promise<FoundCommit | undefined> {
  const manifests = await catalog.partitions(dataset);
  let commitId: string | undefined;
  const partitions: FoundCommit['partitions'] = [];
  for (const m of manifests) {
    const id = m.commits.find((c) => c.startsWith(prefix));
    if (id === undefined) continue;
    commitId ??= id;
    const cols = Object.keys(m.partition);
    partitions.push({
      values: m.partition,
      path: partitionPath(cols, m.partition),
      live: m.files,
      added: m.files.filter((f) => f.commitId === id),
      removed: m.removed.filter((r) => r.commitId === id).map((r) => ({ path: r.path, bytes: r.bytes })),
    });
  }
  return commitId === undefined ? undefined : { commitId, partitions };
}

/** The result of an op found already committed: what the catalog still shows of it. */
export function alreadyCommittedResult(
  op: string,
  opId: string,
  dataset: string,
  found: FoundCommit,
  started: number,
): OpResult {
  const partitions: PartitionReport[] = found.partitions.map((p) => {
    const live = {
      files: p.live.length,
      bytes: p.live.reduce((n, f) => n + f.bytes, 0),
      rows: p.live.reduce((n, f) => n + f.rows, 0),
    };
    const added = {
      bytes: p.added.reduce((n, f) => n + f.bytes, 0),
      rows: p.added.reduce((n, f) => n + f.rows, 0),
    };
    const removedBytes = p.removed.reduce((n, r) => n + r.bytes, 0);
    return {
      partition: p.path,
      values: p.values,
      // "Before" is rebuilt from what the commit removed. The catalog does not keep the row
      // counts of replaced files, so rows are shown as unchanged (see details.note).
      files_before: live.files - p.added.length + p.removed.length,
      bytes_before: live.bytes - added.bytes + removedBytes,
      rows_before: live.rows,
      files_removed: p.removed.length,
      bytes_removed: removedBytes,
      rows_removed: added.rows,
      files_added: p.added.length,
      bytes_added: added.bytes,
      rows_added: added.rows,
      files_after: live.files,
      bytes_after: live.bytes,
      rows_after: live.rows,
      removed: p.removed.map((r) => r.path),
      added: p.added.map((f) => f.path),
    };
  });
  return {
    op,
    op_id: opId,
    dataset,
    status: 'already_committed',
    dry_run: false,
    commit_id: found.commitId,
    partitions,
    totals: totalsOf(partitions),
    attempts: 0,
    duration_ms: Date.now() - started,
    details: {
      note: 'found already committed (a retry or a redelivered job); row counts before the commit are not kept',
    },
  };
}
