// bench/api (candles): `GET /v1/candles?timeframe=1m&limit=1000` against export-api over loopback
// with autocannon, warm cache (CACHE_MB=256) and cache off (CACHE_MB=0), and in the same run the
// same query run directly in DuckDB on the same files. The lake: one year (2024) of 1m candles of
// one symbol, 527,040 rows in 12 monthly partitions written through the real catalog, as the
// candle-aggregator lays them out (MEASURED.md's "last 1,000 1m candles out of 12 monthly files").
// The server is a child process (bench/api/candles-server.mjs: the app as main.ts composes it).
// Usage: pnpm build && node bench/api/candles.mjs [--duration 10] [--connections 10] [--runs 3]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectBus } from '@parquetry/bus';
import { createKeyInFile } from '@parquetry/export-api';
import {
  CANDLES,
  candlePeriod,
  FsObjectStore,
  openCatalog,
  openDuckDB,
  partitionPath,
  sqlString,
  writeLakeFiles,
} from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats, tempDir } from '@parquetry/testkit';
import autocannon from 'autocannon';
import { machine, peakRssMb, writeResults } from '../lib.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const DURATION = arg('duration', 10);
const CONNECTIONS = arg('connections', 10);
const RUNS = arg('runs', 3);
const SYMBOL = 'BENCH';
const YEAR_START = Date.UTC(2024, 0, 1);
const N = 366 * 1440; // 2024 is a leap year: 527,040 minutes
const QUERY = '/v1/candles?timeframe=1m&limit=1000';
const here = fileURLToPath(new URL('.', import.meta.url));
const logger = silentLogger();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function* candles() {
  let seed = 42;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  let price = 40_000;
  for (let i = 0; i < N; i++) {
    const start = YEAR_START + i * 60_000;
    const open = price;
    const close = Math.max(1, Math.round((open + (random() - 0.5) * 40) * 100) / 100);
    const high = Math.round((Math.max(open, close) + random() * 10) * 100) / 100;
    const low = Math.round((Math.min(open, close) - random() * 10) * 100) / 100;
    price = close;
    yield {
      timeframe: '1m',
      symbol: SYMBOL,
      period: candlePeriod('1m', start),
      start,
      end: start + 60_000,
      open,
      high,
      low,
      close,
      volume: Math.round(random() * 1_000_000) / 1000,
      trades: 1 + Math.floor(random() * 300),
      vwap: Math.round(((high + low + close) / 3) * 100) / 100,
      revision: 0,
    };
  }
}

async function writeLake(lakeDir, catalog) {
  const duck = await openDuckDB();
  const store = new FsObjectStore(lakeDir);
  const columns = Object.entries(CANDLES.columns).map(([name, type]) => ({ name, type }));
  const months = new Map();
  for (const c of candles()) {
    let rows = months.get(c.period);
    if (!rows) {
      rows = [];
      months.set(c.period, rows);
    }
    rows.push(c);
  }
  const files = [];
  for (const [period, rows] of months) {
    const values = { timeframe: '1m', symbol: SYMBOL, period };
    const add = await writeLakeFiles({
      conn: duck.conn,
      store,
      dir: `${CANDLES.root}/${partitionPath(CANDLES.partitionColumns, values)}`,
      fileName: () => `candles_bench_${period}.parquet`,
      columns,
      batches: [rows],
      timeField: 'start',
    });
    await catalog.commit({
      dataset: CANDLES.name,
      commitId: `bench-${period}`,
      changes: [{ partition: values, add }],
    });
    files.push(...add.map((f) => join(lakeDir, f.path)));
  }
  await store.close();
  return { duck, files: files.sort() };
}

/** The API's query for the last 1,000 candles, run by DuckDB itself, result rows fetched into JS. */
async function duckdbDirect(duck, paths, iterations, fromMs) {
  const where =
    fromMs === undefined ? '' : `WHERE "start" >= TIMESTAMPTZ ${sqlString(new Date(fromMs).toISOString())} `;
  const sql =
    `SELECT epoch_ms("start") AS s, open, high, low, close, volume, trades FROM read_parquet([${paths.map(sqlString).join(', ')}], hive_partitioning = false) ` +
    `${where}QUALIFY row_number() OVER (PARTITION BY "start" ORDER BY revision DESC) = 1 ORDER BY "start" DESC LIMIT 1000`;
  const times = [];
  let rows = 0;
  for (let i = 0; i < iterations + 5; i++) {
    const t = performance.now();
    const r = await duck.conn.runAndReadAll(sql);
    rows = r.getColumnsJS()[0].length;
    if (i >= 5) times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    files: paths.length,
    rows,
    p50_ms: round(pct(times, 0.5), 3),
    p99_ms: round(pct(times, 0.99), 3),
    per_s: round(1000 / median(times), 0),
  };
}

async function startServer(env) {
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []; // e.g. --cpu-prof
  const child = spawn(process.execPath, [...nodeArgs, join(here, 'candles-server.mjs')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    lines.once('line', (l) => resolve(JSON.parse(l).port));
  });
  return {
    child,
    port,
    async stop() {
      const rss = peakRssMb(child.pid);
      await new Promise((r) => {
        child.once('exit', r);
        child.kill('SIGTERM');
      });
      return rss;
    },
  };
}

/** CPU time (user + system, ms) a process has used so far: a per-request cost that other load on the machine does not inflate. */
function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in 1/100 s
  } catch {
    return Number.NaN;
  }
}

async function load(port, key, connections, pid) {
  const cpu0 = cpuMs(pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${QUERY}`,
    headers: { authorization: `Bearer ${key}` },
    connections,
    duration: DURATION,
  });
  return {
    connections,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    avg_ms: round(result.latency.average),
    req_per_s: round(result.requests.average, 0),
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    mb_per_s: round(result.throughput.average / 1e6, 1),
    server_cpu_ms_per_req: round((cpuMs(pid) - cpu0) / result.requests.total, 3),
  };
}

async function check(port, key, expectSource) {
  const res = await fetch(`http://127.0.0.1:${port}${QUERY}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const body = await res.json();
  const last = new Date(YEAR_START + (N - 1) * 60_000).toISOString();
  if (res.status !== 200 || body.candles.length !== 1000 || body.candles.at(-1).ts !== last) {
    throw new Error(`unexpected answer: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  }
  if (expectSource && body.data_source !== expectSource)
    throw new Error(`data_source ${body.data_source}, expected ${expectSource}`);
  return { bytes: JSON.stringify(body).length, data_source: body.data_source };
}

async function main() {
  const loadStart = loadavg().map((x) => round(x));
  const nats = await startNats();
  const lake = tempDir('pq-bench-api-lake-');
  const work = tempDir('pq-bench-api-work-');
  const bus = await connectBus({ url: nats.url, name: 'bench-api', logger });
  try {
    const catalog = await openCatalog({ nc: bus.nc, logger });
    const t0 = performance.now();
    const { duck, files } = await writeLake(lake.path, catalog);
    const writeS = (performance.now() - t0) / 1000;
    const keysFile = join(work.path, 'keys.json');
    mkdirSync(work.path, { recursive: true });
    const { key } = await createKeyInFile({ file: keysFile, name: 'bench', datasets: ['candles'] });
    const env = { NATS_URL: nats.url, LAKE_DIR: lake.path, WORK_DIR: work.path, API_KEYS_FILE: keysFile };

    const runs = [];
    for (let run = 0; run < RUNS; run++) {
      // The API (cache off) first bounds the time range to 1.5 × 1,000 candles before the newest one.
      const bound = YEAR_START + (N - 1) * 60_000 + 1 - 1501 * 60_000;
      const direct = {
        newest_month_bounded: await duckdbDirect(duck, files.slice(-1), 100, bound),
        newest_month: await duckdbDirect(duck, files.slice(-1), 50),
        all_12_months: await duckdbDirect(duck, files, 20),
      };
      const warmServer = await startServer({ ...env, CACHE_MB: '256' });
      await check(warmServer.port, key); // reads the newest month into the cache
      const warmCheck = await check(warmServer.port, key, 'cache');
      const warm = { ...(await load(warmServer.port, key, CONNECTIONS, warmServer.child.pid)), ...warmCheck };
      const warm1 = await load(warmServer.port, key, 1, warmServer.child.pid);
      warm.peak_rss_mb = round(await warmServer.stop(), 0);

      const offServer = await startServer({ ...env, CACHE_MB: '0' });
      const offCheck = await check(offServer.port, key, 'lake');
      const off = { ...(await load(offServer.port, key, CONNECTIONS, offServer.child.pid)), ...offCheck };
      const off1 = await load(offServer.port, key, 1, offServer.child.pid);
      off.peak_rss_mb = round(await offServer.stop(), 0);
      runs.push({ direct, warm, warm_1: warm1, off, off_1: off1 });
      console.error(JSON.stringify(runs.at(-1)));
    }
    duck.close();

    const med = (f) => median(runs.map(f));
    const summary = {
      warm: {
        p50_ms: med((r) => r.warm.p50_ms),
        p99_ms: med((r) => r.warm.p99_ms),
        req_per_s: med((r) => r.warm.req_per_s),
        cpu_ms: med((r) => r.warm.server_cpu_ms_per_req),
      },
      warm_1conn: {
        p50_ms: med((r) => r.warm_1.p50_ms),
        p99_ms: med((r) => r.warm_1.p99_ms),
        req_per_s: med((r) => r.warm_1.req_per_s),
      },
      off: {
        p50_ms: med((r) => r.off.p50_ms),
        p99_ms: med((r) => r.off.p99_ms),
        req_per_s: med((r) => r.off.req_per_s),
        cpu_ms: med((r) => r.off.server_cpu_ms_per_req),
      },
      off_1conn: {
        p50_ms: med((r) => r.off_1.p50_ms),
        p99_ms: med((r) => r.off_1.p99_ms),
        req_per_s: med((r) => r.off_1.req_per_s),
      },
      duckdb_newest_month_bounded: {
        p50_ms: med((r) => r.direct.newest_month_bounded.p50_ms),
        p99_ms: med((r) => r.direct.newest_month_bounded.p99_ms),
      },
      duckdb_newest_month: {
        p50_ms: med((r) => r.direct.newest_month.p50_ms),
        p99_ms: med((r) => r.direct.newest_month.p99_ms),
      },
      duckdb_all_12_months: {
        p50_ms: med((r) => r.direct.all_12_months.p50_ms),
        p99_ms: med((r) => r.direct.all_12_months.p99_ms),
      },
    };
    const targets = {
      warm_p50_le_2ms: summary.warm.p50_ms <= 2,
      warm_p99_le_10ms: summary.warm.p99_ms <= 10,
      warm_ge_2000_rps: summary.warm.req_per_s >= 2000,
      off_p50_le_15ms: summary.off.p50_ms <= 15,
    };
    const command = `node bench/api/candles.mjs --duration ${DURATION} --connections ${CONNECTIONS} --runs ${RUNS}`;
    const result = {
      bench: 'api-candles',
      date: new Date().toISOString(),
      command,
      machine: machine(),
      lake: { candles: N, files: files.length, timeframe: '1m', symbol: SYMBOL, write_s: round(writeS) },
      query: QUERY,
      duration_s: DURATION,
      summary,
      targets,
      runs,
      loadavg_start: loadStart,
      loadavg_end: loadavg().map((x) => round(x)),
    };
    const m = machine();
    const row = (name, s, c) =>
      `| ${name} | ${c} | ${s.p50_ms} | ${s.p99_ms} | ${s.req_per_s ?? '–'} | ${s.cpu_ms ?? '–'} |`;
    const md = [
      `# bench/api — candles (${result.date.slice(0, 10)})`,
      '',
      `\`${command}\` on ${m.cores} cores (${m.cpu}), Node ${m.node}, commit ${m.commit}; median of ${RUNS} runs, ${DURATION} s of autocannon each.`,
      `Lake: ${N.toLocaleString('en')} 1m candles of one symbol (2024) in ${files.length} monthly Parquet files through the catalog.`,
      `Query: \`GET ${QUERY}\` (the last 1,000 candles, ≈${Math.round(runs[0].warm.bytes / 1024)} KB of JSON). Server and load generator share the 2 cores.`,
      '',
      '| | connections | p50 ms | p99 ms | req/s | server CPU ms/req |',
      '| --- | --- | --- | --- | --- | --- |',
      row('export-api, warm cache (CACHE_MB=256)', summary.warm, CONNECTIONS),
      row('export-api, warm cache', summary.warm_1conn, 1),
      row('export-api, cache off (CACHE_MB=0)', summary.off, CONNECTIONS),
      row('export-api, cache off', summary.off_1conn, 1),
      row(
        'DuckDB directly, the API’s query: newest month’s file, time-bounded',
        summary.duckdb_newest_month_bounded,
        '–',
      ),
      row('DuckDB directly, same query unbounded, newest month’s file', summary.duckdb_newest_month, '–'),
      row('DuckDB directly, same query, all 12 files', summary.duckdb_all_12_months, '–'),
      '',
      `Targets: warm p50 ≤ 2 ms **${targets.warm_p50_le_2ms ? 'met' : 'missed'}**, warm p99 ≤ 10 ms **${targets.warm_p99_le_10ms ? 'met' : 'missed'}**, ` +
        `≥ 2,000 req/s **${targets.warm_ge_2000_rps ? 'met' : 'missed'}**, cache off p50 ≤ 15 ms **${targets.off_p50_le_15ms ? 'met' : 'missed'}** (at ${CONNECTIONS} connections).`,
      'autocannon reports whole milliseconds (0 = under 1 ms). Server CPU ms/req (user + system of the server process over the load, /proc) does not grow with other load on the machine; latencies do.',
      'DuckDB times are one query at a time in the benchmark process, rows fetched into JS; the API adds HTTP, auth, the catalog view and JSON.',
      'With the cache off the API runs that windowed query (highest revision per start, newest first, LIMIT 1000) on the newest partition’s files for every request,',
      'first bounded to the last 1,501 minutes of the files (catalog min/max times), the whole partition only when that holds fewer than 1,000 candles.',
      `Load average at the start ${result.loadavg_start.join(', ')}, at the end ${result.loadavg_end.join(', ')} (other work shared the machine when above ~2).`,
    ].join('\n');
    writeResults('api-candles', result, md);
    console.log(md);
  } finally {
    await bus.close();
    await nats.stop();
    lake.remove();
    work.remove();
  }
}

await main();
