import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type Bus, publishJson } from '@parquetry/bus';
import {
  CANDLES,
  type Catalog,
  candlePeriod,
  type LakeCommitted,
  type NewFile,
  type ObjectStore,
  type PartitionValues,
  partitionPath,
  type Timeframe,
  writeLakeFiles,
} from '@parquetry/lake';

/**
 * Candles into a lake the way candle-aggregator writes them (services/candle-aggregator
 * src/lake/candle-lake.ts): one Parquet file per partition `candles/timeframe/symbol/period`
 * with every CANDLES column, committed partition by partition through the real catalog, and a
 * `lake.committed.candles` notice on the bus when asked.
 */
export interface CandleInput {
  symbol: string;
  timeframe: Timeframe;
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  vwap: number;
  revision: number;
}

export const TF_MS: Record<Timeframe, number> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};

const COLUMNS = Object.entries(CANDLES.columns).map(([name, type]) => ({ name, type }));

export interface CandleWriter {
  conn: DuckDBConnection;
  store: ObjectStore;
  catalog: Catalog;
  bus?: Pick<Bus, 'js'>;
}

export interface Written {
  commitIds: string[];
  event: LakeCommitted;
  files: NewFile[];
}

/** Writes and commits `candles` (any series); publishes the notice unless `publish: false`. */
export async function writeCandles(
  w: CandleWriter,
  candles: readonly CandleInput[],
  opts: { publish?: boolean } = {},
): Promise<Written> {
  const groups = new Map<string, { values: PartitionValues; rows: Record<string, unknown>[] }>();
  for (const c of candles) {
    const values = { timeframe: c.timeframe, symbol: c.symbol, period: candlePeriod(c.timeframe, c.start) };
    const k = partitionPath(CANDLES.partitionColumns, values);
    let g = groups.get(k);
    if (!g) {
      g = { values, rows: [] };
      groups.set(k, g);
    }
    g.rows.push({ ...c, period: values.period, end: c.start + TF_MS[c.timeframe] });
  }
  const event: LakeCommitted = {
    dataset: CANDLES.name,
    commit_id: `test-${randomBytes(6).toString('hex')}`,
    committed_at: new Date().toISOString(),
    operation: 'append',
    partitions: [],
  };
  const commitIds: string[] = [];
  const allFiles: NewFile[] = [];
  for (const g of groups.values()) {
    const files = await writeLakeFiles({
      conn: w.conn,
      store: w.store,
      dir: `${CANDLES.root}/${partitionPath(CANDLES.partitionColumns, g.values)}`,
      fileName: () => `candles_test_${randomBytes(8).toString('hex')}.parquet`,
      columns: COLUMNS,
      batches: [g.rows.sort((a, b) => (a.start as number) - (b.start as number))],
      timeField: 'start',
    });
    const commitId = `${event.commit_id}-${commitIds.length}`;
    await w.catalog.commit({
      dataset: CANDLES.name,
      commitId,
      changes: [{ partition: g.values, add: files }],
    });
    commitIds.push(commitId);
    allFiles.push(...files);
    event.partitions.push({
      values: g.values,
      added: files.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
      removed: [],
    });
  }
  if (opts.publish !== false && w.bus) {
    await publishJson(w.bus.js, `lake.committed.${CANDLES.name}`, event, { msgId: event.commit_id });
  }
  return { commitIds, event, files: allFiles };
}

/** A deterministic random walk of `n` candles from `start` (no two candles alike). */
export function syntheticSeries(
  symbol: string,
  timeframe: Timeframe,
  start: number,
  n: number,
  seed = 1,
): CandleInput[] {
  let s = seed >>> 0;
  const random = () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    return s / 2 ** 32;
  };
  let price = 100 + seed;
  const out: CandleInput[] = [];
  for (let i = 0; i < n; i++) {
    const open = price;
    const close = Math.max(1, Math.round((open + (random() - 0.5) * 2) * 100) / 100);
    const high = Math.round((Math.max(open, close) + random()) * 100) / 100;
    const low = Math.round((Math.min(open, close) - random()) * 100) / 100;
    const volume = Math.round(random() * 100_000) / 100;
    out.push({
      symbol,
      timeframe,
      start: start + i * TF_MS[timeframe],
      open,
      high,
      low,
      close,
      volume,
      trades: 1 + Math.floor(random() * 500),
      vwap: Math.round(((high + low + close) / 3) * 100) / 100,
      revision: 0,
    });
    price = close;
  }
  return out;
}
