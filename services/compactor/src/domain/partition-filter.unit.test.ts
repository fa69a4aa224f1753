import { getDataset } from '@parquetry/lake';
import { describe, expect, it } from 'vitest';
import { compilePartitionFilter, equalityFilters } from './partition-filter.js';

const ticks = getDataset('ticks');

describe('compilePartitionFilter', () => {
  it('prunes on partition values with the export filter language', () => {
    const match = compilePartitionFilter(ticks, [
      { column: 'symbol', op: 'in', value: ['ES', 'NQ'] },
      { column: 'date', op: 'between', value: ['2025-09-01', '2025-09-03'] },
    ]);
    expect(match({ symbol: 'ES', date: '2025-09-02' })).toBe(true);
    expect(match({ symbol: 'ES', date: '2025-09-04' })).toBe(false);
    expect(match({ symbol: 'CL', date: '2025-09-02' })).toBe(false);
    expect(
      compilePartitionFilter(ticks, [{ column: 'symbol', op: 'like', value: 'E_' }])({
        symbol: 'ES',
        date: 'x',
      }),
    ).toBe(true);
    expect(compilePartitionFilter(ticks, undefined)({ symbol: 'x', date: 'y' })).toBe(true);
  });

  it('rejects columns that are not partition columns and malformed filters with a 400', () => {
    for (const bad of [
      [{ column: 'price', op: '=', value: 1 }],
      [{ column: 'symbol', op: 'OR 1=1', value: 1 }],
      [{ column: 'symbol"; --', op: '=', value: 'x' }],
      'symbol = ES',
    ]) {
      expect(() => compilePartitionFilter(ticks, bad)).toThrow(expect.objectContaining({ status: 400 }));
    }
  });

  it('turns --where pairs into equality filters', () => {
    expect(equalityFilters({ symbol: 'ES' })).toEqual([{ column: 'symbol', op: '=', value: 'ES' }]);
    expect(equalityFilters(undefined)).toBeUndefined();
  });
});
