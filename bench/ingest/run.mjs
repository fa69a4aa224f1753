// bench/ingest: products/s from JetStream to committed Parquet (issue 2).
// 1M products of ~20 fields in batches of 500, pre-loaded into the stream, then drained by the
// real ingest-backup process. Baselines in the same run: (a) a raw JetStream consume of the same
// messages doing no work, (b) DuckDB writing the same records from an NDJSON file to Parquet.
// Usage: pnpm build && node bench/ingest/run.mjs [--products 1000000] [--batch 500]
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
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
const TOTAL = arg('products', 1_000_000);
const BATCH = arg('batch', 500);
const RETAILERS = ['falabella', 'ripley', 'paris', 'lider'];
const CATEGORIES = ['smartphones', 'tv', 'notebooks', 'audio', 'linea-blanca'];

function product(i) {
  return {
    sku: String(100000 + i),
    nombre: `Producto ${i} modelo ${i % 977}`,
    marca: ['Apple', 'Samsung', 'Xiaomi', 'LG', 'Sony', 'Motorola'][i % 6],
    precio_normal: 10000 + (i % 5000) * 100,
    precio_oferta: 9000 + (i % 4000) * 100,
    descuento_pct: (i % 50) / 100,
    disponible: i % 7 !== 0,
    stock: i % 300,
    rating: Math.round((i % 50) / 10) + 0.5,
    reviews: i % 1200,
    url: `https://www.example.cl/p/${i}`,
    imagen: `https://img.example.cl/${i}.jpg`,
    descripcion: `Descripción del producto ${i}, con ñandú y acentos`,
    vendedor: `vendedor-${i % 40}`,
    envio_gratis: i % 2 === 0,
    ean: String(7800000000000 + i),
    modelo: `M-${i % 333}`,
    color: ['negro', 'blanco', 'azul', 'rojo'][i % 4],
    garantia_meses: 12 + (i % 3) * 12,
    categoria_original: `Cat ${i % 17}`,
  };
}

function batchAt(n) {
  const retailer = RETAILERS[n % RETAILERS.length];
  const category = CATEGORIES[Math.floor(n / RETAILERS.length) % CATEGORIES.length];
  const products = [];
  for (let j = 0; j < BATCH; j++) products.push(product(n * BATCH + j));
  return {
    batch_id: `bench-${n}`,
    retailer,
    category,
    scraped_at: '2025-09-03T14:30:22Z',
    session_id: 'bench',
    execution_time: 1.2,
    success_rate: 0.99,
    errors: [],
    warnings: [],
    products,
  };
}

const logger = silentLogger();
const tmp = mkdtempSync(join(tmpdir(), 'pq-bench-ingest-'));
const nats = await startNats();
const bus = await connectBus({ url: nats.url, name: 'bench', logger });
await ensureStreams(bus.jsm);
const batches = Math.ceil(TOTAL / BATCH);

// Pre-load the stream, and the same records as NDJSON for baseline (b).
const ndjsonPath = join(tmp, 'products.ndjson');
const ndjson = createWriteStream(ndjsonPath);
let payloadBytes = 0;
const t0 = performance.now();
await publishFast(
  bus.nc,
  (function* () {
    for (let n = 0; n < batches; n++) {
      const b = batchAt(n);
      const data = new TextEncoder().encode(JSON.stringify(b));
      payloadBytes += data.length;
      for (const p of b.products)
        ndjson.write(
          `${JSON.stringify({ batch_id: b.batch_id, retailer: b.retailer, category: b.category, ...p })}\n`,
        );
      yield { subject: subjects.products(b.retailer, b.category), data, msgId: b.batch_id };
    }
  })(),
  { window: 64 },
);
await new Promise((r) => ndjson.end(r));
const preloadS = (performance.now() - t0) / 1000;
console.log(
  `pre-loaded ${batches} batches (${(payloadBytes / 1e6).toFixed(0)} MB) in ${preloadS.toFixed(1)} s`,
);

// Baseline (a): raw consume of the same messages, ack each, no work.
await ensureConsumer(bus.jsm, 'PRODUCTS', 'bench-raw', { ackWaitMs: 60_000, maxAckPending: 10_000 });
const consumer = await bus.js.consumers.get('PRODUCTS', 'bench-raw');
let got = 0;
const ta = performance.now();
const iter = await consumer.consume({ max_bytes: 8 * 1024 * 1024 });
for await (const m of iter) {
  m.ack();
  if (++got >= batches) break;
}
await iter.close();
const rawS = (performance.now() - ta) / 1000;
console.log(
  `(a) raw consume: ${(TOTAL / rawS).toFixed(0)} products/s (${(batches / rawS).toFixed(0)} msgs/s)`,
);

// Baseline (b): DuckDB NDJSON → Parquet (snappy), same records.
const duck = await DuckDBInstance.create(':memory:', { threads: '2' });
const dconn = await duck.connect();
const tb = performance.now();
await dconn.run(
  `COPY (SELECT * FROM read_json_auto('${ndjsonPath}', format='newline_delimited')) TO '${join(tmp, 'baseline.parquet')}' (FORMAT parquet, COMPRESSION snappy)`,
);
const duckS = (performance.now() - tb) / 1000;
console.log(`(b) DuckDB NDJSON → Parquet: ${(TOTAL / duckS).toFixed(0)} products/s`);
dconn.closeSync();
duck.closeSync();

// The system under test: the real ingest-backup process draining the pre-loaded stream.
const { child, startupSeconds: startupS } = await startIngestBackup({
  natsUrl: nats.url,
  lakeDir: join(tmp, 'lake'),
  env: { ARCHIVE_TICKS: 'false' },
});
const catalog = await openCatalog({ nc: bus.nc });
const drained = await drain({ child, catalog, dataset: 'products', total: TOTAL, timeoutMs: 600_000 });
const ingestS = drained.seconds;
const peak = drained.peakRssMb;
const cpuS = drained.cpuSeconds;
const files = await catalog.liveFiles('products');
const lakeBytes = files.reduce((n, f) => n + f.bytes, 0);

const result = {
  benchmark: 'ingest',
  command: `node bench/ingest/run.mjs --products ${TOTAL} --batch ${BATCH}`,
  date: new Date().toISOString(),
  machine: machine(),
  products: TOTAL,
  batch: BATCH,
  messages: batches,
  payload_mb: +(payloadBytes / 1e6).toFixed(1),
  ingest: {
    startup_seconds: +startupS.toFixed(2),
    seconds: +ingestS.toFixed(2),
    products_per_s: Math.round(TOTAL / ingestS),
    peak_rss_mb: Math.round(peak),
    cpu_seconds: cpuS,
    files: files.length,
    lake_mb: +(lakeBytes / 1e6).toFixed(1),
  },
  baseline_raw_consume: { seconds: +rawS.toFixed(2), products_per_s: Math.round(TOTAL / rawS) },
  baseline_duckdb_ndjson: {
    seconds: +duckS.toFixed(2),
    products_per_s: Math.round(TOTAL / duckS),
    ndjson_mb: +(statSync(ndjsonPath).size / 1e6).toFixed(1),
  },
};
result.ratio_to_duckdb = +(
  result.ingest.products_per_s / result.baseline_duckdb_ndjson.products_per_s
).toFixed(2);
result.ratio_to_raw_consume = +(
  result.ingest.products_per_s / result.baseline_raw_consume.products_per_s
).toFixed(3);
console.log(JSON.stringify(result, null, 2));
writeResults(
  'ingest',
  result,
  `# bench/ingest (${result.date.slice(0, 10)})

\`${result.command}\` on ${result.machine.cores} cores, Node ${result.machine.node}, commit ${result.machine.commit}.

| | products/s | seconds | peak RSS |
| --- | --- | --- | --- |
| ingest-backup, JetStream → committed Parquet | ${result.ingest.products_per_s} | ${result.ingest.seconds} | ${result.ingest.peak_rss_mb} MB |
| (a) raw JetStream consume, no work | ${result.baseline_raw_consume.products_per_s} | ${result.baseline_raw_consume.seconds} | |
| (b) DuckDB NDJSON → Parquet | ${result.baseline_duckdb_ndjson.products_per_s} | ${result.baseline_duckdb_ndjson.seconds} | |

Ratio to (b): **${result.ratio_to_duckdb}** (target ≥ 0.5); target ≥ 150,000 products/s, RSS ≤ 400 MB.
${files.length} files, ${result.ingest.lake_mb} MB in the lake; the service used ${result.ingest.cpu_seconds} CPU seconds (start-up included).`,
);
await bus.close();
await nats.stop();
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
