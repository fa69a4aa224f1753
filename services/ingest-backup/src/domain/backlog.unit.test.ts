import { describe, expect, it } from 'vitest';
import { BacklogWatch } from './backlog.js';

describe('BacklogWatch', () => {
  it('fires once when a backlog drains, never while caught up', () => {
    const w = new BacklogWatch();
    expect([0, 0, 0].map((p) => w.drained(p, 0))).toEqual([false, false, false]);
    expect([500, 120, 3, 0, 0, 0].map((p) => w.drained(p, 0))).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
    ]);
    expect([7, 0].map((p) => w.drained(p, 0))).toEqual([false, true]);
  });

  it('reports the quiet tail of a drained backlog once, and never in steady state', () => {
    const w = new BacklogWatch();
    w.drained(0, 0);
    expect(w.quietTail(10_000, 200)).toBe(false); // always caught up: no tail
    w.drained(40, 1000);
    w.drained(0, 1100); // drained: batches fetched before it still come
    w.drained(0, 1250);
    expect(w.quietTail(1300, 200)).toBe(false); // not quiet yet
    expect(w.quietTail(1450, 200)).toBe(true);
    expect(w.quietTail(5000, 200)).toBe(false); // once
    w.drained(9, 6000);
    expect(w.quietTail(9000, 200)).toBe(false); // behind again: no tail until it drains
  });
});
