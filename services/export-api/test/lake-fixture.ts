import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Bus, connectBus } from '@parquetry/bus';
import {
  type Catalog,
  ColumnInferrer,
  type DuckDB,
  jsonText,
  type NewFile,
  type ObjectStore,
  openCatalog,
  openDuckDB,
  openObjectStore,
  type ParquetColumn,
  PRODUCT_FIXED_PARQUET_COLUMNS,
  productColumns,
  writeLakeFiles,
} from '@parquetry/lake';
import { loadConfig, silentLogger } from '@parquetry/service';
import {
  type NatsServerHandle,
  productFixtureBatches,
  type S3ServerHandle,
  startNats,
  startS3,
  type TempDir,
  tempDir,
} from '@parquetry/testkit';

export { freePort } from '@parquetry/testkit';

import {
  createExportApi,
  createKey,
  type ExportApiConfig,
  exportApiConfigSchema,
  exportApiPaths,
  type KeyRecordInput,
} from '../src/index.js';

/**
 * TEST FIXTURE: a real lake for integration tests — nats-server with the catalog, the object
 * store on disk or on s3rver — filled the way ingest-backup fills it: the real scraped products
 * of shared/data as `products/retailer=<r>/date=<d>/<category>_<ts>_<id>.parquet`, fixed columns
 * first, every product field kept (a field named like a fixed column as `product_<name>`), one
 * catalog commit per partition. Plus synthetic ticks with hostile text. Each fixture returns the
 * rows it wrote, as plain objects: what an export must give back.
 */

export type LakeKind = 'fs' | 's3';

export interface TestLake {
  kind: LakeKind;
  nats: NatsServerHandle;
  s3?: S3ServerHandle;
  bus: Bus;
  catalog: Catalog;
  store: ObjectStore;
  lakeUrl: string;
  /** S3 environment for the service (empty on disk). */
  env: Record<string, string>;
  dir: TempDir;
  duck: DuckDB;
  close(): Promise<void>;
}

export async function openTestLake(kind: LakeKind): Promise<TestLake> {
  const nats = await startNats();
  const dir = tempDir('pq-export-lake-');
  const s3 = kind === 's3' ? await startS3() : undefined;
  const lakeUrl = s3 ? s3.lakeUrl() : `file://${join(dir.path, 'lake')}`;
  const env = s3 ? s3.env : {};
  const store = openObjectStore(lakeUrl, env, { cacheDir: join(dir.path, 'fixture-cache') });
  const bus = await connectBus({ url: nats.url, name: 'export-api-test', logger: silentLogger() });
  const catalog = await openCatalog({ nc: bus.nc });
  const duck = await openDuckDB({ threads: 1 });
  return {
    kind,
    nats,
    ...(s3 ? { s3 } : {}),
    bus,
    catalog,
    store,
    lakeUrl,
    env,
    dir,
    duck,
    async close() {
      duck.close();
      await bus.close();
      await store.close();
      await s3?.stop();
      await nats.stop();
      dir.remove();
    },
  };
}

/** One product as written: fixed columns and each field under its column name in the file. */
export type SourceRow = Record<string, unknown>;

/**
 * The real products, one file per retailer, day and category (ingest-backup's layout), each
 * committed to the catalog. `backup_timestamp` differs per file so "oldest first" is defined.
 */
export async function writeProducts(lake: TestLake): Promise<SourceRow[]> {
  const groups = new Map<string, ReturnType<typeof productFixtureBatches>>();
  for (const b of productFixtureBatches()) {
    const key = `${b.retailer}|${b.scraped_at.slice(0, 10)}|${b.category}`;
    groups.set(key, [...(groups.get(key) ?? []), b]);
  }
  const rows: SourceRow[] = [];
  const byPartition = new Map<string, { retailer: string; date: string; add: NewFile[] }>();
  let n = 0;
  for (const [key, batches] of groups) {
    const [retailer, date, category] = key.split('|') as [string, string, string];
    // A backup a few minutes after the scrape, one second apart per file.
    const backupTime = Date.parse(`${date}T13:00:00Z`) + n * 1000;
    const backupId = `fx${String(n).padStart(6, '0')}`;
    n++;
    const inferrer = new ColumnInferrer();
    for (const b of batches) for (const p of b.products) inferrer.observe(p);
    const free: ParquetColumn[] = productColumns(inferrer);
    const shared = (batchId: string) => ({
      backup_timestamp: backupTime,
      backup_id: backupId,
      retailer,
      category,
      date,
      batch_id: batchId,
    });
    for (const b of batches) {
      for (const p of b.products) {
        const row: SourceRow = {
          ...shared(b.batch_id),
          backup_timestamp: new Date(backupTime).toISOString(),
        };
        for (const c of free) {
          const v = p[c.field!];
          row[c.name] = v === null || v === undefined ? null : c.json ? jsonText(v) : v;
        }
        rows.push(row);
      }
    }
    const stamp = new Date(backupTime).toISOString();
    const files = await writeLakeFiles({
      conn: lake.duck.conn,
      store: lake.store,
      dir: `products/retailer=${retailer}/date=${date}`,
      fileName: () =>
        `${category}_${stamp.slice(0, 10).replaceAll('-', '')}_${stamp.slice(11, 19).replaceAll(':', '')}_${backupId}.parquet`,
      columns: [...PRODUCT_FIXED_PARQUET_COLUMNS, ...free],
      batches: batches.map((b) => ({ rows: b.products, shared: shared(b.batch_id) })),
    });
    const part = byPartition.get(`${retailer}|${date}`) ?? { retailer, date, add: [] };
    part.add.push(...files.map((f) => ({ ...f, minTime: stamp, maxTime: stamp })));
    byPartition.set(`${retailer}|${date}`, part);
  }
  for (const p of byPartition.values()) {
    await lake.catalog.commit({
      dataset: 'products',
      commitId: `fixture-products-${p.retailer}-${p.date}`,
      changes: [{ partition: { retailer: p.retailer, date: p.date }, add: p.add }],
    });
  }
  return rows;
}

/** Trade ids and sides that would break naive SQL or paths if they ever reached them as text. */
export const HOSTILE = [
  "'; DROP TABLE t; --",
  '../../etc/passwd',
  '..',
  '.',
  'a/b\\c',
  '%2e%2e%2f',
  'x=y',
  '__HIVE_DEFAULT_PARTITION__',
  'ñandú "quoted"',
  'line\nbreak',
  '',
];

export type TickRow = {
  symbol: string;
  date: string;
  ts: string;
  price: number;
  size: number;
  side: string | null;
  trade_id: string;
  stream_seq: number;
};

/** `count` ticks of ES and NQ over two days, one file per symbol and day, committed. */
export async function writeTicks(lake: TestLake, count = 2000): Promise<TickRow[]> {
  const rows: TickRow[] = Array.from({ length: count }, (_, i) => {
    const ms = Date.UTC(2025, 8, 1 + (i % 2), 9, 30) + i * 1000 + (i % 7);
    return {
      symbol: i % 3 === 0 ? 'NQ' : 'ES',
      date: new Date(ms).toISOString().slice(0, 10),
      ts: new Date(ms).toISOString(),
      price: 5000 + (i % 400) * 0.25,
      size: 1 + (i % 9),
      side: i % 5 === 0 ? null : i % 2 ? 'buy' : 'sell',
      trade_id: HOSTILE[i % HOSTILE.length]!,
      stream_seq: 1_000_000 + i,
    };
  });
  const columns: ParquetColumn[] = [
    { name: 'symbol', type: 'VARCHAR' },
    { name: 'date', type: 'DATE' },
    { name: 'ts', type: 'TIMESTAMPTZ' },
    { name: 'price', type: 'DOUBLE' },
    { name: 'size', type: 'DOUBLE' },
    { name: 'side', type: 'VARCHAR' },
    { name: 'trade_id', type: 'VARCHAR' },
    { name: 'stream_seq', type: 'BIGINT' },
  ];
  const parts = new Map<string, TickRow[]>();
  for (const r of rows)
    parts.set(`${r.symbol}|${r.date}`, [...(parts.get(`${r.symbol}|${r.date}`) ?? []), r]);
  for (const [key, part] of parts) {
    const [symbol, date] = key.split('|') as [string, string];
    const files = await writeLakeFiles({
      conn: lake.duck.conn,
      store: lake.store,
      dir: `ticks/symbol=${symbol}/date=${date}`,
      fileName: () => `ticks_${date.replaceAll('-', '')}_fixture.parquet`,
      columns,
      batches: [part],
      timeField: 'ts',
    });
    await lake.catalog.commit({
      dataset: 'ticks',
      commitId: `fixture-ticks-${symbol}-${date}`,
      changes: [{ partition: { symbol, date }, add: files }],
    });
  }
  return rows;
}

export interface TestKeys {
  file: string;
  reader: string;
  other: string;
  scoped: string;
  ticksOnly: string;
  revoked: string;
  limited: string;
  candles: string;
}

/** An API_KEYS_FILE with hashed keys, and the clear keys for the test. */
export function writeKeys(dir: string): TestKeys {
  const make = (opts: Parameters<typeof createKey>[0], revoked = false) => {
    const k = createKey(opts);
    return { key: k.key, record: (revoked ? { ...k.record, revoked: true } : k.record) as KeyRecordInput };
  };
  const keys = {
    reader: make({ name: 'reader', datasets: ['products', 'ticks'] }),
    other: make({ name: 'other', datasets: ['products', 'ticks'] }),
    scoped: make({
      name: 'scoped',
      datasets: ['products'],
      rowScopes: { products: [{ column: 'retailer', op: 'in', value: ['jumbo', 'vea'] }] },
    }),
    ticksOnly: make({ name: 'ticks-only', datasets: ['ticks'] }),
    revoked: make({ name: 'revoked', datasets: ['*'] }, true),
    limited: make({ name: 'limited', datasets: ['ticks'] }),
    candles: make({ name: 'candles', datasets: ['candles'] }),
  };
  const file = join(dir, 'keys.json');
  writeFileSync(file, JSON.stringify({ keys: Object.values(keys).map((k) => k.record) }, null, 2));
  return {
    file,
    reader: keys.reader.key,
    other: keys.other.key,
    scoped: keys.scoped.key,
    ticksOnly: keys.ticksOnly.key,
    revoked: keys.revoked.key,
    limited: keys.limited.key,
    candles: keys.candles.key,
  };
}

/** The service's configuration for a test lake, as main() would parse it from the environment. */
export function testConfig(
  lake: TestLake,
  keys: TestKeys,
  port: number,
  env: Record<string, string> = {},
): ExportApiConfig {
  return loadConfig(exportApiConfigSchema, {
    NODE_ENV: 'test',
    NATS_URL: lake.nats.url,
    LAKE_URL: lake.lakeUrl,
    ...lake.env,
    HTTP_PORT: String(port),
    HTTP_HOST: '127.0.0.1',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    API_KEYS_FILE: keys.file,
    API_KEYS_RELOAD_S: '0',
    EXPORT_SIGNING_SECRET: 'integration-secret-integration-secret',
    EXPORT_WORK_DIR: join(lake.dir.path, 'work'),
    DUCKDB_MEMORY_MB: '256',
    DUCKDB_THREADS: '2',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

/** createExportApi listening on the config's port: what main() runs, minus signals. */
export async function startApi(config: ExportApiConfig, lake: TestLake) {
  const store = openObjectStore(config.LAKE_URL, config, { cacheDir: exportApiPaths(config).s3Cache });
  const api = await createExportApi({
    config,
    logger: silentLogger(),
    nc: lake.bus.nc,
    catalog: lake.catalog,
    store,
  });
  await api.app.listen({ port: config.HTTP_PORT, host: config.HTTP_HOST });
  return {
    api,
    base: `http://127.0.0.1:${config.HTTP_PORT}`,
    async close() {
      await api.stop();
      await store.close();
    },
  };
}
