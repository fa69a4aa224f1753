import { getDataset } from '@parquetry/lake';
import type { CliContext } from '../../context.js';
import { parseWhere } from '../options.js';
import { openLakeCatalog } from '../resources.js';
import { externalPath } from './paths.js';

export interface LakeFilesResult {
  /** Absolute paths (file:// lake) or s3:// URLs (S3 lake), sorted. */
  files: string[];
}

/**
 * `lake files <dataset> [--where k=v …]`: the live files of the catalog's current snapshot, as
 * paths an outside reader opens directly — `read_parquet(<files>)` reads exactly that snapshot.
 */
export async function lakeFiles(
  ctx: CliContext,
  dataset: string,
  where?: readonly string[],
): Promise<LakeFilesResult> {
  const def = getDataset(dataset);
  const catalog = await openLakeCatalog(ctx);
  const live = await catalog.liveFiles(def.name, parseWhere(where));
  const cwd = process.cwd();
  return { files: live.map((f) => externalPath(ctx.config.LAKE_URL, f.path, cwd)) };
}

export function printLakeFiles(r: LakeFilesResult): void {
  for (const f of r.files) process.stdout.write(`${f}\n`);
}
