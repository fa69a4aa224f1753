import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeIds, formatDigits, lastParsedWidth, parseDigits, TradeIdIndex } from './trade-ids.js';

/** The model: one Map of every id held → its minute. */
const id = fc.oneof(
  fc.nat({ max: 60 }).map(String), // small numbers, many collisions
  fc.integer({ min: 0, max: 40 }).map((n) => `0${n}`), // zero-padded: classes by width
  fc.integer({ min: 0, max: 40 }).map((n) => String(n).padStart(3, '0')),
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
        expect(index.minuteStarts().sort()).toEqual([...byMinute.keys()].sort());
        for (const [m, ids] of byMinute) {
          const encoded = index.encodedIdsOf(m);
          expect(decodeIds(encoded).sort()).toEqual(ids.sort());
          // Read back from its snapshot form, a minute holds the same ids in the same form.
          const copy = new TradeIdIndex();
          copy.addEncoded(m, JSON.parse(JSON.stringify(encoded)));
          expect(copy.encodedIdsOf(m)).toEqual(encoded);
          expect(copy.size).toBe(ids.length);
          for (const k of ids) expect(copy.has(k)).toBe(true);
        }
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

  it('keeps consecutive ids as one run, in any order of arrival, padded or not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 ** 12 }),
        fc.integer({ min: 1, max: 400 }),
        fc.constantFrom(0, 14, 15),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (first, count, width, seed) => {
          const ids = Array.from({ length: count }, (_, i) => formatDigits(first + i, width));
          const shuffled = fc.sample(fc.shuffledSubarray(ids, { minLength: count }), {
            seed,
            numRuns: 1,
          })[0]!;
          const inOrder = new TradeIdIndex();
          const anyOrder = new TradeIdIndex();
          for (const id of ids) inOrder.add(id, 0);
          for (const id of shuffled) {
            expect(anyOrder.has(id)).toBe(false);
            anyOrder.add(id, 0);
          }
          const expected = count === 1 ? [ids[0]] : width === 0 ? [[first, count]] : [[first, count, width]];
          expect(inOrder.encodedIdsOf(0)).toEqual(expected);
          expect(anyOrder.encodedIdsOf(0)).toEqual(expected);
          for (const id of ids) expect(anyOrder.has(id)).toBe(true);
          expect(anyOrder.has(formatDigits(first + count, width))).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads every digit string of up to 15 digits as a number and its width class, one to one', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 17 }), fc.stringMatching(/^[0-9]{1,15}$/), (text, digits) => {
        const v = parseDigits(text);
        if (v >= 0) expect(formatDigits(v, lastParsedWidth())).toBe(text);
        const n = parseDigits(digits);
        expect(n).toBe(Number(digits));
        expect(formatDigits(n, lastParsedWidth())).toBe(digits);
      }),
      { numRuns: 2000 },
    );
    expect(parseDigits('999999999999999')).toBe(999_999_999_999_999);
    expect(parseDigits('1000000000000000')).toBe(-1);
    expect(parseDigits('007')).toBe(7);
    expect(lastParsedWidth()).toBe(3);
    expect(parseDigits('0')).toBe(0);
    expect(lastParsedWidth()).toBe(0);
    expect(parseDigits('-1')).toBe(-1);
  });
});
