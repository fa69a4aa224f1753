// bench/api/export: rows/s of a Parquet export through export-api (POST /v1/exports → file in the
// lake's exports/) against DuckDB `COPY` of the same query on the same files, in the same run,
// with the same DuckDB threads and memory limit; and the service's RSS while it exports.
// N ticks (8 columns) are written as 1M-row zstd files into a filesystem lake and committed to the
// catalog; the real service (services/export-api/dist/main.js) runs as its own process.
// Usage: pnpm build && node bench/api/export.mjs [--rows 10000000] [--runs 3] [--memory-mb 512]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { connectBus } from '@parquetry/bus';
import { openCatalog, sha256File } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { machine, peakRssMb, sleep, writeResults } from '../lib.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROWS = arg('rows', 10_000_000);
const RUNS = arg('runs', 3);
const MEMORY_MB = arg('memory-mb', 512);
const THREADS = 2;
const PER_FILE = 1_000_000;
const MAIN = fileURLToPath(new URL('../../services/export-api/dist/main.js', import.meta.url));
const COLUMNS = ['symbol', 'date', 'ts', 'price', 'size', 'side', 'trade_id', 'stream_seq'];

const rssMb = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const work = mkdtempSync(join(tmpdir(), 'pq-bench-export-'));
const lakeDir = join(work, 'lake');
const nats = await startNats();
let service;
try {
  // ---- the lake: N ticks in 1M-row files, committed ---------------------------------------
  const t0 = Date.now();
  const gen = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const g = await gen.connect();
  await g.run("SET TimeZone = 'UTC'");
  const bus = await connectBus({ url: nats.url, name: 'bench-export', logger: silentLogger() });
  const catalog = await openCatalog({ nc: bus.nc });
  const files = [];
  for (let f = 0; f * PER_FILE < ROWS; f++) {
    const n = Math.min(PER_FILE, ROWS - f * PER_FILE);
    const date = `2025-09-${String(1 + (f % 28)).padStart(2, '0')}`;
    const key = `ticks/symbol=ES/date=${date}/bench_${f}.parquet`;
    const path = join(lakeDir, key);
    mkdirSync(join(path, '..'), { recursive: true });
    await g.run(`COPY (SELECT 'ES' AS symbol, DATE '${date}' AS date,
        TIMESTAMPTZ '${date} 00:00:00+00' + to_microseconds(i * 8000) AS ts,
        5000 + (i % 4000) * 0.25 AS price, CAST(1 + i % 9 AS DOUBLE) AS size,
        CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
        'T' || CAST(${f * PER_FILE} + i AS VARCHAR) AS trade_id, CAST(${f * PER_FILE} + i AS BIGINT) AS stream_seq
      FROM range(${n}) t(i)) TO '${path}' (FORMAT parquet, COMPRESSION zstd)`);
    files.push({ key, path, n, date });
  }
  for (const f of files) {
    await catalog.commit({
      dataset: 'ticks',
      commitId: `bench-${f.key}`,
      changes: [
        {
          partition: { symbol: 'ES', date: f.date },
          add: [{ path: f.key, rows: f.n, bytes: statSync(f.path).size, sha256: await sha256File(f.path) }],
        },
      ],
    });
  }
  await bus.close();
  g.closeSync();
  gen.closeSync();
  const lakeMb = files.reduce((s, f) => s + statSync(f.path).size, 0) / 2 ** 20;
  console.log(
    `lake: ${ROWS} rows in ${files.length} files (${lakeMb.toFixed(0)} MB) in ${Date.now() - t0} ms`,
  );

  // ---- the service -------------------------------------------------------------------------
  const key = `pq_${randomBytes(32).toString('base64url')}`;
  const keysFile = join(work, 'keys.json');
  writeFileSync(
    keysFile,
    JSON.stringify({
      keys: [
        {
          name: 'bench',
          sha256: createHash('sha256').update(key).digest('hex'),
          datasets: ['ticks'],
          created_at: new Date().toISOString(),
        },
      ],
    }),
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      NATS_URL: nats.url,
      LAKE_URL: `file://${lakeDir}`,
      HTTP_PORT: String(port),
      HTTP_HOST: '127.0.0.1',
      API_KEYS_FILE: keysFile,
      EXPORT_WORK_DIR: join(work, 'export-work'),
      DUCKDB_MEMORY_MB: String(MEMORY_MB),
      DUCKDB_THREADS: String(THREADS),
      EXPORT_SYNC_WAIT_MS: '600000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {}
    if (i > 300) throw new Error('export-api did not start');
    await sleep(100);
  }
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const exportOnce = async (body) => {
    const r = await fetch(`${base}/v1/exports`, { method: 'POST', headers, body: JSON.stringify(body) });
    const view = await r.json();
    if (r.status !== 200 || view.status !== 'succeeded')
      throw new Error(`export failed: ${JSON.stringify(view)}`);
    return view;
  };
  await exportOnce({ dataset: 'ticks', format: 'parquet', limit: 1000 }); // warm: schema, connections
  const idleRss = rssMb(service.pid);

  // ---- baseline: DuckDB COPY of the same query, same settings, in this process ------------
  const base_db = await DuckDBInstance.create(':memory:', {
    threads: String(THREADS),
    memory_limit: `${MEMORY_MB}MB`,
    temp_directory: join(work, 'baseline-spill'),
    preserve_insertion_order: 'false',
  });
  const bconn = await base_db.connect();
  await bconn.run("SET TimeZone = 'UTC'");
  const list = files.map((f) => `'${f.path}'`).join(', ');
  const select = `SELECT ${COLUMNS.map((c) => `"${c}"`).join(', ')} FROM read_parquet([${list}], union_by_name = true, hive_partitioning = false)`;

  const api = [];
  const duck = [];
  let rssDuring = [];
  let outBytes = 0;
  for (let run = 0; run < RUNS; run++) {
    // API
    const samples = [];
    const sampler = setInterval(() => samples.push(rssMb(service.pid)), 50);
    const a0 = performance.now();
    const view = await exportOnce({ dataset: 'ticks', format: 'parquet', compression: 'snappy' });
    const aMs = performance.now() - a0;
    clearInterval(sampler);
    if (view.row_count !== ROWS) throw new Error(`API exported ${view.row_count} rows, expected ${ROWS}`);
    outBytes = view.file_size;
    api.push(aMs);
    rssDuring = rssDuring.concat(samples);
    rmSync(join(lakeDir, 'exports', view.export_id), { recursive: true, force: true });
    // DuckDB COPY
    const out = join(work, `baseline-${run}.parquet`);
    const d0 = performance.now();
    await bconn.run(`COPY (${select}) TO '${out}' (FORMAT parquet, COMPRESSION snappy)`);
    duck.push(performance.now() - d0);
    rmSync(out, { force: true });
    console.log(`run ${run + 1}: API ${aMs.toFixed(0)} ms, DuckDB COPY ${duck.at(-1).toFixed(0)} ms`);
  }
  bconn.closeSync();
  base_db.closeSync();

  const apiMs = median(api);
  const duckMs = median(duck);
  const peak = peakRssMb(service.pid);
  const result = {
    bench: 'api-export',
    date: new Date().toISOString().slice(0, 10),
    command: `node bench/api/export.mjs --rows ${ROWS} --runs ${RUNS} --memory-mb ${MEMORY_MB}`,
    machine: machine(),
    rows: ROWS,
    columns: COLUMNS.length,
    source: { files: files.length, mb: Math.round(lakeMb) },
    output_mb: Math.round(outBytes / 2 ** 20),
    duckdb: { threads: THREADS, memory_limit_mb: MEMORY_MB },
    api: {
      runs_ms: api.map(Math.round),
      median_ms: Math.round(apiMs),
      rows_per_s: Math.round(ROWS / (apiMs / 1000)),
    },
    duckdb_copy: {
      runs_ms: duck.map(Math.round),
      median_ms: Math.round(duckMs),
      rows_per_s: Math.round(ROWS / (duckMs / 1000)),
    },
    ratio: Number((duckMs / apiMs).toFixed(3)),
    target_ratio: 0.8,
    service_rss_mb: {
      idle_after_warmup: Math.round(idleRss),
      max_during_exports: Math.round(Math.max(...rssDuring)),
      peak: Math.round(peak),
    },
  };
  const md = [
    `# bench/api/export (${result.date})`,
    '',
    `\`${result.command}\` on ${result.machine.cores} cores, Node ${result.machine.node}, commit ${result.machine.commit}.`,
    `${ROWS.toLocaleString('en')} ticks × ${COLUMNS.length} columns in ${files.length} zstd files (${result.source.mb} MB) → one snappy Parquet file (${result.output_mb} MB); DuckDB ${THREADS} threads, memory_limit ${MEMORY_MB} MB on both sides; median of ${RUNS} runs, alternating.`,
    '',
    '| | rows/s | median | runs |',
    '| --- | --- | --- | --- |',
    `| export-api, POST /v1/exports → file in the lake | ${result.api.rows_per_s.toLocaleString('en')} | ${result.api.median_ms} ms | ${result.api.runs_ms.join(', ')} ms |`,
    `| DuckDB \`COPY (same SELECT) TO\` in process | ${result.duckdb_copy.rows_per_s.toLocaleString('en')} | ${result.duckdb_copy.median_ms} ms | ${result.duckdb_copy.runs_ms.join(', ')} ms |`,
    '',
    `Ratio API / COPY: **${result.ratio}** (target ≥ 0.8).`,
    `Service RSS: ${result.service_rss_mb.idle_after_warmup} MB idle after warm-up, at most ${result.service_rss_mb.max_during_exports} MB while exporting (sampled every 50 ms), peak ${result.service_rss_mb.peak} MB — the export's bytes never pass through JS.`,
  ].join('\n');
  writeResults('api-export', result, md);
  console.log(md);
} finally {
  if (service && service.exitCode === null) {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }
  await nats.stop();
  rmSync(work, { recursive: true, force: true });
}
