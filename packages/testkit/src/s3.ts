import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// s3rver ships no types.
// @ts-expect-error untyped module
import S3rver from 's3rver';

export interface S3ServerHandle {
  endpoint: string;
  bucket: string;
  /** LAKE_URL for a fresh prefix in the bucket. */
  lakeUrl(prefix?: string): string;
  /** Environment for services and clients (S3_ENDPOINT, keys, path style). */
  env: Record<string, string>;
  /** Closes the server (connections refused), keeping its port and data, for outage tests. */
  pause(): Promise<void>;
  /** Serves again on the same port with the same data. */
  resume(): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An in-process S3-compatible server (s3rver) with one bucket, on a random loopback port. */
export async function startS3(bucket = 'lake'): Promise<S3ServerHandle> {
  const directory = mkdtempSync(join(tmpdir(), 'pq-s3-'));
  const options = { address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] };
  let server = new S3rver({ ...options, port: 0 });
  const address = (await server.run()) as AddressInfo;
  let paused = false;
  const endpoint = `http://127.0.0.1:${address.port}`;
  let n = 0;
  const handle: S3ServerHandle = {
    endpoint,
    bucket,
    lakeUrl: (prefix) => `s3://${bucket}/${prefix ?? `t${Date.now().toString(36)}-${n++}`}`,
    env: {
      S3_ENDPOINT: endpoint,
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    async pause() {
      if (paused) return;
      paused = true;
      // An outage, not a drain: open (keep-alive) connections are cut too.
      const closing = server.close();
      server.httpServer?.closeAllConnections?.();
      await closing;
    },
    async resume() {
      if (!paused) return;
      server = new S3rver({ ...options, port: address.port });
      await server.run();
      paused = false;
    },
    async stop() {
      if (!paused) await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}
