/**
 * Exact floating-point summation (Shewchuk's algorithm, as in Python's `math.fsum`).
 *
 * A sum is kept as a list of non-overlapping partials whose exact total is the exact
 * real sum of every number added. `partialsValue` rounds that total once, correctly, so
 * the result does not depend on the order of additions or on how they were grouped.
 * That is what makes candle volume and vwap bit-identical whether ticks arrive sorted,
 * shuffled, late, or are merged from 1m candles into roll-ups.
 *
 * Partials are plain finite numbers, so they survive JSON round trips exactly.
 * Assumes no overflow (candle sums are nowhere near 1e308).
 */
export type Partials = number[];

/** Adds `x` to `partials` in place. */
export function addToPartials(partials: Partials, x: number): void {
  let n = 0;
  for (let k = 0; k < partials.length; k++) {
    let y = partials[k]!;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) partials[n++] = lo;
    x = hi;
  }
  // Setting `length` is a slow runtime call in V8 even when nothing changes: only shrink
  // when the sum actually lost partials (same result, the common case is much cheaper).
  if (n + 1 < partials.length) partials.length = n + 1;
  partials[n] = x;
}

/** Adds every partial of `other` to `partials` in place (exact merge of two sums). */
export function mergePartials(partials: Partials, other: readonly number[]): void {
  for (const x of other) addToPartials(partials, x);
}

/** The exact sum, correctly rounded to the nearest double (ties to even). */
export function partialsValue(partials: readonly number[]): number {
  let n = partials.length;
  if (n === 0) return 0;
  n -= 1;
  let hi = partials[n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    n -= 1;
    const y = partials[n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  // Round half to even across the partials below: if the next partial has the same sign
  // as `lo`, the true sum is past the halfway point and `hi` must be rounded away.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi + 0;
}

/**
 * The canonical partials of an exact sum: its correctly rounded value, then the rounded value
 * of what remains, and so on until nothing remains (smallest first, like any partials list).
 * Depends only on the exact sum, never on how it was built; a sum of zero is `[0]`.
 */
export function canonicalPartials(partials: readonly number[]): Partials {
  const rest = [...partials];
  const out: number[] = [];
  for (;;) {
    const v = partialsValue(rest);
    if (v === 0) break;
    out.push(v);
    addToPartials(rest, -v);
  }
  return out.length === 0 ? [0] : out.reverse();
}

/** Correctly rounded sum of `values`, independent of their order. */
export function exactSum(values: Iterable<number>): number {
  const partials: Partials = [];
  for (const v of values) addToPartials(partials, v);
  return partialsValue(partials);
}
