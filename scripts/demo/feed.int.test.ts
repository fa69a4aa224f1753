import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The root has no NATS client of its own: the workspace packages bring theirs.
import { connectBus } from '../../packages/bus/src/index.js';
import { silentLogger } from '../../packages/service/src/index.js';
import { type NatsServerHandle, requireServers, startNats } from '../../packages/testkit/src/index.js';
import { loadProductSources, sessionBatches } from './products.mjs';

/**
 * The demo feed of `pnpm start` against a real nats-server: one scrape session publishes every
 * product batch of the shared data exactly once, the market feed replays at least a whole loop
 * of the capture before going live, and SIGINT stops it cleanly. Runs the built feed (dist of
 * packages/bus and packages/service, as `pnpm start` does).
 */
const skip = await requireServers({ nats: true });
const feedPath = fileURLToPath(new URL('./feed.mjs', import.meta.url));

describe.skipIf(skip)('demo feed', () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('publishes every product batch once and the trade history, then stops on SIGINT', async () => {
    const expectedBatches = sessionBatches(loadProductSources(), { session: 'x' }).length;
    const feed = spawn(process.execPath, [feedPath], {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        DEMO_SCRAPE_EVERY_MIN: '0',
        DEMO_BATCH_INTERVAL_MS: '0',
        DEMO_TICK_RATE: '20000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const events: Record<string, any>[] = [];
    createInterface({ input: feed.stdout! }).on('line', (l) => events.push(JSON.parse(l)));
    const exited = new Promise<number | null>((r) => feed.once('exit', (code) => r(code)));
    const waitFor = async (msg: string) => {
      for (let i = 0; i < 600 && !events.some((e) => e.msg === msg); i++)
        await new Promise((r) => setTimeout(r, 100));
      return events.find((e) => e.msg === msg);
    };
    try {
      const scraped = await waitFor('scrape session published');
      const market = await waitFor('market history replayed, now live');
      expect(scraped?.batches).toBe(expectedBatches);
      expect(market?.ticks).toBeGreaterThanOrEqual(19_904);
      expect(market?.symbols).toEqual(['BTCUSDT']);

      const bus = await connectBus({ url: nats.url, name: 'feed-test', logger: silentLogger() });
      expect((await bus.jsm.streams.info('PRODUCTS')).state.messages).toBe(expectedBatches);
      expect((await bus.jsm.streams.info('TICKS')).state.messages).toBeGreaterThan(0);
      await bus.close();
    } finally {
      feed.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(events.at(-1)?.msg).toBe('stopped');
  });
});
