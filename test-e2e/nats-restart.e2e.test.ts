/**
 * The NATS server killed (-9) and started again on the same port and store in the middle of
 * the feed: every service reconnects by itself (none is restarted by the test), the feed retries
 * its unacknowledged publishes, and every input lands exactly once.
 */
import { openCatalog } from '@parquetry/lake';
import { createTestDatabase, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { expectExactlyOnce, waitForEverything } from './lib/converge.js';
import { Publisher } from './lib/feeds.js';
import { missingBuilds, sleep } from './lib/procs.js';
import { publishInWaves, smallFeed } from './lib/scenario.js';
import { startSystem } from './lib/system.js';

const skip = await requireServers({ nats: true, postgres: true });

describe.skipIf(skip)('a NATS server restart mid-run', () => {
  it('reconnects every service and lands every input exactly once', async () => {
    expect(missingBuilds(), 'build first: npx -y pnpm@10 run build').toEqual([]);
    const started = Date.now();
    const nats = await startNats();
    const db = await createTestDatabase();
    const tmp = tempDir('pq-e2e-natsrestart-');
    const system = await startSystem({
      natsUrl: nats.url,
      lakeUrl: `file://${tmp.path}/lake`,
      databaseUrl: db.url,
      dir: tmp.path,
      instances: 1,
    });
    const feed = await Publisher.connect(nats.url);
    try {
      const f = smallFeed();
      let downMs = 0;
      const { retries } = await publishInWaves(feed, f, {
        waves: 6,
        between: async (w) => {
          if (w !== 2) return;
          await sleep(200);
          const t0 = Date.now();
          await nats.restart();
          downMs = Date.now() - t0;
        },
      });
      const fedAt = Date.now();
      const catalog = await openCatalog({ nc: feed.nc, writerId: 'e2e-reader' });
      const converged = await waitForEverything({
        catalog,
        databaseUrl: db.url,
        expected: f.expected,
        system,
      });
      const counts = await expectExactlyOnce({
        system,
        databaseUrl: db.url,
        batches: f.batches,
        ticks: [...f.ticks, ...f.sentinels],
        symbols: f.symbols,
        lastRealTs: f.lastRealTs,
        exportDir: tmp.path,
      });
      const crashes = system.all.map((p) => `${p.label}:${p.crashes}`).join(' ');
      console.log(
        `e2e NATS restart: server down ${downMs} ms after wave 3 of 6; ${f.batches.length} batches / ` +
          `${counts.lakeProducts} products, ${counts.lakeTicks} ticks, ${counts.candles} candles ` +
          `(${counts.apiCandles} via API) exactly once; PostgreSQL ${counts.pgProducts} + ${counts.pgTicks} + ` +
          `${counts.pgCandles} rows, export ${counts.exportRows}; ${retries} publish retries; crashes ${crashes}; ` +
          `converged ${((converged.at - fedAt) / 1000).toFixed(1)} s after the feed, total ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      // Nobody restarted by hand: every service rode through the restart (a crash would be restarted
      // by the harness like a supervisor, and is reported above, but must not be needed).
      expect(system.all.filter((p) => p.crashes > 0).map((p) => p.label)).toEqual([]);
    } catch (err) {
      console.error(system.tails());
      throw err;
    } finally {
      await feed.close();
      await Promise.all(system.all.map((p) => p.kill9()));
      await nats.stop();
      await db.drop();
      tmp.remove();
    }
  }, 240_000);
});
