import { describe, expect, it } from 'vitest';
import { ColumnInferrer } from './parquet/infer.js';
import { productColumns, productFieldName } from './product-columns.js';

const columnsOf = (...records: Record<string, unknown>[]) => {
  const inferrer = new ColumnInferrer();
  for (const r of records) inferrer.observe(r);
  return productColumns(inferrer).map((c) => [c.field, c.name, c.type]);
};

describe('productColumns', () => {
  it('keeps every field under its own name and inferred type', () => {
    expect(columnsOf({ sku: 'a1', precio: 1190, oferta: true }, { precio: 999.5 })).toEqual([
      ['sku', 'sku', 'VARCHAR'],
      ['precio', 'precio', 'DOUBLE'],
      ['oferta', 'oferta', 'BOOLEAN'],
    ]);
  });

  it('renames a field named like a fixed column, in any case, to product_<name>', () => {
    expect(columnsOf({ date: 'x', Retailer: 'y', product_category: 1, category: 'z' })).toEqual([
      ['date', 'product_date', 'VARCHAR'],
      ['Retailer', 'product_Retailer', 'VARCHAR'],
      ['product_category', 'product_category', 'BIGINT'],
      // product_category is a field of its own: the inferrer's unique name instead.
      ['category', expect.not.stringMatching(/^(category|product_category)$/i), 'VARCHAR'],
    ]);
    expect(productFieldName('product_date')).toBe('product_date');
    expect(productFieldName('BATCH_ID')).toBe('product_BATCH_ID');
  });
});
