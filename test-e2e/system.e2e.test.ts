/**
 * The whole system, end to end, against real servers: nats-server (JetStream), PostgreSQL and
 * the built services as child processes — two instances of each — fed the way the outside world
 * feeds it (a plain NATS client publishing real scraped products and real Binance trades) and
 * read the way operators read it (the CLI's snapshot file list, DuckDB, psql-style SQL, HTTP).
 * Compaction runs through all of it: the compactor's own policy on a short interval and
 * `lake.ops.compact` jobs published while the data arrives.
 */
import { requireServers } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { productMessages, tickMessages } from './lib/feeds.js';
import { sleep } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true, postgres: true });
const SYMBOLS = ['BTCUSDT', 'ETHE2E', 'SOLE2E'];

describe.skipIf(skip)('the whole system (two instances of each service)', () => {
  it('lands every product, tick and candle exactly once: lake, PostgreSQL, API and an export', async () => {
    // Two of every service (E2E_PG_LOADERS overrides pg-loader's count).
    const instances = { 'pg-loader': Number(process.env.E2E_PG_LOADERS ?? 2) };
    await withSystem(
      { name: 'system', instances },
      async ({ started, system, feed, catalog, converged, landed }) => {
        const f = smallFeed({ everyNthBatch: 1, symbols: SYMBOLS });
        const pm = productMessages(f.batches);
        const tm = tickMessages(f.ticks);
        const upAt = Date.now();

        // Eight waves, ~0.6 s apart: each flush of ingest-backup leaves small files, which the
        // compactor's policy (every 2.5 s) and the published jobs merge while more arrive.
        const WAVES = 8;
        const jobs: Promise<{ status: string } | undefined>[] = [];
        for (let w = 0; w < WAVES; w++) {
          const p0 = Math.floor((w * pm.length) / WAVES);
          const p1 = Math.floor(((w + 1) * pm.length) / WAVES);
          const t0 = Math.floor((w * tm.length) / WAVES);
          const t1 = Math.floor(((w + 1) * tm.length) / WAVES);
          await Promise.all([feed.publish(pm.slice(p0, p1)), feed.publish(tm.slice(t0, t1))]);
          if (w % 3 === 1) {
            for (const dataset of ['products', 'ticks']) {
              jobs.push(
                feed.lakeOp('compact', { op_id: `e2e-w${w}-${dataset}`, dataset, min_file_count: 2 }),
              );
            }
          }
          await sleep(600);
        }
        // A scraper retrying 25 batches long after (a new Nats-Msg-Id, so JetStream keeps them):
        // ingest-backup must drop them by batch id.
        await feed.publish(pm.slice(0, 25).map((m) => ({ ...m, msgId: `${m.msgId}-retry` })));
        // The market feed resending its last 500 ticks (same ids: dropped by the stream).
        await feed.publish(tm.slice(-500));
        // Then one tick per symbol two days later: every candle of the data closes.
        await feed.publish(tickMessages(f.sentinels));
        const fedAt = Date.now();

        const convergedAt = await converged(f);
        // A last compaction after everything arrived; every job must have succeeded.
        const finals = await Promise.all(
          ['products', 'ticks', 'candles'].map((dataset) =>
            feed.lakeOp('compact', { op_id: `e2e-final-${dataset}`, dataset, min_file_count: 2 }, 90_000),
          ),
        );
        const results = [...(await Promise.all(jobs)), ...finals];
        expect(results.map((r) => r?.status)).not.toContain(undefined);
        expect(results.filter((r) => r?.status === 'failed')).toEqual([]);
        const { counts } = await landed(f);
        const compactedFiles = await catalog.liveFiles('products');
        console.log(
          `e2e system: ${f.batches.length} batches / ${f.expected.products} products (+25 retried batches), ` +
            `${f.expected.ticks} ticks (+500 resent), ${counts.candles} candles (${counts.apiCandles} via API), ` +
            `${counts.pgProducts} + ${counts.pgTicks} + ${counts.pgCandles} PostgreSQL rows, export ${counts.exportRows} rows; ` +
            `${results.length} compaction jobs ok, products in ${compactedFiles.length} live files; ` +
            `start ${secondsSince(started, upAt)} s, feed ${secondsSince(upAt, fedAt)} s, ` +
            `converged ${secondsSince(fedAt, convergedAt)} s, total ${secondsSince(started)} s`,
        );
        // Every instance is still the one started (no crash), and each stops cleanly.
        expect(system.all.map((p) => `${p.label}:${p.starts}`)).toEqual(
          system.all.map((p) => `${p.label}:1`),
        );
        const exits = await Promise.all(system.all.map((p) => p.stop()));
        expect(exits.map((e, i) => `${system.all[i]!.label}:${e?.code}`)).toEqual(
          system.all.map((p) => `${p.label}:0`),
        );
      },
    );
  }, 240_000);
});
