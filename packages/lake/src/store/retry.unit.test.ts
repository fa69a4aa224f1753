import { describe, expect, it } from 'vitest';
import { backoffDelay, withRetry } from './retry.js';

const opts = { attempts: 4, baseDelayMs: 100, maxDelayMs: 500 };

describe('withRetry', () => {
  it('retries retryable failures with growing, capped delays, then succeeds', async () => {
    const delays: number[] = [];
    let calls = 0;
    const out = await withRetry(
      async (attempt) => {
        calls++;
        expect(attempt).toBe(calls - 1);
        if (calls < 4) throw new Error('flaky');
        return 'ok';
      },
      () => true,
      opts,
      async (ms) => {
        delays.push(ms);
      },
    );
    expect(out).toBe('ok');
    expect(calls).toBe(4);
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(500, 100 * 2 ** i));
    });
  });

  it('gives up after the last attempt and rethrows the last error', async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new Error(`fail ${calls}`);
      },
      () => true,
      opts,
      async () => {},
    ).catch((e: Error) => e);
    expect(calls).toBe(4);
    expect((err as Error).message).toBe('fail 4');
  });

  it('does not retry what shouldRetry refuses', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new Error('fatal');
        },
        () => false,
        opts,
        async () => {},
      ),
    ).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });

  it('backoffDelay is full jitter under min(max, base·2^n)', () => {
    expect(backoffDelay(0, opts, () => 0.999)).toBe(99);
    expect(backoffDelay(2, opts, () => 0.5)).toBe(200);
    expect(backoffDelay(10, opts, () => 0.999)).toBe(499);
    expect(backoffDelay(3, opts, () => 0)).toBe(0);
  });
});
