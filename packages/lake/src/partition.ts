import { InvalidInputError } from '@parquetry/service';

/**
 * Hive-style partition paths that round-trip any value and can never leave their dataset
 * directory: every character outside [A-Za-z0-9_-] is percent-encoded (so `.`, `/`, `%`, `=`
 * and `..` cannot survive as path syntax), and the empty string has its own token.
 */
const SAFE = /^[A-Za-z0-9_-]$/;
export const EMPTY_VALUE = '__HIVE_DEFAULT_PARTITION__';

export type PartitionValues = Record<string, string>;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function encodePartitionValue(value: string): string {
  if (value === '') return EMPTY_VALUE;
  // UTF-8 cannot carry a lone surrogate: it would silently become U+FFFD and share a directory.
  if (LONE_SURROGATE.test(value))
    throw new InvalidInputError('partition value holds a lone UTF-16 surrogate');
  let out = '';
  for (const ch of value) {
    if (SAFE.test(ch)) out += ch;
    else
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // The literal token must not read back as the empty value.
  return out === EMPTY_VALUE ? `%5F${out.slice(1)}` : out;
}

export function decodePartitionValue(encoded: string): string {
  if (encoded === EMPTY_VALUE) return '';
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(encoded)) {
    throw new InvalidInputError(`not an encoded partition value: ${JSON.stringify(encoded.slice(0, 80))}`);
  }
  let value: string;
  try {
    value = decodeURIComponent(encoded);
  } catch (err) {
    throw new InvalidInputError(`not an encoded partition value: ${JSON.stringify(encoded.slice(0, 80))}`, {
      cause: err,
    });
  }
  // One value, one directory: reject non-canonical spellings such as `%41` for `A`.
  if (encodePartitionValue(value) !== encoded) {
    throw new InvalidInputError(`non-canonical partition value: ${JSON.stringify(encoded.slice(0, 80))}`);
  }
  return value;
}

const COLUMN = /^[a-z_][a-z0-9_]{0,63}$/;

/** `retailer=falabella/date=2025-09-03` for the dataset's partition columns, in order. */
export function partitionPath(columns: readonly string[], values: PartitionValues): string {
  return columns
    .map((c) => {
      if (!COLUMN.test(c)) throw new InvalidInputError(`bad partition column name: ${c}`);
      const v = values[c];
      if (v === undefined) throw new InvalidInputError(`missing partition value for ${c}`);
      return `${c}=${encodePartitionValue(v)}`;
    })
    .join('/');
}

/** Inverse of partitionPath; throws on anything that is not exactly `col=value/...` for these columns. */
export function parsePartitionPath(columns: readonly string[], path: string): PartitionValues {
  const parts = path.split('/');
  if (parts.length !== columns.length) throw new InvalidInputError(`partition path has wrong depth: ${path}`);
  const out: PartitionValues = {};
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    const col = columns[i]!;
    if (eq < 0 || part.slice(0, eq) !== col) throw new InvalidInputError(`expected ${col}=… in ${path}`);
    out[col] = decodePartitionValue(part.slice(eq + 1));
  });
  return out;
}

/** A stable key for a partition, for maps and catalog keys. */
export function partitionKey(columns: readonly string[], values: PartitionValues): string {
  return partitionPath(columns, values);
}
