import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InvalidInputError } from '@parquetry/service';
import { productFixtureBatches, readParquetIndependent, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDB, openDuckDB } from './duckdb.js';
import { inferColumns, jsonText } from './infer.js';
import { type ParquetRow, parquetFileStats, readParquetRows } from './reader.js';
import { PARQUET_COMPRESSIONS, type ParquetColumn, writeParquet } from './writer.js';

let db: DuckDB;
const dir = tempDir('pq-parquet-');
beforeAll(async () => {
  db = await openDuckDB({ threads: 1, memoryLimit: '512MB', tempDirectory: join(dir.path, 'spill') });
});
afterAll(() => {
  db?.close();
  dir.remove();
});

async function readAll(paths: string[], opts?: Parameters<typeof readParquetRows>[2]): Promise<ParquetRow[]> {
  const out: ParquetRow[] = [];
  for await (const batch of readParquetRows(db.conn, paths, opts)) out.push(...batch);
  return out;
}

const TYPED: ParquetColumn[] = [
  { name: 'id', type: 'BIGINT' },
  { name: 'name', type: 'VARCHAR' },
  { name: 'qty', type: 'INTEGER' },
  { name: 'price', type: 'DOUBLE' },
  { name: 'ok', type: 'BOOLEAN' },
  { name: 'day', type: 'DATE' },
  { name: 'ts', type: 'TIMESTAMPTZ' },
  { name: 'extra', type: 'JSON' },
];

const BASE_MS = Date.UTC(2025, 8, 3, 14, 30, 22, 123);

/** Deterministic rows with a NULL in every column now and then; more than two DataChunks' worth. */
function typedRows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i === 1 ? 2 ** 53 - 1 : i,
    name: i % 11 === 0 ? null : `prod ${i} ñ "q" 'x'`,
    qty: i % 13 === 0 ? undefined : i - 2500,
    price: i % 17 === 0 ? null : i / 7,
    ok: i % 19 === 0 ? null : i % 2 === 0,
    day: i % 23 === 0 ? null : `2025-09-${String((i % 28) + 1).padStart(2, '0')}`,
    ts: i % 29 === 0 ? null : i % 2 ? BASE_MS + i : new Date(BASE_MS + i).toISOString(),
    extra: i % 31 === 0 ? null : { i, tags: ['a', i % 3] },
  }));
}

/** What a row should read back as, in the reader's JS shapes. */
function expectedRow(r: Record<string, unknown>): ParquetRow {
  const ts =
    r.ts === null ? null : new Date(typeof r.ts === 'number' ? r.ts : (r.ts as string)).toISOString();
  return {
    id: r.id as number,
    name: (r.name as string | null) ?? null,
    qty: (r.qty as number | undefined) ?? null,
    price: (r.price as number | null) ?? null,
    ok: (r.ok as boolean | null) ?? null,
    day: (r.day as string | null) ?? null,
    ts,
    extra: r.extra === null ? null : jsonText(r.extra),
  };
}

/** hyparquet's shapes (bigint, Date) normalised to the reader's. */
function normaliseIndependent(r: Record<string, unknown>): ParquetRow {
  const out: ParquetRow = {};
  for (const [k, v] of Object.entries(r)) {
    if (typeof v === 'bigint') out[k] = Number(v);
    else if (v instanceof Date) out[k] = k === 'day' ? v.toISOString().slice(0, 10) : v.toISOString();
    else out[k] = (v ?? null) as ParquetRow[string];
  }
  return out;
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('writeParquet round trip', () => {
  const input = typedRows(5000);
  const expected = input.map(expectedRow);

  for (const compression of PARQUET_COMPRESSIONS) {
    it(`${compression}: DuckDB and hyparquet read back every value`, async () => {
      const path = join(dir.path, `typed-${compression}.parquet`);
      // Uneven batches: chunk boundaries inside and across batches.
      const batches = [input.slice(0, 3000), input.slice(3000, 3001), input.slice(3001)];
      const res = await writeParquet({ conn: db.conn, path, columns: TYPED, rows: batches, compression });
      expect(res.rows).toBe(5000);
      expect(res.bytes).toBe(statSync(path).size);
      expect(res.sha256).toBe(sha(path));

      expect(await readAll([path])).toEqual(expected);
      expect((await readParquetIndependent(path)).map(normaliseIndependent)).toEqual(expected);

      const stats = await parquetFileStats(db.conn, path);
      expect(stats.rows).toBe(5000);
      expect(stats.bytes).toBe(res.bytes);
      const codec = {
        snappy: 'SNAPPY',
        zstd: 'ZSTD',
        gzip: 'GZIP',
        brotli: 'BROTLI',
        lz4: 'LZ4_RAW',
        none: 'UNCOMPRESSED',
      };
      expect(stats.compression).toBe(codec[compression]);
      expect(stats.columns).toEqual([
        { name: 'id', type: 'BIGINT' },
        { name: 'name', type: 'VARCHAR' },
        { name: 'qty', type: 'INTEGER' },
        { name: 'price', type: 'DOUBLE' },
        { name: 'ok', type: 'BOOLEAN' },
        { name: 'day', type: 'DATE' },
        { name: 'ts', type: 'TIMESTAMP WITH TIME ZONE' },
        { name: 'extra', type: 'VARCHAR' },
      ]);
    });
  }

  it('honours the row group size and writes an empty input as a valid empty file', async () => {
    const path = join(dir.path, 'groups.parquet');
    await writeParquet({ conn: db.conn, path, columns: TYPED, rows: [input], rowGroupSize: 2048 });
    expect((await parquetFileStats(db.conn, path)).rowGroups).toBe(3);
    const empty = join(dir.path, 'empty.parquet');
    const res = await writeParquet({ conn: db.conn, path: empty, columns: TYPED, rows: [] });
    expect(res.rows).toBe(0);
    expect((await parquetFileStats(db.conn, empty)).rows).toBe(0);
    expect(await readAll([empty])).toEqual([]);
  });
});

describe('free-form records', () => {
  it('mixed types and nested values become JSON text; odd names survive', async () => {
    const records: Record<string, unknown>[] = [
      {
        sku: '1',
        'Precio Normal': 899990,
        mixed: 1,
        nested: { a: [1, 2] },
        'categoría "top"': 'x',
        "it's": true,
      },
      { sku: '2', 'Precio Normal': 10.5, mixed: 'uno', nested: [{ b: null }], 'categoría "top"': null },
      { sku: '3', mixed: null, nested: 'text', precio: 1, PRECIO: 2, 'Precio normal': 3 },
    ];
    const columns = inferColumns(records);
    expect(columns.map((c) => [c.name, c.json ? 'JSON' : c.type])).toEqual([
      ['sku', 'VARCHAR'],
      ['Precio Normal', 'DOUBLE'],
      ['mixed', 'JSON'],
      ['nested', 'JSON'],
      ['categoría "top"', 'VARCHAR'],
      ["it's", 'BOOLEAN'],
      ['precio', 'BIGINT'],
      ['PRECIO__2', 'BIGINT'],
      ['Precio normal__2', 'BIGINT'],
    ]);
    const path = join(dir.path, 'free.parquet');
    await writeParquet({ conn: db.conn, path, columns, rows: [records] });
    const expected = [
      {
        sku: '1',
        'Precio Normal': 899990,
        mixed: '1',
        nested: '{"a":[1,2]}',
        'categoría "top"': 'x',
        "it's": true,
        precio: null,
        PRECIO__2: null,
        'Precio normal__2': null,
      },
      {
        sku: '2',
        'Precio Normal': 10.5,
        mixed: '"uno"',
        nested: '[{"b":null}]',
        'categoría "top"': null,
        "it's": null,
        precio: null,
        PRECIO__2: null,
        'Precio normal__2': null,
      },
      {
        sku: '3',
        'Precio Normal': null,
        mixed: null,
        nested: '"text"',
        'categoría "top"': null,
        "it's": null,
        precio: 1,
        PRECIO__2: 2,
        'Precio normal__2': 3,
      },
    ];
    expect(await readAll([path])).toEqual(expected);
    expect((await readParquetIndependent(path)).map(normaliseIndependent)).toEqual(expected);
    // JSON text parses back to the original values.
    expect(JSON.parse((expected[0]!.nested as string) ?? '')).toEqual(records[0]!.nested);
  });

  it('real scraped products round-trip field by field', async () => {
    const batch = productFixtureBatches(300)[0]!;
    const columns = inferColumns(batch.products);
    const path = join(dir.path, 'real.parquet');
    const res = await writeParquet({ conn: db.conn, path, columns, rows: [batch.products] });
    expect(res.rows).toBe(batch.products.length);
    const back = await readParquetIndependent(path);
    back.forEach((row, i) => {
      for (const c of columns) {
        const original = batch.products[i]![c.field];
        const want =
          original === undefined || original === null ? null : c.json ? jsonText(original) : original;
        expect(typeof row[c.name] === 'bigint' ? Number(row[c.name]) : row[c.name]).toEqual(want);
      }
    });
  });
});

describe('reading', () => {
  it('selects columns, filters with bound parameters, limits, and unions files by name', async () => {
    const a = join(dir.path, 'read-a.parquet');
    const b = join(dir.path, "read-b it's.parquet");
    await writeParquet({
      conn: db.conn,
      path: a,
      columns: [
        { name: 'k', type: 'BIGINT' },
        { name: 'v', type: 'VARCHAR' },
      ],
      rows: [Array.from({ length: 100 }, (_, i) => ({ k: i, v: `a${i}` }))],
    });
    await writeParquet({
      conn: db.conn,
      path: b,
      columns: [
        { name: 'k', type: 'BIGINT' },
        { name: 'big', type: 'BIGINT' },
      ],
      rows: [[{ k: 1000, big: 2n ** 62n }]],
    });
    const rows = await readAll([a, b], {
      columns: ['k', 'v', 'big'],
      where: { sql: '"k" >= ? AND ("v" IS NULL OR "v" <> ?)', params: [98, 'a99'] },
      orderBy: '"k"',
    });
    expect(rows).toEqual([
      { k: 98, v: 'a98', big: null },
      { k: 1000, v: null, big: (2n ** 62n).toString() },
    ]);
    expect(await readAll([a], { limit: 3, orderBy: '"k" DESC', columns: ['k'] })).toEqual([
      { k: 99 },
      { k: 98 },
      { k: 97 },
    ]);
    expect(await readAll([])).toEqual([]);
  });

  it('yields batches of at most one DuckDB chunk', async () => {
    const path = join(dir.path, 'batches.parquet');
    await writeParquet({ conn: db.conn, path, columns: TYPED, rows: [typedRows(5000)] });
    const sizes: number[] = [];
    for await (const batch of readParquetRows(db.conn, [path])) sizes.push(batch.length);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(5000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2048);
    expect(sizes.length).toBeGreaterThanOrEqual(3);
  });
});

describe('failures', () => {
  it('a bad value fails with InvalidInputError and leaves no file and no temp table', async () => {
    const path = join(dir.path, 'bad.parquet');
    const rows = typedRows(3000);
    rows[2500]!.day = '2025-02-30';
    const err = await writeParquet({ conn: db.conn, path, columns: TYPED, rows: [rows] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(/column "day" row 2500/);
    expect(existsSync(path)).toBe(false);
    const tables = await db.conn.runAndReadAll(
      `SELECT count(*)::INTEGER AS n FROM duckdb_tables() WHERE table_name LIKE '__pq_write_%'`,
    );
    expect(tables.getRowObjectsJS()[0]!.n).toBe(0);
  });

  it('refuses column names that DuckDB would consider equal', async () => {
    await expect(
      writeParquet({
        conn: db.conn,
        path: join(dir.path, 'dup.parquet'),
        columns: [
          { name: 'Precio', type: 'DOUBLE' },
          { name: 'precio', type: 'DOUBLE' },
        ],
        rows: [],
      }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('streaming', () => {
  it('a 100k-row write pulls its input batch by batch and never holds it all', async () => {
    const total = 100_000;
    const batchSize = 5_000;
    let produced = 0;
    let maxHeapGrowth = 0;
    // Measure what is retained, not garbage the collector has not reached yet.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage().heapUsed;
    // ~2 KB of distinct text per row: holding all rows would pin >200 MB of heap.
    async function* source(): AsyncGenerator<Record<string, unknown>[]> {
      while (produced < total) {
        gc();
        maxHeapGrowth = Math.max(maxHeapGrowth, process.memoryUsage().heapUsed - baseline);
        const batch = Array.from({ length: batchSize }, (_, i) => ({
          id: produced + i,
          payload: randomBytes(1000).toString('hex'),
          ts: BASE_MS + produced + i,
        }));
        produced += batchSize;
        yield batch;
      }
    }
    const path = join(dir.path, 'stream.parquet');
    const res = await writeParquet({
      conn: db.conn,
      path,
      columns: [
        { name: 'id', type: 'BIGINT' },
        { name: 'payload', type: 'VARCHAR' },
        { name: 'ts', type: 'TIMESTAMPTZ' },
      ],
      rows: source(),
    });
    expect(res.rows).toBe(total);
    expect(maxHeapGrowth).toBeLessThan(40 * 1024 * 1024);
    const stats = await parquetFileStats(db.conn, path);
    expect(stats.rows).toBe(total);
    const last = await readAll([path], { where: { sql: '"id" = ?', params: [total - 1] } });
    expect(last).toHaveLength(1);
    expect(last[0]!.ts).toBe(new Date(BASE_MS + total - 1).toISOString());
  });
});
