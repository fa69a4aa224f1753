import { PRODUCTS } from './datasets.js';
import { type ColumnInferrer, type InferredColumn, identifierKey } from './parquet/infer.js';
import type { ParquetColumn } from './parquet/writer.js';

/** Columns every products file starts with, in order (DESIGN.md "Lake layout"). */
export const PRODUCT_FIXED_COLUMNS = [
  'backup_timestamp',
  'backup_id',
  'retailer',
  'category',
  'date',
  'batch_id',
] as const;
export type ProductFixedColumn = (typeof PRODUCT_FIXED_COLUMNS)[number];

/** The fixed columns for the row writer: one value per batch of rows (`shared`). */
export const PRODUCT_FIXED_PARQUET_COLUMNS: readonly ParquetColumn[] = PRODUCT_FIXED_COLUMNS.map((name) => ({
  name,
  type: PRODUCTS.columns[name]!,
  shared: true,
}));

const RESERVED = new Set<string>(PRODUCT_FIXED_COLUMNS);

/**
 * A product field whose name collides with a fixed column (a scraper sending its own `date`)
 * is kept as `product_<name>`, so nothing is lost and the partition columns stay truthful.
 */
export function productFieldName(name: string): string {
  let out = name;
  while (RESERVED.has(out.toLowerCase())) out = `product_${out}`;
  return out;
}

/**
 * The product columns of one products file, after the fixed ones: every field the inferrer saw,
 * under its inferred type; a field named like a fixed column as `product_<name>` (or the
 * inferrer's unique name when that one is taken too). The one naming rule of every writer of
 * the products dataset, and of the test lakes that stand in for ingest-backup.
 */
export function productColumns(inferrer: ColumnInferrer): InferredColumn[] {
  const inferred = inferrer.columns(PRODUCT_FIXED_COLUMNS);
  const taken = new Set(inferred.map((c) => identifierKey(c.name)));
  return inferred.map((c) => {
    const wanted = productFieldName(c.field);
    const name = wanted !== c.field && !taken.has(identifierKey(wanted)) ? wanted : c.name;
    return { ...c, name };
  });
}
