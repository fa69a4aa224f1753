/**
 * Flushes that neither age nor bytes would trigger in time.
 *
 * Single-tick messages are tiny: 45,000 of them weigh a few MB, far under any byte budget, yet
 * they are more than the consumer's pull window (40,000 unsettled messages). A flush by age
 * alone would then hold the window full until the age passes, capping the archive at
 * window / age ticks per second. The item budget flushes at half the window instead.
 *
 * A backlog that drains leaves its tail in the buffer, with nothing coming soon to join it: it is
 * flushed at once rather than after its age.
 */
import { connectBus, ensureStreams, publishBatch, publishFast, subjects } from '@parquetry/bus';
import { silentLogger } from '@parquetry/service';
import {
  type NatsServerHandle,
  productFixtureBatches,
  requireServers,
  startNats,
  tempDir,
} from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

describe.skipIf(skip)('flush triggers beyond age and size', () => {
  let nats: NatsServerHandle;
  const tmp = tempDir('pq-ingest-ticks-');
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
    tmp.remove();
  });

  it('flushes by message count long before the age limit', async () => {
    const h = await startIngest({
      NATS_URL: nats.url,
      LAKE_URL: `file://${tmp.path}/lake`,
      // Far beyond the test: only a count-driven flush can land anything in time.
      FLUSH_MAX_AGE_MS: '600000',
    });
    try {
      const start = Date.parse('2025-09-03T00:00:00Z');
      const total = 45_000;
      const messages = Array.from({ length: total }, (_, i) => ({
        subject: subjects.ticks('BTCUSDT'),
        payload: { symbol: 'BTCUSDT', ts: start + i, price: 60_000 + (i % 100), size: 0.01, trade_id: i },
        msgId: `tw-${i}`,
      }));
      const started = Date.now();
      await publishFast(h.bus.nc, messages);
      const landed = await waitFor(
        'ticks to land without waiting for their age',
        async () => {
          const rows = (await h.app.catalog.liveFiles('ticks')).reduce((n, f) => n + f.rows, 0);
          return rows >= 20_000 ? rows : undefined;
        },
        60_000,
      );
      expect(landed).toBeLessThanOrEqual(total);
      console.log(
        `ticks window: ${landed} of ${total} single-tick messages committed after ${Date.now() - started} ms (age limit 600 s)`,
      );
    } finally {
      await h.close();
    }
  });

  it('flushes the tail of a drained backlog at once, not after its age', async () => {
    const server = await startNats();
    try {
      // The backlog is in the stream before the service starts.
      const batches = productFixtureBatches(60);
      const expected = batches.reduce((n, b) => n + b.products.length, 0);
      const bus = await connectBus({ url: server.url, name: 'drain-test', logger: silentLogger() });
      await ensureStreams(bus.jsm);
      await publishBatch(
        bus.js,
        batches.map((b) => ({
          subject: subjects.products(b.retailer, b.category),
          payload: b,
          msgId: b.batch_id,
        })),
      );
      await bus.close();
      const started = Date.now();
      const h = await startIngest({
        NATS_URL: server.url,
        LAKE_URL: `file://${tmp.path}/lake-drain`,
        FLUSH_MAX_AGE_MS: '600000',
        ARCHIVE_TICKS: 'false',
        FETCH_BATCH: '8',
      });
      try {
        await waitFor(
          'the drained backlog to land without waiting for its age',
          async () => {
            const rows = (await h.app.catalog.liveFiles('products')).reduce((n, f) => n + f.rows, 0);
            return rows === expected ? rows : undefined;
          },
          60_000,
        );
        console.log(
          `drained backlog: ${batches.length} batches / ${expected} products committed ${Date.now() - started} ms after start (age limit 600 s)`,
        );
      } finally {
        await h.close();
      }
    } finally {
      await server.stop();
    }
  });
});
