import type { Values } from './series.js';

/**
 * Neumaier (improved Kahan) summation. A sliding window adds its newest value and
 * subtracts its oldest; with a plain running sum every step leaves a rounding error
 * behind and long inputs drift. The compensation term carries those errors, so the
 * sum stays within a few ulps of the exact sum of the values added.
 */
export class CompensatedSum {
  private sum = 0;
  private compensation = 0;

  add(x: number): void {
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.compensation += this.sum - t + x;
    else this.compensation += x - t + this.sum;
    this.sum = t;
  }

  get value(): number {
    return this.sum + this.compensation;
  }

  reset(): void {
    this.sum = 0;
    this.compensation = 0;
  }
}

/** Compensated sum of `values[from..to)`. */
export function sumRange(values: Values, from: number, to: number): number {
  const s = new CompensatedSum();
  for (let i = from; i < to; i++) s.add(values[i]!);
  return s.value;
}

/**
 * Sum of every full window of `period` values (entry i covers `values[i-period+1..i]`),
 * NaN before the first full window. O(n): the window slides with compensated updates,
 * and is summed afresh every `period` steps (amortised O(1)) so that no error, however
 * small, can build up over a long input.
 */
export function rollingSums(values: Values, period: number): Float64Array {
  const n = values.length;
  const out = new Float64Array(n).fill(Number.NaN);
  if (n < period) return out;
  const sum = new CompensatedSum();
  for (let i = period - 1; i < n; i++) {
    if ((i - (period - 1)) % period === 0) {
      sum.reset();
      for (let j = i - period + 1; j <= i; j++) sum.add(values[j]!);
    } else {
      sum.add(values[i]!);
      sum.add(-values[i - period]!);
    }
    out[i] = sum.value;
  }
  return out;
}
