/**
 * The NATS server killed (-9) and started again on the same port and store in the middle of
 * the feed: every service reconnects by itself (none is restarted by the test), the feed retries
 * its unacknowledged publishes, and every input lands exactly once.
 */
import { requireServers } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { sleep } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { publishInWaves, smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true, postgres: true });

describe.skipIf(skip)('a NATS server restart mid-run', () => {
  it('reconnects every service and lands every input exactly once', async () => {
    await withSystem(
      { name: 'natsrestart', instances: 1 },
      async ({ started, nats, system, feed, landed }) => {
        const f = smallFeed();
        let downMs = 0;
        const { retries } = await publishInWaves(feed, f, {
          waves: 6,
          between: async (w) => {
            if (w !== 2) return;
            await sleep(200);
            const t0 = Date.now();
            await nats!.restart();
            downMs = Date.now() - t0;
          },
        });
        const fedAt = Date.now();
        const { at, counts } = await landed(f);
        const crashes = system.all.map((p) => `${p.label}:${p.crashes}`).join(' ');
        console.log(
          `e2e NATS restart: server down ${downMs} ms after wave 3 of 6; ${f.batches.length} batches / ` +
            `${counts.lakeProducts} products, ${counts.lakeTicks} ticks, ${counts.candles} candles ` +
            `(${counts.apiCandles} via API) exactly once; PostgreSQL ${counts.pgProducts} + ${counts.pgTicks} + ` +
            `${counts.pgCandles} rows, export ${counts.exportRows}; ${retries} publish retries; crashes ${crashes}; ` +
            `converged ${secondsSince(fedAt, at)} s after the feed, total ${secondsSince(started)} s`,
        );
        // Nobody restarted by hand: every service rode through the restart (a crash would be restarted
        // by the harness like a supervisor, and is reported above, but must not be needed).
        expect(system.all.filter((p) => p.crashes > 0).map((p) => p.label)).toEqual([]);
      },
    );
  }, 240_000);
});
