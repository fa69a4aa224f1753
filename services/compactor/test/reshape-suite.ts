import { join } from 'node:path';
import { sqlString } from '@parquetry/lake';
import { type NatsServerHandle, type S3ServerHandle, startNats, startS3 } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpResult } from '../src/domain/report.js';
import { runOperation, type VacuumOpResult } from '../src/engine/run.js';
import {
  addTicksFile,
  catalogState,
  type Lake,
  type LakeKind,
  listKeys,
  openLake,
  sameTotals,
  snapshotTable,
  snapshotTotals,
  startReader,
  tableDiff,
} from './harness.js';

const DAY = '2025-09-03';
const NEXT = '2025-09-04';

/** upsert, repartition and vacuum on one kind of lake. */
export function reshapeSuite(kind: LakeKind): void {
  describe(`upsert, repartition and vacuum on the ${kind} lake`, () => {
    let nats: NatsServerHandle;
    let s3: S3ServerHandle | undefined;
    let lake: Lake;

    beforeAll(async () => {
      nats = await startNats();
      if (kind === 's3') s3 = await startS3();
    });
    afterAll(async () => {
      await lake?.close();
      await s3?.stop();
      await nats?.stop();
    });
    async function freshLake(): Promise<Lake> {
      await lake?.close();
      lake = await openLake(kind, nats.url, s3);
      return lake;
    }

    /** New rows: updates of existing trade ids (every 7th of seeds 1 and 3), and new ones in DAY and a new day. */
    async function writeIncoming(
      l: Lake,
      name: string,
      format: 'parquet' | 'csv' | 'ndjson',
    ): Promise<string> {
      const path = join(l.scratch, name);
      const opts =
        format === 'parquet'
          ? 'FORMAT parquet'
          : format === 'csv'
            ? 'FORMAT csv, HEADER true'
            : 'FORMAT json';
      await l.conn.run(
        `COPY (
           SELECT 'ES' AS symbol, DATE '${DAY}' AS date, 's' || s || '-' || i AS trade_id, (9000 + i)::DOUBLE AS price, 42.0 AS size
             FROM range(0, 1000, 7) a(i), (VALUES (1), (3)) b(s)
           UNION ALL
           SELECT 'ES', DATE '${DAY}', 'new-' || i, (100 + i)::DOUBLE, 1.0 FROM range(250) t(i)
           UNION ALL
           SELECT 'ES', DATE '2025-09-05', 'new5-' || i, (200 + i)::DOUBLE, 2.0 FROM range(120) t(i)
         ) TO ${sqlString(path)} (${opts})`,
      );
      return path;
    }

    async function reference(l: Lake, path: string, format: 'parquet' | 'csv' | 'ndjson') {
      const rel =
        format === 'parquet'
          ? `read_parquet(${sqlString(path)})`
          : format === 'csv'
            ? `read_csv(${sqlString(path)}, header = true)`
            : `read_json(${sqlString(path)}, format = 'newline_delimited')`;
      await snapshotTable(l, 'ticks', 'ref');
      await l.conn.run(
        `CREATE OR REPLACE TEMP TABLE up AS SELECT symbol::VARCHAR AS symbol, date::DATE AS date, trade_id::VARCHAR AS trade_id, price::DOUBLE AS price, size::DOUBLE AS size FROM ${rel}`,
      );
      await l.conn.run(
        `UPDATE ref SET price = up.price, size = up.size FROM up WHERE ref.symbol = up.symbol AND ref.date = up.date AND ref.trade_id = up.trade_id`,
      );
      await l.conn.run(
        `INSERT INTO ref BY NAME SELECT * FROM up WHERE NOT EXISTS (SELECT 1 FROM ref r WHERE r.symbol = up.symbol AND r.date = up.date AND r.trade_id = up.trade_id)`,
      );
    }

    it('upsert from Parquet (an object of the lake), CSV and NDJSON equals DuckDB UPDATE + INSERT on a copy', async () => {
      const l = await freshLake();
      for (let i = 0; i < 4; i++) await addTicksFile(l, 'ES', DAY, 1000, i + 1);
      for (let i = 0; i < 2; i++) await addTicksFile(l, 'ES', NEXT, 500, 10 + i);

      const parquet = await writeIncoming(l, 'up.parquet', 'parquet');
      await l.store.putFile('_incoming/up.parquet', parquet);
      await reference(l, parquet, 'parquet');
      const job = { dataset: 'ticks', source: { key: '_incoming/up.parquet' }, key_columns: ['trade_id'] };

      const state = await catalogState(l.catalog, 'ticks');
      const dry = (await runOperation(l.ctx, 'upsert', { ...job, dry_run: true })) as OpResult;
      expect(await catalogState(l.catalog, 'ticks')).toBe(state);
      expect(dry.totals.rows_updated).toBe(2 * 143);
      expect(dry.totals.rows_inserted).toBe(370);

      const before = await snapshotTotals(l, 'ticks', 'price');
      const reader = await startReader(l, 'ticks', 'price');
      const r = (await runOperation(l.ctx, 'upsert', job)) as OpResult;
      const seen = await reader.stop();
      const after = await snapshotTotals(l, 'ticks', 'price');
      expect(r.status).toBe('committed');
      expect(r.totals.rows_updated).toBe(dry.totals.rows_updated);
      expect(r.totals.rows_inserted).toBe(dry.totals.rows_inserted);
      // Only the files holding matched keys (seeds 1 and 3) were rewritten; the other day untouched.
      expect(r.partitions.map((p) => [p.partition, p.files_removed])).toEqual([
        [`symbol=ES/date=${DAY}`, 2],
        ['symbol=ES/date=2025-09-05', 0],
      ]);
      await snapshotTable(l, 'ticks', 'got');
      expect(await tableDiff(l.conn, 'ref', 'got')).toBe(0);
      for (const s of seen) expect(sameTotals(s, before) || sameTotals(s, after)).toBe(true);

      // CSV and NDJSON from local files (the CLI's case): applied again, all rows now match.
      for (const format of ['csv', 'ndjson'] as const) {
        const path = await writeIncoming(l, `up2.${format}`, format);
        await reference(l, path, format);
        const again = (await runOperation(l.ctx, 'upsert', {
          dataset: 'ticks',
          source: { path },
          key_columns: ['trade_id'],
          update_columns: ['price', 'size'],
        })) as OpResult;
        expect(again.totals.rows_inserted).toBe(0);
        expect(again.totals.rows_updated).toBe(2 * 143 + 370);
        await snapshotTable(l, 'ticks', 'got');
        expect(await tableDiff(l.conn, 'ref', 'got')).toBe(0);
      }

      // Duplicate keys in the file, an unknown key column, a job naming a local path: clear 400s.
      const dup = join(l.scratch, 'dup.ndjson');
      await l.conn.run(
        `COPY (SELECT 'ES' AS symbol, DATE '${DAY}' AS date, 'x' AS trade_id, 1.0 AS price FROM range(2)) TO ${sqlString(dup)} (FORMAT json)`,
      );
      for (const [bad, msg] of [
        [{ dataset: 'ticks', source: { path: dup }, key_columns: ['trade_id'] }, /same key more than once/],
        [{ dataset: 'ticks', source: { path: dup }, key_columns: ['nope"; --'] }, /not in the file/],
        [
          { dataset: 'ticks', source: { key: '../etc/passwd.parquet' }, key_columns: ['trade_id'] },
          /invalid object key/,
        ],
      ] as const) {
        await expect(runOperation(l.ctx, 'upsert', bad)).rejects.toThrow(msg);
      }
      await expect(
        runOperation({ ...l.ctx, allowLocalFiles: false }, 'upsert', {
          dataset: 'ticks',
          source: { path: dup },
          key_columns: ['trade_id'],
        }),
      ).rejects.toThrow(/source\.key/);
    });

    it('repartition moves rows to the partition their new values name in one commit; the estimate matches; readers see one layout', async () => {
      const l = await freshLake();
      for (let i = 0; i < 3; i++) await addTicksFile(l, 'ES', DAY, 800, i + 1);
      // ts of seed 86400+ falls on the next day, but the file sits in DAY: mis-partitioned rows.
      await addTicksFile(l, 'ES', DAY, 600, 86_400);
      await addTicksFile(l, 'ES', NEXT, 300, 500);
      await addTicksFile(l, 'NQ', DAY, 200, 7);
      await snapshotTable(l, 'ticks', 'ref');
      await l.conn.run(`UPDATE ref SET date = CAST(ts AS DATE)`);

      const job = {
        dataset: 'ticks',
        partitions: [{ column: 'symbol', op: '=', value: 'ES' }],
        partition_by: { date: { fn: 'date', args: [{ column: 'ts' }] } },
      };
      const dry = (await runOperation(l.ctx, 'repartition', { ...job, dry_run: true })) as OpResult;
      expect((dry.details as { estimate: { partition: string; rows: number }[] }).estimate).toEqual([
        { partition: `symbol=ES/date=${DAY}`, rows: 2400, bytes: expect.any(Number), files: 1 },
        { partition: `symbol=ES/date=${NEXT}`, rows: 600, bytes: expect.any(Number), files: 1 },
      ]);
      // ES/NEXT only receives rows: its own file stays.
      expect(dry.partitions.map((p) => [p.partition, p.files_removed])).toEqual([
        [`symbol=ES/date=${DAY}`, 4],
        [`symbol=ES/date=${NEXT}`, 0],
      ]);

      const before = await snapshotTotals(l, 'ticks', 'price');
      const reader = await startReader(l, 'ticks', 'price');
      const r = (await runOperation(l.ctx, 'repartition', job)) as OpResult;
      const seen = await reader.stop();
      expect(r.status).toBe('committed');
      for (const s of seen) expect(sameTotals(s, before)).toBe(true);
      await snapshotTable(l, 'ticks', 'got');
      expect(await tableDiff(l.conn, 'ref', 'got')).toBe(0);
      const next = await l.catalog.partition('ticks', { symbol: 'ES', date: NEXT });
      expect(next.files.reduce((n, f) => n + f.rows, 0)).toBe(900);
      // The old files are still in the store, only no longer live.
      for (const p of r.partitions.flatMap((x) => x.removed)) expect(await l.store.head(p)).toBeDefined();
      // Running it again finds every row where it belongs: nothing to do.
      const again = (await runOperation(l.ctx, 'repartition', job)) as OpResult;
      expect(again.status).toBe('nothing_to_do');
    });

    it('vacuum deletes replaced files past the grace period and orphans, nothing live', async () => {
      const l = await freshLake();
      for (let i = 0; i < 4; i++) await addTicksFile(l, 'ES', DAY, 300, i + 1);
      await runOperation(l.ctx, 'compact', { dataset: 'ticks' });
      const orphan = join(l.scratch, 'orphan.parquet');
      await l.conn.run(`COPY (SELECT 1 AS x) TO ${sqlString(orphan)} (FORMAT parquet)`);
      await l.store.putFile(`ticks/symbol=ES/date=${DAY}/orphan.parquet`, orphan);
      const totals = await snapshotTotals(l, 'ticks', 'price');

      const kept = (await runOperation(l.ctx, 'vacuum', { dataset: 'ticks' })) as VacuumOpResult;
      expect(kept.expired.length + kept.orphans.length).toBe(0);
      const dry = (await runOperation(l.ctx, 'vacuum', {
        dataset: 'ticks',
        grace_minutes: 0,
        dry_run: true,
      })) as VacuumOpResult;
      expect(dry.expired.length).toBe(4);
      expect(dry.orphans).toEqual([`ticks/symbol=ES/date=${DAY}/orphan.parquet`]);
      expect((await listKeys(l.store, 'ticks/')).length).toBe(6);

      const done = (await runOperation(l.ctx, 'vacuum', {
        dataset: 'ticks',
        grace_minutes: 0,
      })) as VacuumOpResult;
      expect(done.expired).toEqual(dry.expired);
      expect(done.orphans).toEqual(dry.orphans);
      const live = (await l.catalog.liveFiles('ticks')).map((f) => f.path).sort();
      expect(await listKeys(l.store, 'ticks/')).toEqual(live);
      expect(await snapshotTotals(l, 'ticks', 'price')).toEqual(totals);
    });
  });
}
