import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ColumnInferrer, identifierKey, inferColumns, jsonText } from './infer.js';

const typeOf = (records: Record<string, unknown>[], field = 'v') => {
  const col = inferColumns(records).find((c) => c.field === field)!;
  return col.json ? 'JSON' : col.type;
};

describe('inferColumns: types', () => {
  it('picks the narrowest type that holds every non-null value', () => {
    expect(typeOf([{ v: true }, { v: false }, { v: null }])).toBe('BOOLEAN');
    expect(typeOf([{ v: 1 }, { v: -3 }, { v: 2 ** 53 - 1 }])).toBe('BIGINT');
    expect(typeOf([{ v: 1 }, { v: 2.5 }])).toBe('DOUBLE');
    expect(typeOf([{ v: 1e300 }, { v: 2 ** 53 }])).toBe('DOUBLE'); // unsafe integers are doubles
    expect(typeOf([{ v: 'a' }, {}, { v: '' }])).toBe('VARCHAR');
    expect(typeOf([{ v: 5n }, { v: 7 }])).toBe('BIGINT');
  });

  it('anything mixed, nested or non-finite becomes JSON text', () => {
    expect(typeOf([{ v: 1 }, { v: '1' }])).toBe('JSON');
    expect(typeOf([{ v: true }, { v: 1 }])).toBe('JSON');
    expect(typeOf([{ v: { a: 1 } }])).toBe('JSON');
    expect(typeOf([{ v: [1, 2] }])).toBe('JSON');
    expect(typeOf([{ v: 1 }, { v: Number.NaN }])).toBe('JSON');
    expect(typeOf([{ v: Number.POSITIVE_INFINITY }])).toBe('JSON');
    expect(typeOf([{ v: 2n ** 70n }])).toBe('JSON');
    expect(typeOf([{ v: 1.5 }, { v: 5n }])).toBe('JSON'); // a bigint next to a double would lose digits
  });

  it('a field that is null or missing everywhere is VARCHAR; missing fields do not vote', () => {
    expect(typeOf([{ v: null }, { v: undefined }])).toBe('VARCHAR');
    expect(typeOf([{ v: 1 }, { w: 'x' }, { v: 2 }])).toBe('BIGINT');
  });

  it('keeps columns in order of first appearance', () => {
    const cols = inferColumns([{ b: 1, a: 2 }, { c: 3, a: 4 }, { d: null }]);
    expect(cols.map((c) => c.name)).toEqual(['b', 'a', 'c', 'd']);
  });
});

describe('inferColumns: names', () => {
  it('keeps names exactly, accents, spaces and quotes included', () => {
    const names = ['Precio Oferta', 'categoría', 'say "hi"', "it's", 'a.b', 'ñ'];
    const cols = inferColumns([Object.fromEntries(names.map((n) => [n, 1]))]);
    expect(cols.map((c) => c.name)).toEqual(names);
    expect(cols.map((c) => c.field)).toEqual(names);
  });

  it('suffixes names that only differ by ASCII case, the first one seen wins', () => {
    const cols = inferColumns([{ precio: 1 }, { Precio: 'x', PRECIO: true, precio__2: 0 }]);
    expect(cols.map((c) => [c.field, c.name])).toEqual([
      ['precio', 'precio'],
      ['Precio', 'Precio__2'],
      ['PRECIO', 'PRECIO__3'],
      ['precio__2', 'precio__2__2'],
    ]);
  });

  it('non-ASCII case variants are distinct names for DuckDB and stay as they are', () => {
    expect(inferColumns([{ É: 1, é: 2 }]).map((c) => c.name)).toEqual(['É', 'é']);
  });

  it('reserved names (fixed dataset columns) always win', () => {
    const cols = inferColumns([{ Retailer: 'x', date: 'y', sku: '1' }], ['retailer', 'date']);
    expect(cols.map((c) => c.name)).toEqual(['Retailer__2', 'date__2', 'sku']);
  });

  it('the empty field name and NUL characters get usable names', () => {
    expect(inferColumns([{ '': 1, 'a\u0000b': 2 }]).map((c) => c.name)).toEqual(['__empty', 'a\uFFFDb']);
  });

  it('property: names are unique under DuckDB comparison and fields map one to one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'A', 'a__2', 'A__2', 'b', 'É', 'é', '', 'x y', '"q"'), {
          maxLength: 12,
        }),
        (fields) => {
          const record = Object.fromEntries(fields.map((f, i) => [f, i]));
          const cols = new ColumnInferrer();
          cols.observe(record);
          const out = cols.columns(['A']);
          expect(new Set(out.map((c) => identifierKey(c.name))).size).toBe(out.length);
          expect(out.some((c) => identifierKey(c.name) === 'a')).toBe(false);
          expect(out.map((c) => c.field)).toEqual(Object.keys(record));
        },
      ),
    );
  });
});

describe('jsonText', () => {
  it('is JSON.stringify that never drops a value silently', () => {
    expect(jsonText('a"b')).toBe('"a\\"b"');
    expect(jsonText({ a: [1, { b: null }] })).toBe('{"a":[1,{"b":null}]}');
    expect(jsonText(Number.NaN)).toBe('"NaN"');
    expect(jsonText({ x: Number.NEGATIVE_INFINITY })).toBe('{"x":"-Infinity"}');
    expect(jsonText(12345678901234567890n)).toBe('"12345678901234567890"');
    expect(jsonText(undefined)).toBe('null');
  });
});
