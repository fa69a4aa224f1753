/**
 * Per-key token buckets, in memory (one replica's view; behind N replicas a key gets up to N×
 * the rate). Applied after authentication, so the bucket id is a key name from the keys file
 * and the map stays as small as that file. A bucket holds `burst` tokens and refills at
 * `perMinute` tokens per minute; each request takes one.
 */
export interface RateLimiterOptions {
  perMinute: number;
  /** Bucket size (default: one minute's worth). */
  burst?: number;
  clock?: () => number;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterS: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly clock: () => number;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.perMinute > 0)) throw new Error('perMinute must be positive');
    this.perMs = opts.perMinute / 60_000;
    this.burst = Math.max(1, opts.burst ?? opts.perMinute);
    this.clock = opts.clock ?? Date.now;
  }

  take(id: string): RateDecision {
    const now = this.clock();
    const b = this.buckets.get(id) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
    b.at = now;
    this.buckets.set(id, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, remaining: Math.floor(b.tokens) };
    }
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) };
  }
}
