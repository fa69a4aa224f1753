import { publishBatch, subjects } from '@parquetry/bus';
import {
  productFixtureBatches,
  readParquetIndependent,
  requireServers,
  startNats,
  tempDir,
} from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { startIngest, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

describe.skipIf(skip)('ingest-backup: size-based splitting and repeated publishes', () => {
  it('splits a backup above MAX_FILE_SIZE_MB into numbered parts, and lands a batch published three times once', async () => {
    const nats = await startNats();
    const tmp = tempDir('pq-split-');
    const h = await startIngest({
      NATS_URL: nats.url,
      LAKE_URL: `file://${tmp.path}/lake`,
      // ~10 KB: the largest real category (~20 KB of Parquet) makes several parts.
      MAX_FILE_SIZE_MB: '0.01',
      FLUSH_MAX_AGE_MS: '300',
      ARCHIVE_TICKS: 'false',
    });
    try {
      // One retailer/category: the batches share a group, so one flush writes one backup.
      const all = productFixtureBatches(400);
      const groups = new Map<string, typeof all>();
      for (const b of all)
        groups.set(`${b.retailer}/${b.category}`, [...(groups.get(`${b.retailer}/${b.category}`) ?? []), b]);
      const size = (g: typeof all) => g.reduce((n, b) => n + b.products.length, 0);
      const batches = [...groups.values()].sort((a, b) => size(b) - size(a))[0]!.slice(0, 8);
      const expected = batches.reduce((n, b) => n + b.products.length, 0);
      const messages = batches.map((b) => ({
        subject: subjects.products(b.retailer, b.category),
        payload: b,
        msgId: b.batch_id,
      }));
      await publishBatch(h.bus.js, messages); // once
      await publishBatch(h.bus.js, messages); // same Nats-Msg-Id: JetStream drops it
      await publishBatch(
        h.bus.js,
        messages.map((m) => ({ ...m, msgId: `${m.msgId}-later` })), // a new id: ingest drops it by batch id
      );
      const rowsIn = async () => (await h.app.catalog.liveFiles('products')).reduce((n, f) => n + f.rows, 0);
      await waitFor('every product', async () => ((await rowsIn()) >= expected ? true : undefined));
      await new Promise((r) => setTimeout(r, 1000));
      expect(await rowsIn()).toBe(expected);

      const files = await h.app.catalog.liveFiles('products');
      // <category>_<YYYYMMDD>_<HHMMSS>_<backup_id>_<part>.parquet
      const parts = files.filter((f) => /_\d{8}_\d{6}_[a-z0-9]{8}_\d+\.parquet$/.test(f.path));
      expect(parts.length, files.map((f) => `${f.path} ${f.bytes}`).join('\n')).toBeGreaterThan(1);
      for (const f of files) expect(f.bytes).toBeLessThanOrEqual(0.01 * 1024 * 1024 * 1.5);
      // Every batch id appears once, read by an independent reader.
      const seen = new Map<string, number>();
      for (const f of files) {
        const rows = await readParquetIndependent(await h.store.localPath(f.path));
        for (const r of rows) seen.set(String(r.batch_id), (seen.get(String(r.batch_id)) ?? 0) + 1);
      }
      for (const b of batches) expect(seen.get(b.batch_id)).toBe(b.products.length);
    } finally {
      await h.close();
      await nats.stop();
      tmp.remove();
    }
  });
});
