import { sha256File } from '@parquetry/lake';
import { type NatsServerHandle, type S3ServerHandle, startNats, startS3 } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { byDataTime } from '../src/domain/compact-plan.js';
import type { OpResult } from '../src/domain/report.js';
import { runOperation, runRewrite } from '../src/engine/run.js';
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

/** compact, delete and update end to end, on one kind of lake (fs or s3rver). */
export function opsSuite(kind: LakeKind): void {
  describe(`rewrite operations on the ${kind} lake`, () => {
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

    it('compacts the small files of the selected partitions in one commit; a reader sees only the same totals; a dry run changes nothing', async () => {
      const l = await freshLake();
      for (let i = 0; i < 12; i++) await addTicksFile(l, 'ES', DAY, 3000 + i * 10, i + 1);
      for (let i = 0; i < 3; i++) await addTicksFile(l, 'NQ', DAY, 500, 100 + i);
      await snapshotTable(l, 'ticks', 'before');
      const before = await snapshotTotals(l, 'ticks', 'price');
      const job = {
        dataset: 'ticks',
        partitions: [{ column: 'symbol', op: '=', value: 'ES' }],
        target_file_size_mb: 0.25,
      };

      const stateBefore = await catalogState(l.catalog, 'ticks');
      const keysBefore = await listKeys(l.store);
      const dry = (await runOperation(l.ctx, 'compact', { ...job, dry_run: true })) as OpResult;
      expect(dry.status).toBe('dry_run');
      expect(await catalogState(l.catalog, 'ticks')).toBe(stateBefore);
      expect(await listKeys(l.store)).toEqual(keysBefore);
      expect(dry.partitions.map((p) => p.partition)).toEqual([`symbol=ES/date=${DAY}`]);
      expect(dry.partitions[0]!.files_removed).toBe(12);
      expect(dry.totals.rows_before).toBe(12 * 3000 + 660);

      const reader = await startReader(l, 'ticks', 'price');
      const result = (await runOperation(l.ctx, 'compact', job)) as OpResult;
      const seen = await reader.stop();

      expect(result.status).toBe('committed');
      // The dry run named exactly the partitions, files and rows the real run changed.
      expect(result.partitions.map((p) => [p.partition, p.removed, p.rows_removed, p.rows_added])).toEqual(
        dry.partitions.map((p) => [p.partition, p.removed, p.rows_removed, p.rows_added]),
      );
      const es = await l.catalog.partition('ticks', { symbol: 'ES', date: DAY });
      expect(es.files.length).toBe(result.partitions[0]!.files_added);
      expect(es.files.length).toBeLessThan(12);
      expect(es.files.length).toBeGreaterThanOrEqual(1);
      const nq = await l.catalog.partition('ticks', { symbol: 'NQ', date: DAY });
      expect(nq.files.length).toBe(3);

      await snapshotTable(l, 'ticks', 'after');
      expect(await tableDiff(l.conn, 'before', 'after')).toBe(0);
      // The new files carry their time range (from footer statistics) for pruning.
      const range = await l.conn.runAndReadAll(
        `SELECT epoch_ms(min(ts))::BIGINT AS lo, epoch_ms(max(ts))::BIGINT AS hi FROM before WHERE symbol = 'ES'`,
      );
      const { lo, hi } = range.getRowObjectsJS()[0] as { lo: bigint; hi: bigint };
      expect(es.files.map((f) => f.minTime).sort()[0]).toBe(new Date(Number(lo)).toISOString());
      expect(
        es.files
          .map((f) => f.maxTime)
          .sort()
          .at(-1),
      ).toBe(new Date(Number(hi)).toISOString());
      expect(seen.length).toBeGreaterThanOrEqual(2);
      for (const s of seen) expect(sameTotals(s, before)).toBe(true);
      // Each new file is in the catalog with the sha256 of the bytes the store holds.
      for (const f of es.files) expect(await sha256File(await l.store.localPath(f.path))).toBe(f.sha256);
      expect(result.timings_ms?.copy).toBeGreaterThan(0);
      // Replaced files stay in the store (removed, not deleted) until vacuum's grace passes.
      for (const p of result.partitions[0]!.removed) expect(await l.store.head(p)).toBeDefined();

      // A second run with the same op id applies nothing.
      const again = (await runRewrite(l.ctx, 'compact', { ...job, op_id: result.op_id })) as OpResult;
      expect(again.status).toBe('already_committed');
      expect(again.commit_id).toBe(result.commit_id);
    });

    it('a compaction failing after its first outputs were uploaded deletes them and commits nothing', async () => {
      const l = await freshLake();
      for (let i = 0; i < 4; i++) await addTicksFile(l, 'ES', DAY, 2000, 200 + i);
      for (let i = 0; i < 4; i++) await addTicksFile(l, 'ES', '2025-09-04', 2000, 300 + i);
      // A file of the partition compacted last cannot be read: the first partition's output is
      // uploaded by then.
      const manifests = await l.catalog.partitions('ticks', () => true);
      expect(manifests.length).toBe(2);
      const last = [...manifests.at(-1)!.files].sort(byDataTime).at(-1)!;
      await l.store.put(last.path, 'not a parquet file, but long enough to have a footer of sorts');
      const stateBefore = await catalogState(l.catalog, 'ticks');
      const keysBefore = await listKeys(l.store);
      // Count the outputs that reach the store (the real store does the work).
      const store = l.ctx.store;
      const putFile = store.putFile.bind(store);
      let uploads = 0;
      store.putFile = async (...args) => {
        await putFile(...args);
        uploads++;
      };
      try {
        await expect(
          runOperation(l.ctx, 'compact', { dataset: 'ticks', target_file_size_mb: 64 }),
        ).rejects.toThrow();
      } finally {
        store.putFile = putFile;
      }
      expect(uploads).toBeGreaterThanOrEqual(1);
      expect(await catalogState(l.catalog, 'ticks')).toBe(stateBefore);
      expect(await listKeys(l.store)).toEqual(keysBefore);
    });

    it('delete and update equal the same SQL run by DuckDB on a copy; a reader sees before or after', async () => {
      const l = await freshLake();
      for (let i = 0; i < 5; i++) await addTicksFile(l, 'ES', DAY, 2000, i + 1);
      for (let i = 0; i < 4; i++) await addTicksFile(l, 'ES', '2025-09-04', 1500, 50 + i);
      for (let i = 0; i < 2; i++) await addTicksFile(l, 'NQ', DAY, 800, 80 + i);

      // delete: side = 'sell' AND price > 5040, in ES partitions only
      await snapshotTable(l, 'ticks', 'ref');
      await l.conn.run(`DELETE FROM ref WHERE symbol = 'ES' AND side = 'sell' AND price > 5040`);
      const filters = [
        { column: 'side', op: '=', value: 'sell' },
        { column: 'price', op: '>', value: 5040 },
      ];
      const dry = (await runOperation(l.ctx, 'delete', {
        dataset: 'ticks',
        partitions: [{ column: 'symbol', op: 'in', value: ['ES'] }],
        filters,
        dry_run: true,
      })) as OpResult;
      const before = await snapshotTotals(l, 'ticks', 'price');
      const reader = await startReader(l, 'ticks', 'price');
      const del = (await runOperation(l.ctx, 'delete', {
        dataset: 'ticks',
        partitions: [{ column: 'symbol', op: 'in', value: ['ES'] }],
        filters,
        backup: true,
      })) as OpResult;
      const seenDel = await reader.stop();
      const afterDel = await snapshotTotals(l, 'ticks', 'price');
      expect(del.status).toBe('committed');
      expect(del.totals.rows_deleted).toBe(dry.totals.rows_deleted);
      expect(del.totals.rows_deleted).toBeGreaterThan(0);
      expect(afterDel.rows).toBe(before.rows - del.totals.rows_deleted!);
      await snapshotTable(l, 'ticks', 'got');
      expect(await tableDiff(l.conn, 'ref', 'got')).toBe(0);
      for (const s of seenDel) expect(sameTotals(s, before) || sameTotals(s, afterDel)).toBe(true);
      // The backup holds every replaced file and a note of the operation.
      const backups = await listKeys(l.store, `_backups/${del.op_id}/`);
      const replaced = del.partitions.flatMap((p) => p.removed);
      expect(backups).toEqual(
        [
          `_backups/${del.op_id}/_operation.json`,
          ...replaced.map((p) => `_backups/${del.op_id}/${p}`),
        ].sort(),
      );
      // NQ was outside the partition filter: untouched.
      expect((await l.catalog.partition('ticks', { symbol: 'NQ', date: DAY })).files.length).toBe(2);

      // update: size = size * 2 + 1, side = upper(side) for one seed's trade ids starting with 1
      const matching = await l.conn.runAndReadAll(
        `SELECT count(*)::BIGINT AS n FROM ref WHERE date = DATE '${DAY}' AND trade_id LIKE 's2-1%'`,
      );
      const expectedUpdated = Number((matching.getRowObjectsJS()[0] as { n: bigint }).n);
      await l.conn.run(
        `UPDATE ref SET size = size * 2 + 1, side = upper(side) WHERE date = DATE '${DAY}' AND trade_id LIKE 's2-1%'`,
      );
      const reader2 = await startReader(l, 'ticks', 'size');
      const beforeUpd = await snapshotTotals(l, 'ticks', 'size');
      const upd = (await runOperation(l.ctx, 'update', {
        dataset: 'ticks',
        partitions: [{ column: 'date', op: '=', value: DAY }],
        filters: [{ column: 'trade_id', op: 'like', value: 's2-1%' }],
        set: {
          size: { op: '+', args: [{ op: '*', args: [{ column: 'size' }, { value: 2 }] }, { value: 1 }] },
          side: { fn: 'upper', args: [{ column: 'side' }] },
        },
      })) as OpResult;
      const seenUpd = await reader2.stop();
      const afterUpd = await snapshotTotals(l, 'ticks', 'size');
      expect(upd.status).toBe('committed');
      expect(upd.totals.rows_updated).toBe(expectedUpdated);
      expect(expectedUpdated).toBeGreaterThan(100);
      expect(upd.partitions.map((p) => p.partition)).toEqual([`symbol=ES/date=${DAY}`]);
      await snapshotTable(l, 'ticks', 'got');
      expect(await tableDiff(l.conn, 'ref', 'got')).toBe(0);
      for (const s of seenUpd) expect(sameTotals(s, beforeUpd) || sameTotals(s, afterUpd)).toBe(true);
    });

    it('rejects injection attempts in filters and expressions with a clear error, changing nothing', async () => {
      const l = await freshLake();
      await addTicksFile(l, 'ES', DAY, 100, 1);
      const state = await catalogState(l.catalog, 'ticks');
      const bad: [string, unknown, RegExp][] = [
        [
          'delete',
          { dataset: 'ticks', filters: [{ column: 'price; DROP TABLE x; --', op: '=', value: 1 }] },
          /unknown column/i,
        ],
        [
          'delete',
          { dataset: 'ticks', filters: [{ column: 'price', op: '= 1 OR 1=1 --', value: 1 }] },
          /filters/,
        ],
        [
          'delete',
          { dataset: 'ticks', filters: [{ column: 'price', op: '>', value: '1; DROP TABLE x' }] },
          /price/,
        ],
        [
          'update',
          {
            dataset: 'ticks',
            filters: [],
            set: { price: { fn: 'read_csv', args: [{ value: '/etc/passwd' }] } },
          },
          /set\.price/,
        ],
        ['update', { dataset: 'ticks', filters: [], set: { 'price" = 1; --': 1 } }, /unknown column/],
        [
          'update',
          { dataset: 'ticks', filters: [], set: { price: { column: 'price") FROM x; --' } } },
          /unknown column/,
        ],
        [
          'update',
          { dataset: 'ticks', filters: [], set: { price: "'; DROP TABLE x; --" } },
          /VARCHAR value cannot be stored in DOUBLE/,
        ],
        [
          'update',
          { dataset: 'ticks', filters: [], set: { symbol: 'x' } },
          /partition columns cannot be updated/,
        ],
        ['compact', { dataset: '../etc', filters: [] }, /dataset/],
        [
          'compact',
          { dataset: 'ticks', partitions: [{ column: 'price', op: '=', value: 1 }] },
          /unknown column|price/,
        ],
        [
          'repartition',
          { dataset: 'ticks', partition_by: { date: { fn: 'pg_sleep', args: [{ value: 1 }] } } },
          /partition_by\.date/,
        ],
      ];
      for (const [op, job, message] of bad) {
        const err = await runOperation(l.ctx, op as 'delete', job).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${op} ${JSON.stringify(job)}`).toBeInstanceOf(Error);
        expect((err as { status?: number }).status, String(err)).toBe(400);
        expect(String((err as Error).message)).toMatch(message);
      }
      // A hostile string as a VALUE is just a value: bound, matching nothing.
      const r = (await runOperation(l.ctx, 'delete', {
        dataset: 'ticks',
        filters: [{ column: 'side', op: '=', value: "x' OR '1'='1" }],
      })) as OpResult;
      expect(r.status).toBe('nothing_to_do');
      expect(await catalogState(l.catalog, 'ticks')).toBe(state);
    });
  });
}
