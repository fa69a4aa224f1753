import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Bus, connectBus, ensureStreams } from '@parquetry/bus';
import {
  type Catalog,
  type DuckDB,
  FsObjectStore,
  type NewFile,
  openCatalog,
  openDuckDB,
  type ParquetColumn,
  writeLakeFiles,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats, tempDir } from '@parquetry/testkit';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const DAY = 86_400_000;
const isoDay = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString().slice(0, 10);
const OLD = isoDay(40);
const RECENT = isoDay(1);

const COLUMNS: ParquetColumn[] = [
  { name: 'backup_timestamp', type: 'TIMESTAMPTZ' },
  { name: 'backup_id', type: 'VARCHAR' },
  { name: 'retailer', type: 'VARCHAR' },
  { name: 'category', type: 'VARCHAR' },
  { name: 'date', type: 'DATE' },
  { name: 'batch_id', type: 'VARCHAR' },
  { name: 'sku', type: 'VARCHAR' },
  { name: 'nombre', type: 'VARCHAR' },
  { name: 'marca', type: 'VARCHAR' },
  { name: 'precio', type: 'VARCHAR' },
  { name: 'precio_normal', type: 'BIGINT' },
];

// Prices as scrapers write them; parsed: 3100, 1234.56, 899990, 12.5 — `$NaN` does not parse.
const PRICES = ['$3.100', '$ 1.234,56', '899990', '$NaN', null, '12,5'];
const BRANDS = ['Apple', 'Samsung', 'Apple', null, 'Apple', 'Samsung'];

function productRows(retailer: string, date: string, category: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    backup_timestamp: `${date}T14:30:22.000Z`,
    backup_id: 'ab12cd34',
    retailer,
    category,
    date,
    batch_id: `${retailer}-${date}-${category}`,
    sku: `${retailer}-${i}`,
    nombre: `Producto ñandú ${i}`,
    marca: BRANDS[i % BRANDS.length]!,
    precio: PRICES[i % PRICES.length]!,
    precio_normal: 1000 * (i + 1),
  }));
}

let server: Awaited<ReturnType<typeof startNats>>;
let bus: Bus;
let catalog: Catalog;
let store: FsObjectStore;
let db: DuckDB;
const dir = tempDir('pq-cli-lake-');
const lakeDir = join(dir.path, 'lake');
let env: Record<string, string>;
/** Committed products: key → rows. */
const committed = new Map<string, number>();

async function commitProducts(retailer: string, date: string, category: string, n: number) {
  const pdir = `products/retailer=${retailer}/date=${date}`;
  const files = await writeLakeFiles({
    conn: db.conn,
    store,
    dir: pdir,
    fileName: () => `${category}_${date.replaceAll('-', '')}_143022_ab12cd34.parquet`,
    columns: COLUMNS,
    batches: [productRows(retailer, date, category, n)],
    tempDir: join(dir.path, 'tmp'),
  });
  await catalog.commit({
    dataset: 'products',
    commitId: `${retailer}-${date}-${category}`,
    changes: [{ partition: { retailer, date }, add: files, sources: [`${retailer}-${date}-${category}`] }],
  });
  for (const f of files) committed.set(f.path, f.rows);
  const metadata = { backups: files.map((f) => ({ category, products_count: f.rows, file_path: f.path })) };
  await store.put(`${pdir}/_metadata_${date.replaceAll('-', '')}.json`, JSON.stringify(metadata));
  return files;
}

beforeAll(async () => {
  server = await startNats();
  bus = await connectBus({ url: server.url, name: 'cli-test', logger: silentLogger() });
  await ensureStreams(bus.jsm);
  catalog = await openCatalog({ nc: bus.nc, writerId: 'cli-test' });
  store = new FsObjectStore(lakeDir);
  db = await openDuckDB({ threads: 1 });
  env = { NATS_URL: server.url, LAKE_URL: `file://${lakeDir}` };
  await commitProducts('jumbo', OLD, 'arroz', 6);
  await commitProducts('jumbo', OLD, 'fideos', 4);
  await commitProducts('jumbo', RECENT, 'arroz', 12);
  await commitProducts('vea', RECENT, 'lacteos', 5);
  const tick: NewFile[] = [];
  for (const [date, n] of [
    [OLD, 3],
    [RECENT, 2],
  ] as const) {
    const files = await writeLakeFiles({
      conn: db.conn,
      store,
      dir: `ticks/symbol=ES/date=${date}`,
      fileName: () => 'ticks_1.parquet',
      columns: [
        { name: 'symbol', type: 'VARCHAR' },
        { name: 'date', type: 'DATE' },
        { name: 'ts', type: 'TIMESTAMPTZ' },
        { name: 'price', type: 'DOUBLE' },
      ],
      batches: [
        Array.from({ length: n }, (_, i) => ({
          symbol: 'ES',
          date,
          ts: `${date}T10:00:0${i}Z`,
          price: 5000 + i,
        })),
      ],
      tempDir: join(dir.path, 'tmp'),
    });
    await catalog.commit({
      dataset: 'ticks',
      commitId: `ticks-${date}`,
      changes: [{ partition: { symbol: 'ES', date }, add: files }],
    });
    tick.push(...files);
  }
});

afterAll(async () => {
  db?.close();
  await bus?.close();
  await server?.stop();
  dir.remove();
});

/** An outside reader: its own DuckDB instance, reading exactly the listed files. */
async function outsideCount(files: string[]): Promise<number> {
  const outside = await openDuckDB({ threads: 1 });
  try {
    const list = files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ');
    const r = await outside.conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet([${list}])`);
    return Number(r.getRowObjectsJS()[0]!.n);
  } finally {
    outside.close();
  }
}

const productKeys = () => [...committed.keys()].sort();
const abs = (key: string) => join(store.root, ...key.split('/'));

describe('lake files', () => {
  it('--json prints exactly the live files as absolute paths, and DuckDB reads that snapshot', async () => {
    const run = await runCli(['lake', 'files', 'products', '--json'], env);
    expect(run.code).toBe(0);
    expect(Object.keys(run.json<object>())).toEqual(['files']);
    const { files } = run.json<{ files: string[] }>();
    expect(files).toEqual(productKeys().map(abs));
    expect(await outsideCount(files)).toBe([...committed.values()].reduce((a, b) => a + b, 0));
  });

  it('resolves a relative LAKE_URL against the working directory; --where filters partitions', async () => {
    const cwd = process.cwd();
    process.chdir(dir.path);
    try {
      const run = await runCli(['lake', 'files', 'products', '--where', 'retailer=vea', '--json'], {
        ...env,
        LAKE_URL: 'file://./lake',
      });
      expect(run.code).toBe(0);
      const { files } = run.json<{ files: string[] }>();
      expect(files).toEqual([
        join(
          dir.path,
          'lake',
          'products',
          'retailer=vea',
          `date=${RECENT}`,
          `lacteos_${RECENT.replaceAll('-', '')}_143022_ab12cd34.parquet`,
        ),
      ]);
      expect(await outsideCount(files)).toBe(5);
    } finally {
      process.chdir(cwd);
    }
  });

  it('rejects a filter on a column that is not a partition column, and an unknown dataset', async () => {
    const bad = await runCli(['lake', 'files', 'products', '--where', 'sku=1', '--json'], env);
    expect(bad.code).toBe(2);
    expect(bad.json<{ error: { message: string } }>().error.message).toMatch(/partitioned by retailer, date/);
    const unknown = await runCli(['lake', 'files', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/valid: products, ticks, candles/);
  });
});

describe('lake stats, list, info', () => {
  it('stats totals products per retailer and a line for ticks', async () => {
    const run = await runCli(['lake', 'stats', '--json'], env);
    expect(run.code).toBe(0);
    const s = run.json<{
      products: {
        files: number;
        rows: number;
        oldest_date: string;
        newest_date: string;
        retailers: { retailer: string; rows: number; files: number }[];
      };
      ticks: { files: number; rows: number; symbols: number };
      candles: { files: number };
    }>();
    expect(s.products).toMatchObject({ files: 4, rows: 27, oldest_date: OLD, newest_date: RECENT });
    expect(s.products.retailers.map((r) => [r.retailer, r.files, r.rows])).toEqual([
      ['jumbo', 3, 22],
      ['vea', 1, 5],
    ]);
    expect(s.ticks).toMatchObject({ files: 2, rows: 5, symbols: 1 });
    expect(s.candles.files).toBe(0);
    const human = await runCli(['lake', 'stats'], env);
    expect(human.stdout).toMatch(/^products: 4 files in 3 partitions, 27 rows/);
  });

  it('list filters by retailer and by age', async () => {
    const all = await runCli(['lake', 'list', '--json'], env);
    const rows = all.json<{
      files: { path: string; retailer: string; date: string; category: string; rows: number }[];
    }>().files;
    expect(rows.map((f) => f.path).sort()).toEqual(productKeys());
    expect(rows.find((f) => f.retailer === 'vea')).toMatchObject({
      date: RECENT,
      category: 'lacteos',
      rows: 5,
    });

    const recentJumbo = await runCli(['lake', 'list', '--retailer', 'jumbo', '--days', '30', '--json'], env);
    expect(recentJumbo.json<{ files: { path: string }[] }>().files.map((f) => f.path)).toEqual([
      `products/retailer=jumbo/date=${RECENT}/arroz_${RECENT.replaceAll('-', '')}_143022_ab12cd34.parquet`,
    ]);
    expect((await runCli(['lake', 'list', '--days', 'soon'], env)).code).toBe(2);
  });

  it('info lists partitions, and with --date the metadata file and the files', async () => {
    const parts = await runCli(['lake', 'info', 'jumbo', '--json'], env);
    expect(
      parts
        .json<{ partitions: { date: string; files: number; rows: number }[] }>()
        .partitions.map((p) => [p.date, p.files, p.rows]),
    ).toEqual([
      [OLD, 2, 10],
      [RECENT, 1, 12],
    ]);
    const one = await runCli(['lake', 'info', 'jumbo', '--date', OLD, '--json'], env);
    const info = one.json<{ metadata: { backups: { category: string }[] }; files: { category: string }[] }>();
    expect(info.metadata.backups.map((b) => b.category)).toEqual(['fideos']); // the last write of the partition
    expect(info.files.map((f) => f.category)).toEqual(['arroz', 'fideos']);
    const unknown = await runCli(['lake', 'info', 'lider', '--json'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.json<{ error: { code: string; message: string } }>().error.message).toMatch(
      /retailers: jumbo, vea/,
    );
  });
});

describe('analyze and conversions', () => {
  const key = () => productKeys().find((k) => k.includes(`date=${RECENT}/arroz`))!;

  it('analyze reports schema, nulls, distincts, top brands and parsed price ranges', async () => {
    const run = await runCli(['lake', 'analyze', key(), '--json'], env);
    expect(run.code).toBe(0);
    const a = run.json<{
      key: string;
      rows: number;
      columns: { name: string; type: string; nulls: number; distinct: number }[];
      brands: { column: string; top: { value: string; count: number }[] };
      prices: {
        column: string;
        values: number;
        unparsed: number;
        min: number;
        max: number;
        ranges: { from: number; to: number; count: number }[];
      }[];
    }>();
    expect(a).toMatchObject({ key: key(), rows: 12 });
    expect(a.columns.map((c) => c.name)).toEqual(COLUMNS.map((c) => c.name));
    expect(a.columns.find((c) => c.name === 'marca')).toMatchObject({
      type: 'VARCHAR',
      nulls: 2,
      distinct: 2,
    });
    expect(a.columns.find((c) => c.name === 'date')).toMatchObject({ type: 'DATE', nulls: 0, distinct: 1 });
    // 12 rows cycle the 6 brands twice: Apple 6, Samsung 4.
    expect(a.brands).toEqual({
      column: 'marca',
      top: [
        { value: 'Apple', count: 6 },
        { value: 'Samsung', count: 4 },
      ],
    });
    const text = a.prices.find((p) => p.column === 'precio')!;
    expect(text).toMatchObject({ values: 8, unparsed: 2, min: 12.5, max: 899990 });
    expect(text.ranges).toEqual([
      { from: 10, to: 100, count: 2 },
      { from: 1000, to: 10000, count: 4 },
      { from: 100000, to: 1000000, count: 2 },
    ]);
    const numeric = a.prices.find((p) => p.column === 'precio_normal')!;
    expect(numeric).toMatchObject({ values: 12, unparsed: 0, min: 1000, max: 12000 });

    // A local path works the same, without the catalog.
    const local = await runCli(['lake', 'analyze', abs(key()), '--json'], {
      LAKE_URL: 'file:///nonexistent-lake',
    });
    expect(local.json<{ rows: number; key: string | null }>()).toMatchObject({ rows: 12, key: null });
    expect((await runCli(['lake', 'analyze', 'products/none.parquet'], env)).code).toBe(1);
  });

  it('to-csv writes every row and column; DuckDB reads the same values back', async () => {
    const output = join(dir.path, 'out.csv');
    const run = await runCli(['lake', 'to-csv', key(), '--output', output, '--json'], env);
    expect(run.code).toBe(0);
    expect(run.json()).toMatchObject({ output, rows: 12, columns: COLUMNS.length, format: 'csv' });
    const fromCsv = await db.conn.runAndReadAll(
      `SELECT sku, nombre, marca, precio, precio_normal::BIGINT AS pn FROM read_csv('${output}', header = true, all_varchar = true) ORDER BY sku`,
    );
    const fromParquet = await db.conn.runAndReadAll(
      `SELECT sku, nombre, marca, precio, precio_normal AS pn FROM read_parquet('${abs(key())}') ORDER BY sku`,
    );
    expect(fromCsv.getRowObjectsJS()).toEqual(fromParquet.getRowObjectsJS());
    expect(readFileSync(output, 'utf8').split('\n')[0]).toBe(COLUMNS.map((c) => c.name).join(','));
  });

  it('to-xlsx writes a workbook exceljs reads back with the same cells', async () => {
    const output = join(dir.path, 'out.xlsx');
    const run = await runCli(['lake', 'to-xlsx', key(), '--output', output, '--json'], env);
    expect(run.code).toBe(0);
    expect(run.json()).toMatchObject({ rows: 12, sheets: 1, truncated_cells: 0 });

    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(output);
    const sheet = wb.getWorksheet('data')!;
    const values = (r: number) => (sheet.getRow(r).values as unknown[]).slice(1);
    expect(values(1)).toEqual(COLUMNS.map((c) => c.name));
    expect(sheet.rowCount).toBe(13);
    const expected = productRows('jumbo', RECENT, 'arroz', 12);
    for (const [i, p] of expected.entries()) {
      const cells = values(i + 2);
      const byName = Object.fromEntries(COLUMNS.map((c, j) => [c.name, cells[j] ?? null]));
      expect(byName).toEqual({
        ...p,
        backup_timestamp: new Date(p.backup_timestamp),
        date: new Date(`${p.date}T00:00:00Z`),
      });
    }
  });
});

describe('lake cleanup', () => {
  it('--dry-run changes nothing; cleanup drops old partitions only; vacuum deletes them after the grace', async () => {
    const before = (await catalog.liveFiles('products')).map((f) => f.path);
    const oldMeta = `products/retailer=jumbo/date=${OLD}/_metadata_${OLD.replaceAll('-', '')}.json`;

    const dry = await runCli(['lake', 'cleanup', '--days', '30', '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    const d = dry.json<{
      dry_run: boolean;
      retention: { dataset: string; partitions: number; files: number; rows: number }[];
    }>();
    expect(d.dry_run).toBe(true);
    expect(d.retention.map((r) => [r.dataset, r.partitions, r.files, r.rows])).toEqual([
      ['products', 1, 2, 10],
      ['ticks', 1, 1, 3],
    ]);
    expect((await catalog.liveFiles('products')).map((f) => f.path)).toEqual(before);
    expect(await store.head(oldMeta)).toBeDefined();

    const announced: { dataset: string; operation: string; partitions: { removed: string[] }[] }[] = [];
    const sub = bus.nc.subscribe('lake.committed.>');
    void (async () => {
      for await (const m of sub) announced.push(m.json());
    })();
    const run = await runCli(['lake', 'cleanup', '--days', '30', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    // Each dropped partition is announced as a removal, with its paths, for pg-loader.
    await bus.nc.flush();
    for (let i = 0; i < 50 && announced.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    sub.unsubscribe();
    expect(announced.map((e) => [e.dataset, e.operation]).sort()).toEqual([
      ['products', 'remove'],
      ['ticks', 'remove'],
    ]);
    expect(announced.find((e) => e.dataset === 'products')!.partitions[0]!.removed.sort()).toEqual(
      before.filter((p) => p.includes(`date=${OLD}`)).sort(),
    );
    expect(run.json()).toMatchObject({
      dry_run: false,
      awaiting_vacuum: { files: 3 },
      vacuum: { expired: 0 },
    });
    const live = (await catalog.liveFiles('products')).map((f) => f.path);
    expect(live).toEqual(before.filter((p) => !p.includes(`date=${OLD}`)));
    expect((await catalog.liveFiles('ticks')).map((f) => f.path)).toEqual([
      `ticks/symbol=ES/date=${RECENT}/ticks_1.parquet`,
    ]);
    expect(await store.head(oldMeta)).toBeUndefined();
    // Dropped files stay for readers in flight until a vacuum past the grace.
    const oldFile = before.find((p) => p.includes(`date=${OLD}`))!;
    expect(await store.head(oldFile)).toBeDefined();
    const human = await runCli(['lake', 'cleanup', '--days', '30', '--grace-minutes', '0'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/products: dropped 0 partitions/);
    expect(human.stdout).toMatch(/vacuum: deleted 3 replaced files/);
    expect(await store.head(oldFile)).toBeUndefined();
    expect(await store.head(live[0]!)).toBeDefined();
  });

  it('requires --days and has --help', async () => {
    expect((await runCli(['lake', 'cleanup'], env)).code).toBe(2);
    const help = await runCli(['lake', 'cleanup', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--dry-run/);
  });
});
