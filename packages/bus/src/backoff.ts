/**
 * Delays for retries and reconnects, as pure functions of the attempt number so the schedules
 * can be tested without timers. Jitter spreads retries of a failed batch so they do not all
 * come back in the same instant.
 */

/** Redelivery delays after the 1st, 2nd, … failed delivery; the last one repeats. */
export const DEFAULT_RETRY_BACKOFF_MS: readonly number[] = [1_000, 5_000, 15_000, 60_000, 300_000];

export interface JitterOptions {
  /** Fraction of the delay added or removed at random (0.1 → ±10%). */
  jitter?: number;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

function withJitter(base: number, opts: JitterOptions): number {
  const jitter = opts.jitter ?? 0;
  if (jitter <= 0 || base <= 0) return base;
  const r = (opts.random ?? Math.random)();
  return Math.max(0, Math.round(base * (1 + jitter * (2 * r - 1))));
}

/**
 * The delay before the next delivery of a message that failed on delivery `deliveryCount`
 * (1-based): the schedule's entry for that attempt, the last entry once the schedule runs out.
 */
export function retryDelayMs(
  schedule: readonly number[],
  deliveryCount: number,
  opts: JitterOptions = {},
): number {
  if (schedule.length === 0) return 0;
  const index = Math.min(Math.max(1, Math.floor(deliveryCount)) - 1, schedule.length - 1);
  return withJitter(schedule[index] ?? 0, opts);
}

export interface ExponentialBackoff extends JitterOptions {
  initialMs: number;
  maxMs: number;
}

/** initialMs · 2^attempt, capped at maxMs (attempt 0 is the first retry). */
export function exponentialDelayMs(attempt: number, opts: ExponentialBackoff): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 30);
  return withJitter(Math.min(opts.maxMs, opts.initialMs * 2 ** exp), opts);
}

/**
 * Wait before the next reconnect attempt, `outageMs` into an outage: it grows with the outage
 * (attempts land at roughly twice the elapsed time, an exponential backoff in time) up to
 * maxMs. It depends on time, not on a call count, because the NATS client asks again every
 * time it wakes up while waiting.
 */
export function reconnectWaitMs(outageMs: number, opts: { initialMs: number; maxMs: number }): number {
  return Math.round(Math.min(opts.maxMs, opts.initialMs + Math.max(0, outageMs) / 2));
}
