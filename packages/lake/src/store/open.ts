import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@parquetry/service';
import { FsObjectStore } from './fs.js';
import { S3ObjectStore } from './s3.js';
import type { ObjectStore } from './types.js';

/** The variables DESIGN.md lists for S3; raw strings (process.env) or values parsed by `commonEnv`. */
export interface ObjectStoreEnv {
  S3_ENDPOINT?: string | undefined;
  S3_REGION?: string | undefined;
  S3_FORCE_PATH_STYLE?: string | boolean | undefined;
  AWS_ACCESS_KEY_ID?: string | undefined;
  AWS_SECRET_ACCESS_KEY?: string | undefined;
}

export interface OpenObjectStoreOptions {
  /** Base for relative `file://` URLs (default: process.cwd()). */
  cwd?: string;
  /** S3 only: where localPath() caches downloads. */
  cacheDir?: string;
}

function truthy(v: string | boolean | undefined): boolean {
  return v === true || (typeof v === 'string' && ['true', '1', 'yes'].includes(v.toLowerCase()));
}

/**
 * The filesystem directory a `file://` lake URL names: `file://./data/lake` and `file://data/lake`
 * are relative to `cwd`, `file:///abs/dir` is absolute.
 */
export function fileUrlToDir(url: string, cwd: string = process.cwd()): string {
  const rest = url.slice('file://'.length);
  if (rest === '') throw new ConfigError(`LAKE_URL ${url} names no directory`);
  if (rest.startsWith('/')) return fileURLToPath(url);
  const path = decodeURIComponent(rest);
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/** Opens the lake's object store from LAKE_URL (`file://<dir>` or `s3://<bucket>/<prefix>`). */
export function openObjectStore(
  lakeUrl: string,
  env: ObjectStoreEnv = process.env,
  opts: OpenObjectStoreOptions = {},
): ObjectStore {
  if (lakeUrl.startsWith('file://')) return new FsObjectStore(fileUrlToDir(lakeUrl, opts.cwd), lakeUrl);
  if (lakeUrl.startsWith('s3://')) {
    const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      throw new ConfigError('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
    }
    return new S3ObjectStore({
      url: lakeUrl,
      endpoint: env.S3_ENDPOINT || undefined,
      region: env.S3_REGION || undefined,
      forcePathStyle: truthy(env.S3_FORCE_PATH_STYLE),
      // Without keys the SDK's default chain applies (instance role, profile, …).
      credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
      cacheDir: opts.cacheDir,
    });
  }
  throw new ConfigError(`LAKE_URL must be file://<dir> or s3://<bucket>/<prefix>, got ${lakeUrl}`);
}
