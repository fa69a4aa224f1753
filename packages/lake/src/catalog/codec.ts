import { gunzipSync, gzipSync } from 'node:zlib';
import { ParquetryError } from '@parquetry/service';

/**
 * Catalog values are JSON; above a threshold they are gzipped (manifests compress ~5x, which
 * multiplies the files a partition can list under the server's max payload). JSON never starts
 * with the gzip magic bytes, so a reader tells the two apart without a flag.
 */
const GZIP_ABOVE = 32 * 1024;

export class CatalogValueTooLargeError extends ParquetryError {
  constructor(key: string, bytes: number, limit: number) {
    super(
      'catalog_value_too_large',
      `catalog value ${key} is ${bytes} bytes compressed, above the NATS max payload ${limit}: compact the partition or raise max_payload`,
      { retryable: false, status: 413, details: { key, bytes, limit } },
    );
  }
}

export class CatalogCorruptError extends ParquetryError {
  constructor(key: string, cause: unknown) {
    super('catalog_corrupt', `catalog value ${key} cannot be decoded`, {
      retryable: false,
      cause,
      details: { key },
    });
  }
}

export function encodeValue(key: string, value: unknown, maxBytes: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const bytes = json.length > GZIP_ABOVE ? gzipSync(json) : json;
  if (bytes.length > maxBytes) throw new CatalogValueTooLargeError(key, bytes.length, maxBytes);
  return bytes;
}

export function decodeValue<T>(key: string, bytes: Uint8Array): T {
  try {
    const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : Buffer.from(bytes);
    return JSON.parse(raw.toString('utf8')) as T;
  } catch (err) {
    throw new CatalogCorruptError(key, err);
  }
}
