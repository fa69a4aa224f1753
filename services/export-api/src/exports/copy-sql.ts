import { encodePartitionValue, sqlIdent } from '@parquetry/lake';
import type { Compression, ExportFormat } from '../api/schemas.js';

/**
 * The text of DuckDB COPY statements for exports and the names of the files they make. Pure.
 *
 * `partition_by` writes one file per combination of values. DuckDB's own directory names for
 * partition values are not the lake's encoding, and its JSON writer cannot partition, so the
 * export partitions by helper keys instead: `__pq_k<i>` = `v` + hex of the value's text (`n`
 * for NULL). Hex survives any directory naming; the keys are not written into the files (the
 * real columns are, since they are selected), and the object keys are then built with the
 * lake's partition encoding (`col=value/`), which cannot leave its directory.
 */

export const PARTITION_KEY_PREFIX = '__pq_k';

export function fileExtension(format: ExportFormat, compression: Compression): string {
  if (format === 'parquet') return 'parquet';
  const base = format === 'csv' ? 'csv' : 'ndjson';
  return compression === 'gzip' ? `${base}.gz` : base;
}

/** The COPY option list (without parentheses) for one output. */
export function copyOptions(
  format: ExportFormat,
  compression: Compression,
  opts: { partitionKeys?: number } = {},
): string {
  const out: string[] = [];
  if (format === 'parquet') {
    out.push('FORMAT parquet', `COMPRESSION ${compression === 'none' ? 'uncompressed' : compression}`);
  } else if (format === 'csv') {
    out.push('FORMAT csv', 'HEADER true');
    if (compression === 'gzip') out.push('COMPRESSION gzip');
  } else {
    out.push('FORMAT json');
    if (compression === 'gzip') out.push('COMPRESSION gzip');
  }
  const keys = opts.partitionKeys ?? 0;
  if (keys > 0) {
    const cols = Array.from({ length: keys }, (_, i) => sqlIdent(`${PARTITION_KEY_PREFIX}${i}`));
    out.push(`PARTITION_BY (${cols.join(', ')})`, "FILENAME_PATTERN 'data_{i}'");
  }
  return out.join(', ');
}

/** `SELECT *, <keys> FROM (<query>)`: the query with its partition helper keys. */
export function withPartitionKeysSql(querySql: string, partitionBy: readonly string[]): string {
  const keys = partitionBy.map(
    (col, i) =>
      `CASE WHEN ${sqlIdent(col)} IS NULL THEN 'n' ELSE 'v' || hex(CAST(${sqlIdent(col)} AS VARCHAR)) END ` +
      `AS ${sqlIdent(`${PARTITION_KEY_PREFIX}${i}`)}`,
  );
  return `SELECT *, ${keys.join(', ')} FROM (${querySql})`;
}

/**
 * Partition values from a file path relative to the COPY directory
 * (`__pq_k0=v6661/__pq_k1=n/data_0.parquet`), or undefined when the path is not one of ours.
 * NULL reads back as the empty string: both are the lake's default partition directory.
 */
export function partitionValuesOf(relPath: string, partitionBy: readonly string[]): string[] | undefined {
  const segments = relPath.split('/');
  if (segments.length !== partitionBy.length + 1) return undefined;
  const values: string[] = [];
  for (const [i, segment] of segments.slice(0, -1).entries()) {
    const m = new RegExp(`^${PARTITION_KEY_PREFIX}${i}=(n|v(?:[0-9A-Fa-f]{2})*)$`).exec(segment);
    if (!m) return undefined;
    values.push(m[1] === 'n' ? '' : Buffer.from(m[1]!.slice(1), 'hex').toString('utf8'));
  }
  return values;
}

/** `retailer=falabella/date=2025-09-03`, names and values in the lake's encoding. */
export function exportPartitionDir(partitionBy: readonly string[], values: readonly string[]): string {
  return partitionBy
    .map((col, i) => `${encodePartitionValue(col)}=${encodePartitionValue(values[i] ?? '')}`)
    .join('/');
}
