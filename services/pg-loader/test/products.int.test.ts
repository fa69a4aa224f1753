/**
 * The real products (shared/data through testkit, written in ingest-backup's layout) followed
 * into PostgreSQL under each drift policy. Their types differ by retailer: Tottus' `regularPrice`
 * and `currentPrice` are BIGINT, everyone else's are text ("1190"). The e2e suite found the
 * default policy, `evolve`, dead-lettering the commit that brought the second type: 297 of
 * 18,660 rows never arrived.
 * - evolve: the column becomes text (ALTERed in the load's transaction when the table had
 *   BIGINT; loaded as text when it had text already) — every row, every value's text unchanged;
 * - fail: the drifted load stops, the table keeps its type and rows;
 * - ignore: the table keeps BIGINT, the text prices are cast (they all are digits here).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { type DuckDB, type FileEntry, type LakeCommitted, openDuckDB } from '@parquetry/lake';
import { Metrics, silentLogger } from '@parquetry/service';
import { createTestDatabase, requireServers, type TestDatabase } from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatasetFollower,
  LAKE_FILE_COLUMN,
  ledgerEntries,
  parseLoadConfig,
  SCHEMA_REGISTRY_TABLE,
} from '../src/index.js';
import { duckQuery } from './helpers.js';
import { type Lake, startLake } from './lake-harness.js';
import { type ProductsWritten, writeProducts } from './products-lake.js';

const skip = await requireServers({ nats: true, postgres: true });

const PRICES = ['regularPrice', 'currentPrice'] as const;

describe.skipIf(skip)('the real products under each drift policy', () => {
  let lake: Lake;
  let duck: DuckDB;
  let duckdb: DuckDBInstance;
  let db: TestDatabase;
  let client: pg.Client;
  let pool: pg.Pool;
  let written: ProductsWritten;

  beforeAll(async () => {
    lake = await startLake();
    duck = await openDuckDB({ threads: 1 });
    written = await writeProducts(lake, duck);
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => {});
    duckdb = await DuckDBInstance.create(':memory:', { threads: '1' });
  });

  afterAll(async () => {
    await pool?.end();
    await client?.end();
    duckdb?.closeSync();
    duck?.close();
    await db?.drop();
    await lake?.close();
  });

  function follower(table: string, policy: 'fail' | 'evolve' | 'ignore'): DatasetFollower {
    return new DatasetFollower({
      dataset: 'products',
      table: { schema: 'public', name: table },
      config: parseLoadConfig({
        schema_config: { column_naming: 'preserve' },
        os_configuration: { memory_limit_mb: 256, threads: 1 },
        database: {
          table_name: table,
          if_table_exists: 'append',
          schema_drift: policy,
          rejects: { to: 'table' },
          ledger: true,
        },
      }),
      pool,
      catalog: lake.catalog,
      store: lake.store,
      duckdb,
      logger: silentLogger(),
      metrics: new Metrics('pg-loader', { defaults: false }),
    });
  }

  async function retailerFiles(retailer: string): Promise<FileEntry[]> {
    return lake.catalog.liveFiles('products', { retailer });
  }

  /** The append event a writer announced for these files. */
  function appended(files: FileEntry[]): LakeCommitted {
    const parts = new Map<
      string,
      { values: Record<string, string>; added: LakeCommitted['partitions'][0]['added'] }
    >();
    for (const f of files) {
      const [, r, d] = /retailer=([^/]+)\/date=([^/]+)\//.exec(f.path)!;
      const key = `${r}|${d}`;
      const p = parts.get(key) ?? { values: { retailer: r!, date: d! }, added: [] };
      p.added.push({ path: f.path, rows: f.rows, bytes: f.bytes });
      parts.set(key, p);
    }
    return {
      dataset: 'products',
      commit_id: `products-${files[0]!.path}`,
      committed_at: new Date().toISOString(),
      operation: 'append',
      partitions: [...parts.values()].map((p) => ({ ...p, removed: [] })),
    };
  }

  async function columnType(table: string, column: string): Promise<string> {
    const r = await client.query<{ t: string }>(
      `SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
       WHERE a.attrelid = $1::regclass AND a.attname = $2`,
      [table, column],
    );
    return r.rows[0]!.t;
  }

  async function count(sql: string): Promise<number> {
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  }

  /** Each value of `column` as text, sorted: DuckDB over the files (their own type, cast to VARCHAR) … */
  async function lakeText(files: readonly FileEntry[], column: string): Promise<string[]> {
    const out: string[] = [];
    for (const f of files) {
      const cols = await duckQuery<{ column_name: string }>(
        `DESCRIBE SELECT * FROM read_parquet('${lake.abs(f.path)}')`,
      );
      if (!cols.some((c) => c.column_name === column)) {
        for (let i = 0; i < f.rows; i++) out.push('(null)');
        continue;
      }
      const rows = await duckQuery<{ v: string | null }>(
        `SELECT CAST("${column}" AS VARCHAR) AS v FROM read_parquet('${lake.abs(f.path)}')`,
      );
      for (const r of rows) out.push(r.v ?? '(null)');
    }
    return out.sort();
  }

  /** … and PostgreSQL over the table's rows of those files. */
  async function tableText(table: string, files: readonly FileEntry[], column: string): Promise<string[]> {
    const r = await client.query<{ v: string | null }>(
      `SELECT "${column}"::text AS v FROM ${table} WHERE ${LAKE_FILE_COLUMN} = ANY($1::text[])`,
      [files.map((f) => f.path)],
    );
    return r.rows.map((x) => x.v ?? '(null)').sort();
  }

  async function rowsPerFile(table: string): Promise<[string, number][]> {
    const r = await client.query<{ f: string; n: string }>(
      `SELECT ${LAKE_FILE_COLUMN} AS f, count(*) AS n FROM ${table} GROUP BY 1`,
    );
    return r.rows.map((x): [string, number] => [x.f, Number(x.n)]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  it('evolve: every product lands; a BIGINT price column becomes text in the load that brings text', async () => {
    expect(written.rows).toBe(18_660);
    const table = 'products_evolve';
    const f = follower(table, 'evolve');
    const tottus = await retailerFiles('tottus');
    expect(tottus.length).toBeGreaterThan(0);
    // Tottus first: the table is created with BIGINT prices.
    expect((await f.handle(appended(tottus))).loadedFiles).toBe(tottus.length);
    for (const c of PRICES) expect(await columnType(table, c)).toBe('bigint');
    // Then everything else (the start-up reconcile): Lider's text prices widen the columns.
    const s = await f.reconcile();
    expect(s.rejectedRows).toBe(0);
    for (const c of PRICES) expect(await columnType(table, c)).toBe('text');

    const live = await lake.catalog.liveFiles('products');
    expect(await count(`SELECT count(*) AS n FROM ${table}`)).toBe(18_660);
    expect(await rowsPerFile(table)).toEqual(
      live.map((x): [string, number] => [x.path, x.rows]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
    expect((await ledgerEntries(client, `public.${table}`)).map((e) => e.file).sort()).toEqual(
      live.map((x) => x.path).sort(),
    );
    // No value changed its text: the ALTERed BIGINTs, the text loaded after, per retailer.
    const lider = await retailerFiles('lider');
    for (const c of PRICES) {
      expect(await tableText(table, tottus, c)).toEqual(await lakeText(tottus, c));
      expect(await tableText(table, lider, c)).toEqual(await lakeText(lider, c));
    }
    expect(await count(`SELECT count(*) AS n FROM ${table} WHERE "regularPrice" = '1190'`)).toBeGreaterThan(
      0,
    );
    const persisted = await client.query<{ columns: { name: string; pgType: string }[] }>(
      `SELECT columns FROM ${SCHEMA_REGISTRY_TABLE} WHERE table_name = $1`,
      [`public.${table}`],
    );
    for (const c of PRICES) {
      expect(persisted.rows[0]!.columns.find((x) => x.name === c)?.pgType).toBe('text');
    }
  });

  it('evolve: text first, then BIGINT — the numbers load as their text, no ALTER needed', async () => {
    const table = 'products_text_first';
    const f = follower(table, 'evolve');
    const lider = await retailerFiles('lider');
    const tottus = await retailerFiles('tottus');
    await f.handle(appended(lider));
    for (const c of PRICES) expect(await columnType(table, c)).toBe('text');
    expect((await f.handle(appended(tottus))).rejectedRows).toBe(0);
    for (const c of PRICES) {
      expect(await columnType(table, c)).toBe('text');
      expect(await tableText(table, tottus, c)).toEqual(await lakeText(tottus, c));
    }
    const want = [...lider, ...tottus].reduce((n, x) => n + x.rows, 0);
    expect(await count(`SELECT count(*) AS n FROM ${table}`)).toBe(want);
  });

  it('fail: the text prices stop the load; the table keeps BIGINT and its rows', async () => {
    const table = 'products_fail';
    const f = follower(table, 'fail');
    const tottus = await retailerFiles('tottus');
    await f.handle(appended(tottus));
    await expect(f.handle(appended(await retailerFiles('lider')))).rejects.toMatchObject({
      code: 'schema_drift',
      message: expect.stringContaining('~ regularPrice bigint -> text'),
    });
    for (const c of PRICES) expect(await columnType(table, c)).toBe('bigint');
    expect(await count(`SELECT count(*) AS n FROM ${table}`)).toBe(tottus.reduce((n, x) => n + x.rows, 0));
  });

  it('ignore: the table keeps BIGINT; text prices are cast, those that do not cast are rejected', async () => {
    const table = 'products_ignore';
    const f = follower(table, 'ignore');
    const tottus = await retailerFiles('tottus');
    const lider = await retailerFiles('lider');
    await f.handle(appended(tottus));
    const s = await f.handle(appended(lider));
    for (const c of PRICES) expect(await columnType(table, c)).toBe('bigint');
    const liderRows = lider.reduce((n, x) => n + x.rows, 0);
    // What casts is decided by DuckDB over the files, independently of pg-loader.
    const files = `read_parquet([${lider.map((x) => `'${lake.abs(x.path)}'`).join(', ')}], union_by_name = true)`;
    const bad = PRICES.map((c) => `("${c}" IS NOT NULL AND TRY_CAST("${c}" AS BIGINT) IS NULL)`).join(' OR ');
    const [rejected] = await duckQuery<{ n: bigint }>(`SELECT count(*) AS n FROM ${files} WHERE ${bad}`);
    expect(s.rejectedRows).toBe(Number(rejected!.n));
    expect(s.loadedRows + s.rejectedRows).toBe(liderRows);
    expect(await count(`SELECT count(*) AS n FROM ${table}_rejects`)).toBe(s.rejectedRows);
    for (const c of PRICES) {
      const cast = await duckQuery<{ v: string }>(
        `SELECT COALESCE(CAST(TRY_CAST("${c}" AS BIGINT) AS VARCHAR), '(null)') AS v FROM ${files} WHERE NOT (${bad})`,
      );
      expect(await tableText(table, lider, c)).toEqual(cast.map((r) => r.v).sort());
    }
  });
});
