import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_BACKOFF_MS, exponentialDelayMs, reconnectWaitMs, retryDelayMs } from './backoff.js';

describe('retryDelayMs', () => {
  const schedule = [100, 500, 2000];

  it('uses the entry for the failed delivery and repeats the last one', () => {
    expect([1, 2, 3, 4, 10].map((n) => retryDelayMs(schedule, n))).toEqual([100, 500, 2000, 2000, 2000]);
  });

  it('treats a delivery count below 1 as the first delivery', () => {
    expect(retryDelayMs(schedule, 0)).toBe(100);
  });

  it('is zero without a schedule', () => {
    expect(retryDelayMs([], 3)).toBe(0);
  });

  it('spreads delays within ±jitter', () => {
    expect(retryDelayMs(schedule, 2, { jitter: 0.2, random: () => 0 })).toBe(400);
    expect(retryDelayMs(schedule, 2, { jitter: 0.2, random: () => 0.5 })).toBe(500);
    expect(retryDelayMs(schedule, 2, { jitter: 0.2, random: () => 0.999999 })).toBe(600);
  });

  it('has a growing default schedule', () => {
    const sorted = [...DEFAULT_RETRY_BACKOFF_MS].sort((a, b) => a - b);
    expect(DEFAULT_RETRY_BACKOFF_MS).toEqual(sorted);
  });
});

describe('exponentialDelayMs', () => {
  it('doubles from initialMs up to maxMs', () => {
    const opts = { initialMs: 250, maxMs: 5000 };
    expect([0, 1, 2, 3, 4, 5, 50].map((a) => exponentialDelayMs(a, opts))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
  });
});

describe('reconnectWaitMs', () => {
  const opts = { initialMs: 250, maxMs: 5000 };

  it('starts at initialMs and grows with the outage up to maxMs', () => {
    expect([0, 1000, 4000, 9500, 60_000].map((t) => reconnectWaitMs(t, opts))).toEqual([
      250, 750, 2250, 5000, 5000,
    ]);
  });

  it('spaces attempts exponentially in time', () => {
    // Simulate the client: attempt, then wait what the function says at that moment.
    const attempts = [0];
    while (attempts.length < 6) {
      const last = attempts.at(-1)!;
      attempts.push(last + reconnectWaitMs(last, { initialMs: 250, maxMs: 1e9 }));
    }
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThan(gaps[i - 1]! * 1.4);
  });
});
