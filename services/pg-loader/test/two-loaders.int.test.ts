/**
 * Two pg-loader instances following one table (two DatasetFollowers, each with its own pool, so
 * its own PostgreSQL connection) against the real catalog on NATS: a writer appends
 * multi-partition commits and a compactor replaces files with multi-partition commits, while the
 * followers get the events late, out of order, twice, or both at once, and reconcile in between.
 * After every scenario the table must hold exactly the rows of the catalog's live files — per
 * file, as counted by DuckDB over the files — and the ledger exactly those files.
 *
 * Found by the e2e suite (test-e2e, E2E_PG_LOADERS=2): rows of a compacted-away file stayed in
 * the table with no ledger entry, so no reconcile ever removed them.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import {
  type Catalog,
  type CommitStep,
  type LakeCommitted,
  type NewFile,
  openCatalog,
} from '@parquetry/lake';
import { Metrics, silentLogger } from '@parquetry/service';
import { createTestDatabase, requireServers, startNats, type TestDatabase } from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatasetFollower, LAKE_FILE_COLUMN, ledgerEntries, parseLoadConfig } from '../src/index.js';
import { expectSameChecksum } from './helpers.js';
import { type Lake, type Nats, startLake, TICK_COLUMNS, tableChecksum, tickSelect } from './lake-harness.js';

const skip = await requireServers({ nats: true, postgres: true });

const DATE = '2025-09-03';
type Sym = 'ES' | 'NQ' | 'YM';
const part = (symbol: Sym) => ({ symbol, date: DATE });
const dir = (symbol: Sym) => `ticks/symbol=${symbol}/date=${DATE}`;

interface Change {
  partition: Record<string, string>;
  add: NewFile[];
  remove?: string[];
}

let commitSeq = 0;

/** One commit over several partitions through `catalog`, and the event a writer would announce. */
async function commitMany(catalog: Catalog, changes: Change[]): Promise<LakeCommitted> {
  const commitId = `two-${process.pid}-${++commitSeq}-${Date.now().toString(36)}`;
  await catalog.commit({
    dataset: 'ticks',
    commitId,
    changes: changes.map((c) => ({ partition: c.partition, add: c.add, remove: c.remove ?? [] })),
  });
  return {
    dataset: 'ticks',
    commit_id: commitId,
    committed_at: new Date().toISOString(),
    operation: changes.some((c) => (c.remove ?? []).length > 0) ? 'replace' : 'append',
    partitions: changes.map((c) => ({
      values: c.partition,
      added: c.add.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
      removed: c.remove ?? [],
    })),
  };
}

/** A seeded PRNG (mulberry32): a failing run can be replayed with PGL_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip)('two pg-loaders on one table', () => {
  let nats: Nats;
  let db: TestDatabase;
  let client: pg.Client;
  let duckdb: DuckDBInstance;
  const cleanup: (() => Promise<void>)[] = [];
  let bucketSeq = 0;

  beforeAll(async () => {
    nats = await startNats();
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    duckdb = await DuckDBInstance.create(':memory:', { threads: '1' });
  });

  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  afterAll(async () => {
    await client?.end();
    duckdb?.closeSync();
    await db?.drop();
    await nats?.stop();
  });

  async function newLake(): Promise<Lake> {
    const lake = await startLake(nats, { bucket: `pgl_two_${process.pid}_${++bucketSeq}` });
    cleanup.push(() => lake.close());
    return lake;
  }

  /** One "instance": a follower of `ticks` into `table` with a pool of ONE connection (reused, like a quiet pool). */
  function instance(lake: Lake, table: string, catalog: Catalog = lake.catalog): DatasetFollower {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    pool.on('error', () => {});
    cleanup.push(() => pool.end());
    return new DatasetFollower({
      dataset: 'ticks',
      table: { schema: 'public', name: table },
      config: parseLoadConfig({
        schema_config: { column_naming: 'preserve' },
        os_configuration: { memory_limit_mb: 256, threads: 1 },
        database: {
          table_name: table,
          if_table_exists: 'append',
          schema_drift: 'evolve',
          rejects: { to: 'table' },
          ledger: true,
        },
      }),
      pool,
      catalog,
      store: lake.store,
      duckdb,
      logger: silentLogger(),
      metrics: new Metrics('pg-loader', { defaults: false }),
    });
  }

  /** Rows per `_lake_file` in the table, sorted by file. */
  async function rowsPerFile(table: string): Promise<[string, number][]> {
    const r = await client.query<{ f: string | null; n: string }>(
      `SELECT ${LAKE_FILE_COLUMN} AS f, count(*) AS n FROM ${table} GROUP BY 1`,
    );
    return r.rows.map((x): [string, number] => [x.f ?? '(null)', Number(x.n)]).sort(byFile);
  }

  const byFile = (a: [string, number], b: [string, number]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

  /** The table is the lake: rows per file equal the catalog's live files, the ledger lists exactly them, checksums agree. */
  async function expectTableEqualsLake(lake: Lake, table: string): Promise<number> {
    const live = await lake.catalog.liveFiles('ticks');
    const want = live.map((f): [string, number] => [f.path, f.rows]).sort(byFile);
    expect(await rowsPerFile(table)).toEqual(want);
    const ledger = (await ledgerEntries(client, `public.${table}`)).map((e): [string, number] => [
      e.file,
      e.rows,
    ]);
    expect(ledger.sort(byFile)).toEqual(want);
    const source = await lake.lakeChecksum();
    expectSameChecksum(source, await tableChecksum(client, table), TICK_COLUMNS);
    return Number(source.n);
  }

  /** Sessions waiting on an advisory lock in this test's database. */
  async function lockWaiters(): Promise<number> {
    const r = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
    );
    return r.rows[0]!.n;
  }

  async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it('the instance that waited while the other created the table keeps the other one’s ledger', async () => {
    const lake = await newLake();
    const table = 'ticks_first';
    const a = instance(lake, table);
    const b = instance(lake, table);
    // Both start on an empty lake: each connection has looked the table up and found none.
    await a.reconcile();
    await b.reconcile();

    const f = await lake.writeFile(`${dir('ES')}/f1.parquet`, tickSelect('ES', DATE, 0, 700));
    const appended = await commitMany(lake.catalog, [{ partition: part('ES'), add: [f] }]);

    // Hold the table's lock, queue B's event (it creates the table) and then A's reconcile behind it.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `parquetry:public.${table}`,
      ]);
      const bDone = b.handle(appended);
      await waitUntil('B to wait for the lock', async () => (await lockWaiters()) === 1);
      const aDone = a.reconcile();
      await waitUntil('A to wait for the lock', async () => (await lockWaiters()) === 2);
      await holder.query('COMMIT');
      const [bs, as] = await Promise.all([bDone, aDone]);
      expect(bs.loadedFiles).toBe(1);
      // A found the file loaded: it neither forgot B's ledger entry nor loaded the file again.
      expect(as.loadedFiles).toBe(0);
    } finally {
      await holder.end();
    }
    expect(await expectTableEqualsLake(lake, table)).toBe(700);

    // A compaction then removes the file: whoever applies it, the rows go.
    const g = await lake.writeFile(
      `${dir('ES')}/g1.parquet`,
      `SELECT * FROM read_parquet('${lake.abs(f.path)}') ORDER BY stream_seq`,
    );
    const compacted = await commitMany(lake.catalog, [{ partition: part('ES'), add: [g], remove: [f.path] }]);
    await Promise.all([a.handle(compacted), b.handle(compacted)]);
    expect(await expectTableEqualsLake(lake, table)).toBe(700);
    expect((await rowsPerFile(table)).map((x) => x[0])).toEqual([g.path]);
  });

  it('a file a multi-partition compaction removed is never loaded again, even before the compaction reached its partition', async () => {
    const lake = await newLake();
    const table = 'ticks_mid';
    const a = instance(lake, table);
    const b = instance(lake, table);
    const f = {
      ES: await lake.writeFile(`${dir('ES')}/f.parquet`, tickSelect('ES', DATE, 0, 400)),
      NQ: await lake.writeFile(`${dir('NQ')}/f.parquet`, tickSelect('NQ', DATE, 0, 300)),
    };
    const appended = await commitMany(lake.catalog, [
      { partition: part('ES'), add: [f.ES] },
      { partition: part('NQ'), add: [f.NQ] },
    ]);
    await a.handle(appended);
    expect(await expectTableEqualsLake(lake, table)).toBe(700);

    // The compactor's catalog stops between its two partitions: applied in one, reserved in the other.
    let applies = 0;
    let paused!: () => void;
    const pausedAt = new Promise<void>((r) => {
      paused = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const compactor = await openCatalog({
      nc: lake.bus.nc,
      writerId: 'compactor',
      bucket: lake.catalog.bucket,
      onStep: async (step: CommitStep) => {
        if (step.phase === 'apply' && ++applies === 2) {
          paused();
          await gate;
        }
      },
    });
    const g = {
      ES: await lake.writeFile(
        `${dir('ES')}/g.parquet`,
        `SELECT * FROM read_parquet('${lake.abs(f.ES.path)}')`,
      ),
      NQ: await lake.writeFile(
        `${dir('NQ')}/g.parquet`,
        `SELECT * FROM read_parquet('${lake.abs(f.NQ.path)}')`,
      ),
    };
    const compacting = commitMany(compactor, [
      { partition: part('ES'), add: [g.ES], remove: [f.ES.path] },
      { partition: part('NQ'), add: [g.NQ], remove: [f.NQ.path] },
    ]);
    try {
      await pausedAt;
      // Readers already see the compaction: a reconcile on B swaps the files.
      const r = await b.reconcile();
      expect(r.removedFiles).toBe(2);
      expect(await expectTableEqualsLake(lake, table)).toBe(700);
      // The append's event again (late, redelivered) on A: one of its files is still listed in its
      // partition's stored manifest, but the compaction that removed it is visible — not loaded.
      const late = await a.handle(appended);
      expect(late.loadedFiles).toBe(0);
      expect(late.notLiveFiles).toBe(2);
      expect(await expectTableEqualsLake(lake, table)).toBe(700);
    } finally {
      release();
      await compacting.catch(() => {});
    }
    const compactedEvent = await compacting;
    await Promise.all([a.handle(compactedEvent), b.handle(compactedEvent), a.handle(appended)]);
    expect(await expectTableEqualsLake(lake, table)).toBe(700);
  });

  it('appends and compactions with events late, twice and out of order on both instances: exactly the lake', async () => {
    const seed = Number(process.env.PGL_SEED ?? Date.now() % 1_000_000);
    const random = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const lake = await newLake();
    const table = 'ticks_soak';
    // The compactor commits through its own catalog handle that dawdles between partitions, so
    // followers read while a multi-partition commit is half applied.
    const compactor = await openCatalog({
      nc: lake.bus.nc,
      writerId: 'compactor',
      bucket: lake.catalog.bucket,
      onStep: async (step) => {
        if (step.phase === 'apply') await sleep(Math.floor(random() * 25));
      },
    });
    const a = instance(lake, table);
    const b = instance(lake, table);
    await Promise.all([a.reconcile(), b.reconcile()]);

    const symbols: Sym[] = ['ES', 'NQ', 'YM'];
    const next: Record<Sym, number> = { ES: 0, NQ: 0, YM: 0 };
    const events: LakeCommitted[] = [];
    const inFlight: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    const deliver = (p: Promise<unknown>) => inFlight.push(p.catch((err) => errors.push(err)));
    let fileSeq = 0;
    let expectedRows = 0;

    for (let round = 0; round < 14; round++) {
      const live = await lake.catalog.liveFiles('ticks');
      const compactable = symbols.filter(
        (s) => live.filter((f) => f.path.startsWith(`${dir(s)}/`)).length >= 2,
      );
      let event: LakeCommitted;
      if (compactable.length > 0 && random() < 0.35) {
        // Compact one or two partitions in one commit: every live file of each into one.
        const chosen =
          compactable.length > 1 && random() < 0.6 ? compactable.slice(0, 2) : [pick(compactable)];
        const changes: Change[] = [];
        for (const s of chosen) {
          const old = live.filter((f) => f.path.startsWith(`${dir(s)}/`)).map((f) => f.path);
          const g = await lake.writeFile(
            `${dir(s)}/compact-${++fileSeq}.parquet`,
            `SELECT * FROM read_parquet([${old.map((k) => `'${lake.abs(k)}'`).join(', ')}]) ORDER BY stream_seq`,
          );
          changes.push({ partition: part(s), add: [g], remove: old });
        }
        event = await commitMany(compactor, changes);
      } else {
        // An ingest flush: one file in each of one to three partitions, one commit.
        const chosen = symbols.filter(() => random() < 0.6);
        if (chosen.length === 0) chosen.push(pick(symbols));
        const changes: Change[] = [];
        for (const s of chosen) {
          const n = 50 + Math.floor(random() * 250);
          const f = await lake.writeFile(
            `${dir(s)}/ticks-${++fileSeq}.parquet`,
            tickSelect(s, DATE, next[s], n),
          );
          next[s] += n;
          expectedRows += n;
          changes.push({ partition: part(s), add: [f] });
        }
        event = await commitMany(lake.catalog, changes);
      }
      events.push(event);
      // Deliver: to one instance or both at once; sometimes not yet (delivered late, below).
      const roll = random();
      if (roll < 0.4) deliver(a.handle(event));
      else if (roll < 0.7) deliver(b.handle(event));
      else if (roll < 0.85) deliver(Promise.all([a.handle(event), b.handle(event)]));
      // A redelivery of an older event, out of order.
      if (random() < 0.5) deliver(pick([a, b]).handle(pick(events)));
      if (random() < 0.2) deliver(pick([a, b]).reconcile());
      if (random() < 0.3) await sleep(Math.floor(random() * 30));
    }
    // Every event once more on both, in reverse order (a consumer replaying its backlog).
    for (const e of [...events].reverse()) deliver(Promise.all([a.handle(e), b.handle(e)]));
    await Promise.all(inFlight);
    expect(errors, `seed ${seed}`).toEqual([]);
    // Events alone (no final reconcile) bring the table to the lake...
    expect(await expectTableEqualsLake(lake, table), `seed ${seed}`).toBe(expectedRows);
    // ...and a reconcile on either instance finds nothing to do.
    for (const f of [a, b]) {
      const s = await f.reconcile();
      expect(s.loadedFiles + s.removedFiles, `seed ${seed}`).toBe(0);
    }
    expect(await expectTableEqualsLake(lake, table), `seed ${seed}`).toBe(expectedRows);
  });
});
