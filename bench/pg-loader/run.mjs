// bench/pg-loader: rows/s and peak RSS of `pnpm parquetry load` (the built CLI, a child process)
// loading N rows of 5 columns (bigint, double, text, timestamptz, int) from one Parquet file into
// a new logged table, and in the same run the baseline `psql -c "\copy … from 'file.csv' csv"`
// of the same rows into a new logged table of the same shape. Each size runs loader then psql,
// `--runs` times interleaved; the median is reported. Every load is checked (count and sums in
// PostgreSQL equal DuckDB's over the Parquet file). Peak RSS is VmHWM of the child process.
// The seed's best run, for comparison: 244M rows in 11:28 at 521 MB peak (355k rows/s).
// Usage: pnpm build && node bench/pg-loader/run.mjs [--rows 50000000] [--sizes 10000000,50000000]
//        [--runs 1] [--memory-mb 256] [--pg postgres://postgres@127.0.0.1:5432/postgres]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { machine, peakRssMb, writeResults } from '../lib.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const ROWS = Number(opt('rows', 50_000_000));
const SIZES = opt('sizes', String(ROWS))
  .split(',')
  .map(Number)
  .filter((n) => n > 0)
  .sort((a, b) => a - b);
const RUNS = Number(opt('runs', 1));
const MEMORY_MB = Number(opt('memory-mb', 256));
const ADMIN_URL = opt('pg', process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const DB = 'pq_bench_pg_loader';
const dbUrl = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  return u.toString();
})();

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'packages/cli/dist/main.js');
const SEED = { rows: 244_000_000, seconds: 11 * 60 + 28, peakRssMb: 521, rowsPerSecond: 355_000 };

function psql(url, sql) {
  const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs a child to completion, sampling its peak RSS; wall seconds from spawn to exit. */
function timed(cmd, args, env = process.env) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    let peak = 0;
    const sample = () => {
      const v = peakRssMb(child.pid);
      if (v !== undefined && v > peak) peak = v;
    };
    const timer = setInterval(sample, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr || stdout}`));
      else resolve({ seconds, peakRssMb: peak, stdout, stderr });
    });
    // VmHWM survives until the process is reaped: one more sample when its output ends.
    child.stdout.on('end', sample);
  });
}

/** 1-minute load average: other work on the machine skews both sides of a comparison. */
const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const SELECT = (n) => `SELECT CAST(i AS BIGINT) AS id, CAST(i * 0.37 AS DOUBLE) AS value,
  'item-' || CAST(i % 100003 AS VARCHAR) AS label,
  TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_milliseconds(i) AS ts, CAST(i % 1000 AS INTEGER) AS qty
  FROM range(${n}) t(i)`;
const CHECK = (from, epoch) => `SELECT count(*) AS n, sum(id) AS ids, sum(qty) AS qtys,
  sum(length(label)) AS chars, sum(${epoch}) AS secs, sum(value) AS vals FROM ${from}`;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'pq-bench-pgl-'));
  const duck = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await duck.connect();
  await conn.run(`SET TimeZone = 'UTC'`);
  psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  psql(ADMIN_URL, `CREATE DATABASE ${DB}`);
  const server = psql(dbUrl, 'SHOW server_version');
  const results = [];
  try {
    for (const n of SIZES) {
      const parquet = join(dir, `rows-${n}.parquet`);
      const csv = join(dir, `rows-${n}.csv`);
      const t = performance.now();
      await conn.run(`COPY (${SELECT(n)}) TO '${parquet}' (FORMAT parquet, COMPRESSION snappy)`);
      await conn.run(
        `COPY (SELECT * FROM read_parquet('${parquet}')) TO '${csv}' (FORMAT csv, HEADER false)`,
      );
      console.error(
        `${n} rows: Parquet ${(statSync(parquet).size / 1e6).toFixed(0)} MB, CSV ${(statSync(csv).size / 1e6).toFixed(0)} MB written in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
      const expected = (
        await conn.runAndReadAll(CHECK(`read_parquet('${parquet}')`, 'epoch_ms(ts)'))
      ).getRowObjectsJson()[0];
      const config = join(dir, 'load.yaml');
      writeFileSync(
        config,
        `database:\n  table_name: bench_loader\n  if_table_exists: replace\nos_configuration:\n  memory_limit_mb: ${MEMORY_MB}\n`,
      );
      const check = (table) => {
        const [count, ids, qtys, chars, secs, vals] = psql(
          dbUrl,
          CHECK(table, '(extract(epoch from ts) * 1000)::bigint'),
        ).split('|');
        const got = { n: count, ids, qtys, chars, secs };
        for (const k of Object.keys(got)) {
          if (BigInt(got[k]) !== BigInt(expected[k])) {
            throw new Error(`${table}: ${k} = ${got[k]}, DuckDB over the file says ${expected[k]}`);
          }
        }
        // Float sums differ in the last digits with the order of addition.
        if (Math.abs(Number(vals) - Number(expected.vals)) > 1e-9 * Math.abs(Number(expected.vals))) {
          throw new Error(`${table}: sum(value) = ${vals}, DuckDB over the file says ${expected.vals}`);
        }
      };
      const loader = [];
      const baseline = [];
      for (let run = 0; run < RUNS; run++) {
        psql(dbUrl, 'DROP TABLE IF EXISTS bench_loader; DROP TABLE IF EXISTS bench_psql; CHECKPOINT');
        const l = await timed(process.execPath, [CLI, 'load', parquet, '--config', config, '--json'], {
          ...process.env,
          DATABASE_URL: dbUrl,
          LOG_LEVEL: 'silent',
        });
        const report = JSON.parse(l.stdout);
        check('bench_loader');
        loader.push({
          loadAverage: loadAverage(),
          seconds: l.seconds,
          rowsPerSecond: n / l.seconds,
          loaderSeconds: report.seconds,
          loaderRowsPerSecond: report.rowsPerSecond,
          peakRssMb: l.peakRssMb,
          strategy: report.strategy,
          reason: report.reason,
          copyFormat: report.copyFormat,
        });
        console.error(
          `  loader run ${run + 1}: ${(n / l.seconds / 1e6).toFixed(2)}M rows/s, ${l.seconds.toFixed(1)} s, peak RSS ${l.peakRssMb.toFixed(0)} MB (${report.strategy})`,
        );

        psql(
          dbUrl,
          'DROP TABLE IF EXISTS bench_loader; CREATE TABLE bench_psql (id bigint, value double precision, label text, ts timestamptz, qty integer); CHECKPOINT',
        );
        const p = await timed('psql', [
          dbUrl,
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          `\\copy bench_psql from '${csv}' csv`,
        ]);
        check('bench_psql');
        baseline.push({
          loadAverage: loadAverage(),
          seconds: p.seconds,
          rowsPerSecond: n / p.seconds,
          peakRssMb: p.peakRssMb,
        });
        console.error(
          `  psql run ${run + 1}: ${(n / p.seconds / 1e6).toFixed(2)}M rows/s, ${p.seconds.toFixed(1)} s, peak RSS ${p.peakRssMb.toFixed(0)} MB`,
        );
        psql(dbUrl, 'DROP TABLE IF EXISTS bench_psql');
      }
      rmSync(csv, { force: true });
      rmSync(parquet, { force: true });
      const summary = (xs) => ({
        seconds: median(xs.map((x) => x.seconds)),
        rowsPerSecond: median(xs.map((x) => x.rowsPerSecond)),
        peakRssMb: Math.max(...xs.map((x) => x.peakRssMb)),
      });
      results.push({
        rows: n,
        loader: { ...summary(loader), runs: loader },
        psql: { ...summary(baseline), runs: baseline },
        ratio: summary(loader).rowsPerSecond / summary(baseline).rowsPerSecond,
      });
    }
  } finally {
    psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    conn.closeSync();
    duck.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }

  const command = `node bench/pg-loader/run.mjs ${argv.join(' ')}`.trim();
  const main = results.find((r) => r.rows === Math.max(...SIZES));
  const rssValues = results.map((r) => r.loader.peakRssMb);
  const targets = {
    rowsPerSecond: {
      target: 1_000_000,
      value: main.loader.rowsPerSecond,
      met: main.loader.rowsPerSecond >= 1_000_000,
    },
    ratioToPsql: { target: 1.0, value: main.ratio, met: main.ratio >= 1.0 },
    ratioToSeed: {
      target: 2.8,
      value: main.loader.rowsPerSecond / SEED.rowsPerSecond,
      met: main.loader.rowsPerSecond / SEED.rowsPerSecond >= 2.8,
    },
    peakRssMb: { target: 256, value: Math.max(...rssValues), met: Math.max(...rssValues) <= 256 },
  };
  const result = {
    date: new Date().toISOString().slice(0, 10),
    command,
    machine: { ...machine(), postgres: server },
    memoryLimitMb: MEMORY_MB,
    runs: RUNS,
    results,
    seed: SEED,
    targets,
    notes: [
      'rows/s are wall time from process spawn to exit, for both the loader and psql; the loader also reports its own time (loaderSeconds).',
      'Both load a new logged table without indexes; the loader creates it inside its transaction (if_table_exists: replace, ledger on: sha256 of the file included).',
      'The 244M-row case was not run in this session.',
    ],
  };
  const fmt = (x) => `${(x / 1e6).toFixed(2)}M`;
  const lines = [
    `# bench/pg-loader (${result.date})`,
    '',
    `\`${command}\` on ${result.machine.cores} cores (${result.machine.cpu}), Node ${result.machine.node}, PostgreSQL ${server}, commit ${result.machine.commit}; ${RUNS} run(s) per size, loader and psql interleaved, median shown.`,
    `Rows of 5 columns (bigint, double, text, timestamptz, int); loader: \`pnpm parquetry load <file.parquet> --config <yaml>\` with \`memory_limit_mb: ${MEMORY_MB}\`; baseline: \`psql -c "\\copy … from 'file.csv' csv"\` of the same rows. Each load verified (count and sums equal DuckDB's over the file).`,
    '',
    '| rows | loader rows/s | loader s | loader peak RSS | psql rows/s | psql s | psql peak RSS | loader ÷ psql | strategy |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.rows.toLocaleString('en-US')} | ${fmt(r.loader.rowsPerSecond)} | ${r.loader.seconds.toFixed(1)} | ${r.loader.peakRssMb.toFixed(0)} MB | ${fmt(r.psql.rowsPerSecond)} | ${r.psql.seconds.toFixed(1)} | ${r.psql.peakRssMb.toFixed(0)} MB | **${r.ratio.toFixed(2)}×** | ${r.loader.runs[0].strategy} (${r.loader.runs[0].copyFormat}) |`,
    ),
    `| seed (244M rows) | ${fmt(SEED.rowsPerSecond)} | ${SEED.seconds} | ${SEED.peakRssMb} MB | | | | | |`,
    '',
    `Targets at ${main.rows.toLocaleString('en-US')} rows: ≥ 1,000,000 rows/s → ${fmt(main.loader.rowsPerSecond)} (${targets.rowsPerSecond.met ? 'met' : 'NOT met'}); ≥ 1.0× psql → ${main.ratio.toFixed(2)}× (${targets.ratioToPsql.met ? 'met' : 'NOT met'}); ≥ 2.8× the seed → ${targets.ratioToSeed.value.toFixed(2)}× (${targets.ratioToSeed.met ? 'met' : 'NOT met'}); peak RSS ≤ 256 MB at every size → ${rssValues.map((v) => v.toFixed(0)).join(' / ')} MB (${targets.peakRssMb.met ? 'met' : 'NOT met'}).`,
    `Strategy reason (${main.rows.toLocaleString('en-US')} rows): ${main.loader.runs[0].reason}`,
    `1-minute load average after each run (2 cores): ${results.flatMap((r) => [...r.loader.runs, ...r.psql.runs].map((x) => x.loadAverage)).join(', ')}.`,
    '',
    ...result.notes.map((n) => `- ${n}`),
  ];
  writeResults('pg-loader', result, lines.join('\n'));
  console.log(lines.join('\n'));
}

await main();
