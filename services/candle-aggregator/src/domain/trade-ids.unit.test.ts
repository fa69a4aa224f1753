import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numericId, TradeIdIndex } from './trade-ids.js';

/** The model: one Map of every id held → its minute. */
const id = fc.oneof(
  fc.nat({ max: 60 }).map(String), // small numbers, many collisions
  fc.integer({ min: 0, max: 40 }).map((n) => `0${n}`), // not canonical: strings
  fc.constantFrom('0', '', 'a', 'b7', '-1', '1.5', '1e3', ' 1'),
  fc.bigInt({ min: 10n ** 14n, max: 10n ** 16n }).map(String), // 15 and 16 digits
  fc.nat().map(String),
);
const op = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constant('add' as const), id, fc.nat({ max: 6 })) },
  { weight: 3, arbitrary: fc.tuple(fc.constant('has' as const), id, fc.constant(0)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('drop' as const), fc.constant(''), fc.nat({ max: 6 })) },
);

describe('TradeIdIndex', () => {
  it('answers as one set of the ids of the minutes not dropped', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const index = new TradeIdIndex();
        const model = new Map<string, number>();
        for (const [kind, tradeId, minute] of ops) {
          if (kind === 'add') {
            expect(index.has(tradeId)).toBe(model.has(tradeId));
            if (model.has(tradeId)) continue; // the aggregator never adds an id it holds
            index.add(tradeId, minute);
            model.set(tradeId, minute);
          } else if (kind === 'has') {
            expect(index.has(tradeId)).toBe(model.has(tradeId));
          } else {
            index.dropMinute(minute);
            for (const [k, m] of model) if (m === minute) model.delete(k);
          }
          expect(index.size).toBe(model.size);
        }
        const byMinute = new Map<number, string[]>();
        for (const [k, m] of model) byMinute.set(m, [...(byMinute.get(m) ?? []), k]);
        expect([...index.minuteStarts()].filter((m) => index.idsOf(m).length > 0).sort()).toEqual(
          [...byMinute.keys()].sort(),
        );
        for (const [m, ids] of byMinute) expect(index.idsOf(m).sort()).toEqual(ids.sort());
      }),
      { numRuns: 500 },
    );
  });

  it('looks up ids inside a minute’s range, also past the linear search size', () => {
    const index = new TradeIdIndex();
    for (let i = 0; i < 100; i += 2) index.add(String(i), 0);
    for (let i = 1000; i < 1100; i += 2) index.add(String(i), 1);
    for (let i = 0; i < 1100; i++) expect(index.has(String(i))).toBe((i < 100 || i >= 1000) && i % 2 === 0);
    index.dropMinute(1);
    expect(index.has('1000')).toBe(false);
    expect(index.has('98')).toBe(true);
    index.add('1000', 2);
    expect(index.has('1000')).toBe(true);
    // minute 0 has its Set by now (lookups fell inside its range): adds must reach it too
    index.add('51', 0);
    expect(index.has('51')).toBe(true);
    expect(index.size).toBe(52);
  });

  it('takes only canonical integers of up to 15 digits as numbers, one to one', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 17 }), fc.nat({ max: 999_999_999 }), (text, n) => {
        const v = numericId(text);
        if (v >= 0) expect(String(v)).toBe(text);
        expect(numericId(String(n))).toBe(n);
      }),
      { numRuns: 2000 },
    );
    expect(numericId('999999999999999')).toBe(999_999_999_999_999);
    expect(numericId('1000000000000000')).toBe(-1);
    expect(numericId('007')).toBe(-1);
    expect(numericId('0')).toBe(0);
  });
});
