import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  ConfigError,
  InvalidInputError,
  NotFoundError,
  ParquetryError,
  TransientError,
} from '@parquetry/service';
import { assertValidKey, assertValidPrefix } from './keys.js';
import { DEFAULT_RETRY, type RetryOptions, withRetry } from './retry.js';
import type { ObjectInfo, ObjectStore, PutFileOptions } from './types.js';

/** Above this size putFile switches to a multipart upload. */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;
const MULTIPART_PART_SIZE = 16 * 1024 * 1024; // two parts in flight: 32 MB of buffers at most

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing `/`; '' for the bucket root. */
  prefix: string;
}

/** `s3://bucket/some/prefix/` → `{bucket, prefix: 'some/prefix'}`. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new ConfigError(`not an s3://<bucket>/<prefix> URL: ${url}`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix !== '') {
    try {
      assertValidKey(prefix);
    } catch (err) {
      throw new ConfigError(`bad prefix in ${url}`, { cause: err });
    }
  }
  return { bucket: m[1]!, prefix };
}

export interface S3ObjectStoreOptions {
  /** `s3://bucket/prefix`. */
  url: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Where localPath() keeps downloaded objects (default `<os tmp>/parquetry-s3-cache`). */
  cacheDir?: string;
  retry?: Partial<RetryOptions>;
  /** Tuning, mostly for tests: multipart threshold and part size (S3 needs parts ≥ 5 MiB), list page size. */
  multipartThreshold?: number;
  partSize?: number;
  listPageSize?: number;
}

interface AwsErrorLike {
  name?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as AwsErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** The key is absent. A missing bucket (NoSuchBucket, also 404) is a configuration problem instead. */
function isNotFound(err: unknown): boolean {
  const e = err as AwsErrorLike | undefined;
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || statusOf(err) === 404;
}

/** Network failures (no HTTP status), throttling and server errors are worth another try. */
function isRetryableAws(err: unknown): boolean {
  if (err instanceof ParquetryError) return err.retryable;
  const status = statusOf(err);
  if (status === undefined) return true;
  if (status >= 500 || status === 429 || status === 408) return true;
  const name = (err as AwsErrorLike).name;
  return name === 'SlowDown' || name === 'RequestTimeout' || name === 'ThrottlingException';
}

/**
 * The lake in an S3-compatible bucket (AWS, MinIO, s3rver). Every PUT is atomic on S3, so no temp
 * objects are needed. The SDK's own retries are off: this class retries with jittered backoff
 * itself because streamed bodies must be re-opened for each attempt.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const;
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly cacheDir: string;
  private readonly retry: RetryOptions;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly listPageSize: number | undefined;

  constructor(opts: S3ObjectStoreOptions) {
    const loc = parseS3Url(opts.url);
    this.url = opts.url;
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
    this.cacheDir = opts.cacheDir ?? join(tmpdir(), 'parquetry-s3-cache');
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.multipartThreshold = opts.multipartThreshold ?? MULTIPART_THRESHOLD;
    this.partSize = opts.partSize ?? MULTIPART_PART_SIZE;
    this.listPageSize = opts.listPageSize;
    const config: S3ClientConfig = {
      region: opts.region ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle ?? false,
      maxAttempts: 1,
      // With the default (WHEN_SUPPORTED) the SDK sends aws-chunked bodies that s3rver stores
      // verbatim (corrupt) and refuses streams without a length (MEASURED.md).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.endpoint) config.endpoint = opts.endpoint;
    if (opts.credentials) config.credentials = opts.credentials;
    this.client = new S3Client(config);
  }

  private fullKey(key: string): string {
    assertValidKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  /** Retries transient failures, then maps what is left to the house errors. */
  private async call<T>(op: string, key: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, isRetryableAws, this.retry);
    } catch (err) {
      throw this.mapError(op, key, err);
    }
  }

  private mapError(op: string, key: string, err: unknown): Error {
    if (err instanceof ParquetryError) return err;
    if (isNotFound(err)) return new NotFoundError(`object not found: ${key}`, { cause: err });
    const status = statusOf(err);
    const name = (err as AwsErrorLike | undefined)?.name ?? 'Error';
    const where = `s3 ${op} s3://${this.bucket}/${this.prefix ? `${this.prefix}/` : ''}${key}`;
    if (status === 400 && (name === 'KeyTooLongError' || name === 'InvalidArgument')) {
      return new InvalidInputError(`${where} rejected: ${name}`, { cause: err });
    }
    // Everything else (5xx after retries, network, auth, missing bucket) is the store's problem,
    // not the message's: retryable, so consumers wait instead of dead-lettering good data.
    return new TransientError(`${where} failed: ${name}${status ? ` (HTTP ${status})` : ''}`, {
      cause: err,
      code: 'store_unavailable',
    });
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const Key = this.fullKey(key);
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    await this.call('put', key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: bytes, ContentLength: bytes.byteLength }),
      ),
    );
  }

  async putFile(key: string, localPath: string, opts: PutFileOptions = {}): Promise<void> {
    const Key = this.fullKey(key);
    let size: number;
    try {
      size = (await stat(localPath)).size;
    } catch (err) {
      throw new NotFoundError(`local file to upload not found: ${localPath}`, { cause: err });
    }
    await this.call('putFile', key, async () => {
      const Body = createReadStream(localPath); // a fresh stream per attempt
      try {
        if (size > this.multipartThreshold) {
          const upload = new Upload({
            client: this.client,
            params: { Bucket: this.bucket, Key, Body },
            partSize: this.partSize,
            queueSize: 2,
            leavePartsOnError: false,
          });
          await upload.done();
        } else {
          await this.client.send(
            new PutObjectCommand({ Bucket: this.bucket, Key, Body, ContentLength: size }),
          );
        }
      } finally {
        Body.destroy();
      }
    });
    if (opts.move) await unlink(localPath).catch(() => {});
  }

  async get(key: string): Promise<Readable> {
    const Key = this.fullKey(key);
    const out = await this.call('get', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    );
    return out.Body as Readable;
  }

  async getBytes(key: string): Promise<Buffer> {
    const Key = this.fullKey(key);
    // The body is read inside the retry so a connection cut mid-body is retried too.
    return this.call('get', key, async () => {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      const bytes = await out.Body!.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.headRaw(key);
    return info && { key, size: info.size, lastModified: info.lastModified };
  }

  private async headRaw(key: string): Promise<(ObjectInfo & { etag: string }) | undefined> {
    const Key = this.fullKey(key);
    try {
      const out = await withRetry(
        () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key })),
        (err) => !isNotFound(err) && isRetryableAws(err),
        this.retry,
      );
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        etag: out.ETag ?? '',
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.mapError('head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + prefix,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
        ),
      );
      for (const obj of page.Contents ?? []) {
        if (!obj.Key?.startsWith(base)) continue;
        yield {
          key: obj.Key.slice(base.length),
          size: obj.Size ?? 0,
          lastModified: obj.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    try {
      await this.call('delete', key, () =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })),
      );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // S3 answers 204 for a missing key; some clones 404
    }
  }

  /**
   * Downloads into the cache once per object version: the cache file is named by a hash of
   * bucket, key, ETag and size, written to a temp name and renamed, so concurrent callers and
   * crashes never leave a partial file under the final name. The cache is not evicted here.
   */
  async localPath(key: string): Promise<string> {
    const Key = this.fullKey(key);
    const info = await this.headRaw(key);
    if (!info) throw new NotFoundError(`object not found: ${key}`);
    const id = createHash('sha256')
      .update(`${this.bucket}\0${Key}\0${info.etag}\0${info.size}`)
      .digest('hex')
      .slice(0, 40);
    const ext = extname(key).slice(0, 16);
    const target = join(this.cacheDir, `${id}${ext}`);
    const cached = await stat(target).catch(() => undefined);
    if (cached?.size === info.size) return target;
    await mkdir(this.cacheDir, { recursive: true });
    const tmp = join(this.cacheDir, `.${id}-${randomBytes(6).toString('hex')}.tmp`);
    try {
      await this.call('localPath', key, async () => {
        // IfMatch: fail (and retry from HEAD next time) if the object changed since the HEAD.
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key, IfMatch: info.etag || undefined }),
        );
        await pipeline(out.Body as Readable, createWriteStream(tmp));
      });
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return target;
  }

  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    const Key = this.fullKey(key);
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key }), {
      expiresIn: expiresInSeconds,
    });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
