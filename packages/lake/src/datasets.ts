import { InvalidInputError } from '@parquetry/service';
import { TIMEFRAMES, type Timeframe } from './schemas.js';

/** DuckDB logical types used in dataset schemas. */
export type ColumnType =
  | 'VARCHAR'
  | 'BIGINT'
  | 'INTEGER'
  | 'DOUBLE'
  | 'BOOLEAN'
  | 'DATE'
  | 'TIMESTAMPTZ'
  | 'JSON';

export interface DatasetDef {
  name: string;
  /** Directory under LAKE_URL. */
  root: string;
  partitionColumns: readonly string[];
  /** Fixed columns, in file order. Datasets with free-form fields (products) add columns after these. */
  columns: Readonly<Record<string, ColumnType>>;
  /** Free-form records may carry more columns than `columns` lists. */
  openSchema: boolean;
  /** Column that holds event time, for date_range filters and retention. */
  timeColumn?: string;
  description: string;
}

export const PRODUCTS: DatasetDef = {
  name: 'products',
  root: 'products',
  partitionColumns: ['retailer', 'date'],
  columns: {
    backup_timestamp: 'TIMESTAMPTZ',
    backup_id: 'VARCHAR',
    retailer: 'VARCHAR',
    category: 'VARCHAR',
    date: 'DATE',
    batch_id: 'VARCHAR',
  },
  openSchema: true,
  timeColumn: 'backup_timestamp',
  description: 'Scraped products, one row per product, every original field kept',
};

export const TICKS: DatasetDef = {
  name: 'ticks',
  root: 'ticks',
  partitionColumns: ['symbol', 'date'],
  columns: {
    symbol: 'VARCHAR',
    date: 'DATE',
    ts: 'TIMESTAMPTZ',
    price: 'DOUBLE',
    size: 'DOUBLE',
    side: 'VARCHAR',
    trade_id: 'VARCHAR',
    stream_seq: 'BIGINT',
  },
  openSchema: false,
  timeColumn: 'ts',
  description: 'The raw tick archive, as received',
};

/**
 * Candles: `candles/timeframe=<tf>/symbol=<SYM>/period=<P>/`. The period is a calendar month
 * for 1m/5m/15m, a year for 1h/4h and `all` for 1d, so the last 1,000 candles of any timeframe
 * sit in one or two partitions (docs/adr/0003-candle-layout.md).
 */
export const CANDLES: DatasetDef = {
  name: 'candles',
  root: 'candles',
  partitionColumns: ['timeframe', 'symbol', 'period'],
  columns: {
    timeframe: 'VARCHAR',
    symbol: 'VARCHAR',
    period: 'VARCHAR',
    start: 'TIMESTAMPTZ',
    end: 'TIMESTAMPTZ',
    open: 'DOUBLE',
    high: 'DOUBLE',
    low: 'DOUBLE',
    close: 'DOUBLE',
    volume: 'DOUBLE',
    trades: 'BIGINT',
    vwap: 'DOUBLE',
    revision: 'INTEGER',
  },
  openSchema: false,
  timeColumn: 'start',
  description: 'OHLCV candles, 1m to 1d',
};

export function candlePeriod(tf: Timeframe, startMs: number): string {
  const iso = new Date(startMs).toISOString();
  if (tf === '1m' || tf === '5m' || tf === '15m') return iso.slice(0, 7);
  if (tf === '1h' || tf === '4h') return iso.slice(0, 4);
  return 'all';
}

export const DATASETS: readonly DatasetDef[] = [PRODUCTS, TICKS, CANDLES];
export { TIMEFRAMES };

export function getDataset(name: string): DatasetDef {
  const d = DATASETS.find((x) => x.name === name);
  if (!d) {
    throw new InvalidInputError(
      `unknown dataset ${JSON.stringify(name)}; valid: ${DATASETS.map((x) => x.name).join(', ')}`,
      {
        code: 'unknown_dataset',
        details: { valid: DATASETS.map((x) => x.name) },
      },
    );
  }
  return d;
}
