// bench/ingest/ticks: the raw tick archive, ticks/s from JetStream to committed Parquet (issues 2 and 7:
// the soak's bottleneck). One tick per message, as a market feed publishes them, pre-loaded into TICKS,
// then drained by the real ingest-backup process (products consumer idle). Baseline in the same run:
// a raw JetStream consume of the same messages that acks each and does no work.
// Usage: pnpm build && node bench/ingest/ticks.mjs [--ticks 2000000] [--symbols 100]
// Environment: BENCH_NODE_ARGS (node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, ensureConsumer, ensureStreams, publishFast, subjects } from '@parquetry/bus';
import { openCatalog } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { machine, writeResults } from '../lib.mjs';
import { drain, startIngestBackup } from './service.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const TOTAL = arg('ticks', 2_000_000);
const SYMBOLS = arg('symbols', 100);
const BASE = Date.UTC(2025, 8, 3, 0, 0, 0);
const encoder = new TextEncoder();

function* tickMessages(n) {
  for (let i = 0; i < n; i++) {
    const k = i % SYMBOLS;
    const symbol = `S${String(k).padStart(3, '0')}`;
    const tick = {
      symbol,
      ts: BASE + i * 10,
      price: 100 + k + (i % 97) / 100,
      size: ((i % 13) + 1) / 10,
      side: i % 2 ? 'buy' : 'sell',
      trade_id: String(i),
    };
    yield { subject: subjects.ticks(symbol), data: encoder.encode(JSON.stringify(tick)), msgId: `t-${i}` };
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'pq-bench-ticks-'));
const nats = await startNats();
const bus = await connectBus({ url: nats.url, name: 'bench', logger: silentLogger() });
await ensureStreams(bus.jsm);

const t0 = performance.now();
await publishFast(bus.nc, tickMessages(TOTAL), { window: 256 });
const preloadS = (performance.now() - t0) / 1000;
console.log(`pre-loaded ${TOTAL} ticks in ${preloadS.toFixed(1)} s`);

// Baseline: raw consume of the same messages, ack each, no work.
await ensureConsumer(bus.jsm, 'TICKS', 'bench-raw', { ackWaitMs: 60_000, maxAckPending: 40_000 });
const consumer = await bus.js.consumers.get('TICKS', 'bench-raw');
let got = 0;
const ta = performance.now();
const iter = await consumer.consume({ max_messages: 4000 });
for await (const m of iter) {
  m.ack();
  if (++got >= TOTAL) break;
}
await iter.close();
const rawS = (performance.now() - ta) / 1000;
console.log(`raw consume: ${(TOTAL / rawS).toFixed(0)} ticks/s`);

const { child } = await startIngestBackup({ natsUrl: nats.url, lakeDir: join(tmp, 'lake') });
const catalog = await openCatalog({ nc: bus.nc });
const drained = await drain({ child, catalog, dataset: 'ticks', total: TOTAL, everyMs: 250 });
const archiveS = drained.seconds;
const peak = drained.peakRssMb;
const cpuS = drained.cpuSeconds;
const committed = drained.rows;
const files = await catalog.liveFiles('ticks');

const result = {
  benchmark: 'ingest-ticks',
  command: `node bench/ingest/ticks.mjs --ticks ${TOTAL} --symbols ${SYMBOLS}`,
  date: new Date().toISOString(),
  machine: machine(),
  ticks: TOTAL,
  symbols: SYMBOLS,
  archive: {
    seconds: +archiveS.toFixed(2),
    ticks_per_s: Math.round(TOTAL / archiveS),
    peak_rss_mb: Math.round(peak),
    cpu_seconds: cpuS,
    files: files.length,
    rows: committed,
  },
  baseline_raw_consume: { seconds: +rawS.toFixed(2), ticks_per_s: Math.round(TOTAL / rawS) },
};
result.ratio_to_raw_consume = +(result.archive.ticks_per_s / result.baseline_raw_consume.ticks_per_s).toFixed(
  3,
);
console.log(JSON.stringify(result, null, 2));
writeResults(
  'ingest-ticks',
  result,
  `# bench/ingest/ticks (${result.date.slice(0, 10)})

\`${result.command}\` on ${result.machine.cores} cores, Node ${result.machine.node}, commit ${result.machine.commit}.
${TOTAL.toLocaleString('en-US')} ticks of ${SYMBOLS} symbols, one tick per message, pre-loaded; the real ingest-backup drains them into the tick archive.

| | ticks/s | seconds | peak RSS |
| --- | --- | --- | --- |
| ingest-backup, JetStream → committed Parquet (from /ready) | ${result.archive.ticks_per_s} | ${result.archive.seconds} | ${result.archive.peak_rss_mb} MB |
| baseline: raw JetStream consume, ack each, no work | ${result.baseline_raw_consume.ticks_per_s} | ${result.baseline_raw_consume.seconds} | |

Ratio to the baseline: **${result.ratio_to_raw_consume}**. The soak's target is 50,000 ticks/s with every service on the machine.
${files.length} files, ${committed} rows; the service used ${cpuS} CPU seconds (start-up included).`,
);
await bus.close();
await nats.stop();
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
