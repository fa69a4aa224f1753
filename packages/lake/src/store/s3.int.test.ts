import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError, TransientError } from '@parquetry/service';
import { type S3ServerHandle, startS3, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectStoreConformance } from './conformance.js';
import { openObjectStore } from './open.js';
import { parseS3Url, S3ObjectStore, type S3ObjectStoreOptions } from './s3.js';

let s3: S3ServerHandle;
const cache = tempDir('pq-s3-cache-');
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
  cache.remove();
});

function storeFor(url: string, extra: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore {
  return new S3ObjectStore({
    url,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    cacheDir: cache.path,
    ...extra,
  });
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 refuses
 * unless started with --openssl-legacy-provider: any truncated listing then fails with HTTP 500.
 * Small pages (so every list test crosses page boundaries) only where s3rver can paginate.
 */
function s3rverCanPaginate(): boolean {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}
const listPageSize = s3rverCanPaginate() ? 7 : undefined;

objectStoreConformance('s3 (s3rver)', async () => ({ store: storeFor(s3.lakeUrl(), { listPageSize }) }), {
  presign: true,
  atomicVisibility: false,
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('S3ObjectStore specifics', () => {
  it('parses s3 URLs and refuses bad ones', () => {
    expect(parseS3Url('s3://lake')).toEqual({ bucket: 'lake', prefix: '' });
    expect(parseS3Url('s3://my-lake/a/b/')).toEqual({ bucket: 'my-lake', prefix: 'a/b' });
    expect(() => parseS3Url('s3://UPPER/x')).toThrow(/s3:\/\//);
    expect(() => parseS3Url('s3://lake/../x')).toThrow(/bad prefix/);
  });

  it('keeps objects under its prefix and lists only those', async () => {
    const a = storeFor(s3.lakeUrl('shared/a'));
    const b = storeFor(s3.lakeUrl('shared/ab'));
    await a.put('k', 'a');
    await b.put('k', 'b');
    const keys: string[] = [];
    for await (const o of a.list('')) keys.push(o.key);
    expect(keys).toEqual(['k']);
    expect((await b.getBytes('k')).toString()).toBe('b');
    await a.close();
    await b.close();
  });

  it('putFile above the multipart threshold uploads in parts and reads back intact', async () => {
    using dir = tempDir('pq-s3-mp-');
    const store = storeFor(s3.lakeUrl(), { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    const body = randomBytes(12 * 1024 * 1024 + 123);
    const src = join(dir.path, 'big.parquet');
    writeFileSync(src, body);
    await store.putFile('big/x.parquet', src);
    expect((await store.head('big/x.parquet'))?.size).toBe(body.length);
    expect(sha(await store.getBytes('big/x.parquet'))).toBe(sha(body));
    await store.close();
  });

  it('localPath caches one download per object version', async () => {
    const store = storeFor(s3.lakeUrl());
    await store.put('c/f.parquet', 'version one');
    const p1 = await store.localPath('c/f.parquet');
    expect(p1.startsWith(cache.path)).toBe(true);
    expect(p1.endsWith('.parquet')).toBe(true);
    const mtime = statSync(p1).mtimeMs;
    expect(await store.localPath('c/f.parquet')).toBe(p1);
    expect(statSync(p1).mtimeMs).toBe(mtime);
    await store.put('c/f.parquet', 'version two, longer');
    const p2 = await store.localPath('c/f.parquet');
    expect(p2).not.toBe(p1);
    expect(readFileSync(p2, 'utf8')).toBe('version two, longer');
    await store.close();
  });

  it('maps an unreachable endpoint to TransientError after retrying', async () => {
    const store = new S3ObjectStore({
      url: 's3://lake/x',
      endpoint: 'http://127.0.0.1:1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
    });
    const started = Date.now();
    const err = await store.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(store.head('k')).rejects.toBeInstanceOf(TransientError);
    await store.close();
  });

  it('maps a missing bucket to TransientError (an operator problem, not the data) and a missing key to NotFoundError', async () => {
    const store = storeFor('s3://no-such-bucket/x', { retry: { attempts: 1 } });
    await expect(store.put('k', 'v')).rejects.toBeInstanceOf(TransientError);
    await store.close();
    const ok = storeFor(s3.lakeUrl());
    await expect(ok.getBytes('missing')).rejects.toBeInstanceOf(NotFoundError);
    await ok.close();
  });

  it('openObjectStore builds an S3 store from the environment', async () => {
    const store = openObjectStore(s3.lakeUrl(), s3.env, { cacheDir: cache.path });
    expect(store.kind).toBe('s3');
    await store.put('env/k', 'from env');
    expect((await store.getBytes('env/k')).toString()).toBe('from env');
    expect(() => openObjectStore('s3://lake/x', { AWS_ACCESS_KEY_ID: 'only-one' })).toThrow(/together/);
    await store.close();
  });
});

// The full suite, concurrent-reader test included, against a real S3-compatible server when one
// is configured (e.g. MinIO): PARQUETRY_S3_CONFORMANCE_URL=s3://bucket/prefix plus the S3_* env.
const external = process.env.PARQUETRY_S3_CONFORMANCE_URL;
if (external) {
  let n = 0;
  objectStoreConformance(
    's3 (external)',
    async () => ({
      store: openObjectStore(`${external.replace(/\/$/, '')}/t${Date.now()}-${n++}`, process.env),
    }),
    { presign: true, atomicVisibility: true },
  );
}
