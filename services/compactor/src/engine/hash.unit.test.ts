import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashFile } from './hash.js';

describe('hashFile', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives the sha256 of each of many files hashed at once (worker threads), and rejects a missing file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pq-hash-'));
    // Sizes around the 1 MiB read buffer, and an empty file.
    const sizes = [0, 1, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 17, 5000, 77];
    const files = await Promise.all(
      sizes.map(async (size, i) => {
        const data = randomBytes(size);
        const path = join(dir!, `f${i}`);
        await writeFile(path, data);
        return { path, want: createHash('sha256').update(data).digest('hex') };
      }),
    );
    const got = await Promise.all(files.map((f) => hashFile(f.path)));
    expect(got).toEqual(files.map((f) => f.want));
    await expect(hashFile(join(dir, 'missing'))).rejects.toThrow(/missing/);
    // The pool still works after a failure.
    expect(await hashFile(files[3]!.path)).toBe(files[3]!.want);
  });
});
