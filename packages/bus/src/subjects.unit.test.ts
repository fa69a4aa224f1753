import { InvalidInputError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { deadLetterFilter, subjects } from './subjects.js';

describe('subjects', () => {
  it('builds the subjects of DESIGN.md', () => {
    expect(subjects.products('falabella', 'smartphones')).toBe('scraper.products.falabella.smartphones');
    expect(subjects.ticks('ES')).toBe('market.ticks.ES');
    expect(subjects.candles('1m', 'ES')).toBe('market.candles.1m.ES');
    expect(subjects.lakeCommitted('ticks')).toBe('lake.committed.ticks');
    expect(subjects.lakeOps('compact')).toBe('lake.ops.compact');
    expect(subjects.deadLetter('ingest-backup', 'market.ticks.ES')).toBe('dlq.ingest-backup.market.ticks.ES');
  });

  it('rejects tokens that would change the subject', () => {
    for (const bad of ['a.b', '*', '>', 'a b', '', 'x'.repeat(65)]) {
      expect(() => subjects.ticks(bad)).toThrow(InvalidInputError);
    }
  });

  it('filters dead letters by service', () => {
    expect(deadLetterFilter()).toBe('dlq.>');
    expect(deadLetterFilter('pg-loader')).toBe('dlq.pg-loader.>');
  });
});
