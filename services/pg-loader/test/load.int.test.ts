import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestDatabase,
  requireServers,
  sharedDataDir,
  type TestDatabase,
  tempDir,
} from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadResult, runLoad } from '../src/index.js';
import {
  type CheckColumn,
  config,
  count,
  duckChecksum,
  duckQuery,
  expectSameChecksum,
  pgChecksum,
  writeFixture,
} from './helpers.js';

const skip = await requireServers({ postgres: true });
const ROWS = 20_000;

/** Nulls, text with tabs, newlines, backslashes and non-ASCII, times on both sides of 2000-01-01. */
const FIXTURE = `
SELECT i AS id,
  CASE WHEN i % 97 = 0 THEN NULL ELSE i * 1.37 - 5000.5 END::DOUBLE AS price,
  CASE WHEN i % 89 = 0 THEN NULL
       ELSE 'sym ' || (i % 500)::VARCHAR || CASE WHEN i % 7 = 0 THEN chr(9) || 'tab ' || chr(92) || ' nl' || chr(10) || 'ñ 😀' ELSE '' END
  END AS "Symbol Name",
  TIMESTAMPTZ '1995-06-01 12:00:00+00' + to_microseconds(i * 987654321) AS ts,
  (i % 100)::INTEGER AS qty,
  DATE '1999-12-25' + (i % 3000)::INTEGER AS day,
  CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 0.125 - 77)::DECIMAL(12,3) END AS amount,
  i % 3 = 0 AS flag`;
const NESTED = `, CASE WHEN i % 11 = 0 THEN NULL ELSE {'a': i, 'b': [i, i + 1]} END AS nested`;

const COLUMNS: CheckColumn[] = [
  { source: 'id', target: 'id', kind: 'int' },
  { source: 'price', target: 'price', kind: 'float' },
  { source: 'Symbol Name', target: 'symbol_name', kind: 'text' },
  { source: 'ts', target: 'ts', kind: 'ts' },
  { source: 'qty', target: 'qty', kind: 'int' },
  { source: 'day', target: 'day', kind: 'date' },
  { source: 'amount', target: 'amount', kind: 'numeric' },
  { source: 'flag', target: 'flag', kind: 'bool' },
];

describe.skipIf(skip)('runLoad', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const dir = tempDir('pgl-load-');
  const file = (name: string) => join(dir.path, name);

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await writeFixture(file('ticks.parquet'), `${FIXTURE}${NESTED} FROM range(${ROWS}) t(i)`);
    await writeFixture(file('ticks.csv'), `${FIXTURE} FROM range(${ROWS}) t(i)`);
    await writeFixture(file('ticks.ndjson'), `${FIXTURE}${NESTED} FROM range(${ROWS}) t(i)`);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
    dir.remove();
  });

  function expectCounts(r: LoadResult, rows: number, rejected = 0) {
    expect(r.rows).toBe(rows);
    expect(r.rejected).toBe(rejected);
    expect(r.loaded + r.rejected).toBe(r.rows);
  }

  it('loads Parquet equal to its source (binary COPY), and reports strategy, time and memory', async () => {
    const r = await runLoad({
      source: file('ticks.parquet'),
      config: config({ database: { table_name: 'pq' } }),
      pg: db.url,
    });
    expectCounts(r, ROWS);
    expect(r.copyFormat).toBe('binary');
    expect(['eager', 'batched', 'streaming']).toContain(r.strategy);
    expect(r.reason).toMatch(/20,000 rows/);
    expect(r.peakRssMb).toBeGreaterThan(10);
    expect(r.seconds).toBeGreaterThan(0);
    const cols = [...COLUMNS, { source: 'nested', target: 'nested', kind: 'json' as const }];
    expectSameChecksum(
      await duckChecksum(`read_parquet('${file('ticks.parquet')}')`, cols),
      await pgChecksum(client, 'pq', cols),
      cols,
    );
    const types = await client.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'pq' ORDER BY ordinal_position`,
    );
    expect(types.rows.map((t) => `${t.column_name} ${t.data_type}`)).toEqual([
      'id bigint',
      'price double precision',
      'symbol_name text',
      'ts timestamp with time zone',
      'qty integer',
      'day date',
      'amount numeric',
      'flag boolean',
      'nested jsonb',
    ]);
    const nested = await client.query(`SELECT nested FROM pq WHERE id = 5`);
    expect(nested.rows[0].nested).toEqual({ a: 5, b: [5, 6] });
  });

  it('streams under a tight memory limit and says why', async () => {
    const r = await runLoad({
      source: file('ticks.parquet'),
      config: config({ database: { table_name: 'pq_tight' }, os_configuration: { memory_limit_mb: 64 } }),
      pg: db.url,
    });
    expectCounts(r, ROWS);
    expect(r.strategy).toBe('streaming');
    expect(r.reason).toContain('configured limit 64 MB');
    expect(r.budgetBytes).toBe(64 * 1024 * 1024);
    expectSameChecksum(
      await duckChecksum(`read_parquet('${file('ticks.parquet')}')`, COLUMNS),
      await pgChecksum(client, 'pq_tight', COLUMNS),
      COLUMNS,
    );
  });

  it('loads the same through text COPY', async () => {
    const cfg = config({ database: { table_name: 'pq_text', copy_format: 'text', batch_rows: 4096 } });
    const r = await runLoad({ source: file('ticks.parquet'), config: cfg, pg: db.url });
    expectCounts(r, ROWS);
    expect(r.copyFormat).toBe('text');
    expectSameChecksum(
      await duckChecksum(`read_parquet('${file('ticks.parquet')}')`, COLUMNS),
      await pgChecksum(client, 'pq_text', COLUMNS),
      COLUMNS,
    );
  });

  it('loads CSV equal to its source, types from the sniffer', async () => {
    const r = await runLoad({
      source: file('ticks.csv'),
      config: config({ database: { table_name: 'csv' } }),
      pg: db.url,
    });
    expectCounts(r, ROWS);
    // CSV carries no decimal type: DuckDB (the oracle) reads `amount` as DOUBLE too.
    const cols = COLUMNS.map((c) => (c.source === 'amount' ? { ...c, kind: 'float' as const } : c));
    expectSameChecksum(
      await duckChecksum(`read_csv_auto('${file('ticks.csv')}')`, cols),
      await pgChecksum(client, 'csv', cols),
      cols,
    );
  });

  it('loads NDJSON equal to its source, nested values as jsonb', async () => {
    const r = await runLoad({
      source: file('ticks.ndjson'),
      config: config({ database: { table_name: 'nd' } }),
      pg: db.url,
    });
    expectCounts(r, ROWS);
    const cols = [
      // JSON has no timestamp type and DuckDB's sniffer leaves this format as text: so does the load.
      ...COLUMNS.filter((c) => c.source !== 'amount').map((c) =>
        c.source === 'ts' ? { ...c, kind: 'text' as const } : c,
      ),
      { source: 'nested', target: 'nested', kind: 'json' as const },
    ];
    expectSameChecksum(
      await duckChecksum(`read_json_auto('${file('ticks.ndjson')}', format='newline_delimited')`, cols),
      await pgChecksum(client, 'nd', cols),
      cols,
    );
    const nested = await client.query(`SELECT nested FROM nd WHERE id = 5`);
    expect(nested.rows[0].nested).toEqual({ a: 5, b: [5, 6] });
  });

  it('fail refuses an existing table; append adds once and then skips the file via the ledger', async () => {
    const src = file('ticks.parquet');
    await expect(
      runLoad({ source: src, config: config({ database: { table_name: 'pq' } }), pg: db.url }),
    ).rejects.toMatchObject({
      code: 'table_exists',
    });
    await runLoad({ source: src, config: config({ database: { table_name: 'twice' } }), pg: db.url });
    const again = await runLoad({
      source: src,
      config: config({ database: { table_name: 'twice', if_table_exists: 'append' } }),
      pg: db.url,
    });
    expect(again.skippedFiles).toHaveLength(1);
    expect(again.rows).toBe(0);
    const noLedger = await runLoad({
      source: src,
      config: config({ database: { table_name: 'twice', if_table_exists: 'append', ledger: false } }),
      pg: db.url,
    });
    expect(noLedger.loaded).toBe(ROWS);
    expect(await count(client, 'twice')).toBe(2 * ROWS);
  });

  it('loads a dataset directory: columns united by name, metadata skipped, new files only on append', async () => {
    const ds = join(dir.path, 'dataset', 'date=2024-01-01');
    mkdirSync(ds, { recursive: true });
    await writeFixture(join(ds, 'a.parquet'), `SELECT i AS id, i * 2 AS a FROM range(100) t(i)`);
    await writeFixture(
      join(ds, 'b.parquet'),
      `SELECT i AS id, i * 2 AS a, 'b' || i::VARCHAR AS b FROM range(100, 250) t(i)`,
    );
    await writeFixture(join(ds, 'c.parquet'), `SELECT i AS id, 'c' AS b FROM range(250, 300) t(i)`);
    writeFileSync(join(ds, '_metadata_20240101.json'), '{"not": "data"}');
    const root = join(dir.path, 'dataset');
    const r = await runLoad({ source: root, config: config({ database: { table_name: 'ds' } }), pg: db.url });
    expect(r.files).toBe(3);
    expectCounts(r, 300);
    expect(await count(client, 'ds', 'a IS NULL')).toBe(50);
    expect(await count(client, 'ds', 'b IS NULL')).toBe(100);
    expect(await count(client, 'ds', 'a = id * 2')).toBe(250);
    const appendCfg = config({ database: { table_name: 'ds', if_table_exists: 'append' } });
    await writeFixture(
      join(ds, 'd.parquet'),
      `SELECT i AS id, i * 2 AS a, 'd' AS b FROM range(300, 320) t(i)`,
    );
    const again = await runLoad({ source: root, config: appendCfg, pg: db.url });
    expect(again.skippedFiles).toHaveLength(3);
    expectCounts(again, 20);
    expect(await count(client, 'ds')).toBe(320);
    expect(await count(client, 'ds', 'id BETWEEN 300 AND 319')).toBe(20);
  });

  it('replace swaps atomically: a concurrent reader sees only the old or the new full count', async () => {
    const small = file('small.parquet');
    const big = file('big.parquet');
    await writeFixture(small, `SELECT i AS id FROM range(3000) t(i)`);
    await writeFixture(big, `SELECT i AS id, i * 2 AS twice FROM range(60000) t(i)`);
    await runLoad({ source: small, config: config({ database: { table_name: 'swap' } }), pg: db.url });
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    const seen: number[] = [];
    const errors: unknown[] = [];
    let loading = true;
    let duringLoad = 0;
    const readLoop = (async () => {
      while (loading) {
        try {
          seen.push(await count(reader, 'swap'));
          duringLoad++;
        } catch (err) {
          errors.push(err);
        }
      }
      seen.push(await count(reader, 'swap'));
    })();
    try {
      const r = await runLoad({
        source: big,
        config: config({ database: { table_name: 'swap', if_table_exists: 'replace', batch_rows: 2048 } }),
        pg: db.url,
      });
      expectCounts(r, 60000);
      expect(r.drift?.added.map((c) => c.name)).toEqual(['twice']);
    } finally {
      loading = false;
      await readLoop;
      await reader.end();
    }
    expect(errors).toEqual([]);
    expect(duringLoad).toBeGreaterThan(3);
    expect(new Set(seen)).toEqual(new Set([3000, 60000]));
    expect(seen.at(-1)).toBe(60000);
    // No staging table left behind.
    expect(await count(client, 'pg_tables', `tablename = 'swap__pq_new'`)).toBe(0);
  });

  it('sends values that fail a cast to <table>_rejects with row number, reason and raw row', async () => {
    const src = file('bad.csv');
    await writeFixture(
      src,
      `SELECT i AS id, CASE WHEN i % 1000 = 7 THEN 'n/a' ELSE (i * 0.5)::VARCHAR END AS price,
              CASE WHEN i % 2500 = 3 THEN 'not a day' ELSE '2024-03-0' || (1 + i % 9)::VARCHAR END AS day
       FROM range(${ROWS}) t(i)`,
    );
    const r = await runLoad({
      source: src,
      config: config({
        schema_config: { data_type: { price: 'double', day: 'date' } },
        database: { table_name: 'casts' },
      }),
      pg: db.url,
    });
    const badPrice = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i % 1000 === 7);
    const badDay = Array.from({ length: ROWS }, (_, i) => i).filter((i) => i % 2500 === 3);
    expectCounts(r, ROWS, badPrice.length + badDay.length);
    expect(r.rejectsTarget).toBe('"public"."casts_rejects"');
    expect(await count(client, 'casts')).toBe(ROWS - r.rejected);
    const rej = await client.query<{
      row_number: string;
      reason: string;
      raw: Record<string, unknown>;
      file_path: string;
    }>(`SELECT row_number, reason, raw, file_path FROM casts_rejects ORDER BY row_number`);
    expect(rej.rows.map((x) => Number(x.row_number))).toEqual(
      [...badPrice, ...badDay].sort((a, b) => a - b).map((i) => i + 1),
    );
    const first = rej.rows.find((x) => Number(x.row_number) === 8)!;
    expect(first.reason).toBe('price: cannot cast n/a to double precision');
    expect(first.raw).toMatchObject({ id: '7', price: 'n/a' });
    expect(first.file_path).toBe(src);
    const day = rej.rows.find((x) => Number(x.row_number) === 4)!;
    expect(day.reason).toBe('day: cannot cast not a day to date');
  });

  it.each(['binary', 'text'] as const)(
    'isolates rows PostgreSQL refuses (constraint, NUL byte) by bisecting the batch (%s COPY)',
    async (format) => {
      const table = `checked_${format}`;
      await client.query(
        `CREATE TABLE ${table} (id bigint, price double precision CHECK (price >= 0), name text)`,
      );
      const src = file(`constraint_${format}.parquet`);
      await writeFixture(
        src,
        `SELECT i AS id, CASE WHEN i IN (5, 4096, 9999) THEN -1.0 ELSE i * 1.0 END::DOUBLE AS price,
                CASE WHEN i = 12345 THEN 'nul' || chr(0) || 'byte' ELSE 'ok' END AS name
         FROM range(${ROWS}) t(i)`,
      );
      const r = await runLoad({
        source: src,
        config: config({
          database: { table_name: table, if_table_exists: 'append', batch_rows: 8192, copy_format: format },
        }),
        pg: db.url,
      });
      expectCounts(r, ROWS, 4);
      expect(await count(client, table)).toBe(ROWS - 4);
      const rej = await client.query<{ row_number: string; reason: string; raw: { id: number | string } }>(
        `SELECT row_number, reason, raw FROM ${table}_rejects ORDER BY row_number`,
      );
      expect(rej.rows.map((x) => [Number(x.row_number), Number(x.raw.id)])).toEqual([
        [6, 5],
        [4097, 4096],
        [10000, 9999],
        [12346, 12345],
      ]);
      expect(rej.rows[0]!.reason).toMatch(/^23514 .*violates check constraint/);
      expect(rej.rows[3]!.reason).toMatch(/^22021 /);
    },
  );

  it('writes rejects to an NDJSON file when configured, only once the load commits', async () => {
    const src = file('bad2.csv');
    const out = file('rejects.ndjson');
    await writeFixture(
      src,
      `SELECT i AS id, CASE WHEN i = 3 THEN 'x' ELSE i::VARCHAR END AS n FROM range(100) t(i)`,
    );
    const r = await runLoad({
      source: src,
      config: config({
        schema_config: { data_type: { n: 'int' } },
        database: { table_name: 'to_file', rejects: { to: 'file', path: out } },
      }),
      pg: db.url,
    });
    expectCounts(r, 100, 1);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({
        row_number: 4,
        reason: 'n: cannot cast x to integer',
        raw: { id: '3', n: 'x' },
      }),
    ]);
  });

  it('rolls back everything past rejects.max_rows', async () => {
    const src = file('bad2.csv');
    await expect(
      runLoad({
        source: src,
        config: config({
          schema_config: { data_type: { n: 'int' } },
          database: { table_name: 'too_many', rejects: { max_rows: 0 } },
        }),
        pg: db.url,
      }),
    ).rejects.toMatchObject({ code: 'too_many_rejects' });
    expect(await count(client, 'pg_tables', `tablename = 'too_many'`)).toBe(0);
  });

  it('keeps the date format DuckDB sniffed from a CSV (day first)', async () => {
    const src = file('days.csv');
    await writeFixture(
      src,
      `SELECT i AS id, strftime(DATE '2024-01-01' + i::INTEGER, '%d/%m/%Y') AS day FROM range(400) t(i)`,
    );
    const r = await runLoad({
      source: src,
      config: config({ database: { table_name: 'days' } }),
      pg: db.url,
    });
    expectCounts(r, 400);
    const d = await client.query(
      `SELECT pg_typeof(day)::text AS t, min(day)::text AS lo, max(day)::text AS hi, count(DISTINCT day)::int AS n FROM days GROUP BY 1`,
    );
    expect(d.rows[0]).toEqual({ t: 'date', lo: '2024-01-01', hi: '2025-02-03', n: 400 });
  });

  it('reads real scraped CSV: snake-case names, auto-detected date format', async () => {
    const iphones = join(sharedDataDir(), 'products/chile-iphones-2024/productos_falabella.csv');
    const r1 = await runLoad({
      source: iphones,
      config: config({ database: { table_name: 'iphones' } }),
      pg: db.url,
    });
    const [row] = await duckQuery<{ n: bigint }>(`SELECT count(*) AS n FROM read_csv_auto('${iphones}')`);
    expectCounts(r1, Number(row!.n));
    const cols = await client.query(`SELECT precio_normal FROM iphones LIMIT 1`);
    expect(cols.rows[0].precio_normal).toMatch(/^\$\s+[\d.]+$/);

    const rsi = join(sharedDataDir(), 'indicators/cs-rsi.csv');
    const r2 = await runLoad({
      source: rsi,
      config: config({ schema_config: { data_type: { date: 'date' } }, database: { table_name: 'rsi' } }),
      pg: db.url,
    });
    expect(r2.rejected).toBe(0);
    const d = await client.query(`SELECT min(date)::text AS lo, count(*)::int AS n FROM rsi`);
    expect(d.rows[0]).toEqual({ lo: '2009-12-14', n: r2.rows });
  });
});
