import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Bus, connectBus } from '@parquetry/bus';
import {
  type DuckDB,
  openCatalog,
  openDuckDB,
  openObjectStore,
  partitionPath,
  TICKS,
  writeLakeFiles,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const skip = await requireServers({ nats: true });
const T0 = Date.UTC(2025, 8, 3, 10, 0);

/**
 * `parquetry candles …` through commander, against real NATS and a filesystem lake whose tick
 * archive is laid out as ingest-backup writes it. The logic itself is tested in
 * services/candle-aggregator/test/maintenance.int.test.ts; this checks the command surface.
 */
describe.skipIf(skip)('parquetry candles', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let bus: Bus;
  let duck: DuckDB;
  const tmp = tempDir('pq-cli-candles-');
  let env: Record<string, string>;

  beforeAll(async () => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: 'cli-candles-test', logger: silentLogger() });
    duck = await openDuckDB({ threads: 1 });
    env = { NATS_URL: nats.url, LAKE_URL: `file://${tmp.path}/lake` };
    // Two minutes of ES: 10:00 (3 trades) and 10:01 (2 trades).
    const rows = [
      [0, 5000, 1],
      [20, 5003, 2],
      [50, 4998, 1],
      [65, 5001, 3],
      [90, 5004, 1],
    ].map(([sec, price, size], i) => ({
      symbol: 'ES',
      date: '2025-09-03',
      ts: T0 + sec! * 1000,
      price,
      size,
      side: null,
      trade_id: String(i + 1),
      stream_seq: i + 1,
    }));
    const store = openObjectStore(env.LAKE_URL!);
    const catalog = await openCatalog({ nc: bus.nc, writerId: 'ingest-backup' });
    const values = { symbol: 'ES', date: '2025-09-03' };
    const files = await writeLakeFiles({
      conn: duck.conn,
      store,
      dir: `${TICKS.root}/${partitionPath(TICKS.partitionColumns, values)}`,
      fileName: () => 'ticks_test.parquet',
      columns: Object.entries(TICKS.columns).map(([name, type]) => ({ name, type })),
      batches: [rows],
      timeField: 'ts',
    });
    await catalog.commit({
      dataset: TICKS.name,
      commitId: 'ticks-1',
      changes: [{ partition: values, add: files }],
    });
    await store.close();
  });
  afterAll(async () => {
    duck?.close();
    await bus?.close();
    await nats?.stop();
    tmp.remove();
  });

  it('has --help for the group and each command', async () => {
    const help = await runCli(['candles', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/backfill[\s\S]*update[\s\S]*verify/);
    for (const c of ['backfill', 'update', 'verify']) {
      const r = await runCli(['candles', c, '--help'], env);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toMatch(/--json/);
    }
    expect((await runCli(['candles', 'backfill', '--help'], env)).stdout).toMatch(
      /--dry-run[\s\S]*--force|--force[\s\S]*--dry-run/,
    );
  });

  it('backfill --dry-run reports and changes nothing; backfill writes; verify finds the files sound', async () => {
    const dry = await runCli(
      ['candles', 'backfill', '--symbol', 'ES', '--timeframes', '1m,1h', '--dry-run', '--json'],
      env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    const report = dry.json<{
      dry_run: boolean;
      partitions: { timeframe: string; period: string; added: number }[];
      totals: { added: number };
    }>();
    expect(report.dry_run).toBe(true);
    expect(report.partitions.map((p) => [p.timeframe, p.period, p.added])).toEqual([
      ['1h', '2025', 1],
      ['1m', '2025-09', 2],
    ]);
    expect(report.totals.added).toBe(3);
    const none = await runCli(['lake', 'files', 'candles', '--json'], env);
    expect(none.json<{ files: string[] }>().files).toEqual([]);

    const run = await runCli(
      ['candles', 'backfill', '--symbol', 'ES', '--timeframes', '1m,1h', '--json'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.json<{ written: { partitions: number; candles: number } }>().written).toMatchObject({
      partitions: 2,
      candles: 3,
    });
    const files = (await runCli(['lake', 'files', 'candles', '--json'], env)).json<{ files: string[] }>()
      .files;
    expect(files).toHaveLength(2);

    const text = await runCli(['candles', 'backfill', '--symbol', 'ES', '--timeframes', '1m,1h'], env);
    expect(text.stdout).toMatch(/changed 0 candles/);

    const verify = await runCli(['candles', 'verify', '--json'], env);
    expect(verify.code).toBe(0);
    expect(verify.json()).toMatchObject({ ok: true, files_checked: 2, damaged: [] });

    // A lost file: reported, then regenerated from the archive.
    const one = files.find((f) => f.includes('timeframe=1m'))!;
    const key = one.slice(one.indexOf('candles/timeframe='));
    rmSync(join(tmp.path, 'lake', key));
    const bad = await runCli(['candles', 'verify', '--symbol', 'ES'], env);
    expect(bad.stdout).toMatch(/damaged: .*missing/);
    const repaired = await runCli(['candles', 'verify', '--repair', '--json'], env);
    expect(repaired.json()).toMatchObject({ ok: true, repaired: [{ removed: [key], candles: 2 }] });
    expect(
      (await runCli(['candles', 'update', '--symbol', 'ES', '--days-back', '0', '--dry-run', '--json'], env))
        .code,
    ).toBe(0);
  });

  it('rejects bad input with exit code 2', async () => {
    expect((await runCli(['candles', 'backfill', '--symbol', 'E S', '--json'], env)).code).toBe(2);
    expect(
      (await runCli(['candles', 'backfill', '--symbol', 'ES', '--timeframes', '2m', '--json'], env)).code,
    ).toBe(2);
    expect((await runCli(['candles', 'backfill', '--symbol', 'ES', '--start', '2025-13-01'], env)).code).toBe(
      2,
    );
    expect((await runCli(['candles', 'update'], env)).code).toBe(2);
  });
});
