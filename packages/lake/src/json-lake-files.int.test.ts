import { productFixtureBatches, readParquetIndependent, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JsonColumn, writeJsonLakeFiles } from './json-lake-files.js';
import { writeLakeFiles } from './lake-files.js';
import { type DuckDB, openDuckDB } from './parquet/duckdb.js';
import { ColumnInferrer } from './parquet/infer.js';
import type { ParquetColumn } from './parquet/writer.js';
import { openObjectStore } from './store/open.js';
import type { ObjectStore } from './store/types.js';

type Doc = { batch_id: string; products: Record<string, unknown>[] };

function columnsFor(docs: readonly Doc[]) {
  const inferrer = new ColumnInferrer();
  for (const d of docs) for (const p of d.products) inferrer.observe(p);
  const free = inferrer.columns(['batch_id', 'backup_id']);
  const json: JsonColumn[] = [
    { name: 'backup_id', type: 'VARCHAR', constant: 'abcd1234' },
    { name: 'batch_id', type: 'VARCHAR', docField: 'batch_id' },
    ...free.map((c) => ({ name: c.name, type: c.type, json: c.json, field: c.field })),
  ];
  const js: ParquetColumn[] = [
    { name: 'backup_id', type: 'VARCHAR', shared: true },
    { name: 'batch_id', type: 'VARCHAR', shared: true },
    ...free.map((c) => ({ name: c.name, field: c.field, type: c.type, json: c.json })),
  ];
  return { json, js };
}

describe('writeJsonLakeFiles', () => {
  const dir = tempDir('pq-jsonfiles-');
  let db: DuckDB;
  let store: ObjectStore;
  beforeAll(async () => {
    db = await openDuckDB({ threads: 1 });
    store = openObjectStore(`file://${dir.path}/lake`, {});
  });
  afterAll(async () => {
    db.close();
    await store.close();
    dir.remove();
  });

  async function both(docs: Doc[], raw: Uint8Array[] = docs.map((d) => Buffer.from(JSON.stringify(d)))) {
    const { json, js } = columnsFor(docs);
    const [a] = await writeJsonLakeFiles({
      conn: db.conn,
      store,
      dir: 'a',
      fileName: () => `${Math.random().toString(36).slice(2)}.parquet`,
      documents: raw,
      recordsField: 'products',
      columns: json,
    });
    const [b] = await writeLakeFiles({
      conn: db.conn,
      store,
      dir: 'b',
      fileName: () => `${Math.random().toString(36).slice(2)}.parquet`,
      columns: js,
      batches: docs.map((d) => ({
        rows: d.products,
        shared: { backup_id: 'abcd1234', batch_id: d.batch_id },
      })),
    });
    return { a: a!, b: b! };
  }

  it('writes the same rows as the JS writer for real scraped products, read by an independent reader', async () => {
    const docs = productFixtureBatches(300).slice(0, 40);
    const { a, b } = await both(docs);
    expect(a.rows).toBe(docs.reduce((n, d) => n + d.products.length, 0));
    expect(a.rows).toBe(b.rows);
    const fromJson = await readParquetIndependent(await store.localPath(a.path));
    const fromJs = await readParquetIndependent(await store.localPath(b.path));
    expect(fromJson).toEqual(fromJs);
  });

  it('keeps mixed and nested fields as JSON text, and pretty-printed documents read as one line', async () => {
    const docs: Doc[] = [
      {
        batch_id: 'b1',
        products: [
          { sku: 'x', precio: 100, specs: { ram: '8GB', tags: ['a', 'b'] }, mixed: 1, 'odd "name"': true },
          { sku: 'y', precio: 100.5, specs: null, mixed: 'uno', 'odd "name"': false, extra: 'ñandú\n"q"' },
        ],
      },
    ];
    const pretty = docs.map((d) => Buffer.from(JSON.stringify(d, null, 2)));
    const { a, b } = await both(docs, pretty);
    const rows = await readParquetIndependent(await store.localPath(a.path));
    expect(rows).toEqual(await readParquetIndependent(await store.localPath(b.path)));
    expect(rows[0]).toMatchObject({
      mixed: '1',
      specs: '{"ram":"8GB","tags":["a","b"]}',
      'odd "name"': true,
    });
    expect(rows[1]).toMatchObject({ mixed: '"uno"', precio: 100.5, extra: 'ñandú\n"q"' });
  });

  it('refuses field names DuckDB cannot tell apart, so the caller can fall back', async () => {
    const docs: Doc[] = [{ batch_id: 'b1', products: [{ Precio: 1 }, { precio: 2 }] }];
    const { json } = columnsFor(docs);
    await expect(
      writeJsonLakeFiles({
        conn: db.conn,
        store,
        dir: 'c',
        fileName: () => 'c.parquet',
        documents: docs.map((d) => Buffer.from(JSON.stringify(d))),
        recordsField: 'products',
        columns: json,
      }),
    ).rejects.toMatchObject({ code: 'invalid_input' });
    // A value DuckDB's reader does not take for the inferred type fails the same way.
    await expect(
      writeJsonLakeFiles({
        conn: db.conn,
        store,
        dir: 'c',
        fileName: () => 'c.parquet',
        documents: [Buffer.from('{"batch_id":"b","products":[{"n":"not a number"}]}')],
        recordsField: 'products',
        columns: [{ name: 'n', type: 'BIGINT', field: 'n' }],
      }),
    ).rejects.toMatchObject({ code: 'invalid_input' });
    const left: unknown[] = [];
    for await (const o of store.list('c/')) left.push(o);
    expect(left).toEqual([]);
  });

  it('splits output above maxFileBytes into evenly sized parts holding every row once, in order', async () => {
    const docs = productFixtureBatches(300).slice(0, 60);
    const { json } = columnsFor(docs);
    const files = await writeJsonLakeFiles({
      conn: db.conn,
      store,
      dir: 'd',
      fileName: (part, parts) => `f_${part}_of_${parts}.parquet`,
      documents: docs.map((d) => Buffer.from(JSON.stringify(d))),
      recordsField: 'products',
      columns: json,
      maxFileBytes: 20_000,
    });
    expect(files.length).toBeGreaterThan(1);
    const total = docs.reduce((n, d) => n + d.products.length, 0);
    expect(files.reduce((n, f) => n + f.rows, 0)).toBe(total);
    const ids: unknown[] = [];
    for (const f of files) {
      expect(f.path).toMatch(new RegExp(`^d/f_\\d+_of_${files.length}\\.parquet$`));
      const rows = await readParquetIndependent(await store.localPath(f.path));
      expect(rows).toHaveLength(f.rows);
      ids.push(...rows.map((r) => r.batch_id));
    }
    expect(ids).toEqual(docs.flatMap((d) => d.products.map(() => d.batch_id)));
  });

  it('removes the parts already put when a later part cannot be put, leaving nothing uncommitted', async () => {
    const docs = productFixtureBatches(300).slice(0, 60);
    const { json } = columnsFor(docs);
    let puts = 0;
    // The real store, failing its third upload (a disk filling up part-way through a split file).
    const failing: ObjectStore = Object.create(store, {
      putFile: {
        value: (key: string, path: string, o: { move?: boolean }) =>
          ++puts === 3
            ? Promise.reject(new Error('ENOSPC: no space left on device'))
            : store.putFile(key, path, o),
      },
    });
    await expect(
      writeJsonLakeFiles({
        conn: db.conn,
        store: failing,
        dir: 'partial',
        fileName: (part) => `f_${part}.parquet`,
        documents: docs.map((d) => Buffer.from(JSON.stringify(d))),
        recordsField: 'products',
        columns: json,
        maxFileBytes: 20_000,
      }),
    ).rejects.toThrow(/ENOSPC/);
    expect(puts).toBe(3);
    const left: string[] = [];
    for await (const o of store.list('partial/')) left.push(o.key);
    expect(left).toEqual([]);
  });
});
