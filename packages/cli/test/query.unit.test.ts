import { describe, expect, it } from 'vitest';
import { referencedDatasets } from '../src/commands/query.js';

describe('referencedDatasets', () => {
  it('finds dataset names as whole words, in any case, and nothing else', () => {
    const names = (sql: string) => referencedDatasets(sql).map((d) => d.name);
    expect(names('SELECT * FROM ticks t JOIN Candles c USING (symbol)')).toEqual(['ticks', 'candles']);
    expect(names('select count(*) from "products"')).toEqual(['products']);
    expect(names('SELECT 1 AS my_ticks, ticks_2 FROM range(3)')).toEqual([]);
    expect(names('SELECT * FROM ticks')).toEqual(['ticks']);
  });
});
