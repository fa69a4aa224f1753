/**
 * kill -9 of each service in turn while data arrives, each restarted at once: the running
 * system (one instance of each) ends with every product, tick and candle exactly once in the
 * lake, PostgreSQL, the API and an export.
 */
import { openCatalog } from '@parquetry/lake';
import { createTestDatabase, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { expectExactlyOnce, waitForEverything } from './lib/converge.js';
import { Publisher } from './lib/feeds.js';
import { missingBuilds, SERVICE_NAMES, sleep } from './lib/procs.js';
import { publishInWaves, smallFeed } from './lib/scenario.js';
import { startSystem } from './lib/system.js';

const skip = await requireServers({ nats: true, postgres: true });

describe.skipIf(skip)('kill -9 of each service mid-run', () => {
  it('restarts each and still lands every input exactly once', async () => {
    expect(missingBuilds(), 'build first: npx -y pnpm@10 run build').toEqual([]);
    const started = Date.now();
    const nats = await startNats();
    const db = await createTestDatabase();
    const tmp = tempDir('pq-e2e-kill9-');
    const system = await startSystem({
      natsUrl: nats.url,
      lakeUrl: `file://${tmp.path}/lake`,
      databaseUrl: db.url,
      dir: tmp.path,
      instances: 1,
      // A compaction job whose compactor was killed comes back after 3 s, not the default minute.
      serviceEnv: { compactor: { JOB_ACK_WAIT_MS: '3000' } },
    });
    const feed = await Publisher.connect(nats.url);
    try {
      const f = smallFeed();
      const killedWhile: string[] = [];
      const { retries } = await publishInWaves(feed, f, {
        waves: SERVICE_NAMES.length + 1,
        between: async (w) => {
          const service = SERVICE_NAMES[w];
          if (!service) return;
          // A compaction job in flight for the compactor's turn (and every other).
          void feed.lakeOp('compact', { op_id: `k9-${w}`, dataset: w % 2 ? 'ticks' : 'products' }, 1000);
          // Kill at a random moment of the next wave, not between waves.
          await sleep(50 + Math.random() * 400);
          const p = system.of(service)[0]!;
          const h = await p.getJson<Record<string, unknown>>('/health');
          await p.kill9();
          killedWhile.push(`${service}${h ? '' : ' (not answering)'}`);
          p.start();
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
      // One more compaction after the kills: the lake is still whole after it.
      const last = await feed.lakeOp('compact', { op_id: 'k9-final', dataset: 'products' }, 60_000);
      expect(last?.status).not.toBe('failed');
      await waitForEverything({ catalog, databaseUrl: db.url, expected: f.expected, system });
      const counts = await expectExactlyOnce({
        system,
        databaseUrl: db.url,
        batches: f.batches,
        ticks: [...f.ticks, ...f.sentinels],
        symbols: f.symbols,
        lastRealTs: f.lastRealTs,
        exportDir: tmp.path,
      });
      expect(system.all.map((p) => `${p.label}:${p.kills}`)).toEqual(system.all.map((p) => `${p.label}:1`));
      console.log(
        `e2e kill -9: killed ${killedWhile.join(', ')} (one each, mid-feed, restarted at once); ` +
          `${f.batches.length} batches / ${counts.lakeProducts} products, ${counts.lakeTicks} ticks, ` +
          `${counts.candles} candles (${counts.apiCandles} via API) — all exactly once in the lake; ` +
          `PostgreSQL ${counts.pgProducts} + ${counts.pgTicks} + ${counts.pgCandles} rows, export ${counts.exportRows}; ` +
          `${retries} publish retries, crashes ${system.all.map((p) => p.crashes).reduce((a, b) => a + b, 0)}; ` +
          `converged ${((converged.at - fedAt) / 1000).toFixed(1)} s after the feed, total ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
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
