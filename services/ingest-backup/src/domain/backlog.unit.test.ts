import { describe, expect, it } from 'vitest';
import { BacklogWatch } from './backlog.js';

describe('BacklogWatch', () => {
  it('fires once when a backlog drains, never while caught up', () => {
    const w = new BacklogWatch();
    expect([0, 0, 0].map((p) => w.drained(p))).toEqual([false, false, false]);
    expect([500, 120, 3, 0, 0, 0].map((p) => w.drained(p))).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
    ]);
    expect([7, 0].map((p) => w.drained(p))).toEqual([false, true]);
  });
});
