export interface RetryOptions {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };

/** Full-jitter exponential backoff: a random delay in [0, min(max, base·2^attempt)]. */
export function backoffDelay(
  attempt: number,
  opts: RetryOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/**
 * Runs `fn` until it succeeds, `shouldRetry` says no, or the attempts are spent; the last error
 * is rethrown as is. `fn` gets the attempt number so it can rebuild one-shot inputs (streams).
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  shouldRetry: (err: unknown) => boolean,
  opts: RetryOptions = DEFAULT_RETRY,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= opts.attempts || !shouldRetry(err)) throw err;
      await sleep(backoffDelay(attempt, opts));
    }
  }
}
