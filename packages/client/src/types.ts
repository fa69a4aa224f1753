/**
 * Request and response types of export-api, mirrored from the service's zod schemas
 * (services/export-api/src/api/schemas.ts, src/candles/schemas.ts) so this package has no
 * dependencies. export-api's client test checks at compile time that the export, dataset,
 * health and error types equal what the schemas infer.
 */

export type ExportFormat = 'parquet' | 'csv' | 'json';
export type Compression = 'snappy' | 'zstd' | 'gzip' | 'brotli' | 'lz4' | 'none';
export type ExportStatus = 'running' | 'succeeded' | 'failed';
export type Scalar = string | number | boolean;

export type Filter =
  | { column: string; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: Scalar }
  | { column: string; op: 'in'; value: Scalar[] }
  | { column: string; op: 'between'; value: [Scalar, Scalar] }
  | { column: string; op: 'like'; value: string }
  | { column: string; op: 'is_null'; value: boolean };

export interface ExportRequest {
  dataset: string;
  /** `json` is NDJSON, one object per line. */
  format: ExportFormat;
  /** parquet: any (default snappy); csv and json: gzip or none (default none). */
  compression?: Compression | undefined;
  /** One file per value of these columns. */
  partition_by?: string[] | undefined;
  /** On the dataset's time column: start inclusive, end exclusive (a bare date includes that day). */
  date_range?: { start: string; end: string } | undefined;
  filters?: Filter[] | undefined;
  columns?: string[] | undefined;
  /** At most this many rows, oldest first. */
  limit?: number | undefined;
  /** Lifetime of the signed URLs in seconds (default 3600, at most the server's maximum). */
  expires_in?: number | undefined;
}

export interface ExportFile {
  file_path: string;
  file_size: number;
  signed_url: string;
}

export interface ExportResult {
  export_id: string;
  status: ExportStatus;
  dataset: string;
  format: ExportFormat;
  compression: Compression;
  partition_by: string[];
  /** The file, or the export directory when it has several. */
  file_path: string | null;
  /** Bytes, all files together. */
  file_size: number | null;
  row_count: number | null;
  schema: Record<string, string> | null;
  created_at: string;
  finished_at: string | null;
  expires_at: string | null;
  /** The single file; null while running, on failure, or with several files. */
  signed_url: string | null;
  files: ExportFile[];
  error?: { code: string; message: string } | undefined;
}

export interface ExportEstimate {
  dataset: string;
  source_files: number;
  source_rows: number;
  source_bytes: number;
  max_rows: number | null;
}

export interface DatasetInfo {
  name: string;
  description?: string | undefined;
  partition_columns: string[];
  /** Column → DuckDB type. */
  schema: Record<string, string>;
  columns: string[];
  time_column?: string | undefined;
  derived_from?: string | undefined;
}

export interface Health {
  status: 'ok' | 'degraded';
  parquet_support: boolean;
  duckdb_version: string | null;
  available_datasets: string[];
  timestamp: string;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

// ---- candles ------------------------------------------------------------------------------

export type Timeframe = '1m' | '5m' | '15m' | '1h' | '4h' | '1d';
export type DataSource = 'cache' | 'lake' | 'postgres';
/** ISO-8601 text, a Date, or epoch milliseconds. */
export type TimeInput = string | number | Date;

export interface CandleWindow {
  symbol?: string | undefined;
  timeframe: Timeframe;
  start?: TimeInput | undefined;
  end?: TimeInput | undefined;
  limit?: number | undefined;
}

export interface Candle {
  ts: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
}

export interface CandlesResult {
  symbol: string;
  timeframe: Timeframe;
  data_source: DataSource;
  candles: Candle[];
}

export interface LatestCandleResult {
  symbol: string;
  timeframe: Timeframe;
  data_source: DataSource;
  candle: Candle;
}

export interface CandleSummary {
  symbol: string;
  timeframe: Timeframe;
  data_source: DataSource;
  count: number;
  start: string | null;
  end: string | null;
  open: number | null;
  close: number | null;
  high: number | null;
  low: number | null;
  avg_close: number | null;
  volume: number;
  trades: number;
  vwap: number | null;
}

export interface IndicatorRequest extends CandleWindow {
  /** sma, ema, wma, rsi, macd, bollinger, atr or vwap. */
  indicator: string;
  /** The indicator's own parameters (`period`, `fast`, `slow`, `signal`, `stddev`, …). */
  params?: Record<string, string | number> | undefined;
}

export interface IndicatorResult {
  symbol: string;
  timeframe: Timeframe;
  data_source: DataSource;
  indicator: string;
  params: Record<string, unknown>;
  lookback: number;
  series: string[];
  values: ({ ts: string } & Record<string, number | null | string>)[];
}

export interface TimeframesResult {
  symbol: string;
  data_source: 'lake' | 'postgres';
  timeframes: { timeframe: Timeframe; first: string; last: string }[];
}

export interface WarmRequest {
  symbols?: string[] | undefined;
  timeframes?: Timeframe[] | undefined;
  partitions?: number | undefined;
}

export interface WarmResult {
  series: number;
  loaded: number;
  cached: number;
  skipped: number;
  candles: number;
  cache: { bytes: number; max_bytes: number; partitions: number };
}

export interface RouteLatency {
  count: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface StatsResult {
  cache: {
    enabled: boolean;
    hits: number;
    misses: number;
    hit_ratio: number | null;
    loads: number;
    evictions: number;
    invalidations: number;
    bytes: number;
    max_bytes: number;
    partitions: number;
    live_candles: number;
  };
  routes: Record<string, RouteLatency>;
  since: string;
}
