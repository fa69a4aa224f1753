import { readFileSync } from 'node:fs';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

/**
 * An independent Parquet reader (hyparquet, pure JS, no DuckDB) so tests never check DuckDB's
 * output with DuckDB alone.
 */
export async function readParquetIndependent(path: string): Promise<Record<string, unknown>[]> {
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return (await parquetReadObjects({ file, compressors })) as Record<string, unknown>[];
}

export function parquetRowCountIndependent(path: string): number {
  const buf = readFileSync(path);
  const meta = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return Number(meta.num_rows);
}
