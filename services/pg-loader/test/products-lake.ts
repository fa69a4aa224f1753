/**
 * The real scraped products of shared/data (testkit's productFixtureBatches) written into a test
 * lake the way ingest-backup writes them: `products/retailer=<r>/date=<d>/<category>_<ts>_<id>.parquet`,
 * the fixed columns first, every product field kept under its inferred type (a field named like
 * a fixed column as `product_<name>`), one catalog commit per partition. Types differ between
 * retailers — Lider's prices are text ("1190"), Tottus' are numbers — which is what a follower's
 * drift policy meets in production.
 */
import {
  ColumnInferrer,
  type DuckDB,
  type NewFile,
  type ParquetColumn,
  PRODUCT_FIXED_PARQUET_COLUMNS,
  productColumns,
  writeLakeFiles,
} from '@parquetry/lake';
import { productFixtureBatches } from '@parquetry/testkit';
import type { Lake } from './lake-harness.js';

export interface ProductsWritten {
  rows: number;
  files: NewFile[];
}

export async function writeProducts(lake: Lake, duck: DuckDB): Promise<ProductsWritten> {
  const groups = new Map<string, ReturnType<typeof productFixtureBatches>>();
  for (const b of productFixtureBatches()) {
    const key = `${b.retailer}|${b.scraped_at.slice(0, 10)}|${b.category}`;
    groups.set(key, [...(groups.get(key) ?? []), b]);
  }
  const byPartition = new Map<string, { retailer: string; date: string; add: NewFile[] }>();
  let rows = 0;
  let n = 0;
  for (const [key, batches] of groups) {
    const [retailer, date, category] = key.split('|') as [string, string, string];
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
    const stamp = new Date(backupTime).toISOString();
    const files = await writeLakeFiles({
      conn: duck.conn,
      store: lake.store,
      dir: `products/retailer=${retailer}/date=${date}`,
      fileName: () =>
        `${category}_${stamp.slice(0, 10).replaceAll('-', '')}_${stamp.slice(11, 19).replaceAll(':', '')}_${backupId}.parquet`,
      columns: [...PRODUCT_FIXED_PARQUET_COLUMNS, ...free],
      batches: batches.map((b) => ({ rows: b.products, shared: shared(b.batch_id) })),
    });
    for (const b of batches) rows += b.products.length;
    const part = byPartition.get(`${retailer}|${date}`) ?? { retailer, date, add: [] };
    part.add.push(...files.map((f) => ({ ...f, minTime: stamp, maxTime: stamp })));
    byPartition.set(`${retailer}|${date}`, part);
  }
  const all: NewFile[] = [];
  for (const p of byPartition.values()) {
    await lake.catalog.commit({
      dataset: 'products',
      commitId: `fixture-products-${p.retailer}-${p.date}`,
      changes: [{ partition: { retailer: p.retailer, date: p.date }, add: p.add }],
    });
    all.push(...p.add);
  }
  return { rows, files: all };
}
