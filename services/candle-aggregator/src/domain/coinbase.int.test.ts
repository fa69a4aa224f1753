import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeTo, expectSameCandles } from '../../test/candle-expect.js';
import { type Duck, openDuck } from '../../test/duckdb.js';
import { COINBASE_DIR, readCoinbaseMinuteCsv, readZip } from '../../test/market-data.js';
import { type Bar, rollUp } from './rollup.js';
import { ROLLUP_TIMEFRAMES, TIMEFRAME_MS } from './time.js';

/**
 * Real Coinbase BTC-USD 1-minute bars (QuantConnect/Lean, 2016-10-07..09) rolled up with
 * `rollUp`, checked against DuckDB SQL reading the same CSVs on its own, and the 1d
 * roll-up against Lean's separately published daily bars.
 * The bars carry no trade count or vwap: each bar counts as trades = 1 with vwap = close,
 * so the roll-up's sums are checked too (count(*) and Σ close·volume / Σ volume).
 */
const DAYS = ['20161007', '20161008', '20161009'];

let duck: Duck;
let dir: string;
let bars: Bar[];

function parseBars(day: string, csv: string): Bar[] {
  const midnight = Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)));
  return csv
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [ms, open, high, low, close, volume] = line.split(',').map(Number) as [number, ...number[]];
      const start = midnight + ms;
      return {
        start,
        end: start + 60_000,
        open: open!,
        high: high!,
        low: low!,
        close: close!,
        volume: volume!,
        trades: 1,
        vwap: close!,
      };
    });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'coinbase-bars-'));
  bars = [];
  for (const day of DAYS) {
    const { name, csv } = readCoinbaseMinuteCsv(day);
    writeFileSync(join(dir, name), csv);
    bars.push(...parseBars(day, csv));
  }
  duck = await openDuck();
  await duck.conn.run(`
    CREATE TABLE bars AS
    SELECT epoch_ms(strptime(regexp_extract(filename, '(\\d{8})_btcusd', 1), '%Y%m%d')) + ms AS ts, o, h, l, c, v
    FROM read_csv('${dir}/*.csv', filename = true, header = false,
      columns = {'ms': 'BIGINT', 'o': 'DOUBLE', 'h': 'DOUBLE', 'l': 'DOUBLE', 'c': 'DOUBLE', 'v': 'DOUBLE'})`);
});

afterAll(() => {
  duck?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Coinbase minute bars → roll-ups', () => {
  it('reads the same bars as DuckDB', async () => {
    const [row] = await duck.rows<{ n: bigint; first: bigint; last: bigint }>(
      'SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM bars',
    );
    expect(bars.length).toBeGreaterThan(4_000);
    expect([bars.length, bars[0]!.start, bars.at(-1)!.start]).toEqual([
      Number(row!.n),
      Number(row!.first),
      Number(row!.last),
    ]);
  });

  it.each(ROLLUP_TIMEFRAMES)('rolls up to %s as DuckDB SQL does', async (tf) => {
    const ms = TIMEFRAME_MS[tf];
    const expected = await duck.rows<Bar>(`
      SELECT CAST(b AS DOUBLE) AS "start", CAST(b + ${ms} AS DOUBLE) AS "end",
             arg_min(o, ts) AS open, max(h) AS high, min(l) AS low, arg_max(c, ts) AS close,
             sum(v) AS volume, CAST(count(*) AS INTEGER) AS trades,
             CASE WHEN sum(v) = 0 THEN arg_max(c, ts) ELSE sum(c * v) / sum(v) END AS vwap
      FROM (SELECT *, (ts // ${ms}) * ${ms} AS b FROM bars) GROUP BY b ORDER BY b`);
    const ours = rollUp(bars, tf);
    expect(ours.length).toBeGreaterThan(0);
    expectSameCandles(ours, expected, tf);
  });

  it("matches Lean's own daily bars", () => {
    const daily = readZip(readFileSync(join(COINBASE_DIR, 'btcusd_trade.zip')));
    const rows = new Map(
      [...daily.values()][0]!
        .toString('utf8')
        .split('\n')
        .map((line) => line.trim().split(','))
        .filter((f) => f.length === 6)
        .map(([date, ...values]) => [date!.slice(0, 8), values.map(Number)] as const),
    );
    const days = rollUp(bars, '1d');
    expect(days).toHaveLength(DAYS.length);
    for (const [i, day] of DAYS.entries()) {
      const [open, high, low, close, volume] = rows.get(day)!;
      const ours = days[i]!;
      expect([ours.open, ours.high, ours.low, ours.close], day).toEqual([open, high, low, close]);
      expect(closeTo(ours.volume, volume!), `${day} volume ${ours.volume} vs ${volume}`).toBe(true);
    }
  });
});
