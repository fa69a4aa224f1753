import { describe, expect, it } from 'vitest';
import { mapLimit, mapWorkers } from './concurrency.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapLimit', () => {
  it('keeps item order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n, i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return `${i}:${n * 10}`;
    });
    expect(out).toEqual(['0:50', '1:10', '2:40', '3:20', '4:30', '5:0', '6:60']);
    expect(peak).toBe(3);
  });

  it('handles no items and a limit below one', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
    expect(await mapLimit([1, 2], 0, async (n) => n * 2)).toEqual([2, 4]);
  });
});

describe('mapWorkers', () => {
  it('hands each call the worker running it', async () => {
    const seen = new Map<string, number[]>();
    await mapWorkers([1, 2, 3, 4, 5, 6], ['a', 'b'], async (n, _i, w) => {
      seen.set(w, [...(seen.get(w) ?? []), n]);
      await tick();
    });
    expect([...seen.keys()].sort()).toEqual(['a', 'b']);
    expect([...seen.values()].flat().sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('after a failure takes no more items and throws the first failure once running calls are done', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = mapWorkers([0, 1, 2, 3, 4, 5], ['a', 'b'], async (n) => {
      started.push(n);
      if (n === 0) throw new Error('boom 0');
      await new Promise((r) => setTimeout(r, 20));
      finished.push(n);
      if (n === 1) throw new Error('boom 1');
      return n;
    });
    await expect(run).rejects.toThrow('boom 0');
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([1]);
  });
});
