import { PRODUCTS, partitionMetadataKey, partitionPath } from '@parquetry/lake';
import { NotFoundError } from '@parquetry/service';
import type { CliContext } from '../../context.js';
import { printJson, printTable } from '../../output.js';
import { openLakeCatalog, openLakeStore } from '../resources.js';
import {
  fileName,
  formatBytes,
  formatCount,
  type ProductFileRow,
  productFileRows,
  type Totals,
  totals,
} from './summary.js';

export interface RetailerInfo {
  retailer: string;
  partitions: ({ date: string; updated_at: string } & Totals)[];
}

export interface PartitionInfo {
  retailer: string;
  date: string;
  /** Contents of the partition's `_metadata_<YYYYMMDD>.json`, or null when it has none. */
  metadata: unknown;
  files: ProductFileRow[];
}

/** `lake info <retailer> [--date D]`: a retailer's partitions, or one partition's metadata and files. */
export async function lakeInfo(
  ctx: CliContext,
  retailer: string,
  date?: string,
): Promise<RetailerInfo | PartitionInfo> {
  const catalog = await openLakeCatalog(ctx);
  const manifests = await catalog.partitions(
    'products',
    (v) => v.retailer === retailer && (date === undefined || v.date === date),
  );
  if (date === undefined) {
    const partitions = manifests
      .filter((m) => m.files.length > 0)
      .map((m) => ({ date: m.partition.date ?? '', updated_at: m.updatedAt, ...totals([m]) }));
    if (partitions.length === 0) throw await unknownRetailer(ctx, retailer);
    return { retailer, partitions };
  }
  const dir = `${PRODUCTS.root}/${partitionPath(PRODUCTS.partitionColumns, { retailer, date })}`;
  const metadata = await readMetadata(ctx, partitionMetadataKey(dir, date));
  const files = productFileRows(manifests);
  if (files.length === 0 && metadata === null) {
    throw new NotFoundError(`no products of ${retailer} on ${date} in the lake`);
  }
  return { retailer, date, metadata, files };
}

async function readMetadata(ctx: CliContext, key: string): Promise<unknown> {
  const store = await openLakeStore(ctx);
  try {
    return JSON.parse((await store.getBytes(key)).toString('utf8'));
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

async function unknownRetailer(ctx: CliContext, retailer: string): Promise<NotFoundError> {
  const all = await (await openLakeCatalog(ctx)).partitions('products');
  const known = [
    ...new Set(all.filter((m) => m.files.length > 0).map((m) => m.partition.retailer ?? '')),
  ].sort();
  return new NotFoundError(
    `no products of ${retailer} in the lake; retailers: ${known.join(', ') || '(none)'}`,
    {
      details: { retailers: known },
    },
  );
}

export function printLakeInfo(info: RetailerInfo | PartitionInfo): void {
  if ('partitions' in info) {
    process.stdout.write(`${info.retailer}: ${info.partitions.length} partitions\n`);
    printTable(
      info.partitions.map((p) => ({
        date: p.date,
        files: formatCount(p.files),
        rows: formatCount(p.rows),
        size: formatBytes(p.bytes),
        updated: p.updated_at,
      })),
    );
    return;
  }
  process.stdout.write(`${info.retailer} ${info.date}: ${info.files.length} files\n`);
  printTable(
    info.files.map((f) => ({
      category: f.category,
      rows: formatCount(f.rows),
      size: formatBytes(f.bytes),
      committed: f.committed_at,
      file: fileName(f.path),
    })),
  );
  process.stdout.write('\nmetadata:\n');
  if (info.metadata === null) process.stdout.write('(none)\n');
  else printJson(info.metadata);
}
