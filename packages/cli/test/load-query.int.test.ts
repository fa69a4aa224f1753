/**
 * `parquetry load` and `parquetry query` through the CLI's commands (in-process, and once as the
 * built binary), against a real PostgreSQL, a real NATS catalog and a filesystem lake. Every
 * expected figure is computed by DuckDB over the source files or by PostgreSQL over the table,
 * never taken from the command's own report.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus } from '@parquetry/bus';
import { type Catalog, type DuckDB, type NewFile, openCatalog, openDuckDB } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import {
  createTestDatabase,
  requireServers,
  startNats,
  type TestDatabase,
  tempDir,
} from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const skip = await requireServers({ nats: true, postgres: true });

/** The benchmark's 5 columns: bigint, double, text, timestamptz, int. */
const fiveColumns = (
  from: number,
  n: number,
) => `SELECT CAST(i AS BIGINT) AS id, CAST(i * 0.5 AS DOUBLE) AS value,
  'row-' || i AS label, TIMESTAMPTZ '2025-09-03 00:00:00+00' + to_seconds(i) AS ts, CAST(i % 97 AS INTEGER) AS qty
  FROM range(${from}, ${from + n}) t(i)`;

const tickSelect = (symbol: string, from: number, n: number) => `SELECT '${symbol}' AS symbol,
  DATE '2025-09-03' AS date, TIMESTAMPTZ '2025-09-03 00:00:00+00' + to_milliseconds(i) AS ts,
  CAST(5000 + (i % 1000) * 0.25 AS DOUBLE) AS price, CAST(1 + i % 7 AS DOUBLE) AS size,
  CAST(i AS BIGINT) AS stream_seq FROM range(${from}, ${from + n}) t(i)`;

/** count, sums and a text digest, rendered alike by DuckDB and PostgreSQL. */
const CHECK_SQL = (from: string, epoch: string) => `SELECT count(*)::bigint AS n, sum(id)::bigint AS ids,
  sum(value)::float8 AS vals, sum(length(label))::bigint AS chars, sum(${epoch})::bigint AS secs,
  sum(qty)::bigint AS qtys FROM ${from}`;

describe.skipIf(skip)('parquetry load and query', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let bus: Bus;
  let catalog: Catalog;
  let duck: DuckDB;
  let db: TestDatabase;
  let client: pg.Client;
  const dir = tempDir('pq-cli-load-');
  const lakeDir = join(dir.path, 'lake');
  let env: Record<string, string>;
  let commits = 0;

  async function duckRows(sql: string): Promise<Record<string, unknown>[]> {
    return (await duck.conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  }

  async function writeParquet(path: string, select: string, format = 'parquet'): Promise<string> {
    mkdirSync(dirname(path), { recursive: true });
    const opts =
      format === 'csv' ? 'FORMAT csv, HEADER true' : format === 'json' ? 'FORMAT json' : 'FORMAT parquet';
    await duck.conn.run(`COPY (${select}) TO '${path}' (${opts})`);
    return path;
  }

  /** Writes a tick file into the lake and commits it to the catalog; returns its key. */
  async function commitTicks(symbol: string, name: string, select: string, remove: string[] = []) {
    const key = `ticks/symbol=${symbol}/date=2025-09-03/${name}.parquet`;
    const path = await writeParquet(join(lakeDir, key), select);
    const [row] = await duckRows(`SELECT count(*)::bigint AS n FROM read_parquet('${path}')`);
    const file: NewFile = {
      path: key,
      rows: Number(row!.n),
      bytes: statSync(path).size,
      sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    };
    await catalog.commit({
      dataset: 'ticks',
      commitId: `cli-test-${++commits}`,
      changes: [{ partition: { symbol, date: '2025-09-03' }, add: [file], remove }],
    });
    return key;
  }

  function writeConfig(name: string, text: string): string {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  }

  async function pgCheck(table: string) {
    const r = await client.query(CHECK_SQL(table, 'extract(epoch from ts)'));
    return Object.fromEntries(Object.entries(r.rows[0]!).map(([k, v]) => [k, Number(v)]));
  }

  async function duckCheck(file: string) {
    const [r] = await duckRows(CHECK_SQL(`read_parquet('${file}')`, 'epoch(ts)'));
    return Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, Number(v)]));
  }

  beforeAll(async () => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: 'cli-load-test', logger: silentLogger() });
    catalog = await openCatalog({ nc: bus.nc, writerId: 'test' });
    duck = await openDuckDB({ threads: 1 });
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    env = { NATS_URL: nats.url, LAKE_URL: `file://${lakeDir}`, DATABASE_URL: db.url };
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
    duck?.close();
    await bus?.close();
    await nats?.stop();
    dir.remove();
  });

  it('loads a Parquet file and reports rows, time, peak memory and the strategy with its reason', async () => {
    const file = await writeParquet(join(dir.path, 'five.parquet'), fiveColumns(0, 50_000));
    const cfg = writeConfig(
      'five.yaml',
      'database:\n  table_name: five\n  if_table_exists: fail\nos_configuration:\n  memory_limit_mb: 256\n',
    );
    const r = await runCli(['load', file, '--config', cfg, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json<Record<string, unknown>>();
    expect(out).toMatchObject({ table: 'public.five', rows: 50_000, loaded: 50_000, rejected: 0 });
    expect(['eager', 'batched', 'streaming']).toContain(out.strategy);
    expect(String(out.reason)).toMatch(/\d/);
    expect(out.peakRssMb).toBeGreaterThan(0);
    expect(out.seconds).toBeGreaterThan(0);
    expect(await pgCheck('five')).toEqual(await duckCheck(file));

    // if_table_exists = fail refuses a second load and leaves the table alone.
    const again = await runCli(['load', file, '--config', cfg], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect((await pgCheck('five')).n).toBe(50_000);
  });

  it('loads CSV with a TOML config: bad rows go to the rejects with their row number and reason', async () => {
    const csv = join(dir.path, 'prices.csv');
    const lines = ['sku,Precio Normal,day'];
    for (let i = 1; i <= 200; i++) {
      lines.push(`s${i},${i % 50 === 0 ? 'n/a' : i * 10},${i === 77 ? '2025-13-45' : '2025-09-03'}`);
    }
    writeFileSync(csv, `${lines.join('\n')}\n`);
    const cfg = writeConfig(
      'prices.toml',
      `[schema_config]\ncolumn_naming = "snake"\n[schema_config.data_type]\nprecio_normal = "bigint"\nday = "date"\n[database]\ntable_name = "prices"\n`,
    );
    const r = await runCli(['load', csv, '--config', cfg], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/loaded 195 of 200 rows into public\.prices/);
    expect(r.stdout).toMatch(/strategy: (eager|batched|streaming) — /);
    expect(r.stdout).toMatch(/peak RSS \d+ MB/);
    expect(r.stdout).toMatch(/rejected 5 rows → "public"\."prices_rejects"/);
    const table = await client.query<{ n: string; s: string }>(
      'SELECT count(*) AS n, sum(precio_normal) AS s FROM prices',
    );
    const expected = Array.from({ length: 200 }, (_, k) => k + 1).filter((i) => i % 50 !== 0 && i !== 77);
    expect(Number(table.rows[0]!.n)).toBe(expected.length);
    expect(Number(table.rows[0]!.s)).toBe(expected.reduce((a, i) => a + i * 10, 0));
    const rejects = await client.query<{ row_number: string; reason: string }>(
      'SELECT row_number, reason FROM prices_rejects ORDER BY row_number',
    );
    expect(rejects.rows.map((x) => Number(x.row_number))).toEqual([50, 77, 100, 150, 200]);
    expect(rejects.rows.find((x) => Number(x.row_number) === 50)!.reason).toMatch(/precio_normal/);
    expect(rejects.rows.find((x) => Number(x.row_number) === 77)!.reason).toMatch(/day/);
  });

  it('loads NDJSON, taking the input from the config when no argument is given', async () => {
    const file = await writeParquet(join(dir.path, 'five.ndjson'), fiveColumns(0, 3000), 'json');
    const cfg = writeConfig(
      'nd.yaml',
      `path: ${JSON.stringify(file)}\nformat: ndjson\ndatabase:\n  table_name: five_nd\n`,
    );
    const r = await runCli(['load', '--config', cfg, '--json'], env);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ rows: 3000, loaded: 3000, input: { kind: 'files' } });
    const t = await client.query<{ n: string; ids: string }>(
      'SELECT count(*) AS n, sum(id) AS ids FROM five_nd',
    );
    expect(Number(t.rows[0]!.n)).toBe(3000);
    expect(Number(t.rows[0]!.ids)).toBe((2999 * 3000) / 2);
  });

  it('a config error names the key; a bad value stops before anything is loaded', async () => {
    const cfg = writeConfig('bad.yaml', 'database:\n  table_name: x\n  if_table_exists: merge\n  tabel: y\n');
    const r = await runCli(['load', join(dir.path, 'five.parquet'), '--config', cfg, '--json'], env);
    expect(r.code).not.toBe(0);
    const err = r.json<{ error: { message: string } }>().error;
    expect(err.message).toMatch(/database\.if_table_exists/);
    expect(err.message).toMatch(/database\.tabel: unknown key/);
    const t = await client.query(`SELECT to_regclass('public.x') AS t`);
    expect(t.rows[0].t).toBeNull();
  });

  it('loads a lake dataset from the catalog once, tagging rows with their lake file', async () => {
    const es = await commitTicks('ES', 'a', tickSelect('ES', 0, 4000));
    const nq = await commitTicks('NQ', 'b', tickSelect('NQ', 0, 2500));
    const cfg = writeConfig('ticks.yaml', 'database:\n  table_name: ticks_pg\n  if_table_exists: append\n');
    const first = await runCli(['load', 'ticks', '--config', cfg, '--json'], env);
    expect(first.code).toBe(0);
    expect(first.json()).toMatchObject({
      rows: 6500,
      input: { kind: 'dataset', dataset: 'ticks', files: 2 },
    });
    const perFile = await client.query<{ f: string; n: string }>(
      'SELECT _lake_file AS f, count(*) AS n FROM ticks_pg GROUP BY 1 ORDER BY 1',
    );
    expect(perFile.rows.map((x) => [x.f, Number(x.n)])).toEqual([
      [es, 4000],
      [nq, 2500],
    ]);
    const ledger = await client.query<{ file_path: string }>(
      `SELECT file_path FROM parquetry_load_ledger WHERE table_name = 'public.ticks_pg' ORDER BY 1`,
    );
    expect(ledger.rows.map((x) => x.file_path)).toEqual([es, nq]);

    // Again, with one new file: only that one loads.
    const es2 = await commitTicks('ES', 'c', tickSelect('ES', 4000, 1000));
    const second = await runCli(['load', 'ticks', '--config', cfg, '--json'], env);
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({ rows: 1000, skippedFiles: [es, nq] });
    const sums = await client.query<{ n: string; s: string }>(
      'SELECT count(*) AS n, sum(stream_seq) AS s FROM ticks_pg',
    );
    const [lake] = await duckRows(
      `SELECT count(*)::bigint AS n, sum(stream_seq)::bigint AS s FROM read_parquet([${[es, nq, es2]
        .map((k) => `'${join(lakeDir, k)}'`)
        .join(', ')}])`,
    );
    expect([Number(sums.rows[0]!.n), Number(sums.rows[0]!.s)]).toEqual([Number(lake!.n), Number(lake!.s)]);

    // --where narrows to partitions; an unknown partition column is refused.
    const where = await runCli(['load', 'ticks', '--config', cfg, '--where', 'symbol=NQ', '--json'], env);
    expect(where.json()).toMatchObject({ rows: 0, skippedFiles: [nq] });
    const bad = await runCli(['load', 'ticks', '--config', cfg, '--where', 'venue=x'], env);
    expect(bad.code).toBe(2);
  });

  it('queries the live files only: a compaction whose old files still lie on disk counts each row once', async () => {
    const before = await runCli(
      [
        'query',
        'SELECT symbol, count(*) AS n, sum(stream_seq) AS s FROM ticks GROUP BY 1 ORDER BY 1',
        '--json',
      ],
      env,
    );
    expect(before.code).toBe(0);
    const rowsBefore = before.json<{ rows: { symbol: string; n: number; s: number }[] }>().rows;
    const esLive = (await catalog.liveFiles('ticks', { symbol: 'ES' })).map((f) => f.path);
    await commitTicks(
      'ES',
      'compacted',
      `SELECT * FROM read_parquet([${esLive.map((k) => `'${join(lakeDir, k)}'`).join(', ')}]) ORDER BY stream_seq`,
      esLive,
    );
    for (const k of esLive) expect(existsSync(join(lakeDir, k))).toBe(true);
    const after = await runCli(
      [
        'query',
        'SELECT symbol, count(*) AS n, sum(stream_seq) AS s FROM ticks GROUP BY 1 ORDER BY 1',
        '--json',
      ],
      env,
    );
    const out = after.json<{ rows: unknown[]; columns: { name: string }[]; datasets: unknown[] }>();
    expect(out.rows).toEqual(rowsBefore);
    expect(out.rows).toEqual([
      { symbol: 'ES', n: 5000, s: (4999 * 5000) / 2 },
      { symbol: 'NQ', n: 2500, s: (2499 * 2500) / 2 },
    ]);
    expect(out.columns.map((c) => c.name)).toEqual(['symbol', 'n', 's']);
    expect(out.datasets).toEqual([{ name: 'ticks', files: 2 }]);

    // A table on a terminal-less stdout, and a dataset without files is an empty view.
    const table = await runCli(
      ['query', 'SELECT symbol, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1'],
      env,
    );
    expect(table.stdout.split('\n').slice(0, 4)).toEqual([
      'symbol  n   ',
      '------  ----',
      'ES      5000',
      'NQ      2500',
    ]);
    const empty = await runCli(
      ['query', 'SELECT count(*) AS n, min(close) AS c FROM candles', '--json'],
      env,
    );
    expect(empty.json()).toMatchObject({ rows: [{ n: 0, c: null }] });
    const capped = await runCli(['query', 'SELECT * FROM range(100)', '--max-rows', '7', '--json'], env);
    expect(capped.json()).toMatchObject({ row_count: 7, truncated: true });
  });

  it('refuses anything but one SELECT, and reads no file outside the lake snapshot', async () => {
    const target = join(dir.path, 'leak.csv');
    const refused = [
      `COPY (SELECT * FROM ticks) TO '${target}'`,
      `CREATE TABLE t AS SELECT * FROM ticks`,
      `ATTACH '${join(dir.path, 'x.db')}' AS x`,
      `SET enable_external_access = true`,
      'SELECT 1; SELECT 2',
      `SELECT * FROM read_csv('${join(dir.path, 'prices.csv')}')`,
      `SELECT * FROM read_parquet('${join(lakeDir, 'ticks/**/*.parquet')}')`,
      `EXPLAIN ANALYZE COPY (SELECT 1) TO '${target}'`,
    ];
    for (const sql of refused) {
      const r = await runCli(['query', sql, '--json'], env);
      expect(r.code, sql).toBe(2);
      expect(r.json<{ error: { code: string } }>().error.code, sql).toMatch(/^(read_only|bad_query)$/);
    }
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(dir.path, 'x.db'))).toBe(false);
  });

  it('the built binary runs both commands', async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build @parquetry/cli first`);
    const file = await writeParquet(join(dir.path, 'bin.parquet'), fiveColumns(0, 1234));
    const cfg = writeConfig('bin.yaml', 'database:\n  table_name: bin_load\n');
    const spawnEnv = { ...process.env, ...env, LOG_LEVEL: 'silent' };
    const load = spawnSync(process.execPath, [MAIN, 'load', file, '--config', cfg, '--json'], {
      env: spawnEnv,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(load.status, load.stderr).toBe(0);
    expect(JSON.parse(load.stdout)).toMatchObject({ rows: 1234, loaded: 1234 });
    const query = spawnSync(
      process.execPath,
      [MAIN, 'query', "SELECT count(*) AS n FROM ticks WHERE symbol = 'NQ'", '--json'],
      { env: spawnEnv, encoding: 'utf8', timeout: 60_000 },
    );
    expect(query.status, query.stderr).toBe(0);
    expect(JSON.parse(query.stdout).rows).toEqual([{ n: 2500 }]);
  });
});
