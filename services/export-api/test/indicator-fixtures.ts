import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { csvRecords, sharedDataDir } from '@parquetry/testkit';
import { expect } from 'vitest';
import type { Ohlcv } from '../src/indicators/index.js';

/**
 * The indicator fixtures in shared/data/indicators (the Python `ta` library's test data,
 * mostly StockCharts ChartSchool spreadsheets), read with the text of every cell so that
 * each expected value is compared at the precision it was printed with.
 */
export interface Fixture {
  name: string;
  rows: Record<string, string>[];
  /** a numeric column; throws on text that is not a number (an empty cell is NaN) */
  numbers(column: string): number[];
  candles(): Ohlcv[];
}

export function loadFixture(file: string): Fixture {
  const rows = csvRecords(readFileSync(join(sharedDataDir(), 'indicators', file), 'utf8'));
  const numbers = (column: string) =>
    rows.map((r, i) => {
      const text = r[column];
      if (text === undefined) throw new Error(`${file}: no column ${column}`);
      if (text.trim() === '') return Number.NaN;
      const v = Number(text);
      if (!Number.isFinite(v)) throw new Error(`${file}: row ${i} ${column} is not a number: ${text}`);
      return v;
    });
  return {
    name: file,
    rows,
    numbers,
    candles() {
      const has = (c: string) => rows[0]?.[c] !== undefined;
      const close = numbers('Close');
      const high = has('High') ? numbers('High') : close;
      const low = has('Low') ? numbers('Low') : close;
      const open = has('Open') ? numbers('Open') : close;
      const volume = has('Volume') ? numbers('Volume') : close.map(() => 0);
      return close.map((c, i) => ({
        open: open[i]!,
        high: high[i]!,
        low: low[i]!,
        close: c,
        volume: volume[i]!,
      }));
    },
  };
}

/**
 * Tolerance for a value printed as `text`: half a unit in its last printed digit (the
 * rounding the printing did), plus 1e-12 relative for the order of floating-point
 * operations differing between the spreadsheet and us (matters only for the fixtures
 * printed with every digit, such as cs-vwap.csv).
 */
export function printedTolerance(text: string): number {
  const m = /^[-+]?(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`not a number: ${text}`);
  const decimals = (m[2]?.length ?? 0) - Number(m[3] ?? 0);
  return 0.5 * 10 ** -decimals + 1e-12 * Math.max(1, Math.abs(Number(text)));
}

export interface CompareOptions {
  /** first row compared (rows before are the fixture's warm-up or history we cannot know) */
  from?: number;
  /** last row compared, inclusive */
  to?: number;
  /** decimals the fixture's author rounded to, when fewer than the printed digits show */
  roundedTo?: number;
}

/**
 * Every row of `column` that has a value (from `from` on) equals `actual` within
 * printedTolerance. Returns how many rows were compared, and fails when none were.
 */
export function expectMatches(
  fixture: Fixture,
  column: string,
  actual: readonly (number | null)[],
  opts: CompareOptions = {},
): number {
  expect(actual.length, `${fixture.name} ${column}: length`).toBe(fixture.rows.length);
  const failures: string[] = [];
  let compared = 0;
  const last = opts.to ?? fixture.rows.length - 1;
  for (let i = opts.from ?? 0; i <= last; i++) {
    const text = fixture.rows[i]?.[column];
    if (text === undefined) throw new Error(`${fixture.name}: no column ${column}`);
    if (text.trim() === '') continue;
    compared++;
    const expected = Number(text);
    const got = actual[i];
    const tol =
      opts.roundedTo === undefined
        ? printedTolerance(text)
        : Math.max(printedTolerance(text), 0.5 * 10 ** -opts.roundedTo + 1e-12 * Math.abs(expected));
    if (got === null || got === undefined || !(Math.abs(got - expected) <= tol)) {
      failures.push(`row ${i}: expected ${text} ±${tol.toExponential(1)}, got ${got}`);
    }
  }
  expect(failures, `${fixture.name} ${column}`).toEqual([]);
  expect(compared, `${fixture.name} ${column}: rows compared`).toBeGreaterThan(0);
  return compared;
}

/** Candles from plain closes (open = high = low = close), for property tests. */
export function closesToCandles(closes: readonly number[], volume = 1): Ohlcv[] {
  return closes.map((c) => ({ open: c, high: c, low: c, close: c, volume }));
}
