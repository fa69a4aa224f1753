import { InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { loadFixture } from '../../test/indicator-fixtures.js';
import {
  computeIndicator,
  describeIndicators,
  INDICATOR_NAMES,
  type IndicatorName,
  indicatorDefinition,
  indicators,
  type Ohlcv,
} from './index.js';

const candle = fc
  .record({
    low: fc.double({ min: 1, max: 1e5, noNaN: true }),
    spread: fc.double({ min: 0, max: 50, noNaN: true }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    // Real volumes are whole lots (>= 1e-8) or none; subnormal doubles are not volumes.
    volume: fc.oneof(fc.constant(0), fc.double({ min: 1e-8, max: 1e4, noNaN: true })),
  })
  .map(({ low, spread, at, volume }): Ohlcv => {
    const close = low + at * spread;
    return { open: close, high: low + spread, low, close, volume };
  });

/** Small parameters for each indicator, so that random inputs cross the warm-up. */
const smallParams: Record<IndicatorName, fc.Arbitrary<Record<string, unknown>>> = {
  sma: fc.record({ period: fc.integer({ min: 1, max: 12 }) }),
  ema: fc.record({ period: fc.integer({ min: 1, max: 12 }), seed: fc.constantFrom('ewm', 'sma') }),
  wma: fc.record({ period: fc.integer({ min: 1, max: 12 }) }),
  rsi: fc.record({ period: fc.integer({ min: 1, max: 12 }), seed: fc.constantFrom('ewm', 'sma') }),
  macd: fc
    .record({
      fast: fc.integer({ min: 1, max: 6 }),
      extra: fc.integer({ min: 1, max: 6 }),
      signal: fc.integer({ min: 1, max: 6 }),
    })
    .map(({ fast, extra, signal }) => ({ fast, slow: fast + extra, signal })),
  bollinger: fc.record({
    period: fc.integer({ min: 1, max: 12 }),
    k: fc.double({ min: 0.5, max: 3, noNaN: true }),
  }),
  atr: fc.record({ period: fc.integer({ min: 1, max: 12 }) }),
  vwap: fc.record({
    period: fc.integer({ min: 1, max: 12 }),
    mode: fc.constantFrom('rolling', 'cumulative'),
  }),
};

describe('indicator registry', () => {
  it('serves sma, ema, wma, rsi, macd, bollinger, atr and vwap', () => {
    expect([...INDICATOR_NAMES].sort()).toEqual([
      'atr',
      'bollinger',
      'ema',
      'macd',
      'rsi',
      'sma',
      'vwap',
      'wma',
    ]);
  });

  it('applies defaults and coerces query-string values', () => {
    expect(computeIndicator('rsi', []).params).toEqual({ period: 14, source: 'close', seed: 'ewm' });
    expect(computeIndicator('macd', []).params).toEqual({
      fast: 12,
      slow: 26,
      signal: 9,
      source: 'close',
      seed: 'ewm',
    });
    expect(computeIndicator('bollinger', [], { period: '10', k: '2.5' }).params).toEqual({
      period: 10,
      k: 2.5,
      source: 'close',
    });
    expect(computeIndicator('vwap', [], { mode: 'cumulative' }).params).toEqual({
      period: 14,
      mode: 'cumulative',
    });
  });

  it.each([
    ['sma', { period: '0' }],
    ['sma', { period: '1001' }],
    ['sma', { period: '2.5' }],
    ['sma', { period: 'abc' }],
    ['sma', { perod: '5' }],
    ['ema', { seed: 'wilder' }],
    ['rsi', { source: 'volume' }],
    ['macd', { fast: '26', slow: '12' }],
    ['bollinger', { k: '0' }],
    ['bollinger', { k: '11' }],
    ['vwap', { mode: 'session' }],
  ])('rejects %s with %o', (name, params) => {
    expect(() => computeIndicator(name, [], params)).toThrow(ZodError);
  });

  it('accepts the bounds themselves', () => {
    expect(() => computeIndicator('sma', [], { period: '1' })).not.toThrow();
    expect(() => computeIndicator('sma', [], { period: '1000' })).not.toThrow();
  });

  it('names the valid indicators when the name is unknown', () => {
    const err = (() => {
      try {
        indicatorDefinition('stoch');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err).toMatchObject({
      status: 400,
      code: 'unknown_indicator',
      details: { indicators: INDICATOR_NAMES },
    });
    expect(() => computeIndicator('__proto__', [])).toThrow(InvalidInputError);
  });

  it('describes every indicator with its series and a JSON schema of its parameters', () => {
    const described = describeIndicators();
    expect(described.map((d) => d.name)).toEqual(INDICATOR_NAMES);
    const macd = described.find((d) => d.name === 'macd')!;
    expect(macd.series).toEqual(['macd', 'signal', 'histogram']);
    expect(macd.params).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: { fast: { type: 'integer', default: 12, minimum: 1, maximum: 1000 } },
    });
  });

  it('computes the fixture values through the registry (RSI 14 on cs-rsi.csv)', () => {
    const f = loadFixture('cs-rsi.csv');
    const { series } = computeIndicator('rsi', f.candles(), { period: '14' });
    const last = f.rows.length - 1;
    expect(series.rsi![last]).toBeCloseTo(Number(f.rows[last]!.RSI), 6);
  });

  it('reads the price the source names', () => {
    const candles = [{ open: 1, high: 4, low: 0, close: 2, volume: 1 }];
    const value = (source: string) => computeIndicator('sma', candles, { period: 1, source }).series.sma![0];
    expect(['open', 'high', 'low', 'close', 'hl2', 'hlc3', 'ohlc4'].map(value)).toEqual([
      1,
      4,
      0,
      2,
      2,
      2,
      7 / 4,
    ]);
  });

  it.each(INDICATOR_NAMES)(
    '%s: returns its series aligned with the input, all defined from `lookback` on',
    (name) => {
      fc.assert(
        fc.property(fc.array(candle, { maxLength: 40 }), smallParams[name], (candles, raw) => {
          const { series, lookback, params } = computeIndicator(name, candles, raw);
          expect(Object.keys(series)).toEqual(indicators[name].series);
          const all = Object.values(series);
          for (const values of all) expect(values).toHaveLength(candles.length);
          // VWAP has no value over a window without volume, wherever it is.
          const noVolume = (i: number) => {
            if (name !== 'vwap') return false;
            const from = params.mode === 'cumulative' ? 0 : i - (params.period as number) + 1;
            return candles.slice(from, i + 1).every((c) => c.volume === 0);
          };
          for (let i = 0; i < candles.length; i++) {
            const defined = all.every((values) => values[i] !== null);
            if (i >= lookback) expect(defined || noVolume(i), `index ${i}`).toBe(true);
            else if (i === lookback - 1) expect(defined, 'lookback is the first such index').toBe(false);
            for (const values of all) if (values[i] !== null) expect(Number.isFinite(values[i])).toBe(true);
          }
        }),
        { numRuns: 60 },
      );
    },
  );

  it.each(INDICATOR_NAMES)('%s: empty input gives empty series; period 1 works', (name) => {
    const empty = computeIndicator(name, []);
    for (const values of Object.values(empty.series)) expect(values).toEqual([]);
    const one = name === 'macd' ? { fast: 1, slow: 2, signal: 1 } : { period: 1 };
    const candles = [
      { open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 },
      { open: 1.5, high: 2.5, low: 1, close: 2, volume: 1 },
    ];
    const { series, lookback } = computeIndicator(name, candles, one);
    for (const values of Object.values(series))
      expect(values.slice(lookback).every((v) => v !== null)).toBe(true);
  });
});
