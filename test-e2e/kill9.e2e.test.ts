/**
 * kill -9 of each service in turn while data arrives, each restarted at once: the running
 * system (one instance of each) ends with every product, tick and candle exactly once in the
 * lake, PostgreSQL, the API and an export.
 */
import { requireServers } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { SERVICE_NAMES, sleep } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { publishInWaves, smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true, postgres: true });

describe.skipIf(skip)('kill -9 of each service mid-run', () => {
  it('restarts each and still lands every input exactly once', async () => {
    // A compaction job whose compactor was killed comes back after 3 s, not the default minute.
    const options = { name: 'kill9', instances: 1, serviceEnv: { compactor: { JOB_ACK_WAIT_MS: '3000' } } };
    await withSystem(options, async ({ started, system, feed, converged, landed }) => {
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
      const convergedAt = await converged(f);
      // One more compaction after the kills: the lake is still whole after it.
      const last = await feed.lakeOp('compact', { op_id: 'k9-final', dataset: 'products' }, 60_000);
      expect(last?.status).not.toBe('failed');
      const { counts } = await landed(f);
      expect(system.all.map((p) => `${p.label}:${p.kills}`)).toEqual(system.all.map((p) => `${p.label}:1`));
      console.log(
        `e2e kill -9: killed ${killedWhile.join(', ')} (one each, mid-feed, restarted at once); ` +
          `${f.batches.length} batches / ${counts.lakeProducts} products, ${counts.lakeTicks} ticks, ` +
          `${counts.candles} candles (${counts.apiCandles} via API) — all exactly once in the lake; ` +
          `PostgreSQL ${counts.pgProducts} + ${counts.pgTicks} + ${counts.pgCandles} rows, export ${counts.exportRows}; ` +
          `${retries} publish retries, crashes ${system.all.map((p) => p.crashes).reduce((a, b) => a + b, 0)}; ` +
          `converged ${secondsSince(fedAt, convergedAt)} s after the feed, total ${secondsSince(started)} s`,
      );
    });
  }, 240_000);
});
