/**
 * Single-tick messages are tiny: 45,000 of them weigh a few MB, far under any byte budget, yet
 * they are more than the consumer's pull window (40,000 unsettled messages). A flush by age
 * alone would then hold the window full until the age passes, capping the archive at
 * window / age ticks per second. The item budget flushes at half the window instead.
 */
import { publishFast, subjects } from '@parquetry/bus';
import { type NatsServerHandle, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

describe.skipIf(skip)('tick archive under many small messages', () => {
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
});
