// bench/compactor (issue 5).
// (1) Compaction of N small files (default 2,000) of one partition into target-size files by the
//     compactor's own code (plan → COPY per output → sha256 → move → one catalog commit), against
//     DuckDB `COPY (SELECT * FROM read_parquet([...])) TO …` of the same files in the same run;
//     both also on a quarter of the files, to show peak RSS does not grow with the data. Baseline
//     and compactor alternate, --repeat times each (default 3), and the medians are compared, so
//     the load of a shared machine lands on both; CPU seconds (all threads) are reported too.
// (2) Upsert of U rows into a D-row dataset, against a full rewrite of the dataset with the same
//     rows applied by DuckDB in the same run.
// Every measured task runs in its own child process; peak RSS is that process's VmHWM.
// Usage: pnpm build && node bench/compactor/run.mjs [--files 2000] [--rows-per-file 26000]
//          [--dataset-rows 20000000] [--upsert-rows 400000] [--memory 1GB] [--repeat 3]
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { connectBus } from '@parquetry/bus';
import { openCatalog, openObjectStore, sha256File } from '@parquetry/lake';
import { silentLogger } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { machine, writeResults } from '../lib.mjs';

const SELF = fileURLToPath(import.meta.url);
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const num = (name, def) => Number(arg(name, def));
const MEMORY = arg('memory', '1GB');
const peakMb = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : undefined;
};
const sq = (s) => `'${s.replaceAll("'", "''")}'`;
const cpuSeconds = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, d = 2) => +x.toFixed(d);
const load = () => loadavg().map((x) => round(x, 1));

// ---- children ----------------------------------------------------------------------------------

async function child(mode) {
  const started = performance.now();
  const out = {};
  if (mode === 'compact' || mode === 'upsert') {
    const { openOpEnvironment, runOperation } = await import('@parquetry/compactor');
    const bus = await connectBus({ url: arg('nats'), name: 'bench', logger: silentLogger() });
    const store = openObjectStore(`file://${arg('lake')}`);
    const env = await openOpEnvironment({
      nc: bus.nc,
      store,
      logger: silentLogger(),
      writerId: 'bench',
      workDir: arg('work'),
      memoryLimit: MEMORY,
      threads: 2,
      targetFileSizeMb: 128,
      vacuumGraceMinutes: 60,
      allowLocalFiles: true,
      catalogBucket: arg('bucket'),
    });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const job =
      mode === 'compact'
        ? {
            dataset: 'ticks',
            partitions: [{ column: 'symbol', op: '=', value: arg('symbol') }],
            target_file_size_mb: 128,
          }
        : { dataset: 'ticks', source: { path: arg('source') }, key_columns: ['trade_id'] };
    const r = await runOperation(env.ctx, mode, job);
    out.seconds = (performance.now() - t0) / 1000;
    out.cpu_seconds = cpuSeconds(c0);
    out.totals = r.totals;
    out.status = r.status;
    out.timings_ms = r.timings_ms;
    env.close();
    await bus.close();
  } else {
    const db = await DuckDBInstance.create(':memory:', {
      threads: '2',
      memory_limit: MEMORY,
      temp_directory: arg('work'),
    });
    const conn = await db.connect();
    await conn.run('SET preserve_insertion_order = false');
    const files = readdirSync(arg('dir'), { recursive: true })
      .filter((f) => String(f).endsWith('.parquet'))
      .map((f) => sq(join(arg('dir'), String(f))));
    const outDir = arg('out');
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    if (mode === 'copy') {
      await conn.run(
        `COPY (SELECT * FROM read_parquet([${files.join(', ')}])) TO ${sq(outDir)} (FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES 128000000)`,
      );
    } else {
      // Full rewrite: every row of the dataset, the upsert applied by a join, written again.
      const up = sq(arg('source'));
      await conn.run(
        `COPY (
           SELECT t.* REPLACE (CASE WHEN u.trade_id IS NULL THEN t.price ELSE u.price END AS price,
                               CASE WHEN u.trade_id IS NULL THEN t.size ELSE u.size END AS size)
             FROM read_parquet([${files.join(', ')}]) t
             LEFT JOIN read_parquet(${up}) u ON t.symbol = u.symbol AND t.date = u.date AND t.trade_id = u.trade_id
           UNION ALL BY NAME
           SELECT * FROM read_parquet(${up}) u WHERE NOT EXISTS (
             SELECT 1 FROM read_parquet([${files.join(', ')}]) t WHERE t.symbol = u.symbol AND t.date = u.date AND t.trade_id = u.trade_id)
         ) TO ${sq(outDir)} (FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES 128000000)`,
      );
    }
    out.seconds = (performance.now() - t0) / 1000;
    out.cpu_seconds = cpuSeconds(c0);
    conn.closeSync();
    db.closeSync();
  }
  out.process_seconds = (performance.now() - started) / 1000;
  out.peak_rss_mb = peakMb();
  process.stdout.write(JSON.stringify(out));
}

function runChild(mode, args) {
  const flat = Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const text = execFileSync(process.execPath, [SELF, '--child', mode, '--memory', MEMORY, ...flat], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(text);
}

// ---- parent ------------------------------------------------------------------------------------

async function generate(conn, dir, symbol, date, files, rowsPerFile, offset = 0) {
  // DuckDB writes one file per value of f; each file is one small ingest flush of ticks.
  const tmp = join(dir, `_gen_${symbol}`);
  mkdirSync(dir, { recursive: true });
  await conn.run(
    `COPY (SELECT ${sq(symbol)} AS symbol, DATE ${sq(date)} AS date,
       TIMESTAMPTZ '${date} 00:00:00+00' + to_microseconds(i * 2000) AS ts,
       (5000 + (hash(i) % 40000) / 100.0)::DOUBLE AS price, (1 + hash(i * 7) % 20)::DOUBLE AS size,
       CASE WHEN hash(i) % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
       't' || (i + ${offset}) AS trade_id, (i + ${offset})::BIGINT AS stream_seq,
       (i // ${rowsPerFile}) AS f
     FROM range(${files * rowsPerFile}) t(i)) TO ${sq(tmp)} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (f))`,
  );
  const part = join(dir, 'ticks', `symbol=${symbol}`, `date=${date}`);
  mkdirSync(part, { recursive: true });
  const out = [];
  for (const d of readdirSync(tmp)) {
    for (const name of readdirSync(join(tmp, d))) {
      const key = `ticks/symbol=${symbol}/date=${date}/small_${d.slice(2)}_${name}`;
      renameSync(join(tmp, d, name), join(dir, key));
      out.push(key);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

/** Catalog entries (rows, bytes, sha256) of generated files, by key. */
async function describeFiles(dir, keys, rowsOf) {
  const out = new Map();
  for (const key of keys) {
    const local = join(dir, key);
    out.set(key, {
      path: key,
      rows: await rowsOf(local),
      bytes: statSync(local).size,
      sha256: await sha256File(local),
    });
  }
  return out;
}

async function commitEntries(catalog, entries) {
  const byPartition = new Map();
  for (const e of entries) {
    const [, s, d] = e.path.split('/');
    const p = `${s}/${d}`;
    if (!byPartition.has(p)) byPartition.set(p, { symbol: s.slice(7), date: d.slice(5), files: [] });
    byPartition.get(p).files.push(e);
  }
  for (const [p, v] of byPartition) {
    await catalog.commit({
      dataset: 'ticks',
      commitId: `gen-${p}`,
      changes: [{ partition: { symbol: v.symbol, date: v.date }, add: v.files }],
    });
  }
}

async function commitFiles(catalog, dir, keys, rowsOf) {
  await commitEntries(catalog, (await describeFiles(dir, keys, rowsOf)).values());
}

async function parent() {
  const FILES = num('files', 2000);
  const ROWS_PER_FILE = num('rows-per-file', 26000);
  const REPEAT = num('repeat', 3);
  const DATASET_ROWS = num('dataset-rows', 20_000_000);
  const UPSERT_ROWS = num('upsert-rows', 400_000);
  const PARTS = 20;
  const root = join(arg('dir', tmpdir()), `pq-bench-compactor-${process.pid}`);
  mkdirSync(root, { recursive: true });
  const nats = await startNats();
  stopNats = () => nats.stop();
  const bus = await connectBus({ url: nats.url, name: 'bench', logger: silentLogger() });
  const db = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await db.connect();
  const rowsOf = async (path) => {
    const r = await conn.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${sq(path)})`);
    return Number(r.getRowObjectsJS()[0].num_rows);
  };
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });

  // ---- (1) compaction ----
  const gen = join(root, 'gen');
  const quarter = Math.max(2, Math.round(FILES / 4));
  console.error(`generating ${FILES} + ${quarter} small files…`);
  const sets = [
    { symbol: 'QTR', keys: await generate(conn, gen, 'QTR', '2025-09-03', quarter, ROWS_PER_FILE, 1e9) },
    { symbol: 'BIG', keys: await generate(conn, gen, 'BIG', '2025-09-03', FILES, ROWS_PER_FILE) },
  ];
  const entries = await describeFiles(
    gen,
    sets.flatMap((x) => x.keys),
    rowsOf,
  );
  const loadBefore = load();
  let run = 0;
  // Every compaction starts from the same state: a lake of hard links to the generated files
  // and a catalog bucket of its own.
  const compactOnce = async ({ symbol, keys }) => {
    const i = ++run;
    const lake = join(root, `lake-${i}`);
    for (const k of keys) {
      mkdirSync(join(lake, k, '..'), { recursive: true });
      linkSync(join(gen, k), join(lake, k));
    }
    const bucket = `bench_${process.pid}_${i}`;
    const catalog = await openCatalog({ nc: bus.nc, bucket, writerId: 'bench-gen' });
    await commitEntries(
      catalog,
      keys.map((k) => entries.get(k)),
    );
    const loadAtStart = load()[0];
    const r = runChild('compact', { nats: nats.url, lake, bucket, symbol, work: join(root, `w-${i}`) });
    rmSync(lake, { recursive: true, force: true });
    rmSync(join(root, `w-${i}`), { recursive: true, force: true });
    return { ...r, load_1m: loadAtStart };
  };
  const copyOnce = ({ symbol }) => {
    const loadAtStart = load()[0];
    const r = runChild('copy', {
      dir: join(gen, 'ticks', `symbol=${symbol}`),
      out: join(root, 'copy-out'),
      work,
    });
    rmSync(join(root, 'copy-out'), { recursive: true, force: true });
    return { ...r, load_1m: loadAtStart };
  };
  const sizes = [];
  for (const set of sets) {
    const bytes = set.keys.reduce((n, k) => n + entries.get(k).bytes, 0);
    const rows = set.keys.reduce((n, k) => n + entries.get(k).rows, 0);
    const copies = [];
    const compacts = [];
    for (let i = 0; i < REPEAT; i++) {
      // Alternate which goes first, so neither always runs on the warmer page cache.
      if (i % 2 === 0) copies.push(copyOnce(set));
      compacts.push(await compactOnce(set));
      if (i % 2 === 1) copies.push(copyOnce(set));
      const [c, b] = [compacts.at(-1), copies.at(-1)];
      console.error(
        `${set.keys.length} files, run ${i + 1}: baseline ${b.seconds.toFixed(1)} s (cpu ${b.cpu_seconds.toFixed(1)}), compactor ${c.seconds.toFixed(1)} s (cpu ${c.cpu_seconds.toFixed(1)}), load ${c.load_1m}`,
      );
    }
    const mb = bytes / 1e6;
    const summary = (xs) => {
      const seconds = median(xs.map((x) => x.seconds));
      return {
        seconds: round(seconds),
        seconds_each: xs.map((x) => round(x.seconds)),
        cpu_seconds: round(median(xs.map((x) => x.cpu_seconds))),
        mb_per_s: round(mb / seconds, 1),
        peak_rss_mb: Math.max(...xs.map((x) => x.peak_rss_mb)),
        peak_rss_mb_each: xs.map((x) => x.peak_rss_mb),
        load_1m_each: xs.map((x) => x.load_1m),
      };
    };
    const comp = summary(compacts);
    const base = summary(copies);
    const mid = [...compacts].sort((a, b) => a.seconds - b.seconds)[Math.floor((compacts.length - 1) / 2)];
    sizes.push({
      files: set.keys.length,
      rows,
      input_mb: round(mb, 1),
      compactor: {
        ...comp,
        files_after: mid.totals.files_after,
        mb_after: round(mid.totals.bytes_after / 1e6, 1),
        timings_ms_median_run: mid.timings_ms,
      },
      baseline_duckdb_copy: base,
      ratio_to_copy: round(base.seconds / comp.seconds),
      cpu_ratio_to_copy: round(base.cpu_seconds / comp.cpu_seconds),
    });
  }
  const loadAfter = load();
  rmSync(gen, { recursive: true, force: true });

  // ---- (2) upsert ----
  const ulake = join(root, 'ulake');
  const perPart = Math.floor(DATASET_ROWS / PARTS);
  console.error(`generating a ${DATASET_ROWS}-row dataset in ${PARTS} partitions…`);
  const keys = [];
  for (let p = 0; p < PARTS; p++) {
    const date = new Date(Date.UTC(2025, 7, 1 + p)).toISOString().slice(0, 10);
    keys.push(...(await generate(conn, ulake, 'ES', date, 4, Math.floor(perPart / 4), p * 1e9)));
  }
  const ubucket = `bench_u_${process.pid}`;
  const ucatalog = await openCatalog({ nc: bus.nc, bucket: ubucket, writerId: 'bench-gen' });
  await commitFiles(ucatalog, ulake, keys, rowsOf);
  const datasetBytes = keys.reduce((n, k) => n + statSync(join(ulake, k)).size, 0);
  // Half updates of existing keys in the last two days, half new rows there.
  const source = join(root, 'upsert.parquet');
  const half = Math.floor(UPSERT_ROWS / 2);
  const lastDays = [PARTS - 2, PARTS - 1].map((p) => [
    p,
    new Date(Date.UTC(2025, 7, 1 + p)).toISOString().slice(0, 10),
  ]);
  const per = Math.floor(half / 2);
  const selects = lastDays.map(
    ([p, date]) =>
      `SELECT 'ES' AS symbol, DATE '${date}' AS date, 't' || (${p}::BIGINT * 1000000000 + i * 3) AS trade_id, 1.25::DOUBLE AS price, 99.0::DOUBLE AS size FROM range(${per}) t(i)
       UNION ALL SELECT 'ES', DATE '${date}', 'new-${p}-' || i, 2.5::DOUBLE, 1.0::DOUBLE FROM range(${per}) t(i)`,
  );
  await conn.run(`COPY (${selects.join(' UNION ALL ')}) TO ${sq(source)} (FORMAT parquet)`);
  console.error('full rewrite baseline…');
  const rewrite = runChild('rewrite', {
    dir: join(ulake, 'ticks'),
    out: join(root, 'rewrite-out'),
    source,
    work,
  });
  rmSync(join(root, 'rewrite-out'), { recursive: true, force: true });
  console.error(`rewrite ${rewrite.seconds.toFixed(1)} s; upsert…`);
  const upsert = runChild('upsert', {
    nats: nats.url,
    lake: ulake,
    bucket: ubucket,
    source,
    work: join(root, 'w3'),
  });
  console.error(`upsert ${upsert.seconds.toFixed(1)} s`);

  const result = {
    benchmark: 'compactor',
    command: `node bench/compactor/run.mjs --files ${FILES} --rows-per-file ${ROWS_PER_FILE} --dataset-rows ${DATASET_ROWS} --upsert-rows ${UPSERT_ROWS} --memory ${MEMORY} --repeat ${REPEAT}`,
    date: new Date().toISOString(),
    machine: machine(),
    duckdb_memory_limit: MEMORY,
    compaction: {
      repeat: REPEAT,
      load_avg_before: loadBefore,
      load_avg_after: loadAfter,
      sizes,
    },
    upsert: {
      dataset_rows: DATASET_ROWS,
      dataset_mb: +(datasetBytes / 1e6).toFixed(1),
      partitions: PARTS,
      upsert_rows: UPSERT_ROWS,
      compactor: {
        seconds: +upsert.seconds.toFixed(2),
        peak_rss_mb: upsert.peak_rss_mb,
        rows_updated: upsert.totals.rows_updated,
        rows_inserted: upsert.totals.rows_inserted,
        files_rewritten: upsert.totals.files_removed,
        timings_ms: upsert.timings_ms,
      },
      baseline_full_rewrite: { seconds: +rewrite.seconds.toFixed(2), peak_rss_mb: rewrite.peak_rss_mb },
      load_avg_after: load(),
    },
  };
  result.upsert.speedup_vs_full_rewrite = +(rewrite.seconds / upsert.seconds).toFixed(1);
  console.log(JSON.stringify(result, null, 2));
  const u = result.upsert;
  const rowsOfSize = (c) =>
    `| ${c.files} files, ${c.input_mb} MB | compactor | ${c.compactor.seconds} (${c.compactor.seconds_each.join(', ')}) | ${c.compactor.mb_per_s} | ${c.compactor.cpu_seconds} | ${c.compactor.peak_rss_mb} MB (${c.compactor.peak_rss_mb_each.join(', ')}) |
| | baseline COPY | ${c.baseline_duckdb_copy.seconds} (${c.baseline_duckdb_copy.seconds_each.join(', ')}) | ${c.baseline_duckdb_copy.mb_per_s} | ${c.baseline_duckdb_copy.cpu_seconds} | ${c.baseline_duckdb_copy.peak_rss_mb} MB (${c.baseline_duckdb_copy.peak_rss_mb_each.join(', ')}) |
| | **ratio** (baseline ÷ compactor) | **${c.ratio_to_copy}** | | ${c.cpu_ratio_to_copy} | |`;
  const timing = (c) =>
    Object.entries(c.compactor.timings_ms_median_run ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  writeResults(
    'compactor',
    result,
    `# bench/compactor (${result.date.slice(0, 10)})

\`${result.command}\` on ${result.machine.cores} cores, Node ${result.machine.node}, commit ${result.machine.commit}; DuckDB threads 2, memory_limit ${MEMORY}.

## Compaction of small files of one partition into 128 MB files

Baseline: DuckDB \`COPY (SELECT * FROM read_parquet([...])) TO … (FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES 128000000)\`
of the same files. The compactor runs its whole operation: plan from the catalog, one COPY per
partition, sha256 (in worker threads) and move of each output, row counts checked, one catalog
commit. Each is run ${REPEAT} times, alternating, each in its own process; seconds and
CPU seconds (all threads) are medians, peak RSS (VmHWM) the highest of the runs. Load average
(1/5/15 min) ${result.compaction.load_avg_before.join(' / ')} before and ${result.compaction.load_avg_after.join(' / ')} after; the
machine was shared with other work, so the wall-clock times vary run to run (the ratio compares
runs made side by side).

| data | | seconds (each run) | MB/s | CPU s | peak RSS (each run) |
| --- | --- | --- | --- | --- | --- |
${result.compaction.sizes.map(rowsOfSize).join('\n')}

Target: ratio ≥ 0.8, and peak RSS that does not grow with the data.
${result.compaction.sizes.map((c) => `Compactor steps (ms, median run, ${c.files} files → ${c.compactor.files_after} files of ${c.compactor.mb_after} MB in all): ${timing(c)}. Hashes run two at a time in worker threads, so hash and upload can exceed their share of the wall time.`).join('\n')}

## Upsert of ${u.upsert_rows} rows into a ${u.dataset_rows}-row dataset (${u.dataset_mb} MB, ${u.partitions} partitions)

| | seconds | peak RSS |
| --- | --- | --- |
| compactor upsert (${u.compactor.rows_updated} updated, ${u.compactor.rows_inserted} inserted, ${u.compactor.files_rewritten} files rewritten) | ${u.compactor.seconds} | ${u.compactor.peak_rss_mb} MB |
| baseline: full rewrite of the dataset by DuckDB with the same rows applied | ${u.baseline_full_rewrite.seconds} | ${u.baseline_full_rewrite.peak_rss_mb} MB |

Upsert is **${u.speedup_vs_full_rewrite}×** faster than the full rewrite (one run each).`,
  );
  conn.closeSync();
  db.closeSync();
  await bus.close();
  rmSync(root, { recursive: true, force: true });
}

let stopNats;
const mode = arg('child');
if (mode) await child(mode);
else {
  try {
    await parent();
  } finally {
    await stopNats?.();
  }
}
