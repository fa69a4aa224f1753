import { createHash } from 'node:crypto';
import { InvalidInputError } from '@parquetry/service';

/**
 * Keys of the `lake_catalog` bucket. KV keys allow only `[-/_=.a-zA-Z0-9]` and `.` separates
 * tokens, so partition paths (percent-encoded, any length) and caller-chosen commit ids are
 * hashed; the values carry the readable names.
 *   m.<dataset>.<hash(partition path)>   one partition manifest
 *   t.<writerId>.<hash(commit id)>       intent of a multi-partition commit in flight
 */
export const DEFAULT_CATALOG_BUCKET = 'lake_catalog';

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

function hash32(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

function checkName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new InvalidInputError(`bad ${kind} for the catalog: ${JSON.stringify(name)}`);
  return name;
}

export function manifestPrefix(dataset: string): string {
  return `m.${checkName('dataset', dataset)}.`;
}

export function manifestKey(dataset: string, partitionPath: string): string {
  return manifestPrefix(dataset) + hash32(partitionPath);
}

export function intentPrefix(writerId: string): string {
  return `t.${checkName('writer id', writerId)}.`;
}

export function intentKey(writerId: string, commitId: string): string {
  return intentPrefix(writerId) + hash32(commitId);
}

export function checkWriterId(writerId: string): string {
  return checkName('writer id', writerId);
}
