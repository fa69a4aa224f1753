import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectBus, ensureStreams, publishFast, STREAM_NAMES } from '@parquetry/bus';
import { silentLogger } from '@parquetry/service';
import { freePort, requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { referenceCandles } from '../src/domain/reference.js';
import { expectSameCandles } from './candle-expect.js';
import { binanceSymbols, lcg, sentinels, shuffledArrivals, tickMessages } from './feeds.js';
import { lakeCandles, startCandles, TEST_ENV, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startService(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function kill9(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGKILL');
  });
}

interface Health {
  last_seq: number;
  pending_candles: number;
  pending_publishes: number;
}

/** The service's own view of its progress (`GET /health`), or undefined while it starts. */
async function health(port: number): Promise<Health | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    return r.ok ? ((await r.json()) as Health) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Restart safety: the built service (dist/main.js) is killed with SIGKILL at random moments
 * while three symbols of real Binance trades stream in — shuffled within the lateness window
 * (so candles are revised) and with 2% of the trades delivered twice — and restarted each
 * time. Every kill lands while the service is working: after it has handled messages since
 * its restart and before it has handled the whole stream, at a random delay within its
 * flush, snapshot and publish cycle (all a few hundred ms). Its lake must then equal, value
 * for value and revision for revision, the lake of an uninterrupted in-process run over the
 * very same stream (its own catalog, state and lake), and both the reference model.
 */
describe.skipIf(skip)('candle-aggregator under kill -9', () => {
  it('ends with the same candles as an uninterrupted run', async () => {
    expect(
      existsSync(MAIN),
      'build first: npx turbo run build --filter=@parquetry/candle-aggregator...',
    ).toBe(true);
    const nats = await startNats();
    const tmp = tempDir('pq-candles-k9-');
    const lakeUrl = `file://${tmp.path}/lake`;
    const port = await freePort();
    const env = {
      ...TEST_ENV,
      LOG_LEVEL: 'error',
      HTTP_PORT: String(port),
      NATS_URL: nats.url,
      LAKE_URL: lakeUrl,
      CANDLE_PARTITIONS: '3',
      // Snapshots more often than lake flushes: most snapshots hold candles not yet in the lake.
      SNAPSHOT_INTERVAL_MS: '200',
      LAKE_FLUSH_MS: '900',
      COMPACT_MAX_FILES: '3',
      INSTANCE_ID: 'k9',
    };
    const bus = await connectBus({ url: nats.url, name: 'kill9-test', logger: silentLogger() });
    await ensureStreams(bus.jsm);
    const random = lcg(9);
    const ticks = binanceSymbols(3);
    const stream = [...shuffledArrivals(ticks, 42), ...sentinels(ticks)];
    const messages = tickMessages(stream, 7, 'k9');
    const total = messages.length;
    let service = startService(env);
    /** What the service had handled when it was killed. */
    const killedAt: number[] = [];
    try {
      // Paced so that the stream keeps arriving across several kills and restarts, in six
      // parts: part k + 1 only once k kills happened (up to 3). However fast the service is,
      // the first three kills then come before the end of the stream is even published.
      const parts = 6;
      const partSize = Math.ceil(messages.length / parts);
      const publishing = (async () => {
        for (let part = 0; part < parts; part++) {
          while (killedAt.length < Math.min(part, 3)) await sleep(20);
          const end = Math.min(messages.length, (part + 1) * partSize);
          for (let i = part * partSize; i < end; i += 500) {
            await publishFast(bus.nc, messages.slice(i, Math.min(i + 500, end)));
            await sleep(60);
          }
        }
      })();
      let published = false;
      void publishing.finally(() => {
        published = true;
      });
      let previous = 0;
      while (killedAt.length < 6 && !(published && killedAt.length >= 4)) {
        // Wait until the restarted service has handled messages beyond the last kill …
        // (A restart under a loaded CI machine can take many seconds: a generous deadline, and a
        // failure that says what the service was doing.)
        let seen: Health | undefined;
        const progressed = await waitFor(
          `the service to make progress after restart ${killedAt.length} (beyond seq ${previous} of ${total}; published: ${published})`,
          async () => {
            if (service.exitCode !== null) throw new Error(`the service exited with ${service.exitCode}`);
            const h = await health(port);
            seen = h ?? seen;
            if (!h) throw new Error(`no health answer yet; last seen ${JSON.stringify(seen)}`);
            // (or has caught up with everything: the last kill may have come after the end)
            if (h.last_seq > previous || h.last_seq >= total) return h;
            throw new Error(`still at ${JSON.stringify(h)}`);
          },
          90_000,
        );
        if (progressed.last_seq >= total) break; // caught up: nothing left to interrupt
        // … then kill it at a random moment of its work.
        await sleep(random() * 1000);
        const h = await health(port);
        await kill9(service);
        previous = h?.last_seq ?? progressed.last_seq;
        killedAt.push(previous);
        service = startService(env);
      }
      await publishing;
      const stored = (await bus.jsm.streams.info(STREAM_NAMES.ticks)).state.last_seq;
      expect(stored).toBe(total);

      // The (last) restarted service drains the stream and writes everything it holds.
      await waitFor(
        'the restarted service to handle the whole stream and flush',
        async () => {
          const h = await health(port);
          return h && h.last_seq === total && h.pending_candles === 0 && h.pending_publishes === 0
            ? h
            : undefined;
        },
        60_000,
      );
      const killed = await lakeCandles(nats.url, lakeUrl);
      const expected = referenceCandles(ticks);
      expectSameCandles(killed, expected, 'killed vs reference model');
      expect(
        killed.some((c) => c.revision > 0),
        'the shuffled feed revises candles',
      ).toBe(true);

      // Not a run that happened to finish before the kills: at least 3 kills interrupted work
      // in the middle of the stream.
      const midStream = killedAt.filter((s) => s > 0 && s < total);
      expect(midStream.length, `kills at ${killedAt.join(', ')} of ${total}`).toBeGreaterThanOrEqual(3);

      // The uninterrupted run: same stream, own catalog, state and lake.
      const refLake = `file://${tmp.path}/reference`;
      const ref = await startCandles(
        { ...env, LOG_LEVEL: 'silent', HTTP_PORT: '0', LAKE_URL: refLake, INSTANCE_ID: 'reference' },
        { catalogBucket: 'reference_catalog', stateBucket: 'reference_state' },
      );
      try {
        await waitFor(
          'the uninterrupted run to handle the whole stream and flush',
          async () => {
            const s = ref.app.stats();
            return s.lastSeq === total && s.pendingCandles === 0 && s.pendingPublishes === 0 ? s : undefined;
          },
          60_000,
        );
        const uninterrupted = await lakeCandles(nats.url, refLake, 'reference_catalog');
        expect(uninterrupted.length).toBe(expected.length);
        expect(killed).toEqual(uninterrupted);
      } finally {
        await ref.close();
      }
    } finally {
      await kill9(service);
      await bus.close();
      await nats.stop();
      tmp.remove();
    }
  });
});
