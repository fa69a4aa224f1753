/**
 * The S3 server (s3rver) down for 15 s while ingest-backup writes products and ticks to an s3://
 * lake: uploads fail, flushes are retried with backoff, and no message is acknowledged while its
 * data is not in the lake (the JetStream ack floors of ingest-backup's consumers do not move
 * during the outage, nor does the catalog). When S3 is back everything lands exactly once.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { openCatalog } from '@parquetry/lake';
import { requireServers, startNats, startS3, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { expectExactlyOnce, waitForEverything } from './lib/converge.js';
import { Publisher } from './lib/feeds.js';
import { missingBuilds, sleep, waitFor } from './lib/procs.js';
import { feedInParts, smallFeed } from './lib/scenario.js';
import { startSystem } from './lib/system.js';

const skip = await requireServers({ nats: true });
const OUTAGE_MS = 15_000;

describe.skipIf(skip)('the S3 server down for 15 s during writes', () => {
  it('retries, acks nothing that is not durable, and lands everything once S3 is back', async () => {
    expect(missingBuilds(), 'build first: npx -y pnpm@10 run build').toEqual([]);
    const started = Date.now();
    const nats = await startNats();
    const s3 = await startS3('lake');
    const tmp = tempDir('pq-e2e-s3-');
    const system = await startSystem({
      natsUrl: nats.url,
      lakeUrl: s3.lakeUrl('e2e'),
      databaseUrl: '',
      dir: tmp.path,
      instances: 2,
      only: ['ingest-backup'],
      env: s3.env,
    });
    const feed = await Publisher.connect(nats.url);
    try {
      const jsm = await jetstreamManager(feed.nc);
      const catalog = await openCatalog({ nc: feed.nc, writerId: 'e2e-reader' });
      const f = smallFeed();
      const ackFloors = async () => {
        let acked = 0;
        let waiting = 0;
        for (const stream of ['PRODUCTS', 'TICKS']) {
          for await (const c of jsm.consumers.list(stream)) {
            acked += c.ack_floor.stream_seq;
            waiting += c.num_pending + c.num_ack_pending;
          }
        }
        return { acked, waiting };
      };
      const lakeRows = async () =>
        (await catalog.liveFiles('products')).reduce((n, x) => n + x.rows, 0) +
        (await catalog.liveFiles('ticks')).reduce((n, x) => n + x.rows, 0);
      const warnings = () => system.all.reduce((n, p) => n + p.warned(/flush failed/), 0);

      // Three parts: the first lands; the second arrives while S3 is down, so its flushes must
      // fail (whatever the machine's speed); the third and the sentinels once S3 is back.
      const parts = feedInParts(feed, f, 3);
      let retries = await parts.publish(0);
      await waitFor(
        'the first part to land',
        async () => ((await lakeRows()) > 0 ? true : undefined),
        30_000,
      );
      const warned = warnings();
      await s3.pause();
      const downAt = Date.now();
      retries += await parts.publish(1);
      // Commits whose uploads had finished before the pause may still complete: let them.
      await sleep(3000);
      const before = { acked: (await ackFloors()).acked, rows: await lakeRows() };
      const during: { acked: number; rows: number }[] = [];
      while (Date.now() - downAt < OUTAGE_MS || warnings() === warned) {
        if (Date.now() - downAt > 4 * OUTAGE_MS) throw new Error('no flush failed while S3 was down');
        await sleep(1000);
        during.push({ acked: (await ackFloors()).acked, rows: await lakeRows() });
      }
      const failedFlushes = warnings() - warned;
      const downMs = Date.now() - downAt;
      await s3.resume();
      retries += await parts.publish(2);
      retries += await parts.sentinels();
      const backAt = Date.now();
      // Nothing acked and nothing committed while S3 was down, yet work was waiting and retried.
      expect(during.length).toBeGreaterThanOrEqual(10);
      expect(
        during.every((d) => d.acked === before.acked && d.rows === before.rows),
        JSON.stringify(during),
      ).toBe(true);
      expect(failedFlushes).toBeGreaterThan(0);
      const waitingAtEnd = (await ackFloors()).waiting;

      const expected = { products: f.expected.products, ticks: f.expected.ticks };
      const converged = await waitForEverything({ catalog, expected, system });
      const counts = await expectExactlyOnce({
        system,
        batches: f.batches,
        ticks: [...f.ticks, ...f.sentinels],
      });
      const dead = (await jsm.streams.info('DLQ').catch(() => undefined))?.state.messages ?? 0;
      expect(dead).toBe(0);
      console.log(
        `e2e S3 outage: s3rver down ${(downMs / 1000).toFixed(0)} s after the first third of the feed (2 ingest-backup instances); ` +
          `during it ${failedFlushes} failed flushes retried, ack floor stayed at ${before.acked}, lake rows at ${before.rows}; ` +
          `${waitingAtEnd} messages waiting when it came back; then ${counts.lakeProducts} products ` +
          `(${f.batches.length} batches) and ${counts.lakeTicks} ticks exactly once, ${dead} dead letters, ` +
          `${retries} publish retries; caught up ${((converged.at - backAt) / 1000).toFixed(1)} s after S3 returned, ` +
          `total ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } catch (err) {
      console.error(system.tails());
      throw err;
    } finally {
      await feed.close();
      await Promise.all(system.all.map((p) => p.kill9()));
      await nats.stop();
      await s3.stop();
      tmp.remove();
    }
  }, 180_000);
});
