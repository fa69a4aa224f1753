// bench/candles: ticks/s drained from JetStream into committed 1m candles and roll-ups (issue:
// candle-aggregator). N ticks of 100 symbols, one tick per message, are pre-loaded into the TICKS
// stream; the real candle-aggregator process (services/candle-aggregator/dist/main.js) then drains
// them until every closed candle is committed to the lake. In the same run: the baseline of a raw
// JetStream consume of the same messages doing no work, the service's peak RSS, and the
// closed-candle latency on a live feed (first tick of the next minute published → 1m candle on the
// bus) over a few minute boundaries.
// Usage: pnpm build && node bench/candles/run.mjs [--ticks 5000000] [--symbols 100] [--boundaries 3]
// Environment: BENCH_NODE_ARGS (node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
// BENCH_LOG_LEVEL (the service's LOG_LEVEL, default warn), BENCH_FLUSH_MS (LAKE_FLUSH_MS, default
// 1000), BENCH_NO_WRITE=1 (a trial or profiling run: print, do not replace bench/results).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectBus, ensureStreams, publishFast } from '@parquetry/bus';
import { openCatalog } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { machine, peakRssMb, sleep, writeResults } from '../lib.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const TICKS = arg('ticks', 5_000_000);
const SYMBOLS = arg('symbols', 100);
const BOUNDARIES = arg('boundaries', 3);
/** Event time between consecutive ticks of the stream (all symbols): 10 ms → 1 tick/s per symbol at 100 symbols. */
const STEP_MS = 10;
const GRACE_MS = 2000;
const BASE = Date.UTC(2025, 8, 1);

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(root, 'services/candle-aggregator/dist/main.js');
const logger = silentLogger();
const encoder = new TextEncoder();
const symbolName = (k) => `S${String(k).padStart(3, '0')}`;

/** Deterministic synthetic ticks: round-robin over symbols, a random walk per symbol. */
function* tickMessages(n) {
  const prices = Array.from({ length: SYMBOLS }, (_, k) => 100 + k);
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = 0; i < n; i++) {
    const k = i % SYMBOLS;
    prices[k] = Math.max(1, Math.round((prices[k] + (random() - 0.5) * 0.2) * 100) / 100);
    const symbol = symbolName(k);
    const tick = {
      symbol,
      ts: BASE + i * STEP_MS + Math.floor(random() * STEP_MS),
      price: prices[k],
      size: Math.round(random() * 1000) / 100,
      side: random() < 0.5 ? 'buy' : 'sell',
      trade_id: String(i),
    };
    yield { subject: `market.ticks.${symbol}`, data: encoder.encode(JSON.stringify(tick)), msgId: `b-${i}` };
  }
}

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function health(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

function startService(env) {
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : [];
  return spawn(process.execPath, [...nodeArgs, MAIN], {
    env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

const stopChild = (child) =>
  new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.once('exit', r);
    child.kill('SIGTERM');
  });

const tmp = mkdtempSync(join(tmpdir(), 'pq-bench-candles-'));

// Machine load during each phase: the 1-minute load average (as `uptime` prints it) sampled
// every 2 s. Other work on the machine slows both the service and the baseline; the ratio,
// measured minutes apart, is only comparable when the load was similar in both phases.
// (This run's own processes — nats-server, the service, this script — count for about 2.)
const loadSamples = new Map();
let phase = 'preload';
const sampleLoad = () => {
  const samples = loadSamples.get(phase) ?? [];
  samples.push(loadavg()[0]);
  loadSamples.set(phase, samples);
};
sampleLoad();
const loadTimer = setInterval(sampleLoad, 2000);
const enter = (name) => {
  phase = name;
  sampleLoad();
};
const loadOf = (name) => {
  const s = loadSamples.get(name) ?? [];
  if (s.length === 0) return null;
  return {
    min: +Math.min(...s).toFixed(2),
    mean: +(s.reduce((a, b) => a + b, 0) / s.length).toFixed(2),
    max: +Math.max(...s).toFixed(2),
    samples: s.length,
  };
};

// ---- 1. pre-load --------------------------------------------------------------------------
const nats = await startNats();
const bus = await connectBus({ url: nats.url, name: 'bench', logger });
await ensureStreams(bus.jsm);
const t0 = performance.now();
const loaded = await publishFast(bus.nc, tickMessages(TICKS), { window: 20_000 });
const preloadS = (performance.now() - t0) / 1000;
const streamInfo = await bus.jsm.streams.info('TICKS');
const lastSeq = streamInfo.state.last_seq;
console.log(
  `pre-loaded ${loaded.published} ticks (${(streamInfo.state.bytes / 1e6).toFixed(0)} MB) in ${preloadS.toFixed(1)} s`,
);

// ---- 2. baseline: raw consume of the same messages, no work ---------------------------------
enter('baseline');
const raw = await bus.js.consumers.get('TICKS', { filter_subjects: 'market.ticks.>' });
const tb = performance.now();
let got = 0;
const iter = await raw.consume({ max_messages: 2000 });
for await (const m of iter) {
  if (++got >= TICKS || m.seq >= lastSeq) break;
}
await iter.close();
const rawS = (performance.now() - tb) / 1000;
console.log(`baseline raw consume: ${(got / rawS).toFixed(0)} msgs/s`);

// ---- 3. the service draining the stream into committed candles ---------------------------------
enter('service');
const port = await freePort();
const lakeUrl = `file://${join(tmp, 'lake')}`;
const ts = performance.now();
const child = startService({
  NATS_URL: nats.url,
  LAKE_URL: lakeUrl,
  HTTP_PORT: String(port),
  LAKE_FLUSH_MS: process.env.BENCH_FLUSH_MS ?? '1000',
});
let peak = 0;
let readyAt;
let caughtUpAt;
for (;;) {
  await sleep(50);
  peak = Math.max(peak, peakRssMb(child.pid) ?? 0);
  if (child.exitCode !== null) throw new Error(`candle-aggregator exited with ${child.exitCode}`);
  const h = await health(port);
  if (!h) continue;
  readyAt ??= performance.now();
  if (h.last_seq >= lastSeq && caughtUpAt === undefined) caughtUpAt = performance.now();
  if (h.last_seq >= lastSeq && h.pending_candles === 0 && h.pending_publishes === 0) break;
  if (performance.now() - ts > 900_000) throw new Error('timed out');
}
const doneAt = performance.now();
peak = Math.max(peak, peakRssMb(child.pid) ?? 0);
await stopChild(child);
const serviceS = (doneAt - ts) / 1000;
const drainS = (doneAt - readyAt) / 1000;
const catalog = await openCatalog({ nc: bus.nc });
const files = await catalog.liveFiles('candles');
const candleRows = files.reduce((n, f) => n + f.rows, 0);
const oneMinuteFiles = files.filter((f) => f.path.startsWith('candles/timeframe=1m/'));
const oneMinuteRows = oneMinuteFiles.reduce((n, f) => n + f.rows, 0);
const candlesOnBus = (await bus.jsm.streams.info('CANDLES')).state.messages;
// Every symbol-minute with ticks except each symbol's last (still open) minute.
const expectedOneMinute = SYMBOLS * Math.ceil((TICKS * STEP_MS) / 60_000) - SYMBOLS;
console.log(
  `service: ${(TICKS / serviceS).toFixed(0)} ticks/s (${serviceS.toFixed(1)} s from spawn, ${drainS.toFixed(1)} s from ready), peak RSS ${peak.toFixed(0)} MB`,
);
await bus.close();
await nats.stop();

// ---- 4. closed-candle latency on a live feed ---------------------------------------------------
enter('latency');
const latencies = [];
const TICK_EVERY_MS = 100; // per symbol: 10 ticks/s, 1,000 ticks/s in all
if (BOUNDARIES > 0) {
  const live = await startNats();
  const liveBus = await connectBus({ url: live.url, name: 'bench-live', logger });
  await ensureStreams(liveBus.jsm);
  const livePort = await freePort();
  const liveChild = startService({
    NATS_URL: live.url,
    LAKE_URL: `file://${join(tmp, 'live-lake')}`,
    HTTP_PORT: String(livePort),
    CANDLE_GRACE_MS: String(GRACE_MS),
  });
  while (!(await health(livePort))) await sleep(50);
  /** `${symbol} ${minute start}` → when the first tick of the following minute was published. */
  const firstOfNext = new Map();
  const sub = liveBus.nc.subscribe('market.candles.1m.>', {
    callback: (_err, m) => {
      const c = JSON.parse(new TextDecoder().decode(m.data));
      const sent = firstOfNext.get(`${c.symbol} ${Date.parse(c.start)}`);
      if (sent !== undefined && c.revision === 0) latencies.push(performance.now() - sent);
    },
  });
  const startMinute = Math.floor(Date.now() / 60_000) * 60_000;
  const endAt = startMinute + (BOUNDARIES + 1) * 60_000 + GRACE_MS + 3000;
  const lastMinuteOf = new Map();
  let id = 0;
  while (Date.now() < endAt) {
    const now = Date.now();
    for (let k = 0; k < SYMBOLS; k++) {
      const symbol = symbolName(k);
      const minute = Math.floor(now / 60_000) * 60_000;
      const prev = lastMinuteOf.get(symbol);
      if (prev !== undefined && prev !== minute && minute > startMinute)
        firstOfNext.set(`${symbol} ${prev}`, performance.now());
      lastMinuteOf.set(symbol, minute);
      const tick = { symbol, ts: now, price: 100 + k + (id % 7) / 100, size: 1, trade_id: `l${id++}` };
      liveBus.nc.publish(`market.ticks.${symbol}`, encoder.encode(JSON.stringify(tick)));
    }
    await sleep(TICK_EVERY_MS);
  }
  await sleep(1000);
  sub.unsubscribe();
  await stopChild(liveChild);
  await liveBus.close();
  await live.stop();
}
latencies.sort((a, b) => a - b);
// A latency run that saw no candle is a broken measurement, never a result (the last committed
// result printed null: it had been run with --boundaries 0, which skips this part).
if (BOUNDARIES > 0 && latencies.length === 0) {
  console.error(`bench/candles: ${BOUNDARIES} minute boundaries crossed but no 1m candle was measured`);
  process.exit(1);
}
const pct = (p) =>
  latencies.length
    ? +latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)].toFixed(1)
    : null;

// ---- results --------------------------------------------------------------------------------
clearInterval(loadTimer);
sampleLoad();
const throughput = Math.round(TICKS / serviceS);
const baseline = Math.round(got / rawS);
const result = {
  benchmark: 'candles',
  command: `node bench/candles/run.mjs --ticks ${TICKS} --symbols ${SYMBOLS} --boundaries ${BOUNDARIES}`,
  date: new Date().toISOString(),
  machine: machine(),
  ticks: TICKS,
  symbols: SYMBOLS,
  event_time_hours: +((TICKS * STEP_MS) / 3_600_000).toFixed(1),
  stream_mb: +(streamInfo.state.bytes / 1e6).toFixed(0),
  preload_s: +preloadS.toFixed(1),
  service: {
    ticks_per_s: throughput,
    seconds_from_spawn: +serviceS.toFixed(2),
    seconds_from_ready: +drainS.toFixed(2),
    ticks_per_s_from_ready: Math.round(TICKS / drainS),
    caught_up_s: +((caughtUpAt - ts) / 1000).toFixed(2),
    peak_rss_mb: Math.round(peak),
    candle_rows_in_lake: candleRows,
    candle_files: files.length,
    one_minute_candles: oneMinuteRows,
    one_minute_expected: expectedOneMinute,
    candles_on_bus: candlesOnBus,
  },
  baseline_raw_consume: { msgs_per_s: baseline, seconds: +rawS.toFixed(2) },
  ratio_to_baseline: +(throughput / baseline).toFixed(3),
  load_average_1m: {
    note: 'os.loadavg()[0] (as uptime prints) every 2 s per phase; this run itself accounts for about 2',
    preload: loadOf('preload'),
    baseline: loadOf('baseline'),
    service: loadOf('service'),
    latency: loadOf('latency'),
  },
  latency: {
    grace_ms: GRACE_MS,
    samples: latencies.length,
    p50_ms: pct(50),
    p99_ms: pct(99),
    max_ms: latencies.length ? +latencies.at(-1).toFixed(1) : null,
    p99_minus_grace_ms: latencies.length ? +(pct(99) - GRACE_MS).toFixed(1) : null,
    feed: `${SYMBOLS} symbols × ${1000 / TICK_EVERY_MS} ticks/s, ${BOUNDARIES} minute boundaries`,
  },
};
console.log(JSON.stringify(result, null, 2));
// BENCH_NO_WRITE=1: a trial or profiling run that must not replace the committed results.
if (!process.env.BENCH_NO_WRITE)
  writeResults(
    'candles',
    result,
    `# bench/candles (${result.date.slice(0, 10)})

\`${result.command}\` on ${result.machine.cores} cores (${result.machine.cpu}), Node ${result.machine.node}, commit ${result.machine.commit}.
${TICKS.toLocaleString('en')} ticks of ${SYMBOLS} symbols (${result.event_time_hours} h of event time), one tick per message, pre-loaded (${result.stream_mb} MB in the stream).

| | ticks/s | seconds | peak RSS |
| --- | --- | --- | --- |
| candle-aggregator: JetStream → committed 1m candles and roll-ups (from process spawn) | ${throughput} | ${result.service.seconds_from_spawn} | ${result.service.peak_rss_mb} MB |
| same, from the service answering /health | ${result.service.ticks_per_s_from_ready} | ${result.service.seconds_from_ready} | |
| baseline: raw JetStream consume of the same messages, no work | ${baseline} | ${result.baseline_raw_consume.seconds} | |

Ratio to the baseline: **${result.ratio_to_baseline}** (target ≥ 0.5); target ≥ 150,000 ticks/s.
Machine load (1-minute load average, \`uptime\`, sampled every 2 s; this run itself accounts for about 2 on 2 cores): ${[
      'preload',
      'baseline',
      'service',
      'latency',
    ]
      .map((p) => {
        const l = result.load_average_1m[p];
        return l ? `${p} ${l.min}–${l.max} (mean ${l.mean})` : `${p} —`;
      })
      .join(', ')}.
Lake: ${candleRows} candle rows in ${files.length} files; 1m candles ${oneMinuteRows} (expected ${expectedOneMinute}: every symbol-minute but each symbol's last, still open); ${candlesOnBus} candle messages on the bus.

${
  BOUNDARIES === 0
    ? 'Closed-candle latency: not measured in this run (`--boundaries 0`).'
    : `Closed-candle latency (first tick of the next minute published → 1m candle on the bus), ${result.latency.feed}, grace ${GRACE_MS} ms:
p50 ${result.latency.p50_ms} ms, p99 ${result.latency.p99_ms} ms, max ${result.latency.max_ms} ms over ${result.latency.samples} candles — p99 minus the grace **${result.latency.p99_minus_grace_ms} ms** (target ≤ 250 ms).`
}`,
  );
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
