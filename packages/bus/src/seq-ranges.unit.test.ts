import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeqRanges } from './seq-ranges.js';

describe('SeqRanges', () => {
  it('merges adjacent and overlapping ranges', () => {
    const r = new SeqRanges();
    r.addRange(5, 7);
    r.addRange(1, 2);
    r.addRange(3, 4);
    r.addRange(10, 12);
    expect(r.toJSON()).toEqual([
      [1, 7],
      [10, 12],
    ]);
    r.addRange(8, 9);
    expect(r.toJSON()).toEqual([[1, 12]]);
  });

  it('answers membership exactly like a Set, whatever the insertion order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 200 }), (seqs) => {
        const r = new SeqRanges();
        for (const s of seqs) r.addRange(s, s);
        const set = new Set(seqs);
        for (let s = 0; s <= 301; s++) expect(r.has(s)).toBe(set.has(s));
        const json = r.toJSON();
        for (let i = 1; i < json.length; i++) expect(json[i]![0]).toBeGreaterThan(json[i - 1]![1] + 1);
        expect(new SeqRanges(json).toJSON()).toEqual(json);
      }),
    );
  });
});
