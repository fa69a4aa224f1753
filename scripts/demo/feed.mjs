// The demo feed `pnpm start` runs beside the services: a scraper replaying the real product
// files as product batches, and a market feed replaying the real trades at a steady rate.
// A child process of scripts/start.mjs; JSON logs on stdout like the services.
//
//   DEMO_TICK_RATE            ticks per second while catching up with the wall clock (default 1000)
//   DEMO_BATCH_INTERVAL_MS    pause between two product batches (default 250)
//   DEMO_SCRAPE_EVERY_MIN     a new scrape session this often (default 15; 0 = once)
//   DEMO_PRODUCTS, DEMO_TICKS 0 turns that half off
import { join } from 'node:path';
import { connectBus, ensureStreams, publishJson, subjects } from '../../packages/bus/dist/index.js';
import { createLogger } from '../../packages/service/dist/index.js';
import { loadCaptureTrades, replayPlan } from './market.mjs';
import { loadProductSources, sessionBatches, sharedDataDir } from './products.mjs';

const SERVICE = 'demo-feed';
const num = (name, def) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`${SERVICE}: ${name} must be a non-negative number\n`);
    process.exit(1);
  }
  return n;
};

const logger = createLogger(SERVICE, process.env.LOG_LEVEL ?? 'info');
const tickRate = num('DEMO_TICK_RATE', 1000);
const batchIntervalMs = num('DEMO_BATCH_INTERVAL_MS', 250);
const scrapeEveryMin = num('DEMO_SCRAPE_EVERY_MIN', 15);
let stopping = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Publish until it works or the feed stops (NATS restarting, streams not there yet). */
async function publish(js, subject, payload, msgId) {
  for (let attempt = 0; !stopping; attempt++) {
    try {
      return await publishJson(js, subject, payload, { msgId });
    } catch (err) {
      if (attempt % 10 === 0) logger.warn({ err: err.message, subject }, 'retry');
      await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
    }
  }
}

function stamp(d) {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

async function scraper(js) {
  const sources = loadProductSources(join(sharedDataDir(), 'products'));
  if (sources.length === 0) {
    logger.warn({ dir: join(sharedDataDir(), 'products') }, 'no product files: the demo scraper is off');
    return;
  }
  do {
    const now = new Date();
    const batches = sessionBatches(sources, { session: stamp(now), now });
    let products = 0;
    for (const b of batches) {
      if (stopping) return;
      await publish(js, subjects.products(b.retailer, b.category), b, b.batch_id);
      products += b.products.length;
      await sleep(batchIntervalMs);
    }
    logger.info(
      { session: `demo_${stamp(now)}`, batches: batches.length, products },
      'scrape session published',
    );
    const until = Date.now() + scrapeEveryMin * 60_000;
    while (!stopping && scrapeEveryMin > 0 && Date.now() < until) await sleep(500);
  } while (!stopping && scrapeEveryMin > 0);
}

async function market(js) {
  const dir = join(sharedDataDir(), 'market');
  const trades = loadCaptureTrades(dir);
  if (trades.length === 0) {
    logger.warn({ dir }, 'no trade captures: the demo market feed is off');
    return;
  }
  const plan = replayPlan(trades);
  const ticks = plan.ticksFrom(Date.now());
  // Steady rate: a message of up to rate/10 ticks every 100 ms, never ahead of the wall clock.
  const perMessage = Math.max(1, Math.round(tickRate / 10));
  let next = ticks.next().value;
  let published = 0;
  let caughtUp = false;
  while (!stopping) {
    const started = Date.now();
    const bySymbol = new Map();
    for (let n = 0; n < perMessage && next.ts <= started; n++) {
      const list = bySymbol.get(next.symbol) ?? [];
      list.push(next);
      bySymbol.set(next.symbol, list);
      next = ticks.next().value;
    }
    for (const [symbol, list] of bySymbol) {
      const msgId = `demo-${symbol}-${list[0].trade_id}-${list[list.length - 1].trade_id}`;
      await publish(js, subjects.ticks(symbol), { symbol, ticks: list }, msgId);
      published += list.length;
    }
    if (!caughtUp && next.ts > Date.now()) {
      caughtUp = true;
      logger.info(
        { ticks: published, symbols: [...new Set(trades.map((t) => t.symbol))] },
        'market history replayed, now live',
      );
    }
    await sleep(Math.max(0, 100 - (Date.now() - started)));
  }
}

async function main() {
  const bus = await connectBus({
    url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    name: SERVICE,
    logger,
    waitOnFirstConnect: true,
  });
  await ensureStreams(bus.jsm);
  logger.info({ data: sharedDataDir(), tick_rate: tickRate }, 'started');
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const jobs = [];
  if (num('DEMO_PRODUCTS', 1) !== 0) jobs.push(scraper(bus.js));
  if (num('DEMO_TICKS', 1) !== 0) jobs.push(market(bus.js));
  await Promise.all(jobs);
  // Both halves done (scrape once, no market data): stay up until stopped, like a service.
  while (!stopping) await sleep(200);
  await bus.close();
  logger.info('stopped');
}

main().catch((err) => {
  process.stderr.write(`${SERVICE}: ${err?.message ?? err}\n`);
  process.exit(1);
});
