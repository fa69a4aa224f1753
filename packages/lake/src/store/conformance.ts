/**
 * The one conformance suite every ObjectStore backend passes (test-only; not exported from the
 * package entry). Call it at the top level of a `*.int.test.ts` file with a factory that returns a
 * fresh, empty store per test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidInputError, NotFoundError } from '@parquetry/service';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectInfo, ObjectStore } from './types.js';

export interface ConformanceFixture {
  store: ObjectStore;
  cleanup?(): Promise<void>;
}

export interface ConformanceOptions {
  /** The backend offers presignGet (S3). */
  presign: boolean;
  /**
   * The server never exposes a partially written object. True for the filesystem backend, AWS S3
   * and MinIO; false for s3rver, which writes objects in place (a GET during a PUT returns the
   * bytes written so far), so the concurrent-reader test would only measure s3rver.
   */
  atomicVisibility: boolean;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Hostile keys: traversal, absolute, empty segments, separators and control characters. */
export const BAD_KEYS = [
  '',
  '/etc/passwd',
  '..',
  '../x',
  'a/../../x',
  'a/..',
  './a',
  'a/./b',
  'a//b',
  'a/',
  'a\\b',
  '..\\..\\x',
  'a\u0000b',
  'a\nb',
  '_tmp/x',
  'x'.repeat(1025),
];

/**
 * Polls the key while `write` runs; every observation must be "absent" or exactly one of the
 * complete `allowed` bodies. Returns how many complete reads were seen (at least the last one).
 */
async function pollDuringWrite(
  store: ObjectStore,
  key: string,
  allowed: Buffer[],
  write: () => Promise<void>,
): Promise<{ reads: number; absent: number }> {
  const digests = new Set(allowed.map(sha));
  let done = false;
  let reads = 0;
  let absent = 0;
  const writer = write().finally(() => {
    done = true;
  });
  while (!done) {
    try {
      const got = await store.getBytes(key);
      reads++;
      if (!digests.has(sha(got))) {
        throw new Error(`partial or foreign object seen: ${got.length} bytes`);
      }
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      absent++;
    }
  }
  await writer;
  const final = await store.getBytes(key);
  expect(digests.has(sha(final))).toBe(true);
  return { reads, absent };
}

export function objectStoreConformance(
  name: string,
  factory: () => Promise<ConformanceFixture>,
  opts: ConformanceOptions,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fx: ConformanceFixture;
    let store: ObjectStore;
    beforeEach(async () => {
      fx = await factory();
      store = fx.store;
    });
    afterEach(async () => {
      await store.close();
      await fx.cleanup?.();
    });

    it('put then getBytes / get stream / head return the same bytes', async () => {
      const body = randomBytes(300_000);
      await store.put('a/b/c.bin', body);
      expect(sha(await store.getBytes('a/b/c.bin'))).toBe(sha(body));
      expect(sha(await collect(await store.get('a/b/c.bin')))).toBe(sha(body));
      const info = await store.head('a/b/c.bin');
      expect(info?.key).toBe('a/b/c.bin');
      expect(info?.size).toBe(body.length);
      expect(Math.abs(info!.lastModified.getTime() - Date.now())).toBeLessThan(60_000);
    });

    it('stores strings as UTF-8 and overwrites in place', async () => {
      await store.put('meta/_metadata_20250903.json', '{"v":1}');
      await store.put('meta/_metadata_20250903.json', '{"nombre":"Cámara ñandú €"}');
      expect((await store.getBytes('meta/_metadata_20250903.json')).toString('utf8')).toBe(
        '{"nombre":"Cámara ñandú €"}',
      );
      expect((await store.head('meta/_metadata_20250903.json'))?.size).toBe(
        Buffer.byteLength('{"nombre":"Cámara ñandú €"}'),
      );
      expect(await listAll(store, 'meta/')).toHaveLength(1);
    });

    it('keeps unusual but legal keys exactly (hive encoding, unicode, spaces, =, %)', async () => {
      const keys = [
        'products/retailer=fal%C3%A1bella/date=2025-09-03/smart phones_20250903_143022_ab12cd34.parquet',
        'ñandú/ü é.json',
        'x/.hidden',
        'x/a..b',
      ];
      for (const k of keys) await store.put(k, k);
      for (const k of keys) expect((await store.getBytes(k)).toString()).toBe(k);
      expect((await listAll(store, '')).map((o) => o.key)).toEqual([...keys].sort());
    });

    it('get, getBytes and localPath of a missing key throw NotFoundError; head answers undefined', async () => {
      await expect(store.get('nope/x')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.getBytes('nope/x')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.localPath('nope/x')).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.head('nope/x')).toBeUndefined();
      // A "directory" is not an object either.
      await store.put('dir/inner/file', 'x');
      expect(await store.head('dir/inner')).toBeUndefined();
      await expect(store.getBytes('dir/inner')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.get('dir/inner')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.localPath('dir/inner')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('lists by prefix: nested, many objects, partial segments, trailing slash, nothing', async () => {
      const keys = [
        'a/b/3',
        'a/bc/1',
        'a/bcd/2',
        'a/bcd/deeper/still/4',
        'ab/5',
        'b',
        ...Array.from({ length: 40 }, (_, i) => `many/p=${i % 3}/f${String(i).padStart(3, '0')}`),
      ];
      await Promise.all(keys.map((k) => store.put(k, k)));
      const keysOf = async (p: string) => (await listAll(store, p)).map((o) => o.key);
      expect(await keysOf('')).toEqual([...keys].sort());
      expect(await keysOf('a/b')).toEqual(['a/b/3', 'a/bc/1', 'a/bcd/2', 'a/bcd/deeper/still/4']);
      expect(await keysOf('a/b/')).toEqual(['a/b/3']);
      expect(await keysOf('a/bcd/deeper/')).toEqual(['a/bcd/deeper/still/4']);
      expect(await keysOf('a')).toEqual(['a/b/3', 'a/bc/1', 'a/bcd/2', 'a/bcd/deeper/still/4', 'ab/5']);
      expect(await keysOf('many/')).toHaveLength(40);
      expect(await keysOf('many/p=1/')).toHaveLength(13);
      expect(await keysOf('b')).toEqual(['b']);
      expect(await keysOf('zzz/')).toEqual([]);
      expect(await keysOf('a/b/3/')).toEqual([]);
      const sizes = await listAll(store, 'a/bc/');
      expect(sizes).toEqual([{ key: 'a/bc/1', size: 6, lastModified: expect.any(Date) }]);
    });

    it('delete removes the object and is idempotent', async () => {
      await store.put('d/x/1', 'one');
      await store.put('d/x/2', 'two');
      await store.delete('d/x/1');
      await store.delete('d/x/1');
      await store.delete('never/existed');
      expect(await store.head('d/x/1')).toBeUndefined();
      await expect(store.getBytes('d/x/1')).rejects.toBeInstanceOf(NotFoundError);
      expect((await listAll(store, 'd/')).map((o) => o.key)).toEqual(['d/x/2']);
      await store.delete('d/x/2');
      expect(await listAll(store, 'd/')).toEqual([]);
      // The emptied "directory" takes a new object again.
      await store.put('d/x/3', 'three');
      expect((await store.getBytes('d/x/3')).toString()).toBe('three');
    });

    it('rejects keys that could escape the root, on every operation', async () => {
      await store.put('inside/ok', 'ok');
      const local = tempDir('pq-conf-');
      try {
        const file = join(local.path, 'f');
        writeFileSync(file, 'x');
        for (const key of BAD_KEYS) {
          const label = JSON.stringify(key.slice(0, 20));
          await expect(store.put(key, 'x'), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.putFile(key, file), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.get(key), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.getBytes(key), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.head(key), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.delete(key), label).rejects.toBeInstanceOf(InvalidInputError);
          await expect(store.localPath(key), label).rejects.toBeInstanceOf(InvalidInputError);
        }
        for (const prefix of ['../', '/abs', 'a/../', 'a//', '..\\', '_tmp/']) {
          await expect(listAll(store, prefix), prefix).rejects.toBeInstanceOf(InvalidInputError);
        }
        expect(existsSync(file)).toBe(true);
        expect((await listAll(store, '')).map((o) => o.key)).toEqual(['inside/ok']);
      } finally {
        local.remove();
      }
    });

    it('putFile uploads a local file; with {move: true} the local file is gone afterwards', async () => {
      const local = tempDir('pq-conf-');
      try {
        const body = randomBytes(1_500_000);
        const src = join(local.path, 'part.parquet');
        writeFileSync(src, body);
        await store.putFile('up/copy.parquet', src);
        expect(existsSync(src)).toBe(true);
        expect(sha(await store.getBytes('up/copy.parquet'))).toBe(sha(body));
        await store.putFile('up/moved.parquet', src, { move: true });
        expect(existsSync(src)).toBe(false);
        expect(sha(await store.getBytes('up/moved.parquet'))).toBe(sha(body));
        await expect(store.putFile('up/x', join(local.path, 'missing'))).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect(await store.head('up/x')).toBeUndefined();
      } finally {
        local.remove();
      }
    });

    it('localPath returns a readable local file with the same bytes', async () => {
      const body = randomBytes(200_000);
      await store.put('lp/file.parquet', body);
      const path = await store.localPath('lp/file.parquet');
      expect(sha(readFileSync(path))).toBe(sha(body));
      // After an overwrite, localPath serves the new bytes.
      const body2 = randomBytes(1000);
      await store.put('lp/file.parquet', body2);
      expect(sha(readFileSync(await store.localPath('lp/file.parquet')))).toBe(sha(body2));
    });

    it.runIf(opts.presign)('presignGet returns a URL that plain fetch can download', async () => {
      const body = randomBytes(50_000);
      await store.put('signed/x y.bin', body);
      const url = await store.presignGet!('signed/x y.bin', 60);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(body));
    });

    it.runIf(!opts.presign)('has no presignGet (the API signs its own links)', () => {
      expect(store.presignGet).toBeUndefined();
    });

    it.runIf(opts.atomicVisibility)(
      'a reader polling during a large put/putFile sees nothing or a whole object',
      async () => {
        const size = 24 * 1024 * 1024;
        const v1 = Buffer.alloc(size, 0x41);
        const v2 = Buffer.alloc(size, 0x42);
        // First write: absent or whole.
        const first = await pollDuringWrite(store, 'atomic/big', [v1], () => store.put('atomic/big', v1));
        // Overwrite: the old or the new object, never a mix or a prefix.
        const second = await pollDuringWrite(store, 'atomic/big', [v1, v2], () =>
          store.put('atomic/big', v2),
        );
        expect(first.reads + first.absent + second.reads).toBeGreaterThan(1);
        const local = tempDir('pq-conf-');
        try {
          const src = join(local.path, 'big');
          writeFileSync(src, v1);
          await pollDuringWrite(store, 'atomic/big', [v1, v2], () => store.putFile('atomic/big', src));
          await pollDuringWrite(store, 'atomic/file', [v1], () =>
            store.putFile('atomic/file', src, { move: true }),
          );
        } finally {
          local.remove();
        }
      },
    );
  });
}
