/**
 * One value per input candle, aligned with the input. `null` marks a value that is not
 * defined: the warm-up before enough candles exist, or a ratio with nothing to divide by
 * (VWAP over a window without volume).
 */
export type Series = (number | null)[];

/** Values an indicator reads: a plain array, or a typed array built by another indicator. */
export type Values = ArrayLike<number>;

export function nullSeries(length: number): Series {
  return new Array<number | null>(length).fill(null);
}
