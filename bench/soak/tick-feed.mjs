// The soak's market feed, a child process of bench/soak/run.mjs: trade ticks at a target rate,
// one tick per message on `market.ticks.<symbol>` with `Nats-Msg-Id` = `<symbol>-<trade_id>`,
// published in slices (every 50 ms what the rate asks for) with @parquetry/bus `publishFast`
// (plain publishes, PubAcks counted on one inbox, a message without an ack re-sent with the same
// id). Several slices may be in flight; when `SOAK_MAX_INFLIGHT` slices or `SOAK_MAX_OUTSTANDING`
// ticks wait for their acks the feed does not generate more: the rate it reaches is what
// JetStream (and the machine) accept.
//
// Ticks carry the wall clock (`ts` = now), a random walk of prices (2 decimals) and sizes of
// 0.001–1.000; trade ids count up per symbol, zero-padded, so order by id is order in time.
// The feed keeps what a reader must find afterwards: rows and volume per symbol and every
// 1-minute OHLCV candle. Stdout: one JSON line per second (`progress`), and on SIGINT/SIGTERM
// it stops generating, waits for every ack and prints the `final` line, then exits.
//
//   NATS_URL, SOAK_TICK_RATE (ticks/s), SOAK_SYMBOLS (comma list), SOAK_MAX_INFLIGHT (default 8),
//   SOAK_SUBJECT_PREFIX (default market.ticks)
import { connectBus, publishFast } from '@parquetry/bus';
import { createLogger } from '@parquetry/service';

const rate = Number(process.env.SOAK_TICK_RATE ?? 50_000);
const symbols = (process.env.SOAK_SYMBOLS ?? 'SOAKA,SOAKB,SOAKC,SOAKD').split(',');
const maxInflight = Number(process.env.SOAK_MAX_INFLIGHT ?? 8);
/** Ticks awaiting their PubAck at most (default half a second of the rate): bounds the feed's memory. */
const maxOutstanding = Number(process.env.SOAK_MAX_OUTSTANDING ?? Math.max(1000, Math.ceil(rate / 2)));
// `market.ticks` for the soak; another prefix (and its own stream) for the publisher-alone baseline.
const prefix = process.env.SOAK_SUBJECT_PREFIX ?? 'market.ticks';
const STEP_MS = 50;
const logger = createLogger('soak-tick-feed', 'warn');
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const bus = await connectBus({ url: process.env.NATS_URL, name: 'soak-tick-feed', logger });

// Deterministic pseudo-random (mulberry32): a rerun makes the same prices and sizes.
let seed = 0x5eed;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const state = symbols.map((symbol, i) => ({
  symbol,
  subject: `${prefix}.${symbol}`,
  price: 100 * (i + 1) + 0.5,
  next: 1,
  rows: 0,
  volume: 0,
}));
/** `symbol|minuteStart` → 1m candle of what was generated (every generated tick is acked in the end). */
const candles = new Map();

let generated = 0;
let acked = 0;
let duplicates = 0;
let failed = 0;
const failures = [];
let inflight = 0;
let outstanding = 0;
let stalledSteps = 0;
let steps = 0;
let stopping = false;
const started = Date.now();

function tick(s) {
  const ts = Date.now();
  s.price = Math.max(1, Math.round((s.price + (rand() - 0.5) * 0.2) * 100) / 100);
  const size = Math.round(1 + rand() * 999) / 1000;
  const trade_id = String(s.next++).padStart(12, '0');
  s.rows++;
  s.volume += size;
  const minute = ts - (ts % 60_000);
  const key = `${s.symbol}|${minute}`;
  const c = candles.get(key);
  if (c) {
    if (s.price > c.high) c.high = s.price;
    if (s.price < c.low) c.low = s.price;
    c.close = s.price;
    c.volume += size;
    c.trades++;
  } else {
    candles.set(key, {
      symbol: s.symbol,
      ts: minute,
      open: s.price,
      high: s.price,
      low: s.price,
      close: s.price,
      volume: size,
      trades: 1,
    });
  }
  return {
    subject: s.subject,
    payload: { symbol: s.symbol, ts, price: s.price, size, side: rand() < 0.5 ? 'buy' : 'sell', trade_id },
    msgId: `${s.symbol}-${trade_id}`,
  };
}

const pending = new Set();
let rr = 0;
function step() {
  steps++;
  const due = Math.floor((rate * (Date.now() - started)) / 1000) - generated;
  if (due <= 0) return;
  if (inflight >= maxInflight || outstanding >= maxOutstanding) {
    stalledSteps++;
    return;
  }
  // Behind schedule (a starved event loop, slow acks) the feed catches up, but never holds more
  // than maxOutstanding ticks awaiting acks.
  const n = Math.min(due, maxOutstanding - outstanding);
  const msgs = new Array(n);
  for (let i = 0; i < n; i++) msgs[i] = tick(state[rr++ % state.length]);
  generated += n;
  inflight++;
  outstanding += n;
  const p = publishFast(bus.nc, msgs, { window: 20_000, ackTimeoutMs: 10_000, maxAttempts: 1000 })
    .then((r) => {
      acked += r.published;
      duplicates += r.duplicates;
    })
    .catch((err) => {
      const published = err?.details?.published ?? 0;
      acked += published;
      failed += n - published;
      if (failures.length < 5) failures.push(err.message);
    })
    .finally(() => {
      inflight--;
      outstanding -= n;
      pending.delete(p);
    });
  pending.add(p);
}

const timer = setInterval(() => {
  if (!stopping) step();
}, STEP_MS);
const progress = setInterval(() => {
  out({
    kind: 'progress',
    t: Date.now(),
    generated,
    acked,
    duplicates,
    failed,
    inflight,
    stalledSteps,
    steps,
  });
}, 1000);

async function finish() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  const stoppedAt = Date.now();
  await Promise.allSettled([...pending]);
  clearInterval(progress);
  out({
    kind: 'final',
    t: Date.now(),
    seconds: (stoppedAt - started) / 1000,
    rate,
    generated,
    acked,
    duplicates,
    failed,
    failures,
    stalledSteps,
    steps,
    maxInflight,
    maxOutstanding,
    bySymbol: Object.fromEntries(
      state.map((s) => [s.symbol, { rows: s.rows, volume: s.volume, lastTradeId: s.next - 1 }]),
    ),
    candles1m: [...candles.values()],
  });
  await bus.close().catch(() => {});
  process.exit(0);
}
process.on('SIGINT', () => void finish());
process.on('SIGTERM', () => void finish());
