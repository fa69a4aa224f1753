// bench/soak: the whole system under mixed load for a while, and nothing lost.
//
// Starts a private nats-server (testkit startNats) and, when PostgreSQL answers, a fresh database
// (testkit createTestDatabase), then one instance of each of the five built services
// (services/<name>/dist/main.js, supervised as `pnpm start` does: scripts/lib/supervisor.mjs,
// parent watch) on a filesystem lake in a temp directory. For `--minutes` it drives:
//   - product batches: the real shared/data products (testkit's fixture batches) re-stamped with
//     fresh batch ids and scraped_at = now, `--batches-per-s` of them;
//   - ticks at `--ticks-per-s` from a separate publisher process (bench/soak/tick-feed.mjs);
//   - API queries: GET /v1/candles and /v1/candles/indicators in a loop, a products export
//     (POST → poll → download through the signed URL) every `--export-every-s`, with a key made
//     by export-api's own key functions;
//   - a `lake.ops.compact` job per dataset every minute.
// Every `--sample-s` it records the RSS of each process (/proc/<pid>/status VmRSS), what was
// published (acked) against what is committed (catalog rows per dataset, PostgreSQL rows) and the
// consumers' backlog. Then it stops the feeds, waits until everything is committed (drain), and
// checks exactly-once from outside: `parquetry lake files <dataset> --json` + DuckDB, and SQL on
// PostgreSQL — products per batch id, ticks (rows, distinct (symbol, trade_id), volume per
// symbol) and every 1-minute candle against what the feed generated.
// Writes bench/results/soak.{json,md,svg}. A benchmark, not a CI test.
//
// Usage: npx -y pnpm@10 run build && node bench/soak/run.mjs [--minutes 10] [--ticks-per-s 50000]
//   [--batches-per-s 2] [--symbols 8] [--sample-s 5] [--export-every-s 30] [--drain-minutes 10]
//   [--max-inflight 8] [--baseline-s 10] [--service-env <service>.<VAR>=<value>]… [--keep] [--out soak]
import { spawnSync } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { connectBus, publishFast } from '@parquetry/bus';
import { createKeyInFile } from '@parquetry/export-api/auth';
import { openCatalog } from '@parquetry/lake';
import { createLogger } from '@parquetry/service';
import {
  createTestDatabase,
  natsAvailable,
  postgresAvailable,
  productFixtureBatches,
  startNats,
} from '@parquetry/testkit';
import { freePort, waitHttp } from '../../scripts/lib/net.mjs';
import { Supervised } from '../../scripts/lib/supervisor.mjs';
import { machine, resultsDir, sleep, writeResults } from '../lib.mjs';
import { rssSvg } from './plot.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const MINUTES = Number(opt('minutes', 10));
const TICKS_PER_S = Number(opt('ticks-per-s', 50_000));
const BATCHES_PER_S = Number(opt('batches-per-s', 2));
const SYMBOLS = Array.from(
  { length: Number(opt('symbols', 8)) },
  (_, i) => `SOAK${String.fromCharCode(65 + i)}`,
);
const SAMPLE_S = Number(opt('sample-s', 5));
const EXPORT_EVERY_S = Number(opt('export-every-s', 30));
const COMPACT_EVERY_S = Number(opt('compact-every-s', 60));
const DRAIN_MINUTES = Number(opt('drain-minutes', 10));
const MAX_INFLIGHT = Number(opt('max-inflight', 8));
const BASELINE_S = Number(opt('baseline-s', 10));
/** `--service-env ingest-backup.FLUSH_MAX_AGE_MS=1000` (repeatable): a service setting for this run. */
const SERVICE_ENV = argv
  .flatMap((a, i) => (a === '--service-env' ? [argv[i + 1]] : []))
  .map(
    (x) =>
      /^([a-z-]+)\.([A-Z0-9_]+)=(.*)$/.exec(x ?? '') ??
      fail(`--service-env ${x}: want <service>.<VAR>=<value>`),
  );
const OUT = opt('out', 'soak');
const KEEP = argv.includes('--keep');
const command = `node bench/soak/run.mjs ${argv.join(' ')}`.trim();

const pg = createRequire(join(root, 'services', 'pg-loader', 'package.json'))('pg');
const watch = pathToFileURL(join(root, 'scripts', 'lib', 'parent-watch.mjs')).href;
const CLI = join(root, 'packages', 'cli', 'dist', 'main.js');
const SERVICE_NAMES = ['ingest-backup', 'candle-aggregator', 'compactor', 'pg-loader', 'export-api'];
function fail(msg) {
  throw new Error(msg);
}
const say = (msg) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
const round = (x, d = 1) => (x === undefined || x === null ? x : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------------------------------------
// Processes

/** VmRSS of a live process, MB. */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the process whose command line contains `needle` (testkit's nats-server: its store dir). */
function pidWith(needle) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(needle) && cmd.includes('nats-server')) return Number(d);
    } catch {}
  }
  return undefined;
}

function countBy(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function latencyStats(values) {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50_ms: round(percentile(s, 50)),
    p99_ms: round(percentile(s, 99)),
    max_ms: round(s.at(-1) ?? null),
  };
}

// ---------------------------------------------------------------------------------------------
// Checks from outside (the same shape as test-e2e/lib/checks.ts, which is TypeScript for vitest)

function cliLakeFiles(dataset, env) {
  const r = spawnSync(process.execPath, [CLI, 'lake', 'files', dataset, '--json'], {
    cwd: root,
    env: { ...process.env, ...env, LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`parquetry lake files ${dataset} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout).files;
}

const sqlList = (paths) => `[${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}]`;

async function withPg(url, fn) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function pgExists(c, table) {
  return (await c.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null;
}

/** Differences between two `{key: number}` maps, at most `max` of them. */
function mapDiffs(what, got, want, max = 10) {
  const out = [];
  for (const k of new Set([...Object.keys(got), ...Object.keys(want)])) {
    if (got[k] !== want[k]) out.push(`${what} ${k}: got ${got[k] ?? 0}, want ${want[k] ?? 0}`);
  }
  return out.length > max ? [...out.slice(0, max), `… ${out.length} differences in all`] : out;
}

function tickDiffs(where, got, want) {
  const diffs = [];
  if (got.rows !== want.rows) diffs.push(`${where} ticks: ${got.rows} rows, want ${want.rows}`);
  if (got.distinct !== got.rows) diffs.push(`${where} ticks: ${got.rows - got.distinct} duplicates`);
  for (const [sym, w] of Object.entries(want.bySymbol)) {
    const g = got.bySymbol[sym] ?? { rows: 0, volume: 0 };
    if (g.rows !== w.rows) diffs.push(`${where} ${sym}: ${g.rows} rows, want ${w.rows}`);
    if (Math.abs(g.volume - w.volume) > 1e-6 * Math.max(1, w.volume))
      diffs.push(`${where} ${sym}: volume ${g.volume}, want ${w.volume}`);
  }
  for (const sym of Object.keys(got.bySymbol))
    if (!want.bySymbol[sym]) diffs.push(`${where}: unexpected symbol ${sym}`);
  return diffs;
}

// ---------------------------------------------------------------------------------------------

/** bench/soak/tick-feed.mjs as a supervised child (not restarted: trade ids would start over). */
function tickFeed(natsUrl, prefix, on) {
  return new Supervised({
    name: 'tick-feed',
    command: process.execPath,
    args: ['--import', watch, join(root, 'bench', 'soak', 'tick-feed.mjs')],
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      SOAK_TICK_RATE: String(TICKS_PER_S),
      SOAK_SYMBOLS: SYMBOLS.join(','),
      SOAK_MAX_INFLIGHT: String(MAX_INFLIGHT),
      SOAK_SUBJECT_PREFIX: prefix,
    },
    cwd: root,
    say,
    maxRestarts: 0,
    format: { json: true },
    write: (l) => {
      const line = l.slice(l.indexOf('| ') + 2);
      if (!line.startsWith('{')) return say(`tick-feed: ${line}`);
      const m = JSON.parse(line);
      if (m.kind === 'progress') on.progress?.(m);
      else if (m.kind === 'final') on.final?.(m);
      else say(`tick-feed: ${line}`);
    },
  });
}

/** Clock ticks of CPU (user + system) a process used so far. */
function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const cleanup = [];
async function stopAll() {
  for (const fn of cleanup.reverse())
    await Promise.resolve()
      .then(fn)
      .catch((err) => say(`cleanup: ${err.message}`));
  cleanup.length = 0;
}

async function main() {
  if (!natsAvailable()) throw new Error('nats-server not found: install it or set NATS_SERVER_BIN');
  for (const name of SERVICE_NAMES) {
    const main = join(root, 'services', name, 'dist', 'main.js');
    try {
      readFileSync(main);
    } catch {
      throw new Error(`${main} is missing: run npx -y pnpm@10 run build first`);
    }
  }
  const runId = Date.now().toString(36);
  const dir = mkdtempSync(join(tmpdir(), 'pq-soak-'));
  cleanup.push(() => (KEEP ? say(`kept ${dir}`) : rmSync(dir, { recursive: true, force: true })));
  const lakeDir = join(dir, 'lake');
  mkdirSync(lakeDir);
  const lakeUrl = `file://${lakeDir}`;
  const uptimeBefore = uptime();
  say(`machine: ${uptimeBefore}`);

  const nats = await startNats();
  cleanup.push(() => nats.stop());
  const natsPid = pidWith(nats.storeDir);
  say(`nats-server at ${nats.url} (pid ${natsPid})`);
  const db = (await postgresAvailable()) ? await createTestDatabase() : undefined;
  if (db) cleanup.push(() => (KEEP ? say(`kept database ${db.name}`) : db.drop()));
  say(db ? `PostgreSQL database ${db.name}` : 'PostgreSQL does not answer: pg-loader is left out');

  const bus = await connectBus({ url: nats.url, name: 'soak', logger: createLogger('soak', 'warn') });
  cleanup.push(() => bus.close());

  // Baseline: the same publisher alone (nats-server and the feed, no service yet), into a stream
  // of its own, for BASELINE_S seconds: what one publisher process reaches on this machine now.
  let baseline;
  if (BASELINE_S > 0) {
    await bus.jsm.streams.add({
      name: 'SOAK_BASELINE',
      subjects: ['soakbaseline.>'],
      max_bytes: 4 * 1024 ** 3,
    });
    let final;
    const b = tickFeed(nats.url, 'soakbaseline', { final: (m) => (final = m) }).start();
    const cpu0 = cpuTicks(b.proc.pid);
    await sleep(BASELINE_S * 1000);
    const cpu1 = cpuTicks(b.proc.pid);
    await b.stop('SIGINT', 60_000);
    await bus.jsm.streams.delete('SOAK_BASELINE');
    baseline = final && {
      ticks_per_s: round(final.acked / final.seconds, 0),
      seconds: round(final.seconds),
      acked: final.acked,
      stalled_steps: `${final.stalledSteps} of ${final.steps}`,
      feed_cpu_percent: round((100 * (cpu1 - cpu0)) / CLK_TCK / BASELINE_S, 0),
      load1: round(loadavg()[0], 2),
    };
    say(`baseline, the tick feed alone: ${JSON.stringify(baseline)}`);
  }

  const keysFile = join(dir, 'api-keys.json');
  const { key: apiKey } = await createKeyInFile({
    file: keysFile,
    name: 'soak',
    datasets: ['*'],
    admin: true,
  });

  // The services, supervised as `pnpm start` runs them; their output goes to <dir>/<name>.log.
  const common = { ...process.env, NATS_URL: nats.url, LAKE_URL: lakeUrl, LOG_LEVEL: 'warn' };
  const services = [];
  for (const name of SERVICE_NAMES) {
    if (name === 'pg-loader' && !db) continue;
    const port = await freePort();
    const work = join(dir, name);
    mkdirSync(work);
    const env = { ...common, HTTP_PORT: String(port), INSTANCE_ID: `${name}-soak`, DUCKDB_THREADS: '1' };
    if (name === 'compactor') Object.assign(env, { WORK_DIR: work, DUCKDB_MEMORY_LIMIT: '256MB' });
    if (name === 'pg-loader') {
      Object.assign(env, {
        DATABASE_URL: db.url,
        PG_LOADER_DATASETS: 'products,ticks,candles',
        // Real scrapes type a column differently per retailer (see test-e2e/lib/system.ts).
        PG_LOADER_SCHEMA_DRIFT: 'ignore',
      });
    }
    if (name === 'export-api') {
      Object.assign(env, {
        HTTP_HOST: '127.0.0.1',
        API_KEYS_FILE: keysFile,
        EXPORT_WORK_DIR: work,
        PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        EXPORT_SIGNING_SECRET: 'soak-signing-secret-of-at-least-32-characters',
        RATE_LIMIT_PER_MIN: '1000000',
      });
    }
    for (const [, svc, k, v] of SERVICE_ENV) if (svc === name) env[k] = v;
    const log = createWriteStream(join(dir, `${name}.log`));
    const child = new Supervised({
      name,
      command: process.execPath,
      args: ['--import', watch, join(root, 'services', name, 'dist', 'main.js')],
      env,
      cwd: root,
      say,
      write: (l) => log.write(`${l}\n`),
      format: { json: true },
    }).start();
    services.push({ name, port, url: `http://127.0.0.1:${port}`, child, log });
  }
  const stopServices = async () => {
    await Promise.all(services.map((s) => s.child.stop('SIGTERM', 30_000)));
    for (const s of services) if (!s.log.writableEnded) s.log.end();
  };
  cleanup.push(stopServices);

  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
    say('interrupted: stopping');
  });

  try {
    const ready = await Promise.all(
      services.map((s) => waitHttp(`${s.url}/ready`, { timeoutMs: 120_000, gaveUp: () => s.child.failed })),
    );
    const notReady = services.filter((_, i) => !ready[i]).map((s) => s.name);
    if (notReady.length > 0) throw new Error(`not ready: ${notReady.join(', ')} (logs in ${dir})`);
    say(`services ready: ${services.map((s) => `${s.name} ${s.url} pid ${s.child.proc.pid}`).join('; ')}`);

    const catalog = await openCatalog({ nc: bus.nc, writerId: 'soak-reader' });
    const api = services.find((s) => s.name === 'export-api');
    const candleSvc = services.find((s) => s.name === 'candle-aggregator');

    // ---- the tick feed, its own process
    let feedProgress = { generated: 0, acked: 0, failed: 0, inflight: 0, stalledSteps: 0, steps: 0 };
    let feedFinal;
    const feed = tickFeed(nats.url, 'market.ticks', {
      progress: (m) => {
        feedProgress = m;
      },
      final: (m) => {
        feedFinal = m;
      },
    });
    cleanup.push(() => feed.stop('SIGINT', 60_000));

    // ---- product batches
    const fixtures = productFixtureBatches(300);
    const wantBatches = {};
    const products = { batches: 0, products: 0, failed: 0, inflight: 0 };
    let batchSeq = 0;
    const publishBatch = () => {
      const src = fixtures[batchSeq % fixtures.length];
      const batch = {
        ...src,
        batch_id: `soak-${runId}-${String(batchSeq).padStart(6, '0')}`,
        scraped_at: new Date().toISOString(),
        session_id: `soak_${runId}`,
      };
      batchSeq++;
      products.inflight++;
      return publishFast(
        bus.nc,
        [
          {
            subject: `scraper.products.${batch.retailer}.${batch.category}`,
            payload: batch,
            msgId: batch.batch_id,
          },
        ],
        { ackTimeoutMs: 10_000, maxAttempts: 1000 },
      )
        .then(() => {
          wantBatches[batch.batch_id] = batch.products.length;
          products.batches++;
          products.products += batch.products.length;
        })
        .catch((err) => {
          products.failed++;
          say(`product batch ${batch.batch_id} not stored: ${err.message}`);
        })
        .finally(() => products.inflight--);
    };

    // ---- API queries
    const latencies = {
      'GET /v1/candles': [],
      'GET /v1/candles/indicators': [],
      'export (POST → download)': [],
    };
    const statuses = {};
    const auth = { authorization: `Bearer ${apiKey}` };
    const note = (route, status) => {
      statuses[route] ??= {};
      statuses[route][status] = (statuses[route][status] ?? 0) + 1;
    };
    const timed = async (route, fn) => {
      const t0 = performance.now();
      let status;
      try {
        status = await fn();
      } catch (err) {
        status = `error: ${err.message.slice(0, 80)}`;
      }
      const ms = performance.now() - t0;
      note(route, status);
      if (status === 200) latencies[route].push(ms);
      return ms;
    };
    const INDICATORS = [
      'sma&period=20',
      'ema&period=20',
      'rsi&period=14',
      'macd',
      'bollinger&period=20',
      'vwap&period=20',
    ];
    let q = 0;
    const queryOnce = async () => {
      const symbol = SYMBOLS[q % SYMBOLS.length];
      const tf = ['1m', '5m', '15m'][q % 3];
      q++;
      const start = Date.now() - 3_600_000;
      if (q % 2 === 0) {
        await timed('GET /v1/candles', async () => {
          const r = await fetch(
            `${api.url}/v1/candles?symbol=${symbol}&timeframe=${tf}&start=${start}&end=${Date.now()}&limit=1000`,
            { headers: auth },
          );
          await r.arrayBuffer();
          return r.status;
        });
      } else {
        const ind = INDICATORS[q % INDICATORS.length];
        await timed('GET /v1/candles/indicators', async () => {
          const r = await fetch(
            `${api.url}/v1/candles/indicators?symbol=${symbol}&timeframe=1m&limit=100&indicator=${ind}`,
            { headers: auth },
          );
          await r.arrayBuffer();
          return r.status;
        });
      }
    };
    const exportOnce = () =>
      timed('export (POST → download)', async () => {
        const r = await fetch(`${api.url}/v1/exports`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ dataset: 'products', format: 'parquet', limit: 10_000 }),
        });
        let view = await r.json();
        if (r.status >= 300) return r.status;
        const deadline = Date.now() + 120_000;
        while (view.status !== 'succeeded') {
          if (view.status === 'failed' || Date.now() > deadline) return `export ${view.status}`;
          await sleep(200);
          view = await (await fetch(`${api.url}/v1/exports/${view.export_id}`, { headers: auth })).json();
        }
        const d = await fetch(view.signed_url);
        await d.arrayBuffer();
        return d.status;
      });

    // ---- compaction jobs
    const compactions = [];
    const compactOnce = async (dataset, label) => {
      const op_id = `soak-${runId}-${label}-${dataset}`;
      const t0 = Date.now();
      const sub = bus.nc.subscribe(`lake.results.compact.${op_id}`, { max: 1, timeout: 300_000 });
      const result = (async () => {
        try {
          for await (const m of sub) return m.json();
        } catch (err) {
          return { status: `no result: ${err.message}` };
        }
        return { status: 'no result' };
      })();
      await publishFast(
        bus.nc,
        [{ subject: 'lake.ops.compact', payload: { op_id, dataset, min_file_count: 2 }, msgId: op_id }],
        {
          maxAttempts: 100,
        },
      );
      const r = await result;
      compactions.push({ dataset, label, status: r.status, seconds: (Date.now() - t0) / 1000, at: t0 });
      return r;
    };

    // ---- sampling
    const samples = [];
    const sumRows = async (dataset) => (await catalog.liveFiles(dataset)).reduce((n, f) => n + f.rows, 0);
    const pgLive = async () => {
      if (!db) return undefined;
      return await withPg(db.url, async (c) => {
        const r = await c.query(
          "SELECT relname, n_live_tup::bigint AS n FROM pg_stat_user_tables WHERE relname IN ('products','ticks','candles')",
        );
        return Object.fromEntries(r.rows.map((x) => [x.relname, Number(x.n)]));
      });
    };
    const backlog = async () => {
      const out = {};
      for (const stream of ['TICKS', 'PRODUCTS', 'LAKE']) {
        try {
          for await (const ci of bus.jsm.consumers.list(stream)) {
            out[`${stream}/${ci.name}`] = ci.num_pending + ci.num_ack_pending;
          }
        } catch {}
      }
      return out;
    };
    const t0 = Date.now();
    const lastCpu = new Map();
    const sample = async (phase) => {
      const rss = {};
      const cpu = {};
      const procs = services.filter((s) => s.child.running).map((s) => [s.name, s.child.proc.pid]);
      if (natsPid) procs.push(['nats-server', natsPid]);
      if (feed.running) procs.push(['tick-feed', feed.proc.pid]);
      const now = Date.now();
      for (const [name, pid] of procs) {
        rss[name] = round(rssMb(pid));
        const ticks = cpuTicks(pid);
        const prev = lastCpu.get(pid);
        if (prev && ticks !== undefined)
          cpu[name] = round((100 * (ticks - prev.ticks)) / CLK_TCK / ((now - prev.at) / 1000), 0);
        if (ticks !== undefined) lastCpu.set(pid, { ticks, at: now });
      }
      const row = {
        t: round((Date.now() - t0) / 1000),
        phase,
        load1: round(loadavg()[0], 2),
        rss_mb: rss,
        cpu_percent: cpu,
        published: { ticks: feedProgress.acked, products: products.products, batches: products.batches },
        lake: {
          ticks: await sumRows('ticks').catch(() => null),
          products: await sumRows('products').catch(() => null),
          candles: await sumRows('candles').catch(() => null),
        },
        pg: await pgLive().catch(() => null),
        backlog: await backlog(),
        tick_feed: { generated: feedProgress.generated, inflight: feedProgress.inflight },
      };
      samples.push(row);
      say(
        `t=${row.t}s ${phase} load ${row.load1} | ticks pub ${row.published.ticks} lake ${row.lake.ticks}` +
          `${row.pg ? ` pg~${row.pg.ticks ?? 0}` : ''} | products pub ${row.published.products} lake ${row.lake.products}` +
          `${row.pg ? ` pg~${row.pg.products ?? 0}` : ''} | candles ${row.lake.candles} | RSS ${Object.entries(
            rss,
          )
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
      );
      return row;
    };

    // ---- the load
    await sample('start');
    say(
      `load for ${MINUTES} min: ${TICKS_PER_S} ticks/s over ${SYMBOLS.length} symbols, ${BATCHES_PER_S} product batches/s, ` +
        `API queries, a products export every ${EXPORT_EVERY_S} s, compaction every ${COMPACT_EVERY_S} s`,
    );
    feed.start();
    const loadStart = Date.now();
    const loadEnd = loadStart + MINUTES * 60_000;
    const running = () => Date.now() < loadEnd && !interrupted && !feed.failed;
    const loops = [
      (async () => {
        let n = 0;
        const inflight = new Set();
        while (running()) {
          const due = Math.floor(((Date.now() - loadStart) / 1000) * BATCHES_PER_S) - n;
          for (let i = 0; i < due && products.inflight < 16; i++, n++) {
            const p = publishBatch();
            inflight.add(p);
            p.finally(() => inflight.delete(p));
          }
          await sleep(50);
        }
        await Promise.all([...inflight]);
      })(),
      (async () => {
        while (running()) {
          const ms = await queryOnce();
          await sleep(Math.max(0, 100 - (ms ?? 0)));
        }
      })(),
      (async () => {
        let next = Date.now() + 10_000;
        while (running()) {
          if (Date.now() >= next) {
            next = Date.now() + EXPORT_EVERY_S * 1000;
            await exportOnce();
          }
          await sleep(250);
        }
      })(),
      (async () => {
        let n = 0;
        let next = loadStart + COMPACT_EVERY_S * 1000;
        const jobs = [];
        while (running()) {
          if (Date.now() >= next) {
            next += COMPACT_EVERY_S * 1000;
            const label = `m${++n}`;
            for (const d of ['products', 'ticks', 'candles']) jobs.push(compactOnce(d, label));
          }
          await sleep(250);
        }
        await Promise.all(jobs);
      })(),
      (async () => {
        while (running()) {
          const wait = SAMPLE_S * 1000 - ((Date.now() - t0) % (SAMPLE_S * 1000));
          await sleep(Math.min(wait, Math.max(0, loadEnd - Date.now())));
          if (running()) await sample('load');
        }
      })(),
    ];
    await Promise.all(loops.slice(1, 3).concat(loops.slice(4)));
    say('load phase over: stopping the tick feed (it waits for its last acks)');
    await feed.stop('SIGINT', 120_000);
    await loops[0];
    const loadSeconds = (Date.now() - loadStart) / 1000;
    if (!feedFinal) throw new Error('the tick feed ended without its final report');
    feedProgress = { ...feedProgress, acked: feedFinal.acked, generated: feedFinal.generated, inflight: 0 };
    say(
      `published: ${feedFinal.acked} ticks (${round(feedFinal.acked / feedFinal.seconds, 0)}/s), ` +
        `${products.batches} batches / ${products.products} products; compaction jobs still running: waiting`,
    );
    await loops[3];

    // ---- drain: everything published is committed (lake, candles closed, PostgreSQL)
    const drainStart = Date.now();
    const drainDeadline = drainStart + DRAIN_MINUTES * 60_000;
    let drained = false;
    let lastSample = 0;
    while (Date.now() < drainDeadline && !interrupted) {
      if (Date.now() - lastSample >= SAMPLE_S * 1000) {
        lastSample = Date.now();
        await sample('drain');
      }
      const lakeTicks = await sumRows('ticks');
      const lakeProducts = await sumRows('products');
      // The last minute's candles close once the wall clock passes its end (the candle-aggregator's
      // stream clock follows the wall clock after QUIET_CLOSE_MS without ticks), then are flushed.
      const candles1m = await catalog
        .liveFiles('candles', { timeframe: '1m' })
        .then((fs) => fs.reduce((n, f) => n + f.rows, 0))
        .catch(() => 0);
      if (
        lakeTicks >= feedFinal.acked &&
        lakeProducts >= products.products &&
        candles1m >= feedFinal.candles1m.length
      ) {
        const h = await fetch(`${candleSvc.url}/health`)
          .then((r) => r.json())
          .catch(() => ({}));
        if (h.pending_candles === 0 && h.pending_publishes === 0) {
          const lakeCandles = await sumRows('candles');
          if (!db) {
            drained = true;
            break;
          }
          const exact = await withPg(db.url, async (c) => {
            const n = async (t) =>
              (await pgExists(c, t))
                ? Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
                : 0;
            return { products: await n('products'), ticks: await n('ticks'), candles: await n('candles') };
          });
          if (exact.products >= lakeProducts && exact.ticks >= lakeTicks && exact.candles >= lakeCandles) {
            drained = true;
            break;
          }
        }
      }
      await sleep(1000);
    }
    const drainSeconds = (Date.now() - drainStart) / 1000;
    await sample('drained');
    say(drained ? `drained in ${round(drainSeconds)} s` : `NOT drained after ${round(drainSeconds)} s`);

    // ---- a last compaction, then exactly-once from outside
    for (const d of ['products', 'ticks', 'candles']) await compactOnce(d, 'final');
    // pg-loader follows the compactions' commits (rows of replaced files out, the new file's in).
    if (db) {
      const t = Date.now();
      const converged = await pgConverged(db.url, sumRows, 120_000);
      say(
        `PostgreSQL ${converged ? 'follows' : 'does NOT follow'} the lake after the final compaction (${round((Date.now() - t) / 1000)} s)`,
      );
    }
    const check = await checkExactlyOnce({
      catalog,
      env: { NATS_URL: nats.url, LAKE_URL: lakeUrl },
      dbUrl: db?.url,
      wantBatches,
      feedFinal,
    });
    say(
      check.ok
        ? `exactly once: ${JSON.stringify(check.counts)}`
        : `LOSS OR DUPLICATES:\n  ${check.diffs.join('\n  ')}`,
    );

    const crashes = Object.fromEntries(services.map((s) => [s.name, s.child.exits.length]));
    await stopServices();
    const exits = Object.fromEntries(services.map((s) => [s.name, s.child.exits]));
    const uptimeAfter = uptime();

    // ---- results
    const loadSamples = samples.filter((s) => s.phase === 'load');
    const first = samples[0];
    const lastLoad = loadSamples.at(-1) ?? first;
    const rate = (a, b, f) => (b.t > a.t ? round((f(b) - f(a)) / (b.t - a.t), 0) : null);
    const rssPeak = {};
    const rssLast = {};
    const rssFirst = {};
    for (const s of samples) {
      for (const [k, v] of Object.entries(s.rss_mb)) {
        if (v === undefined || v === null) continue;
        rssPeak[k] = Math.max(rssPeak[k] ?? 0, v);
        rssFirst[k] ??= v;
        if (s.phase === 'load') rssLast[k] = v;
      }
    }
    const cpuMean = {};
    for (const k of new Set(loadSamples.flatMap((x) => Object.keys(x.cpu_percent)))) {
      const v = loadSamples.map((x) => x.cpu_percent[k]).filter((x) => typeof x === 'number');
      if (v.length) cpuMean[k] = round(v.reduce((a, b) => a + b, 0) / v.length, 0);
    }
    const result = {
      name: 'soak',
      date: new Date().toISOString(),
      command,
      machine: { ...machine(), uptime_before: uptimeBefore, uptime_after: uptimeAfter },
      note:
        'Run while other engineers used the same 2-core machine (see the load averages): absolute figures are ' +
        'lower than on a quiet machine.',
      config: {
        minutes: MINUTES,
        ticks_per_s_target: TICKS_PER_S,
        batches_per_s: BATCHES_PER_S,
        symbols: SYMBOLS,
        sample_s: SAMPLE_S,
        export_every_s: EXPORT_EVERY_S,
        compact_every_s: COMPACT_EVERY_S,
        max_inflight_slices: MAX_INFLIGHT,
        postgres: Boolean(db),
        services: services.map((s) => s.name),
        service_env: SERVICE_ENV.map((m) => m[0]),
      },
      load_seconds: round(loadSeconds),
      drain_seconds: round(drainSeconds),
      drained,
      throughput: {
        ticks_published_per_s: round(feedFinal.acked / feedFinal.seconds, 0),
        ticks_target_per_s: TICKS_PER_S,
        tick_feed_stalled_steps: `${feedFinal.stalledSteps} of ${feedFinal.steps} 50-ms steps waited for acks (at most ${MAX_INFLIGHT} slices / ${feedFinal.maxOutstanding} ticks awaiting acks); the steps ran ${round(feedFinal.steps / feedFinal.seconds)} times/s of the 20 planned`,
        ticks_committed_lake_per_s_during_load: rate(first, lastLoad, (s) => s.lake.ticks ?? 0),
        ticks_committed_lake_per_s_overall: round(feedFinal.acked / (loadSeconds + drainSeconds), 0),
        ticks_pg_per_s_during_load: db ? rate(first, lastLoad, (s) => s.pg?.ticks ?? 0) : null,
        products_published_per_s: round(products.products / loadSeconds, 0),
        products_committed_lake_per_s_during_load: rate(first, lastLoad, (s) => s.lake.products ?? 0),
        products_pg_per_s_during_load: db ? rate(first, lastLoad, (s) => s.pg?.products ?? 0) : null,
        backlog_at_end_of_load: lastLoad.backlog,
      },
      published: {
        ticks: feedFinal.acked,
        ticks_generated: feedFinal.generated,
        tick_publish_failures: feedFinal.failed,
        tick_duplicates_reported_by_jetstream: feedFinal.duplicates,
        product_batches: products.batches,
        products: products.products,
        product_batch_failures: products.failed,
      },
      latency: Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, latencyStats(v)])),
      http_statuses: statuses,
      compactions: {
        jobs: compactions.length,
        by_status: countBy(compactions.map((c) => c.status)),
        seconds: latencyStats(compactions.map((c) => c.seconds * 1000)),
      },
      rss_mb: { first: rssFirst, last_during_load: rssLast, peak: rssPeak },
      cpu_percent_mean_during_load: cpuMean,
      load1_during_load: (() => {
        const v = loadSamples.map((x) => x.load1).sort((a, b) => a - b);
        return { median: percentile(v, 50), max: v.at(-1) ?? null };
      })(),
      baseline_tick_feed_alone: baseline ?? null,
      service_exits: exits,
      service_starts_beyond_first: Object.fromEntries(
        Object.entries(crashes).map(([k, n]) => [k, Math.max(0, n - 1)]),
      ),
      exactly_once: check,
      samples,
    };
    writeResults(OUT, result, markdown(result));
    writeFileSync(join(resultsDir, `${OUT}-rss.svg`), rssSvg(samples, `RSS per process, ${command}`));
    say(`wrote bench/results/${OUT}.json, ${OUT}.md, ${OUT}-rss.svg`);
    if (!check.ok) process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

/** Until PostgreSQL's products, ticks and candles row counts equal the catalog's (true), or `timeoutMs` (false). */
async function pgConverged(url, sumRows, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const same = await withPg(url, async (c) => {
      for (const t of ['products', 'ticks', 'candles']) {
        const pgRows = (await pgExists(c, t))
          ? Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
          : 0;
        if (pgRows !== (await sumRows(t))) return false;
      }
      return true;
    });
    if (same) return true;
    if (Date.now() > deadline) return false;
    await sleep(1000);
  }
}

/** Rows per `_lake_file` in PostgreSQL against the catalog's live files (diagnostics of a mismatch). */
async function pgFileDiff(url, table, live) {
  return await withPg(url, async (c) => {
    const r = await c.query(`SELECT _lake_file AS f, count(*)::int AS n FROM ${table} GROUP BY 1`);
    const pgRows = new Map(r.rows.map((x) => [x.f, x.n]));
    const out = [];
    for (const f of live) {
      const n = pgRows.get(f.path);
      if (n !== f.rows) out.push(`${table} ${f.path}: lake ${f.rows}, pg ${n ?? 0}`);
      pgRows.delete(f.path);
    }
    for (const [f, n] of pgRows) out.push(`${table} ${f}: not live in the lake, pg ${n}`);
    return out.slice(0, 10);
  });
}

async function checkExactlyOnce({ catalog, env, dbUrl, wantBatches, feedFinal }) {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await instance.connect();
  const rows = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS();
  const diffs = [];
  const counts = {};
  const wantTicks = {
    rows: feedFinal.acked,
    bySymbol: Object.fromEntries(
      Object.entries(feedFinal.bySymbol).map(([k, v]) => [k, { rows: v.rows, volume: v.volume }]),
    ),
  };
  try {
    // Products per batch id.
    const productFiles = cliLakeFiles('products', env);
    const lakeBatches = Object.fromEntries(
      (
        await rows(
          `SELECT batch_id, count(*)::INTEGER AS n FROM read_parquet(${sqlList(productFiles)}, union_by_name = true) GROUP BY 1`,
        )
      ).map((r) => [r.batch_id, r.n]),
    );
    diffs.push(...mapDiffs('lake products batch', lakeBatches, wantBatches));
    counts.lake_products = Object.values(lakeBatches).reduce((a, b) => a + b, 0);
    counts.product_files = productFiles.length;

    // Ticks.
    const tickFiles = cliLakeFiles('ticks', env);
    const src = `read_parquet(${sqlList(tickFiles)}, union_by_name = true)`;
    const [all] = await rows(
      `SELECT count(*)::BIGINT AS rows, count(DISTINCT (symbol, trade_id))::BIGINT AS distinct FROM ${src}`,
    );
    const per = await rows(
      `SELECT symbol, count(*)::BIGINT AS rows, sum(size)::DOUBLE AS volume FROM ${src} GROUP BY 1`,
    );
    const lakeTicks = {
      rows: Number(all.rows),
      distinct: Number(all.distinct),
      bySymbol: Object.fromEntries(per.map((r) => [r.symbol, { rows: Number(r.rows), volume: r.volume }])),
    };
    diffs.push(...tickDiffs('lake', lakeTicks, wantTicks));
    counts.lake_ticks = lakeTicks.rows;
    counts.tick_files = tickFiles.length;

    // 1-minute candles (latest revision) against the feed's own.
    const candleFiles = cliLakeFiles('candles', env);
    const lakeCandles = candleFiles.length
      ? await rows(
          `SELECT symbol, epoch_ms("start")::DOUBLE AS ts, open, high, low, close, volume, trades::INTEGER AS trades
           FROM read_parquet(${sqlList(candleFiles)}, union_by_name = true) WHERE timeframe = '1m'
           QUALIFY row_number() OVER (PARTITION BY symbol, timeframe, "start" ORDER BY revision DESC) = 1`,
        )
      : [];
    const got = new Map(lakeCandles.map((c) => [`${c.symbol}/${c.ts}`, c]));
    const candleDiffs = [];
    for (const e of feedFinal.candles1m) {
      const k = `${e.symbol}/${e.ts}`;
      const a = got.get(k);
      got.delete(k);
      if (!a) {
        candleDiffs.push(`missing 1m candle ${k}`);
        continue;
      }
      for (const f of ['open', 'high', 'low', 'close', 'trades']) {
        if (a[f] !== e[f]) candleDiffs.push(`1m ${k} ${f}: ${a[f]}, want ${e[f]}`);
      }
      if (Math.abs(a.volume - e.volume) > 1e-9 * Math.max(1, e.volume))
        candleDiffs.push(`1m ${k} volume: ${a.volume}, want ${e.volume}`);
    }
    for (const k of got.keys()) candleDiffs.push(`unexpected 1m candle ${k}`);
    diffs.push(
      ...candleDiffs.slice(0, 10),
      ...(candleDiffs.length > 10 ? [`… ${candleDiffs.length} candle differences`] : []),
    );
    counts.candles_1m = feedFinal.candles1m.length;
    const [candleRows] = candleFiles.length
      ? await rows(
          `SELECT count(*)::BIGINT AS rows FROM read_parquet(${sqlList(candleFiles)}, union_by_name = true)`,
        )
      : [{ rows: 0 }];
    counts.lake_candle_rows = Number(candleRows.rows);

    if (dbUrl) {
      await withPg(dbUrl, async (c) => {
        const pgBatches = (await pgExists(c, 'products'))
          ? Object.fromEntries(
              (await c.query('SELECT batch_id, count(*)::int AS n FROM products GROUP BY 1')).rows.map(
                (r) => [r.batch_id, r.n],
              ),
            )
          : {};
        diffs.push(...mapDiffs('pg products batch', pgBatches, wantBatches));
        counts.pg_products = Object.values(pgBatches).reduce((a, b) => a + b, 0);
        if (await pgExists(c, 'ticks')) {
          const a = (
            await c.query(
              'SELECT count(*)::bigint AS rows, count(DISTINCT (symbol, trade_id))::bigint AS distinct FROM ticks',
            )
          ).rows[0];
          const p = (
            await c.query(
              'SELECT symbol, count(*)::bigint AS rows, sum(size)::float8 AS volume FROM ticks GROUP BY 1',
            )
          ).rows;
          const pgTicks = {
            rows: Number(a.rows),
            distinct: Number(a.distinct),
            bySymbol: Object.fromEntries(
              p.map((r) => [r.symbol, { rows: Number(r.rows), volume: r.volume }]),
            ),
          };
          diffs.push(...tickDiffs('pg', pgTicks, wantTicks));
          counts.pg_ticks = pgTicks.rows;
        } else diffs.push('pg: no ticks table');
        const pgCandles = (await pgExists(c, 'candles'))
          ? Number((await c.query('SELECT count(*)::bigint AS n FROM candles')).rows[0].n)
          : 0;
        if (pgCandles !== counts.lake_candle_rows) {
          diffs.push(`pg candles: ${pgCandles} rows, lake ${counts.lake_candle_rows}`);
          diffs.push(...(await pgFileDiff(dbUrl, 'candles', await catalog.liveFiles('candles'))));
        }
        counts.pg_candle_rows = pgCandles;
      });
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  return { ok: diffs.length === 0, diffs, counts };
}

function markdown(r) {
  const t = r.throughput;
  const lat = Object.entries(r.latency)
    .map(([k, v]) => `| ${k} | ${v.count} | ${v.p50_ms ?? '–'} | ${v.p99_ms ?? '–'} | ${v.max_ms ?? '–'} |`)
    .join('\n');
  const names = Object.keys(r.rss_mb.peak);
  const rss = names
    .map(
      (k) =>
        `| ${k} | ${r.rss_mb.first[k] ?? '–'} | ${r.rss_mb.last_during_load[k] ?? '–'} | ${r.rss_mb.peak[k]} | ${r.cpu_percent_mean_during_load[k] ?? '–'} |`,
    )
    .join('\n');
  const e = r.exactly_once;
  return `# bench/soak (${r.date.slice(0, 10)})

\`${r.command}\` on ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, commit ${r.machine.commit}.
Load ${r.load_seconds} s (target ${r.config.minutes} min), then drain ${r.drain_seconds} s (${r.drained ? 'everything committed' : '**not drained**'}).
One instance of each service: ${r.config.services.join(', ')}; filesystem lake in a temp dir; private nats-server${r.config.postgres ? '; a fresh PostgreSQL database' : '; no PostgreSQL'}.

Machine before: \`${r.machine.uptime_before}\`; after: \`${r.machine.uptime_after}\`.
${r.note}${r.config.minutes < 10 ? `\n\n**A ${r.config.minutes}-minute run**: the issue's 10-minute soak (\`node bench/soak/run.mjs\`) is meant for a quiet machine (load average < 2).` : ''}

## Throughput

| | per second |
| --- | --- |
| ticks published (acked by JetStream; target ${t.ticks_target_per_s}) | ${t.ticks_published_per_s} |
| ticks committed to the lake, during the load | ${t.ticks_committed_lake_per_s_during_load} |
| ticks committed to the lake, load + drain | ${t.ticks_committed_lake_per_s_overall} |
| ticks in PostgreSQL, during the load (n_live_tup) | ${t.ticks_pg_per_s_during_load ?? '–'} |
| products published | ${t.products_published_per_s} |
| products committed to the lake, during the load | ${t.products_committed_lake_per_s_during_load} |
| products in PostgreSQL, during the load (n_live_tup) | ${t.products_pg_per_s_during_load ?? '–'} |

Tick feed: ${t.tick_feed_stalled_steps}; its CPU during the load ${r.cpu_percent_mean_during_load['tick-feed'] ?? '–'}% of one core.
${r.baseline_tick_feed_alone ? `Baseline, the same feed alone before the services started (nats-server and the feed only, ${r.baseline_tick_feed_alone.seconds} s, load ${r.baseline_tick_feed_alone.load1}): **${r.baseline_tick_feed_alone.ticks_per_s} ticks/s** at ${r.baseline_tick_feed_alone.feed_cpu_percent}% CPU of the feed (${r.baseline_tick_feed_alone.stalled_steps} steps waited for acks).\n` : ''}Backlog (pending + unacked) per consumer at the end of the load: \`${JSON.stringify(t.backlog_at_end_of_load)}\`.
Published: ${r.published.ticks} ticks, ${r.published.product_batches} product batches / ${r.published.products} products (failures: ${r.published.tick_publish_failures} ticks, ${r.published.product_batch_failures} batches).

## API latency (ms, status 200 only)

| route | requests | p50 | p99 | max |
| --- | --- | --- | --- | --- |
${lat}

Statuses: \`${JSON.stringify(r.http_statuses)}\`.
Compaction jobs: ${r.compactions.jobs} (\`${JSON.stringify(r.compactions.by_status)}\`), job time p50 ${round((r.compactions.seconds.p50_ms ?? 0) / 1000)} s, max ${round((r.compactions.seconds.max_ms ?? 0) / 1000)} s.

## RSS (MB, VmRSS sampled every ${r.config.sample_s} s; plot: [${OUT}-rss.svg](${OUT}-rss.svg))

| process | first sample | last sample of the load | peak | mean CPU % during the load |
| --- | --- | --- | --- | --- |
${rss}

Load average (1 min) during the load: median ${r.load1_during_load.median}, max ${r.load1_during_load.max} (2 cores).

Restarts beyond the first start: \`${JSON.stringify(r.service_starts_beyond_first)}\`.

## Exactly once

${e.ok ? '**Zero loss, no duplicates**' : '**FAILED**'}: \`${JSON.stringify(e.counts)}\`${e.ok ? '' : `\n\n${e.diffs.map((d) => `- ${d}`).join('\n')}`}

Checked from outside after the drain and a final compaction: \`parquetry lake files <dataset> --json\` with DuckDB
(products per batch id; ticks: rows, distinct (symbol, trade_id), rows and volume per symbol; every 1-minute
candle's open/high/low/close/trades/volume against the feed's own aggregation), and SQL on PostgreSQL (products per
batch id, ticks the same way, candle rows equal to the lake's).`;
}

main()
  .catch((err) => {
    say(`failed: ${err?.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(stopAll);
