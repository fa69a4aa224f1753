import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupBuffer } from './buffer.js';

describe('GroupBuffer', () => {
  it('flushes by age and by group size', () => {
    const b = new GroupBuffer<number>({ maxAgeMs: 1000, maxGroupBytes: 100, maxTotalBytes: 10_000 });
    b.add('a', 1, 10, 0);
    b.add('b', 2, 120, 500);
    expect(b.takeDue(600).map((g) => g.key)).toEqual(['b']);
    expect(b.msUntilDue(600)).toBe(400);
    expect(b.takeDue(999)).toEqual([]);
    expect(b.takeDue(1000).map((g) => g.key)).toEqual(['a']);
    expect(b.totalBytes).toBe(0);
  });

  it('never holds more than the budget after takeDue, however many groups are open', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 50 })), {
          maxLength: 400,
        }),
        (adds) => {
          const b = new GroupBuffer<number>({ maxAgeMs: 1e9, maxGroupBytes: 1e9, maxTotalBytes: 200 });
          let flushedItems = 0;
          for (const [i, [key, bytes]] of adds.entries()) {
            b.add(String(key), i, bytes, 0);
            for (const g of b.takeDue(0)) flushedItems += g.items.length;
            expect(b.totalBytes).toBeLessThanOrEqual(200);
          }
          for (const g of b.takeAll()) flushedItems += g.items.length;
          expect(flushedItems).toBe(adds.length);
        },
      ),
    );
  });

  it('never holds more items than the item budget after takeDue (small messages)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 300 }), (keys) => {
        const b = new GroupBuffer<number>({
          maxAgeMs: 1e9,
          maxGroupBytes: 1e9,
          maxTotalBytes: 1e9,
          maxTotalItems: 20,
        });
        let flushed = 0;
        for (const [i, key] of keys.entries()) {
          b.add(String(key), i, 1, 0);
          expect(b.hasDue(0)).toBe(b.totalItems > 20);
          for (const g of b.takeDue(0)) flushed += g.items.length;
          expect(b.totalItems).toBeLessThanOrEqual(20);
        }
        for (const g of b.takeAll()) flushed += g.items.length;
        expect(flushed).toBe(keys.length);
        expect(b.totalItems).toBe(0);
      }),
    );
  });
});
