import {
  CANDLES,
  type ColumnType,
  candlePeriod,
  type PartitionValues,
  partitionPath,
  TIMEFRAMES,
  type Timeframe,
} from '@parquetry/lake';
import type { CandleRecord } from '../domain/candle.js';

/**
 * Candles as lake rows (`CANDLES` in @parquetry/lake): one row per candle revision, the
 * partition columns (timeframe, symbol, period) stored in the file too. A reader keeps, for
 * each (symbol, timeframe, start), the row with the highest revision (docs/adr/0003).
 */
export interface CandleRow extends Record<string, unknown> {
  timeframe: Timeframe;
  symbol: string;
  period: string;
  start: number;
  end: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  vwap: number;
  revision: number;
}

export const CANDLE_COLUMNS: readonly { name: string; type: ColumnType }[] = Object.entries(
  CANDLES.columns,
).map(([name, type]) => ({ name, type }));

export function candlePartition(c: Pick<CandleRecord, 'timeframe' | 'symbol' | 'start'>): PartitionValues {
  return { timeframe: c.timeframe, symbol: c.symbol, period: candlePeriod(c.timeframe, c.start) };
}

export function candlePartitionDir(values: PartitionValues): string {
  return `${CANDLES.root}/${partitionPath(CANDLES.partitionColumns, values)}`;
}

export function toCandleRow(c: CandleRecord): CandleRow {
  return {
    timeframe: c.timeframe,
    symbol: c.symbol,
    period: candlePeriod(c.timeframe, c.start),
    start: c.start,
    end: c.end,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    trades: c.trades,
    vwap: c.vwap,
    revision: c.revision,
  };
}

const TF_ORDER = new Map<string, number>(TIMEFRAMES.map((tf, i) => [tf, i]));

/** Symbol, then timeframe (1m … 1d), then start. */
export function compareCandles(a: CandleRecord, b: CandleRecord): number {
  if (a.symbol !== b.symbol) return a.symbol < b.symbol ? -1 : 1;
  const t = TF_ORDER.get(a.timeframe)! - TF_ORDER.get(b.timeframe)!;
  return t !== 0 ? t : a.start - b.start;
}

export const candleKey = (c: Pick<CandleRecord, 'symbol' | 'timeframe' | 'start'>) =>
  `${c.symbol}\u0000${c.timeframe}\u0000${c.start}`;

/** The latest revision of each candle (ties: the later in the list). */
export function latestRevisions(candles: Iterable<CandleRecord>): CandleRecord[] {
  const out = new Map<string, CandleRecord>();
  for (const c of candles) {
    const k = candleKey(c);
    const prev = out.get(k);
    if (!prev || prev.revision <= c.revision) out.set(k, c);
  }
  return [...out.values()].sort(compareCandles);
}
