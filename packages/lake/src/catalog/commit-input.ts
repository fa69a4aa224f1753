import { InvalidInputError } from '@parquetry/service';
import { getDataset } from '../datasets.js';
import { partitionPath } from '../partition.js';
import { manifestKey } from './keys.js';
import type { Commit, FileEntry, PartitionChange } from './types.js';

/** One partition of a validated commit. */
export interface CommitTarget {
  /** Catalog key `m.<dataset>.<hash>`. */
  key: string;
  /** Partition path `col=value/...`, the name used in results and logs. */
  path: string;
  change: PartitionChange;
}

// Printable ASCII without spaces: ids end up in logs, keys (hashed) and JSON.
const COMMIT_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Validates a commit against the dataset registry and stamps its files. Every file must sit
 * directly in its partition's directory and end in `.parquet`, so the orphan sweep (which walks
 * dataset directories) and the catalog always agree on where a partition's files are.
 */
export function prepareCommit(input: Commit, now: string): { commit: Commit; targets: CommitTarget[] } {
  const def = getDataset(input.dataset);
  if (typeof input.commitId !== 'string' || !COMMIT_ID.test(input.commitId)) {
    throw new InvalidInputError(
      `bad commit id ${JSON.stringify(input.commitId)}: 1-200 printable characters, no spaces`,
    );
  }
  const seen = new Set<string>();
  const targets = input.changes.map((c): CommitTarget => {
    const extra = Object.keys(c.partition).filter((k) => !def.partitionColumns.includes(k));
    if (extra.length > 0) {
      throw new InvalidInputError(
        `${def.name} is partitioned by ${def.partitionColumns.join(', ')}, not ${extra.join(', ')}`,
      );
    }
    const path = partitionPath(def.partitionColumns, c.partition);
    if (seen.has(path))
      throw new InvalidInputError(`commit ${input.commitId} changes partition ${path} twice`);
    seen.add(path);
    const dir = `${def.root}/${path}/`;
    const add = c.add.map((f): FileEntry => {
      const name = f.path.startsWith(dir) ? f.path.slice(dir.length) : '';
      if (!name || name.includes('/') || /^[_.]/.test(name) || !name.endsWith('.parquet')) {
        throw new InvalidInputError(
          `file ${JSON.stringify(f.path)} is not a Parquet file directly under ${dir}`,
        );
      }
      if (!Number.isSafeInteger(f.rows) || f.rows < 0 || !Number.isSafeInteger(f.bytes) || f.bytes < 0) {
        throw new InvalidInputError(`file ${f.path}: rows and bytes must be non-negative integers`);
      }
      return { ...f, commitId: input.commitId, committedAt: now };
    });
    const partition = Object.fromEntries(def.partitionColumns.map((col) => [col, c.partition[col]!]));
    const change: PartitionChange = { partition, add };
    if (c.remove?.length) change.remove = [...new Set(c.remove)];
    if (c.sources?.length) change.sources = [...new Set(c.sources)];
    if (c.forgetSources?.length) change.forgetSources = [...new Set(c.forgetSources)];
    return { key: manifestKey(def.name, path), path, change };
  });
  return {
    commit: { dataset: def.name, commitId: input.commitId, changes: targets.map((t) => t.change) },
    targets,
  };
}
