/**
 * A 3-node JetStream cluster on loopback with STREAM_REPLICAS=3: every stream and key-value
 * bucket the services create has three replicas, and the node leading the TICKS stream is killed
 * with SIGKILL in the middle of the feed. Publishers and services fail over; at the end the lake,
 * PostgreSQL and the API hold every input exactly once, and a service restarted against the
 * cluster leaves the replicas at 3.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { requireServers, startNatsCluster } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { productMessages, tickMessages } from './lib/feeds.js';
import { sleep, waitFor } from './lib/procs.js';
import { secondsSince, withSystem } from './lib/run.js';
import { smallFeed } from './lib/scenario.js';

const skip = await requireServers({ nats: true, postgres: true });
/**
 * Three nats-servers plus two of every service do not fit beside another test file on two cores
 * (leader elections time out and the run never converges): this file runs on its own, as the
 * last step of .ci/run (`E2E_CLUSTER=1 npx vitest run test-e2e/cluster.e2e.test.ts`).
 */
const alone = process.env.E2E_CLUSTER === '1';

describe.skipIf(skip || !alone)('a 3-node JetStream cluster, replicas 3, one node killed mid-run', () => {
  it('loses nothing and duplicates nothing while a node is down', async () => {
    const cluster = await startNatsCluster(3);
    const options = { name: 'cluster', natsUrl: cluster.url, instances: 1, env: { STREAM_REPLICAS: '3' } };
    try {
      await withSystem(options, async ({ started, system, feed, landed }) => {
        const jsm = await jetstreamManager(feed.nc);
        const replicas = async () => {
          const out: Record<string, number> = {};
          for await (const s of jsm.streams.list()) out[s.config.name] = s.config.num_replicas;
          return out;
        };
        const atStart = await replicas();
        for (const name of ['PRODUCTS', 'TICKS', 'CANDLES', 'LAKE', 'LAKE_OPS', 'DLQ'])
          expect(atStart[name]).toBe(3);
        for (const kv of ['KV_lake_catalog', 'KV_ingest_checkpoints', 'KV_candle_state'])
          expect(atStart[kv]).toBe(3);

        const f = smallFeed({ everyNthBatch: 2 });
        const pm = productMessages(f.batches);
        const tm = tickMessages(f.ticks);
        const WAVES = 6;
        let killed = '';
        let retries = 0;
        for (let w = 0; w < WAVES; w++) {
          const slice = <T>(a: readonly T[]) =>
            a.slice(Math.floor((w * a.length) / WAVES), Math.floor(((w + 1) * a.length) / WAVES));
          const [p, t] = await Promise.all([feed.publish(slice(pm)), feed.publish(slice(tm))]);
          retries += p.retries + t.retries;
          if (w === 1) {
            // Kill the node that leads TICKS: its stream and consumers elect new leaders.
            const leader = (await jsm.streams.info('TICKS')).cluster?.leader ?? '';
            const index = Math.max(
              0,
              cluster.nodes.findIndex((n) => n.name === leader),
            );
            killed = cluster.nodes[index]!.name;
            await cluster.kill9(index);
          }
          await sleep(500);
        }
        retries += (await feed.publish(tickMessages(f.sentinels))).retries;
        const fedAt = Date.now();
        const { at, counts } = await landed(f);

        // A service started again against the cluster (with the node still down) keeps R3.
        const ingest = system.of('ingest-backup')[0]!;
        await ingest.restart();
        await ingest.waitReady();
        const atEnd = await replicas();
        expect(
          Object.values(atEnd).every((r) => r === 3),
          JSON.stringify(atEnd),
        ).toBe(true);
        // The killed node comes back and catches up.
        const index = cluster.nodes.findIndex((n) => n.name === killed);
        await cluster.start(index);
        await waitFor(
          `${killed} to be current on TICKS again`,
          async () => {
            const info = await jsm.streams.info('TICKS');
            const replica = info.cluster?.replicas?.find((r) => r.name === killed);
            return replica?.current || info.cluster?.leader === killed ? true : undefined;
          },
          30_000,
          500,
        );
        const crashes = system.all
          .map((p) => `${p.label}:${p.crashes}${p.crashes ? ` (${p.crashReasons.join(' | ')})` : ''}`)
          .join(' ');
        console.log(
          `e2e cluster: killed ${killed} (TICKS leader) after wave 2 of ${WAVES}; ${f.expected.products} products, ` +
            `${f.expected.ticks} ticks, ${counts.candles} candles (${counts.apiCandles} via API), ` +
            `${counts.pgProducts} + ${counts.pgTicks} + ${counts.pgCandles} PostgreSQL rows, export ${counts.exportRows}; ` +
            `${retries} publish retries; service crashes ${crashes}; replicas ${JSON.stringify(atEnd)}; ` +
            `converged ${secondsSince(fedAt, at)} s after the feed, total ${secondsSince(started)} s`,
        );
      });
    } finally {
      await cluster.stop();
    }
  }, 240_000);
});
