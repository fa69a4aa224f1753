import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Catalog, openCatalog } from './catalog/catalog.js';
import type { NewFile } from './catalog/types.js';
import { vacuum } from './catalog/vacuum.js';
import { applyRetention, retentionEvents, retentionKeepFrom } from './retention.js';
import { FsObjectStore } from './store/fs.js';

const NOW = new Date('2025-09-10T08:00:00Z');

let server: Awaited<ReturnType<typeof startNats>>;
let nc: NatsConnection;
let catalog: Catalog;
let store: FsObjectStore;
const dir = tempDir('pq-retention-');

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url });
  catalog = await openCatalog({ nc, writerId: 'retention-test' });
  store = new FsObjectStore(dir.path);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  dir.remove();
});

async function put(key: string, rows: number): Promise<NewFile> {
  const body = `parquet bytes of ${key}`;
  await store.put(key, body);
  return { path: key, rows, bytes: body.length, sha256: 'x' };
}

async function commitProducts(retailer: string, date: string, names: string[], rows: number) {
  const d = `products/retailer=${retailer}/date=${date}`;
  const add = await Promise.all(names.map((n) => put(`${d}/${n}.parquet`, rows)));
  await store.put(`${d}/_metadata_${date.replaceAll('-', '')}.json`, '{"backups":[]}');
  await catalog.commit({
    dataset: 'products',
    commitId: `w-${retailer}-${date}`,
    changes: [{ partition: { retailer, date }, add, sources: names.map((n) => `batch-${n}`) }],
  });
}

it('keeps the cutoff date itself and drops what is older', () => {
  expect(retentionKeepFrom(NOW, 7)).toBe('2025-09-03');
  expect(retentionKeepFrom(NOW, 0)).toBe('2025-09-10');
  expect(() => retentionKeepFrom(NOW, -1)).toThrow(/non-negative/);
});

it('dry run changes nothing; a run drops old partitions in the catalog, keeps files for vacuum', async () => {
  await commitProducts('jumbo', '2025-08-01', ['a', 'b'], 10);
  await commitProducts('jumbo', '2025-09-03', ['c'], 5);
  await commitProducts('vea', '2025-09-02', ['d'], 7);
  const tick = await put('ticks/symbol=ES/date=2025-08-30/t1.parquet', 100);
  await catalog.commit({
    dataset: 'ticks',
    commitId: 'ticks-1',
    changes: [{ partition: { symbol: 'ES', date: '2025-08-30' }, add: [tick] }],
  });
  const before = (await catalog.liveFiles('products')).map((f) => f.path);

  const dry = await applyRetention({
    catalog,
    store,
    dataset: 'products',
    maxAgeDays: 7,
    now: NOW,
    dryRun: true,
  });
  expect(dry).toMatchObject({
    dataset: 'products',
    dryRun: true,
    keepFrom: '2025-09-03',
    partitions: 2,
    files: 3,
    rows: 27,
  });
  expect(dry.dropped.map((p) => p.partition)).toEqual([
    'retailer=jumbo/date=2025-08-01',
    'retailer=vea/date=2025-09-02',
  ]);
  expect((await catalog.liveFiles('products')).map((f) => f.path)).toEqual(before);
  expect(await store.head('products/retailer=jumbo/date=2025-08-01/_metadata_20250801.json')).toBeDefined();

  const run = await applyRetention({ catalog, store, dataset: 'products', maxAgeDays: 7, now: NOW });
  expect(run).toMatchObject({ dryRun: false, partitions: 2, files: 3, rows: 27, bytes: dry.bytes });
  expect((await catalog.liveFiles('products')).map((f) => f.path)).toEqual([
    'products/retailer=jumbo/date=2025-09-03/c.parquet',
  ]);
  // The dry run named the commits the run made; the events announce those same commits.
  expect(run.dropped.map((p) => p.commitId)).toEqual(dry.dropped.map((p) => p.commitId));
  for (const event of retentionEvents(run, NOW)) {
    expect(event.operation).toBe('remove');
    const values = event.partitions[0]!.values;
    expect(await catalog.isApplied('products', values, event.commit_id)).toBe(true);
  }
  const old = await catalog.partition('products', { retailer: 'jumbo', date: '2025-08-01' });
  expect(old.sources).toEqual([]);
  expect(old.removed.map((r) => r.path).sort()).toEqual([
    'products/retailer=jumbo/date=2025-08-01/a.parquet',
    'products/retailer=jumbo/date=2025-08-01/b.parquet',
  ]);
  // Metadata goes now; Parquet files wait for vacuum's grace period.
  expect(await store.head('products/retailer=jumbo/date=2025-08-01/_metadata_20250801.json')).toBeUndefined();
  expect(await store.head('products/retailer=jumbo/date=2025-09-03/_metadata_20250903.json')).toBeDefined();
  expect(await store.head('products/retailer=jumbo/date=2025-08-01/a.parquet')).toBeDefined();
  // The other dataset is untouched until asked.
  expect(await catalog.liveFiles('ticks')).toHaveLength(1);

  const again = await applyRetention({ catalog, store, dataset: 'products', maxAgeDays: 7, now: NOW });
  expect(again).toMatchObject({ partitions: 0, files: 0 });

  const swept = await vacuum({
    catalog,
    store,
    dataset: 'products',
    graceMs: 0,
    now: new Date(Date.now() + 1000),
  });
  expect(swept.expired).toEqual([
    'products/retailer=jumbo/date=2025-08-01/a.parquet',
    'products/retailer=jumbo/date=2025-08-01/b.parquet',
    'products/retailer=vea/date=2025-09-02/d.parquet',
  ]);
  expect(await store.head('products/retailer=jumbo/date=2025-08-01/a.parquet')).toBeUndefined();
  expect(await store.head('products/retailer=jumbo/date=2025-09-03/c.parquet')).toBeDefined();

  const ticks = await applyRetention({ catalog, store, dataset: 'ticks', maxAgeDays: 7, now: NOW });
  expect(ticks).toMatchObject({ partitions: 1, files: 1, rows: 100 });
  expect(await catalog.liveFiles('ticks')).toEqual([]);
});

it('late files for a dropped date are dropped by the next run; datasets without a date are skipped', async () => {
  const late = await put('products/retailer=jumbo/date=2025-08-01/late.parquet', 3);
  await catalog.commit({
    dataset: 'products',
    commitId: 'late-1',
    changes: [{ partition: { retailer: 'jumbo', date: '2025-08-01' }, add: [late] }],
  });
  const run = await applyRetention({ catalog, store, dataset: 'products', maxAgeDays: 7, now: NOW });
  expect(run).toMatchObject({ partitions: 1, files: 1, rows: 3 });
  expect((await catalog.liveFiles('products', { retailer: 'jumbo', date: '2025-08-01' })).length).toBe(0);

  const candles = await applyRetention({ catalog, store, dataset: 'candles', maxAgeDays: 1, now: NOW });
  expect(candles).toMatchObject({ applicable: false, partitions: 0 });
});
