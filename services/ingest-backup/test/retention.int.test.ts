import { publishBatch, subjects } from '@parquetry/bus';
import { type LakeCommitted, lakeCommitted } from '@parquetry/lake';
import { productFixtureBatches, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { startIngest, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });
const DAY_MS = 86_400_000;

describe.skipIf(skip)('ingest-backup retention schedule', () => {
  it('drops partitions older than PARQUET_MAX_AGE_DAYS, keeps the rest, and announces the removal', async () => {
    const nats = await startNats();
    const tmp = tempDir('pq-retention-');
    const h = await startIngest({
      NATS_URL: nats.url,
      LAKE_URL: `file://${tmp.path}/lake`,
      PARQUET_MAX_AGE_DAYS: '30',
      // The schedule itself must not fire during the test: the test calls runOnce.
      RETENTION_INTERVAL_MS: '3600000',
      ARCHIVE_TICKS: 'false',
    });
    try {
      const now = Date.now();
      const [a, b, c] = productFixtureBatches(3);
      const old = { ...a!, batch_id: 'old-1', scraped_at: new Date(now - 40 * DAY_MS).toISOString() };
      const edge = { ...b!, batch_id: 'edge-1', scraped_at: new Date(now - 29 * DAY_MS).toISOString() };
      const fresh = { ...c!, batch_id: 'fresh-1', scraped_at: new Date(now).toISOString() };
      await publishBatch(
        h.bus.js,
        [old, edge, fresh].map((p) => ({
          subject: subjects.products(p.retailer, p.category),
          payload: p,
          msgId: p.batch_id,
        })),
      );
      const expected = old.products.length + edge.products.length + fresh.products.length;
      await waitFor('all three batches', async () => {
        const rows = (await h.app.catalog.liveFiles('products')).reduce((n, f) => n + f.rows, 0);
        return rows === expected ? true : undefined;
      });
      const oldDate = old.scraped_at.slice(0, 10);
      const oldMeta = `products/retailer=${old.retailer}/date=${oldDate}/_metadata_${oldDate.replaceAll('-', '')}.json`;
      // The listing is written just after the commit: let it land before retention runs.
      await waitFor('the old partition listing', async () =>
        (await h.store.head(oldMeta)) ? true : undefined,
      );
      const oldFiles = (await h.app.catalog.liveFiles('products')).filter((f) =>
        f.path.includes(`date=${oldDate}`),
      );
      expect(oldFiles.length).toBeGreaterThan(0);

      const events: LakeCommitted[] = [];
      const sub = h.bus.nc.subscribe(subjects.lakeCommitted('products'));
      (async () => {
        for await (const m of sub) events.push(lakeCommitted.parse(m.json()));
      })();

      const [result] = await h.app.retention.runOnce();
      expect(result!.partitions).toBe(1);
      expect(result!.rows).toBe(old.products.length);

      const live = await h.app.catalog.liveFiles('products');
      expect(live.some((f) => f.path.includes(`date=${oldDate}`))).toBe(false);
      expect(live.reduce((n, f) => n + f.rows, 0)).toBe(edge.products.length + fresh.products.length);
      // The metadata file of the dropped day is gone; the Parquet files wait for vacuum.
      expect(await h.store.head(oldMeta)).toBeUndefined();

      const removal = await waitFor('the removal event', async () =>
        events.find((e) => e.operation === 'remove'),
      );
      expect(removal.partitions[0]!.removed.sort()).toEqual(oldFiles.map((f) => f.path).sort());

      // A second run finds nothing more to drop.
      const [again] = await h.app.retention.runOnce();
      expect(again!.partitions).toBe(0);
      sub.unsubscribe();
    } finally {
      await h.close();
      await nats.stop();
      tmp.remove();
    }
  });
});
