import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a burst, then refuses with the time until the next token, then refills', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 60, burst: 3, clock: () => now });
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterS: 1 });
    expect(limiter.take('b').allowed).toBe(true); // buckets are per key
    now += 1000;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    now += 60_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a').allowed)).toEqual([true, true, true, false]);
  });

  it('reports a retry-after that is long enough at slow rates', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 2, burst: 1, clock: () => now });
    expect(limiter.take('k').allowed).toBe(true);
    const refused = limiter.take('k');
    expect(refused).toEqual({ allowed: false, retryAfterS: 30 });
    now += 29_000;
    expect(limiter.take('k').allowed).toBe(false);
    now += 1_000;
    expect(limiter.take('k').allowed).toBe(true);
  });
});
