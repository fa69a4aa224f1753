/**
 * The service in-process against real NATS, PostgreSQL and a filesystem lake: after appends,
 * a compaction, a row-level rewrite, a retention removal and missed events, the table holds
 * exactly the lake's rows (count and per-column checksums computed by DuckDB over the catalog's
 * live files and by PostgreSQL over the table).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import type { NewFile } from '@parquetry/lake';
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
} from '../src/index.js';
import { expectSameChecksum } from './helpers.js';
import { type Lake, startLake, TICK_COLUMNS, tableChecksum, tickSelect, waitFor } from './lake-harness.js';

const skip = await requireServers({ nats: true, postgres: true });

describe.skipIf(skip)('pg-loader service', () => {
  let lake: Lake;
  let db: TestDatabase;
  let pool: pg.Pool;
  let duckdb: DuckDBInstance;
  let app: PgLoader;
  let client: pg.Client;
  const ES = { symbol: 'ES', date: '2025-09-03' };
  const NQ = { symbol: 'NQ', date: '2025-09-03' };
  const esDir = 'ticks/symbol=ES/date=2025-09-03';
  const nqDir = 'ticks/symbol=NQ/date=2025-09-03';

  async function ledgerKeys(): Promise<string[]> {
    return (await ledgerEntries(client, 'public.ticks')).map((e) => e.file).sort();
  }

  /** Waits until the ledger lists exactly the live files, then compares the rows. */
  async function expectTableEqualsLake(): Promise<number> {
    const live = (await lake.liveKeys()).sort();
    await waitFor('the ledger to match the catalog', async () =>
      JSON.stringify(await ledgerKeys()) === JSON.stringify(live) ? true : undefined,
    );
    const source = await lake.lakeChecksum();
    expectSameChecksum(source, await tableChecksum(client, 'ticks'), TICK_COLUMNS);
    // Every row is tagged with a live file, and per file the count is the file's.
    const perFile = await client.query<{ f: string; n: string }>(
      `SELECT ${LAKE_FILE_COLUMN} AS f, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1`,
    );
    const files = await lake.catalog.liveFiles('ticks');
    expect(perFile.rows.map((r) => [r.f, Number(r.n)])).toEqual(files.map((f) => [f.path, f.rows]));
    return Number(source.n);
  }

  async function rows(): Promise<number> {
    return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM ticks')).rows[0]!.n);
  }

  beforeAll(async () => {
    lake = await startLake();
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => {});
    duckdb = await DuckDBInstance.create(':memory:', { threads: '1' });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await app?.stop();
    await client?.end();
    await pool?.end();
    duckdb?.closeSync();
    await db?.drop();
    await lake?.close();
  });

  async function start(): Promise<PgLoader> {
    const config = loadConfig(pgLoaderServiceSchema, {
      NATS_URL: lake.nats.url,
      LAKE_URL: lake.lakeUrl,
      DATABASE_URL: db.url,
      PG_LOADER_DATASETS: 'ticks',
      PG_LOADER_ACK_WAIT_MS: '5000',
      LOG_LEVEL: 'silent',
    });
    return createPgLoader({
      config,
      bus: lake.bus,
      store: lake.store,
      duckdb,
      pool,
      logger: silentLogger(),
      metrics: new Metrics('pg-loader', { defaults: false }),
    });
  }

  it('loads what the lake had before it started, then follows appends', async () => {
    // Committed before the service exists, never announced: the start-up reconcile loads it.
    const early = await lake.writeFile(`${esDir}/early.parquet`, tickSelect('ES', ES.date, 0, 3000));
    await lake.commit(ES, [early], [], { publish: false });
    app = await start();
    await app.initialReconcile;
    expect(await rows()).toBe(3000);

    const a = await lake.writeFile(`${esDir}/a.parquet`, tickSelect('ES', ES.date, 3000, 5000));
    await lake.commit(ES, [a]);
    const b = await lake.writeFile(`${nqDir}/b.parquet`, tickSelect('NQ', NQ.date, 0, 4000));
    await lake.commit(NQ, [b]);
    expect(await expectTableEqualsLake()).toBe(12_000);
  });

  it('loads a file once when its event comes twice, or twice in different events', async () => {
    const c = await lake.writeFile(`${nqDir}/c.parquet`, tickSelect('NQ', NQ.date, 4000, 1000));
    const event = await lake.commit(NQ, [c]);
    await lake.publish(event, `${event.commit_id}-again`); // past JetStream's duplicate window
    await lake.publish({ ...event, commit_id: 'other' }, 'other-commit');
    await waitFor('three events consumed', async () => {
      const info = await lake.bus.jsm.consumers.info('LAKE', 'pg-loader-ticks');
      return info.num_ack_pending === 0 && info.num_pending === 0 && info.delivered.stream_seq >= 5
        ? true
        : undefined;
    });
    expect(await expectTableEqualsLake()).toBe(13_000);
    const entries = await ledgerEntries(client, 'public.ticks');
    expect(entries.filter((e) => e.file === c.path)).toEqual([expect.objectContaining({ rows: 1000 })]);
  });

  it('a compaction swaps files without changing a row, and readers never see a gap', async () => {
    const before = await tableChecksum(client, 'ticks');
    const old = (await lake.catalog.liveFiles('ticks', { symbol: 'ES' })).map((f) => f.path);
    const compacted = await lake.writeFile(
      `${esDir}/compacted-1.parquet`,
      `SELECT * FROM read_parquet([${old.map((k) => `'${lake.abs(k)}'`).join(', ')}]) ORDER BY stream_seq`,
    );
    // A reader polling the table while the swap happens sees 13,000 rows every time.
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    const seen = new Set<number>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        seen.add(Number((await reader.query<{ n: string }>('SELECT count(*) AS n FROM ticks')).rows[0]!.n));
      }
    })();
    await lake.commit(ES, [compacted], old);
    await expectTableEqualsLake();
    polling = false;
    await poll;
    await reader.end();
    expect([...seen]).toEqual([13_000]);
    expectSameChecksum(before, await tableChecksum(client, 'ticks'), TICK_COLUMNS);
    expect(await ledgerKeys()).not.toContain(old[0]);
  });

  it('mirrors a row-level rewrite (update and delete by key) published as a replace commit', async () => {
    const [current] = (await lake.catalog.liveFiles('ticks', { symbol: 'ES' })).map((f) => f.path);
    // Prices of every 10th tick change, every 13th tick is deleted.
    const rewritten = await lake.writeFile(
      `${esDir}/rewrite-1.parquet`,
      `SELECT * REPLACE (CASE WHEN stream_seq % 10 = 0 THEN price + 1 ELSE price END AS price)
       FROM read_parquet('${lake.abs(current!)}') WHERE stream_seq % 13 <> 0`,
    );
    await lake.commit(ES, [rewritten], [current!]);
    const n = await expectTableEqualsLake();
    expect(n).toBe(13_000 - Math.ceil(8000 / 13));
  });

  it('mirrors an upsert by key: changed rows replaced, new keys added, in one swap', async () => {
    const [current] = (await lake.catalog.liveFiles('ticks', { symbol: 'ES' })).map((f) => f.path);
    const upserted = await lake.writeFile(
      `${esDir}/upsert-1.parquet`,
      `SELECT * REPLACE (CASE WHEN stream_seq % 7 = 0 THEN size * 2 ELSE size END AS size)
       FROM read_parquet('${lake.abs(current!)}')
       UNION ALL ${tickSelect('ES', ES.date, 200_000, 500)}`,
    );
    await lake.commit(ES, [upserted], [current!]);
    const n = await expectTableEqualsLake();
    expect(n).toBe(13_000 - Math.ceil(8000 / 13) + 500);
  });

  it('deletes the rows of files removed by retention', async () => {
    const nq = (await lake.catalog.liveFiles('ticks', { symbol: 'NQ' })).map((f) => f.path);
    await lake.commit(NQ, [], nq);
    const n = await expectTableEqualsLake();
    expect(n).toBe(8000 - Math.ceil(8000 / 13) + 500);
  });

  it('a stale event never brings back a file a later commit removed', async () => {
    const x = await lake.writeFile(`${nqDir}/x.parquet`, tickSelect('NQ', NQ.date, 100_000, 500));
    const first = await lake.commit(NQ, [x], [], { publish: false });
    const y = await lake.writeFile(`${nqDir}/y.parquet`, tickSelect('NQ', NQ.date, 100_000, 500));
    await lake.commit(NQ, [y], [x.path]);
    await expectTableEqualsLake();
    // The append event of x arrives late (a redelivery after the compaction was applied).
    await lake.publish(first);
    await waitFor('the late event consumed', async () => {
      const info = await lake.bus.jsm.consumers.info('LAKE', 'pg-loader-ticks');
      return info.num_ack_pending === 0 && info.num_pending === 0 ? true : undefined;
    });
    await expectTableEqualsLake();
    expect(await ledgerKeys()).not.toContain(x.path);
  });

  it('a reconcile catches up with a compaction whose event was lost, in one swap', async () => {
    const before = await tableChecksum(client, 'ticks');
    const old = (await lake.catalog.liveFiles('ticks')).map((f) => f.path);
    const files: NewFile[] = [];
    for (const [p, dir] of [
      [ES, esDir],
      [NQ, nqDir],
    ] as const) {
      const keys = (await lake.catalog.liveFiles('ticks', { symbol: p.symbol })).map((f) => lake.abs(f.path));
      const f = await lake.writeFile(
        `${dir}/compacted-2.parquet`,
        `SELECT * FROM read_parquet([${keys.map((k) => `'${k}'`).join(', ')}])`,
      );
      await lake.commit(
        p,
        [f],
        old.filter((k) => k.startsWith(dir)),
        { publish: false },
      );
      files.push(f);
    }
    await app.reconcileAll();
    await expectTableEqualsLake();
    expectSameChecksum(before, await tableChecksum(client, 'ticks'), TICK_COLUMNS);
    expect(await ledgerKeys()).toEqual(files.map((f) => f.path).sort());
  });

  it('dead-letters an event that is not a lake commit of its dataset', async () => {
    await lake.publish(
      {
        dataset: 'ticks',
        commit_id: 'evil',
        committed_at: new Date().toISOString(),
        operation: 'append',
        partitions: [{ values: ES, added: [{ path: '../../etc/passwd', rows: 1, bytes: 1 }], removed: [] }],
      },
      'evil',
    );
    await waitFor('the bad event dead-lettered', async () => {
      const info = await lake.bus.jsm.streams.info('DLQ').catch(() => undefined);
      return info && info.state.messages > 0 ? true : undefined;
    });
    await expectTableEqualsLake();
  });
});
