/**
 * The S3 server (s3rver) down for 15 s while ingest-backup writes products and ticks to an s3://
 * lake: uploads fail, flushes are retried with backoff, and no message is acknowledged while its
 * data is not in the lake (the JetStream ack floors of ingest-backup's consumers do not move
 * during the outage, nor does the catalog). When S3 is back everything lands exactly once.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { requireServers, startS3 } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { feedInParts, smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true });
const OUTAGE_MS = 15_000;

describe.skipIf(skip)('the S3 server down for 15 s during writes', () => {
  it('retries, acks nothing that is not durable, and lands everything once S3 is back', async () => {
    const s3 = await startS3('lake');
    const options = {
      name: 's3',
      postgres: false,
      lakeUrl: s3.lakeUrl('e2e'),
      instances: 2,
      only: ['ingest-backup'] as const,
      env: s3.env,
    };
    try {
      await withSystem(options, async ({ started, system, feed, lakeRows, landed }) => {
        const jsm = await jetstreamManager(feed.nc);
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
        const warnings = () => system.all.reduce((n, p) => n + p.warned(/flush_failed/), 0);

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
        // At least 15 s and 10 samples (a loaded machine takes longer per sample), and a failed flush.
        while (Date.now() - downAt < OUTAGE_MS || during.length < 10 || warnings() === warned) {
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

        const { at, counts } = await landed(f);
        const dead = (await jsm.streams.info('DLQ').catch(() => undefined))?.state.messages ?? 0;
        expect(dead).toBe(0);
        console.log(
          `e2e S3 outage: s3rver down ${(downMs / 1000).toFixed(0)} s after the first third of the feed (2 ingest-backup instances); ` +
            `during it ${failedFlushes} failed flushes retried, ack floor stayed at ${before.acked}, lake rows at ${before.rows}; ` +
            `${waitingAtEnd} messages waiting when it came back; then ${counts.lakeProducts} products ` +
            `(${f.batches.length} batches) and ${counts.lakeTicks} ticks exactly once, ${dead} dead letters, ` +
            `${retries} publish retries; caught up ${secondsSince(backAt, at)} s after S3 returned, total ${secondsSince(started)} s`,
        );
      });
    } finally {
      await s3.stop();
    }
  }, 180_000);
});
