import { posix } from 'node:path';
import { InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePartitionValue,
  EMPTY_VALUE,
  encodePartitionValue,
  parsePartitionPath,
  partitionKey,
  partitionPath,
} from './partition.js';
import { assertValidKey } from './store/keys.js';

/** Any code point, plus strings built from path-like pieces so traversal shapes come up often. */
const anyValue = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
  fc
    .array(fc.constantFrom('.', '..', '/', '\\', '%', '%2E', '=', 'a', 'ñ', '😀', ' ', '_'))
    .map((a) => a.join('')),
);

const HOSTILE = [
  '',
  '.',
  '..',
  '...',
  '../../etc',
  '../../../etc/passwd',
  '/etc/passwd',
  'a/b',
  'a\\b',
  '..\\..\\windows',
  '%2e%2e',
  '%2F',
  'retailer=x',
  'x/date=2025-01-01',
  '\u0000',
  'ñandú',
  'Ωμέγα',
  '😀',
  '家電',
  ' ',
  '\n',
  '_metadata',
  '__HIVE_DEFAULT_PARTITION__x',
];

describe('encodePartitionValue / decodePartitionValue', () => {
  it('round-trips any well-formed string (property)', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(decodePartitionValue(encodePartitionValue(v))).toBe(v);
      }),
      { numRuns: 2000 },
    );
  });

  it('encoded values are path-inert: no `/`, no `.`, never `..`, only [A-Za-z0-9_%-] (property)', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        const e = encodePartitionValue(v);
        expect(e).not.toContain('/');
        expect(e).not.toContain('.');
        expect(e).not.toContain('\\');
        expect(e).not.toContain('=');
        expect(e).not.toBe('..');
        expect(e.length).toBeGreaterThan(0);
        expect(e).toMatch(/^[A-Za-z0-9_%-]+$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('distinct values never share an encoding (property)', () => {
    fc.assert(
      fc.property(anyValue, anyValue, (a, b) => {
        fc.pre(a !== b);
        expect(encodePartitionValue(a)).not.toBe(encodePartitionValue(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('hostile values round-trip and encode to one inert segment', () => {
    for (const v of HOSTILE) {
      const e = encodePartitionValue(v);
      expect(decodePartitionValue(e), JSON.stringify(v)).toBe(v);
      expect(e).toMatch(/^[A-Za-z0-9_%-]+$/);
    }
    expect(encodePartitionValue('')).toBe(EMPTY_VALUE);
    expect(encodePartitionValue('..')).toBe('%2E%2E');
    expect(encodePartitionValue('a/b')).toBe('a%2Fb');
  });

  it('decode refuses anything that is not an encoding', () => {
    for (const e of ['', '..', '.', 'a/b', 'a.b', '%2', '%zz', '%2f', 'a b', 'a=b', '%', '\u0000', 'ñ']) {
      expect(() => decodePartitionValue(e), JSON.stringify(e)).toThrow(InvalidInputError);
    }
  });
});

describe('partitionPath / parsePartitionPath', () => {
  const columns = ['retailer', 'date'];

  it('hostile values stay inside their dataset directory (property + fixed cases)', () => {
    const check = (values: Record<string, string>) => {
      const rel = partitionPath(columns, values);
      const full = posix.join('/lake/products', rel, 'f.parquet');
      expect(full.startsWith('/lake/products/')).toBe(true);
      // Exactly one directory per partition column, plus the file.
      expect(full.slice('/lake/products/'.length).split('/')).toHaveLength(columns.length + 1);
      expect(posix.normalize(full)).toBe(full);
      expect(() => assertValidKey(`products/${rel}/f.parquet`)).not.toThrow();
      expect(parsePartitionPath(columns, rel)).toEqual(values);
    };
    for (const a of HOSTILE)
      for (const b of ['2025-09-03', ...HOSTILE.slice(0, 6)]) check({ retailer: a, date: b });
    fc.assert(
      fc.property(anyValue, anyValue, (retailer, date) => check({ retailer, date })),
      { numRuns: 1000 },
    );
  });

  it('orders segments by the dataset columns, not by the object', () => {
    expect(partitionPath(columns, { date: '2025-09-03', retailer: 'falabella' })).toBe(
      'retailer=falabella/date=2025-09-03',
    );
    expect(partitionKey(columns, { retailer: 'a', date: 'b' })).toBe('retailer=a/date=b');
  });

  it('refuses bad column names, missing values and malformed paths', () => {
    expect(() => partitionPath(['../x'], { '../x': 'a' })).toThrow(InvalidInputError);
    expect(() => partitionPath(['Retailer'], { Retailer: 'a' })).toThrow(InvalidInputError);
    expect(() => partitionPath(columns, { retailer: 'a' })).toThrow(/missing partition value for date/);
    for (const p of [
      'retailer=a',
      'retailer=a/date=b/extra=c',
      'date=b/retailer=a',
      'retailer=a/date',
      'retailer=../date=b',
      'retailer=a/date=b.c',
      '/retailer=a/date=b',
    ]) {
      expect(() => parsePartitionPath(columns, p), p).toThrow(InvalidInputError);
    }
  });
});

/**
 * Gaps found in partition.ts (reported to the coordinator with a patch; partition.ts is outside
 * this test's author's area). Each `it.fails` states the behaviour the contract needs ("partition
 * values cannot escape their directory", one directory per value) and currently fails; flip it to
 * `it` when partition.ts is fixed.
 */
describe('known gaps in partition.ts', () => {
  it('a value spelled like the empty-value token keeps its own directory', () => {
    expect(encodePartitionValue(EMPTY_VALUE)).not.toBe(encodePartitionValue(''));
    expect(decodePartitionValue(encodePartitionValue(EMPTY_VALUE))).toBe(EMPTY_VALUE);
  });

  it('ill-formed UTF-16 (a lone surrogate) is refused, not silently turned into U+FFFD', () => {
    expect(() => encodePartitionValue('\ud800')).toThrow(InvalidInputError);
  });

  it('a malformed UTF-8 escape is an InvalidInputError, not a URIError', () => {
    expect(() => decodePartitionValue('%FF')).toThrow(InvalidInputError);
  });

  it('decode accepts only the canonical encoding, so one value has one directory', () => {
    expect(() => decodePartitionValue('%41')).toThrow(InvalidInputError); // encode('A') is 'A'
  });
});
