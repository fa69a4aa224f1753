import { InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePartitionValue } from '../partition.js';
import { BAD_KEYS } from './conformance.js';
import { assertValidKey, assertValidPrefix } from './keys.js';

describe('object key rules', () => {
  it('accepts ordinary lake keys', () => {
    for (const k of [
      'products/retailer=falabella/date=2025-09-03/smartphones_20250903_143022_ab12cd34.parquet',
      'products/retailer=falabella/date=2025-09-03/_metadata_20250903.json',
      'ñandú/ü é.json',
      'a..b/.hidden',
    ]) {
      expect(assertValidKey(k)).toEqual(k.split('/'));
    }
  });

  it('rejects every hostile key with InvalidInputError', () => {
    for (const k of BAD_KEYS) expect(() => assertValidKey(k), JSON.stringify(k)).toThrow(InvalidInputError);
  });

  it('prefixes may be empty, partial or end with /, but never traverse', () => {
    for (const p of ['', 'a', 'a/', 'a/b', 'products/reta', 'x/.', 'x/..partial']) {
      expect(() => assertValidPrefix(p), p).not.toThrow();
    }
    for (const p of ['/a', '../', 'a/../b', 'a//b', 'a\\', '_tmp/', 'a/\u0000']) {
      expect(() => assertValidPrefix(p), p).toThrow(InvalidInputError);
    }
  });

  it('any key built from encoded partition values is valid (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' }), { minLength: 1, maxLength: 4 }), (values) => {
        const key = `ds/${values.map((v, i) => `c${i}=${encodePartitionValue(v)}`).join('/')}/f.parquet`;
        expect(assertValidKey(key)).toHaveLength(values.length + 2);
      }),
    );
  });
});
