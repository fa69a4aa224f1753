import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Bus, connectBus } from '@parquetry/bus';
import {
  type Catalog,
  type DuckDB,
  FsObjectStore,
  openCatalog,
  openDuckDB,
  sha256File,
  sqlString,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const skip = await requireServers({ nats: true });
const DAY = '2025-09-03';

describe.skipIf(skip)('parquetry compact | repartition | delete | update | upsert | vacuum', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let catalog: Catalog;
  let store: FsObjectStore;
  let db: DuckDB;
  const dir = tempDir('pq-cli-ops-');
  const lakeDir = join(dir.path, 'lake');
  let env: Record<string, string>;

  async function addFile(symbol: string, date: string, rows: number, seed: number) {
    const local = join(dir.path, `seed-${seed}.parquet`);
    await db.conn.run(
      `COPY (SELECT ${sqlString(symbol)} AS symbol, DATE ${sqlString(date)} AS date,
         TIMESTAMPTZ ${sqlString(`${date} 00:00:00+00`)} + to_milliseconds(${seed} * 1000 + i) AS ts,
         (100 + i % 50)::DOUBLE AS price, (i % 4 + 1)::DOUBLE AS size,
         CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side, 's${seed}-' || i AS trade_id, i::BIGINT AS stream_seq
       FROM range(${rows}) t(i)) TO ${sqlString(local)} (FORMAT parquet)`,
    );
    const key = `ticks/symbol=${symbol}/date=${date}/seed_${seed}.parquet`;
    const file = { path: key, rows, bytes: (await stat(local)).size, sha256: await sha256File(local) };
    await store.putFile(key, local, { move: true });
    await catalog.commit({
      dataset: 'ticks',
      commitId: `seed-${seed}`,
      changes: [{ partition: { symbol, date }, add: [file] }],
    });
  }

  async function totals(): Promise<{ rows: number; size: number }> {
    const files = await catalog.liveFiles('ticks');
    const r = await db.conn.runAndReadAll(
      `SELECT count(*)::INTEGER AS rows, sum(size)::DOUBLE AS size FROM read_parquet([${files.map((f) => sqlString(join(lakeDir, f.path))).join(', ')}], union_by_name = true)`,
    );
    return r.getRowObjectsJS()[0] as { rows: number; size: number };
  }

  beforeAll(async () => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: 'cli-ops-test', logger: silentLogger() });
    catalog = await openCatalog({ nc: bus.nc, writerId: 'cli-ops-test' });
    store = new FsObjectStore(lakeDir);
    db = await openDuckDB({ threads: 1 });
    env = { NATS_URL: nats.url, LAKE_URL: `file://${lakeDir}` };
    for (let i = 1; i <= 5; i++) await addFile('ES', DAY, 400, i);
    for (let i = 6; i <= 7; i++) await addFile('NQ', DAY, 100, i);
  });
  afterAll(async () => {
    db?.close();
    await bus?.close();
    await nats?.stop();
    dir.remove();
  });

  it('compact: --dry-run changes nothing, then one commit with a backup; --json prints the result', async () => {
    const before = (await catalog.liveFiles('ticks')).map((f) => f.path);
    const dry = await runCli(['compact', 'ticks', '--where', 'symbol=ES', '--dry-run', '--json'], env);
    expect(dry.code, dry.stderr + dry.stdout).toBe(0);
    const d = dry.json<{ status: string; totals: { files_before: number; files_removed: number } }>();
    expect(d.status).toBe('dry_run');
    expect(d.totals.files_removed).toBe(5);
    expect((await catalog.liveFiles('ticks')).map((f) => f.path)).toEqual(before);

    const r = await runCli(
      ['compact', 'ticks', '--where', 'symbol=ES', '--backup', '--op-id', 'cli-compact-1', '--json'],
      env,
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const res = r.json<{
      status: string;
      backup: string;
      totals: { files_after: number; rows_after: number };
    }>();
    expect(res.status).toBe('committed');
    expect(res.backup).toBe('_backups/cli-compact-1/');
    expect((await catalog.partition('ticks', { symbol: 'ES', date: DAY })).files.length).toBe(1);
    expect((await catalog.partition('ticks', { symbol: 'NQ', date: DAY })).files.length).toBe(2);
    expect(
      await store.head('_backups/cli-compact-1/ticks/symbol=ES/date=2025-09-03/seed_1.parquet'),
    ).toBeDefined();

    const human = await runCli(['compact', 'ticks', '--where', 'symbol=ES', '--op-id', 'cli-compact-1'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/already_committed/);
  });

  it('delete, update and upsert run the compactor code and report rows', async () => {
    const t0 = await totals();
    const del = await runCli(
      ['delete', 'ticks', '--filters', '[{"column":"price","op":">=","value":140}]', '--json'],
      env,
    );
    expect(del.code, del.stderr + del.stdout).toBe(0);
    const deleted = del.json<{ totals: { rows_deleted: number } }>().totals.rows_deleted;
    expect(deleted).toBe((2000 / 50) * 10 + (200 / 50) * 10);
    const t1 = await totals();
    expect(t1.rows).toBe(t0.rows - deleted);

    const upd = await runCli(
      ['update', 'ticks', '--where', 'symbol=NQ', '--set', 'size=size * 10', '--set', "side='x'", '--json'],
      env,
    );
    expect(upd.code, upd.stderr + upd.stdout).toBe(0);
    expect(upd.json<{ totals: { rows_updated: number } }>().totals.rows_updated).toBe(160);

    const csv = join(dir.path, 'up.csv');
    await db.conn.run(
      `COPY (SELECT 'ES' AS symbol, DATE '${DAY}' AS date, 's1-' || i AS trade_id, 1.5 AS price FROM range(0, 20) t(i)
             UNION ALL SELECT 'ES', DATE '${DAY}', 'fresh-' || i, 2.5 FROM range(7) t(i)) TO ${sqlString(csv)} (FORMAT csv, HEADER true)`,
    );
    const up = await runCli(['upsert', 'ticks', csv, '--key', 'trade_id', '--json'], env);
    expect(up.code, up.stderr + up.stdout).toBe(0);
    const u = up.json<{ totals: { rows_updated: number; rows_inserted: number } }>();
    // s1-0 … s1-19 survive the delete only where price < 140, i.e. all of them (price = 100 + i).
    expect(u.totals).toMatchObject({ rows_updated: 20, rows_inserted: 7 });
    expect((await totals()).rows).toBe(t1.rows + 7);
  });

  it('repartition --dry-run estimates, vacuum deletes what is replaced, bad input exits 2 with a clear message', async () => {
    const rep = await runCli(
      ['repartition', 'ticks', '--set', 'symbol=lower(symbol)', '--dry-run', '--json'],
      env,
    );
    expect(rep.code, rep.stderr + rep.stdout).toBe(0);
    const est = rep
      .json<{ details: { estimate: { partition: string }[] } }>()
      .details.estimate.map((e) => e.partition);
    expect(est).toEqual([`symbol=es/date=${DAY}`, `symbol=nq/date=${DAY}`]);

    const vac = await runCli(['vacuum', 'ticks', '--grace-minutes', '0', '--json'], env);
    expect(vac.code, vac.stderr + vac.stdout).toBe(0);
    const v = vac.json<{ expired: string[]; orphans: string[] }>();
    expect(v.expired.length).toBeGreaterThanOrEqual(7);
    expect(v.orphans).toEqual([]);
    for (const p of v.expired) expect(await store.head(p)).toBeUndefined();

    for (const argv of [
      ['update', 'ticks', '--set', "price=read_csv('/etc/passwd')", '--json'],
      ['update', 'ticks', '--set', 'price=price; DROP TABLE x', '--json'],
      ['delete', 'ticks', '--filters', '[{"column":"x\\"; DROP","op":"=","value":1}]', '--json'],
      ['delete', 'ticks', '--filters', 'not json', '--json'],
    ]) {
      const r = await runCli(argv, env);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.json<{ error: { message: string } }>().error.message).toMatch(
        /unknown function|unexpected|unknown column|must be JSON/,
      );
    }
    const help = await runCli(['compact', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--dry-run/);
  });
});
