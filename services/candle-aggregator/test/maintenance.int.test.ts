import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Bus, connectBus, ensureStreams, STREAM_NAMES } from '@parquetry/bus';
import {
  CANDLES,
  type Catalog,
  type DuckDB,
  type ObjectStore,
  openCatalog,
  openDuckDB,
  openObjectStore,
  type Tick,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CandleMaintenance } from '../src/cli.js';
import { referenceCandles } from '../src/domain/reference.js';
import { CandleLake } from '../src/lake/candle-lake.js';
import { expectSameCandles } from './candle-expect.js';
import { binanceSymbols, sentinels, shuffledArrivals } from './feeds.js';
import { publishTicks, startCandles, waitFor } from './harness.js';
import { archiveTicks } from './tick-archive.js';

const skip = await requireServers({ nats: true });
const DAY = 86_400_000;

/**
 * `parquetry candles backfill | update | verify` logic against a real NATS catalog and a
 * filesystem lake, on real Binance trades (two symbols, shuffled, 2% delivered twice; the
 * archive holds every copy, as ingest-backup stores what the stream held).
 */
describe.skipIf(skip)('candle maintenance', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let duck: DuckDB;
  const tmp = tempDir('pq-candles-maint-');
  const ticks = binanceSymbols(2);
  const arrivals = shuffledArrivals(ticks, 5);

  beforeAll(async () => {
    nats = await startNats();
    bus = await connectBus({ url: nats.url, name: 'maintenance-test', logger: silentLogger() });
    await ensureStreams(bus.jsm);
    duck = await openDuckDB({ threads: 1 });
  });
  afterAll(async () => {
    duck?.close();
    await bus?.close();
    await nats?.stop();
    tmp.remove();
  });

  /** A lake of its own: its directory and catalog bucket. */
  async function lakeOf(name: string) {
    const store: ObjectStore = openObjectStore(`file://${tmp.path}/${name}`);
    const catalog: Catalog = await openCatalog({ nc: bus.nc, bucket: `${name}_catalog`, writerId: name });
    const conn = await duck.connect();
    const maintenance = new CandleMaintenance({ catalog, store, conn, writerId: 'cli' });
    const lake = new CandleLake({ catalog, store, conn, writerId: 'reader' });
    const files = async () => (await catalog.liveFiles(CANDLES.name)).map((f) => f.path).sort();
    return { store, catalog, conn, maintenance, lake, files, dir: join(tmp.path, name) };
  }

  it('backfill over the live service’s lake finds nothing to change: same values, bit for bit', async () => {
    const lakeUrl = `file://${tmp.path}/live`;
    const h = await startCandles(
      { NATS_URL: nats.url, LAKE_URL: lakeUrl, CANDLE_PARTITIONS: '2', INSTANCE_ID: 'live' },
      { catalogBucket: 'live_catalog', stateBucket: 'live_state' },
    );
    const stream = [...arrivals, ...sentinels(ticks)];
    try {
      await publishTicks(h.bus, stream);
      // Redelivered trades share a Nats-Msg-Id: the stream keeps one copy of each.
      const stored = (await bus.jsm.streams.info(STREAM_NAMES.ticks)).state.last_seq;
      await waitFor('the live service to drain and flush', async () => {
        const s = h.app.stats();
        return s.lastSeq === stored && s.pendingCandles === 0 ? s : undefined;
      });
    } finally {
      await h.close();
    }
    const l = await lakeOf('live');
    await archiveTicks(l, arrivals);
    const before = await l.files();
    const live = await l.lake.read();
    expect(live.length).toBe(referenceCandles(ticks).length);
    for (const symbol of ['BTCUSDT', 'BTCB']) {
      const own = live.filter((c) => c.symbol === symbol);
      const r = await l.maintenance.backfill({ symbol, force: true, dryRun: true });
      expect(r.source_rows, symbol).toBe(ticks.filter((t) => t.symbol === symbol).length);
      expect(r.totals, symbol).toEqual({
        added: 0,
        changed: 0,
        removed: 0,
        unchanged: own.length,
        differing: 0,
        stale: 0,
      });
      expect(r.partitions).toEqual([]);
    }
    expect(await l.files()).toEqual(before);
  });

  it('backfill: a dry run changes nothing, the run writes the reference candles, a second run nothing', async () => {
    const l = await lakeOf('fresh');
    await archiveTicks(l, arrivals);
    const expected = referenceCandles(ticks.filter((t) => t.symbol === 'BTCUSDT'));

    const dry = await l.maintenance.backfill({ symbol: 'BTCUSDT', dryRun: true });
    expect(dry.dry_run).toBe(true);
    expect(dry.range).toEqual({ start: '2024-08-08T00:00:00.000Z', end: '2024-08-10T00:00:00.000Z' });
    expect(dry.totals.added).toBe(expected.length);
    // 1m, 5m, 15m by month, 1h and 4h by year, 1d in `all`: one partition per timeframe here.
    expect(dry.partitions.map((p) => `${p.timeframe}/${p.period}`)).toEqual([
      '15m/2024-08',
      '1d/all',
      '1h/2024',
      '1m/2024-08',
      '4h/2024',
      '5m/2024-08',
    ]);
    expect(dry.written).toEqual({ partitions: 0, files: 0, candles: 0 });
    expect(await l.files()).toEqual([]);

    const run = await l.maintenance.backfill({ symbol: 'BTCUSDT' });
    expect(run.totals.added).toBe(expected.length);
    expect(run.written).toEqual({ partitions: 6, files: 6, candles: expected.length });
    const built = await l.lake.read();
    expectSameCandles(built, expected, 'backfill vs reference model');
    expect(built.every((c) => c.revision === 0)).toBe(true);

    const files = await l.files();
    const again = await l.maintenance.backfill({ symbol: 'BTCUSDT', force: true });
    expect(again.totals).toMatchObject({ added: 0, changed: 0, removed: 0, unchanged: expected.length });
    expect(again.written.partitions).toBe(0);
    expect(await l.files()).toEqual(files);

    // Higher timeframes rolled up from the lake's 1m candles, in a lake that has only those.
    const r = await lakeOf('rollup');
    await archiveTicks(r, arrivals);
    await r.maintenance.backfill({ symbol: 'BTCUSDT', timeframes: ['1m'] });
    const up = await r.maintenance.backfill({
      symbol: 'BTCUSDT',
      from: '1m',
      timeframes: ['5m', '1h', '1d'],
    });
    expect(up.source).toBe('1m');
    expect(up.source_rows).toBe(expected.filter((c) => c.timeframe === '1m').length);
    const rolled = await r.lake.read();
    expectSameCandles(
      rolled,
      expected.filter((c) => ['1m', '5m', '1h', '1d'].includes(c.timeframe)),
      'roll-up of 1m vs reference model',
    );
  });

  it('backfill --force replaces what differs and drops what the archive does not hold, in the range only', async () => {
    const l = await lakeOf('force');
    await archiveTicks(l, arrivals);
    await l.maintenance.backfill({ symbol: 'BTCUSDT' });
    const good = await l.lake.read();
    // Damage the lake by hand: one 1m candle off by one trade, one candle that never was.
    const victim = good.find((c) => c.timeframe === '1m' && c.start === Date.UTC(2024, 7, 9, 0, 2))!;
    const ghost = { ...victim, start: Date.UTC(2024, 7, 9, 3, 0), end: Date.UTC(2024, 7, 9, 3, 1) };
    await l.lake.write([{ ...victim, trades: victim.trades - 1, revision: 1 }, ghost]);

    const plain = await l.maintenance.backfill({
      symbol: 'BTCUSDT',
      timeframes: ['1m'],
      start: '2024-08-09',
      end: '2024-08-09',
    });
    expect(plain.totals).toMatchObject({ added: 0, changed: 0, removed: 0, differing: 1, stale: 1 });
    expect(plain.written.partitions).toBe(0);

    const forced = await l.maintenance.backfill({
      symbol: 'BTCUSDT',
      timeframes: ['1m'],
      start: '2024-08-09',
      end: '2024-08-09',
      force: true,
    });
    expect(forced.totals).toMatchObject({ added: 0, changed: 1, removed: 1, differing: 0, stale: 0 });
    expect(forced.partitions.map((p) => [p.timeframe, p.period, p.changed, p.removed])).toEqual([
      ['1m', '2024-08', 1, 1],
    ]);
    const after = await l.lake.read();
    expectSameCandles(after, good, 'after --force');
    // The corrected candle outranks the damaged copy for every reader.
    expect(after.find((c) => c.timeframe === '1m' && c.start === victim.start)!.revision).toBe(2);
  });

  it('update recomputes only the partitions whose ticks changed', async () => {
    const l = await lakeOf('update');
    await archiveTicks(l, arrivals);
    await archiveTicks(
      l,
      ticks.filter((t) => t.symbol === 'BTCB'),
      1_000_000,
      'b',
    );
    await l.maintenance.backfill({ symbol: 'BTCUSDT' });
    const before = await l.files();
    // Ticks archived later (a replayed backlog): three more trades in the 00:01 minute.
    const at = Date.UTC(2024, 7, 9, 0, 1, 30);
    const extra: Tick[] = [1, 2, 3].map((i) => ({
      symbol: 'BTCUSDT',
      ts: at + i,
      price: 70_000 + i,
      size: 0.5,
      trade_id: `late-${i}`,
    }));
    await archiveTicks(l, extra, 2_000_000, 'late');
    const daysBack = Math.ceil((Date.now() - Date.UTC(2024, 7, 8)) / DAY);

    const dry = await l.maintenance.update({ symbol: 'BTCUSDT', daysBack, dryRun: true });
    expect(dry.partitions.map((p) => [p.timeframe, p.changed, p.added])).toEqual([
      ['15m', 1, 0],
      ['1d', 1, 0],
      ['1h', 1, 0],
      ['1m', 1, 0],
      ['4h', 1, 0],
      ['5m', 1, 0],
    ]);
    expect(await l.files()).toEqual(before);

    const run = await l.maintenance.update({ symbol: 'BTCUSDT', daysBack });
    expect(run.written.partitions).toBe(6);
    const now = await l.lake.read();
    expectSameCandles(
      now,
      referenceCandles([...ticks.filter((t) => t.symbol === 'BTCUSDT'), ...extra]),
      'after update',
    );
    expect(
      now
        .filter((c) => c.revision === 1)
        .map((c) => c.timeframe)
        .sort(),
    ).toEqual(['15m', '1d', '1h', '1m', '4h', '5m']);
    // Nothing to do the second time; a window that misses the day changes nothing either.
    expect((await l.maintenance.update({ symbol: 'BTCUSDT', daysBack })).written.partitions).toBe(0);
    expect((await l.maintenance.update({ symbol: 'BTCUSDT', daysBack: 0 })).source_rows).toBe(0);
  });

  it('verify finds damaged and missing files; --repair regenerates them from the archive through a commit', async () => {
    const l = await lakeOf('verify');
    await archiveTicks(l, arrivals);
    for (const symbol of ['BTCUSDT', 'BTCB']) await l.maintenance.backfill({ symbol });
    const good = await l.lake.read();
    const clean = await l.maintenance.verify();
    expect(clean).toMatchObject({ ok: true, damaged: [], files_checked: 12, partitions_checked: 12 });

    const files = await l.files();
    const flipped = files.find((f) => f.includes('timeframe=1m/symbol=BTCUSDT/'))!;
    const gone = files.find((f) => f.includes('timeframe=1h/symbol=BTCB/'))!;
    const bytes = readFileSync(join(l.dir, flipped));
    for (let i = 200; i < 260; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(join(l.dir, flipped), bytes);
    rmSync(join(l.dir, gone));

    const found = await l.maintenance.verify();
    expect(found.ok).toBe(false);
    expect(
      found.damaged.map((d) => [d.path, d.problems.includes('checksum') || d.problems.includes('missing')]),
    ).toEqual(
      [
        [gone, true],
        [flipped, true],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(found.damaged.find((d) => d.path === gone)!.problems).toEqual(['missing']);
    expect(found.unrepaired).toHaveLength(2);
    expect(await l.files()).toEqual(files);
    // Only one symbol asked: only its file.
    expect((await l.maintenance.verify({ symbol: 'BTCB' })).damaged.map((d) => d.path)).toEqual([gone]);

    const repaired = await l.maintenance.verify({ repair: true });
    expect(repaired.repaired.map((r) => r.removed)).toEqual(expect.arrayContaining([[flipped], [gone]]));
    expect(repaired.ok).toBe(true);
    const after = await l.maintenance.verify();
    expect(after).toMatchObject({ ok: true, damaged: [], files_checked: 12 });
    expect(await l.files()).not.toContain(flipped);
    expectSameCandles(await l.lake.read(), good, 'after repair');
  });
});
