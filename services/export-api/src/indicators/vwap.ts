import { type Ohlcv, typicalPrice } from './candle.js';
import { CompensatedSum, rollingSums } from './compensated-sum.js';
import { nullSeries, type Series } from './series.js';

export const VWAP_MODES = ['rolling', 'cumulative'] as const;
export type VwapMode = (typeof VWAP_MODES)[number];

export interface VwapParams {
  /** window length in candles, for `rolling` */
  period: number;
  /** `rolling` (`ta`): the last `period` candles; `cumulative`: from the first candle given */
  mode?: VwapMode;
}

/**
 * Volume-weighted average price: sum(typical price * volume) / sum(volume), where typical
 * price = (high + low + close) / 3. `rolling` is first defined at index period-1;
 * `cumulative` anchors at the first candle of the input (so it depends on where the
 * requested range starts). A window without any volume has no price: null.
 */
export function vwap(candles: readonly Ohlcv[], params: VwapParams): Series {
  const n = candles.length;
  const out = nullSeries(n);
  const pv = new Float64Array(n);
  const volume = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = candles[i]!;
    pv[i] = typicalPrice(c) * c.volume;
    volume[i] = c.volume;
  }
  if ((params.mode ?? 'rolling') === 'cumulative') {
    const pvSum = new CompensatedSum();
    const volumeSum = new CompensatedSum();
    let traded = false;
    for (let i = 0; i < n; i++) {
      pvSum.add(pv[i]!);
      volumeSum.add(volume[i]!);
      traded ||= volume[i] !== 0;
      if (traded) out[i] = pvSum.value / volumeSum.value;
    }
    return out;
  }
  const { period } = params;
  const pvSums = rollingSums(pv, period);
  const volumeSums = rollingSums(volume, period);
  // Counting the candles with volume tells "no volume in the window" exactly, where a
  // compensated sum of volumes that came and went could leave a residue of a few ulps.
  let withVolume = 0;
  for (let i = 0; i < n; i++) {
    if (volume[i] !== 0) withVolume++;
    if (i >= period && volume[i - period] !== 0) withVolume--;
    if (i >= period - 1 && withVolume > 0) out[i] = pvSums[i]! / volumeSums[i]!;
  }
  return out;
}
