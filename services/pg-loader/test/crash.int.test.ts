/**
 * Crashes in the middle of a COPY, with real processes and servers:
 * - the built service (dist/main.js) killed with SIGKILL while PostgreSQL is receiving a file's
 *   rows: the transaction rolls back (no row, no ledger entry), and the restarted service loads
 *   the file exactly once;
 * - PostgreSQL itself restarted (immediate mode: every backend killed) mid-COPY, on a private
 *   cluster started for this file (the shared server other tests use is never restarted): the
 *   service's event is retried and loads once; a `parquetry load` (runLoad) replacing a table
 *   fails, leaves the old table whole, and a rerun succeeds.
 * To crash at a known point rather than race a fast COPY, a row trigger on the table stops the
 * COPY half-way through the file on an advisory lock the test holds: the crash always lands
 * mid-COPY, with some rows sent and the transaction open. The replacing load is stopped the same
 * way at its swap, by a reader still holding the old table.
 * The lake side of each comparison is DuckDB over the catalog's live files.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig, Metrics, silentLogger } from '@parquetry/service';
import { createTestDatabase, requireServers, type TestDatabase } from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPgLoader,
  LAKE_FILE_COLUMN,
  ledgerEntries,
  type PgLoader,
  pgLoaderServiceSchema,
  runLoad,
} from '../src/index.js';
import { config, expectSameChecksum, writeFixture } from './helpers.js';
import { type Lake, startLake, TICK_COLUMNS, tableChecksum, tickSelect, waitFor } from './lake-harness.js';
import { type PrivatePostgres, startPrivatePostgres } from './private-pg.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const skip = await requireServers({ nats: true, postgres: true });
const ES = { symbol: 'ES', date: '2025-09-03' };
const esDir = 'ticks/symbol=ES/date=2025-09-03';
const BIG = 200_000;
/** The COPY of the big file stops at this row until the test lets it go (or crashes it). */
const STALL_SEQ = 1000 + BIG / 2;
const STALL_LOCK = '4242, 1';

/** A row trigger on `ticks` that waits on the test's advisory lock when it meets STALL_SEQ. */
async function installStall(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE OR REPLACE FUNCTION pgl_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.stream_seq = ${STALL_SEQ} THEN
        PERFORM pg_advisory_lock(${STALL_LOCK});
        PERFORM pg_advisory_unlock(${STALL_LOCK});
      END IF;
      RETURN NEW;
    END $$`);
  await client.query(
    'CREATE TRIGGER pgl_test_stall BEFORE INSERT ON ticks FOR EACH ROW EXECUTE FUNCTION pgl_test_stall()',
  );
}

/**
 * Waits until a COPY in `database` is stopped on `waitEvent` (`advisory`: the stall trigger;
 * `relation`: a table lock); answers the rows it had processed.
 */
async function waitForStalledCopy(
  client: pg.ClientBase,
  database: string,
  waitEvent: 'advisory' | 'relation',
): Promise<number> {
  return waitFor(`a load stopped on ${waitEvent}`, async () => {
    const r = await client.query<{ n: string | null }>(
      `SELECT p.tuples_processed AS n FROM pg_stat_activity a LEFT JOIN pg_stat_progress_copy p USING (pid)
       WHERE a.datname = $1 AND a.wait_event_type = 'Lock' AND a.wait_event = $2`,
      [database, waitEvent],
    );
    return r.rows.length > 0 ? Number(r.rows[0]!.n ?? 0) : undefined;
  });
}

async function perFile(client: pg.ClientBase, table: string): Promise<[string, number][]> {
  const r = await client.query<{ f: string; n: string }>(
    `SELECT ${LAKE_FILE_COLUMN} AS f, count(*) AS n FROM ${table} GROUP BY 1 ORDER BY 1`,
  );
  return r.rows.map((x) => [x.f, Number(x.n)]);
}

async function expectTableEqualsLake(lake: Lake, client: pg.ClientBase): Promise<void> {
  const live = await lake.catalog.liveFiles('ticks');
  expect(await perFile(client, 'ticks')).toEqual(live.map((f) => [f.path, f.rows]));
  expect((await ledgerEntries(client, 'public.ticks')).map((e) => [e.file, e.rows])).toEqual(
    live.map((f) => [f.path, f.rows]),
  );
  expectSameChecksum(await lake.lakeChecksum(), await tableChecksum(client, 'ticks'), TICK_COLUMNS);
}

describe.skipIf(skip)('pg-loader killed with SIGKILL mid-COPY', () => {
  let lake: Lake;
  let db: TestDatabase;
  let client: pg.Client;
  let service: ChildProcess | undefined;

  function startService(): ChildProcess {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        NATS_URL: lake.nats.url,
        LAKE_URL: lake.lakeUrl,
        DATABASE_URL: db.url,
        HTTP_PORT: '0',
        PG_LOADER_DATASETS: 'ticks',
        PG_LOADER_ACK_WAIT_MS: '3000',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    service = child;
    return child;
  }

  async function kill9(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGKILL');
    });
  }

  beforeAll(async () => {
    lake = await startLake();
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    if (service) await kill9(service);
    await client?.end();
    await db?.drop();
    await lake?.close();
  });

  it('rolls the file back, and the restarted service loads it exactly once', async () => {
    expect(existsSync(MAIN), `${MAIN} is missing: build @parquetry/pg-loader first`).toBe(true);
    const small = await lake.writeFile(`${esDir}/small.parquet`, tickSelect('ES', ES.date, 0, 1000));
    await lake.commit(ES, [small]);
    let child = startService();
    await waitFor('the first file loaded', async () =>
      (await ledgerEntries(client, 'public.ticks').catch(() => [])).length === 1 ? true : undefined,
    );

    await installStall(client);
    await client.query(`SELECT pg_advisory_lock(${STALL_LOCK})`);
    const big = await lake.writeFile(`${esDir}/big.parquet`, tickSelect('ES', ES.date, 1000, BIG));
    await lake.commit(ES, [big]);
    expect(await waitForStalledCopy(client, db.name, 'advisory')).toBe(BIG / 2);
    await kill9(child);
    // The backend goes on with what it had received, then meets the end of the dead connection.
    await client.query(`SELECT pg_advisory_unlock(${STALL_LOCK})`);
    // PostgreSQL notices the lost client and aborts its transaction: wait for the backend to go.
    await waitFor('the killed loader gone from PostgreSQL', async () => {
      const r = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [db.name],
      );
      return Number(r.rows[0]!.n) === 0 ? true : undefined;
    });
    expect(await perFile(client, 'ticks')).toEqual([[small.path, 1000]]);
    expect((await ledgerEntries(client, 'public.ticks')).map((e) => e.file)).toEqual([small.path]);

    child = startService();
    await waitFor(
      'the big file loaded after the restart',
      async () => ((await ledgerEntries(client, 'public.ticks')).length === 2 ? true : undefined),
      60_000,
    );
    await expectTableEqualsLake(lake, client);
    // Its event, redelivered after the ack wait, finds the file in the ledger: still once.
    await waitFor('the redelivered event settled', async () => {
      const info = await lake.bus.jsm.consumers.info('LAKE', 'pg-loader-ticks');
      return info.num_ack_pending === 0 && info.num_pending === 0 ? true : undefined;
    });
    expect(await perFile(client, 'ticks')).toEqual([
      [big.path, BIG],
      [small.path, 1000],
    ]);
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGTERM');
    });
  });
});

const privatePg = skip ? undefined : await startPrivatePostgres();
const noPrivatePg = privatePg === undefined || 'unavailable' in privatePg;
if (noPrivatePg && privatePg && process.env.CI) {
  throw new Error(`CI needs a private PostgreSQL cluster for the restart test: ${privatePg.unavailable}`);
}

describe.skipIf(skip || noPrivatePg)('a PostgreSQL restart mid-COPY (private cluster)', () => {
  const server = privatePg as PrivatePostgres;
  let lake: Lake;
  let pool: pg.Pool;
  let client: pg.Client;
  let duckdb: DuckDBInstance;
  let app: PgLoader | undefined;

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: server.url });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  beforeAll(async () => {
    lake = await startLake();
    pool = new pg.Pool({ connectionString: server.url, max: 3 });
    pool.on('error', () => {});
    duckdb = await DuckDBInstance.create(':memory:', { threads: '2' });
    client = await connect();
  });

  afterAll(async () => {
    await app?.stop();
    await client?.end().catch(() => {});
    await pool?.end().catch(() => {});
    duckdb?.closeSync();
    await lake?.close();
    server?.close();
  });

  it('the service retries the event after the restart and loads the file once', async () => {
    const config = loadConfig(pgLoaderServiceSchema, {
      NATS_URL: lake.nats.url,
      LAKE_URL: lake.lakeUrl,
      DATABASE_URL: server.url,
      PG_LOADER_DATASETS: 'ticks',
      PG_LOADER_ACK_WAIT_MS: '5000',
      LOG_LEVEL: 'silent',
    });
    app = await createPgLoader({
      config,
      bus: lake.bus,
      store: lake.store,
      duckdb,
      pool,
      logger: silentLogger(),
      metrics: new Metrics('pg-loader', { defaults: false }),
    });
    const small = await lake.writeFile(`${esDir}/small.parquet`, tickSelect('ES', ES.date, 0, 1000));
    await lake.commit(ES, [small]);
    await waitFor('the first file loaded', async () =>
      (await ledgerEntries(client, 'public.ticks').catch(() => [])).length === 1 ? true : undefined,
    );

    await installStall(client);
    await client.query(`SELECT pg_advisory_lock(${STALL_LOCK})`);
    const big = await lake.writeFile(`${esDir}/big.parquet`, tickSelect('ES', ES.date, 1000, BIG));
    await lake.commit(ES, [big]);
    expect(await waitForStalledCopy(client, 'postgres', 'advisory')).toBe(BIG / 2);
    // Every backend dies, the test's lock with them; the retry passes the trigger freely.
    server.restart('immediate');
    client = await connect();
    await waitFor(
      'the big file loaded after the restart',
      async () => ((await ledgerEntries(client, 'public.ticks')).length === 2 ? true : undefined),
      90_000,
    );
    await expectTableEqualsLake(lake, client);
    await app.stop();
    app = undefined;
  });

  it('a replacing load fails, the old table stays whole, and a rerun loads once', async () => {
    const dir = lake.dir.path;
    const v1 = join(dir, 'v1.parquet');
    const v2 = join(dir, 'v2.parquet');
    await writeFixture(v1, 'SELECT i AS id, i * 0.5 AS v FROM range(1000) t(i)');
    await writeFixture(v2, `SELECT i AS id, i * 0.5 AS v FROM range(${BIG}) t(i)`);
    const cfg = (mode: 'fail' | 'replace') =>
      config({
        database: { table_name: 'swap', if_table_exists: mode },
        os_configuration: { memory_limit_mb: 256 },
      });
    await runLoad({ source: v1, config: cfg('fail'), pg: server.url });
    // A reader inside a transaction holds the old table: the load runs to its swap and waits there.
    const reader = await connect();
    await reader.query('BEGIN');
    expect((await reader.query('SELECT count(*) AS n FROM swap')).rows[0].n).toBe('1000');
    const failing = runLoad({ source: v2, config: cfg('replace'), pg: server.url });
    failing.catch(() => {});
    expect(await waitForStalledCopy(client, 'postgres', 'relation')).toBe(0);
    // The new rows are all in the staging table, invisible: the reader still sees the old table.
    // (A new reader would queue behind the swap's lock, and then see the new table.)
    expect((await reader.query('SELECT count(*) AS n FROM swap')).rows[0].n).toBe('1000');
    server.restart('immediate');
    await expect(failing).rejects.toThrow();
    await reader.end().catch(() => {});
    client = await connect();
    const sum = async () =>
      (await client.query<{ n: string; s: string }>('SELECT count(*) AS n, sum(id) AS s FROM swap')).rows[0]!;
    expect(await sum()).toEqual({ n: '1000', s: String((999 * 1000) / 2) });
    const staging = await client.query(`SELECT to_regclass('public.swap__pq_new') AS t`);
    expect(staging.rows[0].t).toBeNull();
    const rerun = await runLoad({ source: v2, config: cfg('replace'), pg: server.url });
    expect(rerun.loaded).toBe(BIG);
    expect(await sum()).toEqual({ n: String(BIG), s: String(((BIG - 1) * BIG) / 2) });
  });
});
