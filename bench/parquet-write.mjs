#!/usr/bin/env node
// Parquet write throughput of @parquetry/lake's writeParquet: 1M synthetic product-like rows ×
// 20 mixed columns, per compression and row group size; median of N runs. Needs a build first
// (`pnpm build`). Usage: node bench/parquet-write.mjs [rows=1000000] [runs=3]
// Prints one JSON line per configuration and writes bench/results/parquet-write.json.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const lake = await import(join(here, '../packages/lake/dist/index.js')).catch((err) => {
  console.error('build @parquetry/lake first (pnpm build):', err.message);
  process.exit(1);
});
const { openDuckDB, writeParquet, parquetFileStats } = lake;

const ROWS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 3);
const BATCH = 10_000;
const BASE = Date.UTC(2025, 8, 3);
const retailers = ['falabella', 'ripley', 'paris', 'lider', 'jumbo'];
const brands = ['Apple', 'Samsung', 'Xiaomi', 'Motorola', 'Nokia', 'Huawei', 'Sony'];

const columns = [
  { name: 'backup_timestamp', type: 'TIMESTAMPTZ' },
  { name: 'backup_id', type: 'VARCHAR' },
  { name: 'retailer', type: 'VARCHAR' },
  { name: 'category', type: 'VARCHAR' },
  { name: 'date', type: 'DATE' },
  { name: 'batch_id', type: 'VARCHAR' },
  { name: 'sku', type: 'VARCHAR' },
  { name: 'nombre', type: 'VARCHAR' },
  { name: 'marca', type: 'VARCHAR' },
  { name: 'precio_normal', type: 'BIGINT' },
  { name: 'precio_oferta', type: 'BIGINT' },
  { name: 'descuento', type: 'DOUBLE' },
  { name: 'rating', type: 'DOUBLE' },
  { name: 'reviews', type: 'INTEGER' },
  { name: 'disponible', type: 'BOOLEAN' },
  { name: 'envio_gratis', type: 'BOOLEAN' },
  { name: 'url', type: 'VARCHAR' },
  { name: 'imagen', type: 'VARCHAR' },
  { name: 'vendedor', type: 'VARCHAR' },
  { name: 'specs', type: 'VARCHAR', json: true },
];

/** Deterministic rows, generated lazily batch by batch (a writer must not need them all). */
function* batches(total) {
  for (let start = 0; start < total; start += BATCH) {
    const n = Math.min(BATCH, total - start);
    const batch = new Array(n);
    for (let j = 0; j < n; j++) {
      const i = start + j;
      const price = 100_000 + ((i * 7919) % 900_000);
      batch[j] = {
        backup_timestamp: BASE + i * 37,
        backup_id: 'ab12cd34',
        retailer: retailers[i % retailers.length],
        category: `cat-${i % 40}`,
        date: '2025-09-03',
        batch_id: `s001-batch-${Math.floor(i / 300)}`,
        sku: String(880_000_000 + i),
        nombre: `${brands[i % brands.length]} Phone ${i % 997} ${64 << (i % 4)}GB`,
        marca: brands[i % brands.length],
        precio_normal: price,
        precio_oferta: i % 3 ? price - 10_000 : null,
        descuento: (i % 50) / 100,
        rating: 1 + (i % 400) / 100,
        reviews: i % 5000,
        disponible: i % 7 !== 0,
        envio_gratis: i % 2 === 0,
        url: `https://www.example.com/producto/${880_000_000 + i}`,
        imagen: `https://img.example.com/${i % 100_000}.jpg`,
        vendedor: i % 11 ? 'tienda oficial' : null,
        specs: { ram: 4 << (i % 3), colors: ['negro', 'azul'].slice(0, 1 + (i % 2)) },
      };
    }
    yield batch;
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const work = join(tmpdir(), `pq-bench-${process.pid}`);
mkdirSync(work, { recursive: true });
const db = await openDuckDB({ threads: 2, tempDirectory: join(work, 'spill') });

// Generation alone, to separate it from the writer's cost.
const genTimes = [];
for (let r = 0; r < RUNS; r++) {
  const t = performance.now();
  let n = 0;
  for (const b of batches(ROWS)) n += b.length;
  genTimes.push(performance.now() - t);
  if (n !== ROWS) throw new Error(`generated ${n} rows, expected ${ROWS}`);
}
const gen = median(genTimes);
console.log(JSON.stringify({ what: 'generate rows only', rows: ROWS, ms: Math.round(gen) }));

const configs = [
  { compression: 'snappy', rowGroupSize: 16_384 },
  { compression: 'snappy', rowGroupSize: 65_536 },
  { compression: 'snappy', rowGroupSize: 122_880 },
  { compression: 'snappy', rowGroupSize: 1_000_000 },
  { compression: 'zstd', rowGroupSize: 122_880 },
  // MEASURED.md's shape (bigint, double, text, timestamptz, int) for comparison with its 1.68M rows/s.
  { compression: 'snappy', rowGroupSize: 122_880, narrow: true },
];
const narrowColumns = ['precio_normal', 'rating', 'sku', 'backup_timestamp', 'reviews'].map((n) =>
  columns.find((c) => c.name === n),
);
const results = [];
for (const { narrow, ...cfg } of configs) {
  const cols = narrow ? narrowColumns : columns;
  const times = [];
  let stats;
  for (let r = 0; r < RUNS; r++) {
    const path = join(work, `out-${cfg.compression}-${cfg.rowGroupSize}${narrow ? '-narrow' : ''}.parquet`);
    const t = performance.now();
    await writeParquet({ conn: db.conn, path, columns: cols, rows: batches(ROWS), ...cfg });
    times.push(performance.now() - t);
    stats = await parquetFileStats(db.conn, path);
  }
  // A selective read that row-group statistics can prune: the last 1,000 rows by time.
  const path = join(work, `out-${cfg.compression}-${cfg.rowGroupSize}${narrow ? '-narrow' : ''}.parquet`);
  const cutoff = new Date(BASE + (ROWS - 1000) * 37).toISOString();
  const q = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    await db.conn.runAndReadAll(
      `SELECT * FROM read_parquet('${path}') WHERE backup_timestamp >= '${cutoff}'::TIMESTAMPTZ`,
    );
    q.push(performance.now() - t);
  }
  const ms = median(times);
  const row = {
    ...cfg,
    rows: ROWS,
    columns: cols.length,
    ms: Math.round(ms),
    rowsPerSec: Math.round((ROWS / ms) * 1000),
    // Generation is timed apart; on a busy machine the difference can be meaningless (null).
    rowsPerSecExclGeneration: ms > gen * 1.2 ? Math.round((ROWS / (ms - gen)) * 1000) : null,
    mb: +(stats.bytes / 1e6).toFixed(1),
    rowGroups: stats.rowGroups,
    last1000QueryMs: +median(q).toFixed(1),
    runs: times.map((t) => Math.round(t)),
  };
  results.push(row);
  console.log(JSON.stringify(row));
}
db.close();
rmSync(work, { recursive: true, force: true });
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'parquet-write.json'),
  `${JSON.stringify({ node: process.version, at: new Date().toISOString(), generateMs: Math.round(gen), results }, null, 2)}\n`,
);
