import { retentionKeepFrom } from '@parquetry/lake';
import type { CliContext } from '../../context.js';
import { printTable } from '../../output.js';
import { openLakeCatalog } from '../resources.js';
import { fileName, formatBytes, formatCount, type ProductFileRow, productFileRows } from './summary.js';

export interface LakeListOptions {
  retailer?: string;
  /** Only partitions dated on or after today − days (UTC): what `cleanup --days N` keeps. */
  days?: number;
  now?: Date;
}

export interface LakeListResult {
  files: ProductFileRow[];
}

/** `lake list [--retailer R] [--days N]`: the live product files with retailer, date, rows, size, commit time. */
export async function lakeList(ctx: CliContext, opts: LakeListOptions = {}): Promise<LakeListResult> {
  const catalog = await openLakeCatalog(ctx);
  const from = opts.days === undefined ? undefined : retentionKeepFrom(opts.now ?? new Date(), opts.days);
  const manifests = await catalog.partitions(
    'products',
    (v) =>
      (opts.retailer === undefined || v.retailer === opts.retailer) &&
      (from === undefined || (v.date ?? '') >= from),
  );
  return { files: productFileRows(manifests) };
}

export function printLakeList(r: LakeListResult): void {
  printTable(
    r.files.map((f) => ({
      retailer: f.retailer,
      date: f.date,
      category: f.category,
      rows: formatCount(f.rows),
      size: formatBytes(f.bytes),
      committed: f.committed_at,
      file: fileName(f.path),
    })),
  );
  const rows = r.files.reduce((n, f) => n + f.rows, 0);
  const bytes = r.files.reduce((n, f) => n + f.bytes, 0);
  process.stdout.write(
    `${formatCount(r.files.length)} files, ${formatCount(rows)} rows, ${formatBytes(bytes)}\n`,
  );
}
