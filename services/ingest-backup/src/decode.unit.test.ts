import { ParquetryError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { decodeProductBatch, decodeTicks } from './decode.js';

const good = {
  batch_id: 'b1',
  retailer: 'falabella',
  category: 'smartphones',
  scraped_at: '2025-09-03T14:30:22Z',
  products: [{ sku: '1', precio: 10 }],
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ParquetryError ? err.code : 'not-a-parquetry-error';
  }
  return undefined;
}

describe('decodeProductBatch', () => {
  it('accepts a good batch', () => {
    expect(decodeProductBatch('scraper.products.falabella.smartphones', good).products).toHaveLength(1);
  });

  it.each([
    ['..', 'invalid_name'],
    ['a/b', 'invalid_name'],
    ['Falabella', 'invalid_name'],
    ['fala.bella', 'invalid_name'],
  ])('rejects retailer %s as %s', (retailer, code) => {
    expect(codeOf(() => decodeProductBatch('scraper.products.x.smartphones', { ...good, retailer }))).toBe(
      code,
    );
  });

  it('rejects empty products, schema violations and subject mismatches', () => {
    const s = 'scraper.products.falabella.smartphones';
    expect(codeOf(() => decodeProductBatch(s, { ...good, products: [] }))).toBe('empty_products');
    expect(codeOf(() => decodeProductBatch(s, { ...good, scraped_at: 'yesterday' }))).toBe(
      'schema_violation',
    );
    expect(codeOf(() => decodeProductBatch(s, [1, 2]))).toBe('schema_violation');
    expect(codeOf(() => decodeProductBatch('scraper.products.ripley.smartphones', good))).toBe(
      'subject_mismatch',
    );
  });
});

describe('decodeTicks', () => {
  it('accepts single ticks and arrays, epoch ms and ISO', () => {
    expect(decodeTicks('market.ticks.ES', { symbol: 'ES', ts: 1, price: 1, size: 1 })).toHaveLength(1);
    const arr = decodeTicks('market.ticks.ES', {
      symbol: 'ES',
      ticks: [
        { ts: '2025-09-03T14:30:22.123Z', price: 5012.25, size: 3, side: 'buy', trade_id: 7 },
        { ts: 2, price: 2, size: 0 },
      ],
    });
    expect(arr.map((t) => t.trade_id)).toEqual(['7', undefined]);
    expect(arr[0]!.ts).toBe(Date.parse('2025-09-03T14:30:22.123Z'));
  });

  it('rejects bad prices, sizes, timestamps and symbols', () => {
    const s = 'market.ticks.ES';
    expect(codeOf(() => decodeTicks(s, { symbol: 'ES', ts: 1, price: 0, size: 1 }))).toBe('schema_violation');
    expect(codeOf(() => decodeTicks(s, { symbol: 'ES', ts: 1, price: 1, size: -1 }))).toBe(
      'schema_violation',
    );
    expect(codeOf(() => decodeTicks(s, { symbol: 'ES', ts: 'soon', price: 1, size: 1 }))).toBe(
      'invalid_timestamp',
    );
    expect(codeOf(() => decodeTicks('market.ticks.a', { symbol: 'a.b', ts: 1, price: 1, size: 1 }))).toBe(
      'invalid_symbol',
    );
    expect(codeOf(() => decodeTicks('market.ticks.NQ', { symbol: 'ES', ts: 1, price: 1, size: 1 }))).toBe(
      'subject_mismatch',
    );
  });
});
