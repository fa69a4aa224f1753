import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { assertValidKey, fileUrlToDir, parseS3Url } from '@parquetry/lake';
import { ConfigError, NotFoundError } from '@parquetry/service';
import type { CliContext } from '../../context.js';
import { openLakeStore } from '../resources.js';

/**
 * Where an outside reader (DuckDB, pandas, Spark) finds a lake key: an absolute filesystem path
 * for a `file://` lake (a relative LAKE_URL resolves against `cwd`), an `s3://bucket/prefix/key`
 * URL for an S3 lake.
 */
export function externalPath(lakeUrl: string, key: string, cwd: string = process.cwd()): string {
  const segments = assertValidKey(key);
  if (lakeUrl.startsWith('file://')) return join(fileUrlToDir(lakeUrl, cwd), ...segments);
  if (lakeUrl.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(lakeUrl);
    return `s3://${bucket}/${prefix ? `${prefix}/` : ''}${key}`;
  }
  throw new ConfigError(`LAKE_URL must be file://<dir> or s3://<bucket>/<prefix>, got ${lakeUrl}`);
}

export interface ParquetInput {
  /** A local path DuckDB can read. */
  path: string;
  /** The lake key, when the argument named one. */
  key?: string;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/**
 * A command's `<file>` argument: a local Parquet file, or else a key in the lake (S3 objects are
 * downloaded to the store's cache first). A local file wins when both exist.
 */
export async function resolveParquetInput(ctx: CliContext, file: string): Promise<ParquetInput> {
  const local = resolve(file);
  if (await isFile(local)) return { path: local };
  let validKey = true;
  try {
    assertValidKey(file);
  } catch {
    validKey = false;
  }
  if (validKey) {
    const store = await openLakeStore(ctx);
    if (await store.head(file)) return { path: await store.localPath(file), key: file };
  }
  throw new NotFoundError(`${file} is neither a local file nor a key in the lake (${ctx.config.LAKE_URL})`);
}
