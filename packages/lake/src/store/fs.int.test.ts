import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { objectStoreConformance } from './conformance.js';
import { FsObjectStore } from './fs.js';
import { fileUrlToDir, openObjectStore } from './open.js';

objectStoreConformance(
  'fs',
  async () => {
    const dir = tempDir('pq-fs-store-');
    return { store: new FsObjectStore(join(dir.path, 'lake')), cleanup: async () => dir.remove() };
  },
  { presign: false, atomicVisibility: true },
);

describe('FsObjectStore specifics', () => {
  it('never writes outside its root and leaves no temp files behind', async () => {
    using dir = tempDir('pq-fs-store-');
    const root = join(dir.path, 'lake');
    const store = new FsObjectStore(root);
    await store.put('a/b.txt', 'x');
    await expect(store.put('../escape.txt', 'x')).rejects.toThrow();
    await expect(store.put('a/../../escape.txt', 'x')).rejects.toThrow();
    expect(readdirSync(dir.path)).toEqual(['lake']);
    expect(readdirSync(join(root, '_tmp'))).toEqual([]);
    expect(await store.localPath('a/b.txt')).toBe(join(store.root, 'a', 'b.txt'));
  });

  it('putFile {move} renames on the same filesystem (same inode, no copy)', async () => {
    using dir = tempDir('pq-fs-store-');
    const store = new FsObjectStore(join(dir.path, 'lake'));
    const src = join(dir.path, 'src.parquet');
    writeFileSync(src, 'parquet bytes');
    const ino = statSync(src).ino;
    await store.putFile('p/x.parquet', src, { move: true });
    expect(statSync(await store.localPath('p/x.parquet')).ino).toBe(ino);
    expect(existsSync(src)).toBe(false);
  });

  it('delete prunes emptied directories up to the root, and list skips _tmp', async () => {
    using dir = tempDir('pq-fs-store-');
    const store = new FsObjectStore(join(dir.path, 'lake'));
    await store.put('products/retailer=a/date=2025-09-03/f.parquet', 'x');
    await store.put('products/retailer=b/date=2025-09-03/g.parquet', 'y');
    writeFileSync(join(store.root, '_tmp', 'orphan'), 'half a file');
    await store.delete('products/retailer=a/date=2025-09-03/f.parquet');
    expect(existsSync(join(store.root, 'products', 'retailer=a'))).toBe(false);
    expect(existsSync(join(store.root, 'products', 'retailer=b', 'date=2025-09-03'))).toBe(true);
    const keys: string[] = [];
    for await (const o of store.list('')) keys.push(o.key);
    expect(keys).toEqual(['products/retailer=b/date=2025-09-03/g.parquet']);
  });

  it('concurrent puts and deletes in one directory never lose a put', async () => {
    using dir = tempDir('pq-fs-store-');
    const store = new FsObjectStore(join(dir.path, 'lake'));
    for (let round = 0; round < 20; round++) {
      await store.put(`race/d/old${round}`, 'x');
      await Promise.all([store.delete(`race/d/old${round}`), store.put(`race/d/new${round}`, 'y')]);
      expect((await store.getBytes(`race/d/new${round}`)).toString()).toBe('y');
      await store.delete(`race/d/new${round}`);
    }
  });
});

describe('openObjectStore (file://)', () => {
  it('resolves relative URLs against cwd and absolute ones as is', async () => {
    using dir = tempDir('pq-fs-open-');
    expect(fileUrlToDir('file://./data/lake', dir.path)).toBe(join(dir.path, 'data', 'lake'));
    expect(fileUrlToDir('file://data/lake', dir.path)).toBe(join(dir.path, 'data', 'lake'));
    expect(fileUrlToDir('file:///srv/lake', dir.path)).toBe('/srv/lake');
    const store = openObjectStore('file://./data/lake', {}, { cwd: dir.path });
    expect(store.kind).toBe('fs');
    expect(store.url).toBe('file://./data/lake');
    await store.put('k', 'v');
    expect(statSync(join(dir.path, 'data', 'lake', 'k')).isFile()).toBe(true);
    const abs = openObjectStore(`file://${join(dir.path, 'abs lake')}`);
    await abs.put('k', 'v');
    expect(existsSync(join(dir.path, 'abs lake', 'k'))).toBe(true);
  });

  it('refuses other schemes and empty paths', () => {
    expect(() => openObjectStore('http://x/y')).toThrow(/LAKE_URL/);
    expect(() => openObjectStore('file://')).toThrow(/names no directory/);
  });
});
