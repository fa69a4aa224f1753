import type { ProductBatch } from '@parquetry/lake';

/** The idempotency key of a batch (or of one part of a batch sent in parts). */
export function batchSourceKey(batch: Pick<ProductBatch, 'batch_id' | 'part' | 'parts'>): string {
  return batch.parts && batch.parts > 1
    ? `${batch.batch_id}#${batch.part ?? 1}/${batch.parts}`
    : batch.batch_id;
}

/** Partition of a batch: its retailer and the UTC day it was scraped (deterministic on replay). */
export function batchPartition(batch: Pick<ProductBatch, 'retailer' | 'scraped_at'>): {
  retailer: string;
  date: string;
} {
  return {
    retailer: batch.retailer,
    date: new Date(Date.parse(batch.scraped_at)).toISOString().slice(0, 10),
  };
}

export interface BackupStamp {
  backupId: string;
  /** Epoch ms of the backup (the flush), not of the scrape. */
  backupTime: number;
}

/**
 * One product batch as a Parquet row batch: the products themselves (never copied) and the fixed
 * columns as values shared by the whole batch.
 */
export function productRowBatch(
  batch: ProductBatch,
  stamp: BackupStamp,
): { rows: Record<string, unknown>[]; shared: Record<string, unknown> } {
  const { date } = batchPartition(batch);
  return {
    rows: batch.products,
    shared: {
      backup_timestamp: stamp.backupTime,
      backup_id: stamp.backupId,
      retailer: batch.retailer,
      category: batch.category,
      date,
      batch_id: batch.batch_id,
    },
  };
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** 8 random characters from [a-z0-9]. */
export function newBackupId(random: () => number = Math.random): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return s;
}

function compactUtc(ms: number): { ymd: string; hms: string } {
  const iso = new Date(ms).toISOString();
  return { ymd: iso.slice(0, 10).replaceAll('-', ''), hms: iso.slice(11, 19).replaceAll(':', '') };
}

/** `<category>_<YYYYMMDD>_<HHMMSS>_<backup_id>.parquet`, with `_<n>` before the extension for split parts. */
export function backupFileName(category: string, stamp: BackupStamp, part?: number): string {
  const { ymd, hms } = compactUtc(stamp.backupTime);
  return `${category}_${ymd}_${hms}_${stamp.backupId}${part ? `_${part}` : ''}.parquet`;
}

/** `_metadata_<YYYYMMDD>.json` for a partition date `YYYY-MM-DD`. */
export function metadataFileName(date: string): string {
  return `_metadata_${date.replaceAll('-', '')}.json`;
}

/** One backup as listed in `_metadata_<YYYYMMDD>.json` (the seed's fields, plus batch ids). */
export interface BackupMetadata {
  category: string;
  timestamp: string;
  products_count: number;
  file_size_mb: number;
  file_path: string;
  scraping_session_id: string | null;
  execution_time_seconds: number | null;
  success_rate: number | null;
  errors: unknown[];
  warnings: unknown[];
  batch_ids: string[];
}

const MAX_LISTED_ISSUES = 100;

/** What a buffered batch keeps once its products are counted and typed: the envelope. */
export type BatchSummary = Omit<ProductBatch, 'products'> & { productsCount: number };

export function summarizeBatch(batch: ProductBatch): BatchSummary {
  const { products, ...envelope } = batch;
  return { ...envelope, productsCount: products.length };
}

/** Metadata of a file that holds one or more batches of the same retailer, day and category. */
export function backupMetadata(
  batches: readonly BatchSummary[],
  file: { path: string; bytes: number; rows: number },
  stamp: BackupStamp,
): BackupMetadata {
  const first = batches[0]!;
  const sessions = [...new Set(batches.map((b) => b.session_id).filter((s): s is string => !!s))];
  const timed = batches.filter((b) => b.execution_time !== undefined);
  const rated = batches.filter((b) => b.success_rate !== undefined);
  const weight = rated.reduce((n, b) => n + b.productsCount, 0);
  return {
    category: first.category,
    timestamp: new Date(stamp.backupTime).toISOString(),
    products_count: file.rows,
    file_size_mb: Math.round((file.bytes / 1048576) * 1000) / 1000,
    file_path: file.path,
    scraping_session_id: sessions.length === 0 ? null : sessions.join(','),
    execution_time_seconds:
      timed.length === 0 ? null : timed.reduce((s, b) => s + (b.execution_time ?? 0), 0),
    success_rate:
      weight === 0 ? null : rated.reduce((s, b) => s + (b.success_rate ?? 0) * b.productsCount, 0) / weight,
    errors: batches.flatMap((b) => b.errors ?? []).slice(0, MAX_LISTED_ISSUES),
    warnings: batches.flatMap((b) => b.warnings ?? []).slice(0, MAX_LISTED_ISSUES),
    batch_ids: batches.map((b) => b.batch_id),
  };
}
