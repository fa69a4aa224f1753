/**
 * The operator side of candle-aggregator, for `parquetry candles …` (packages/cli): backfill and
 * update candles from the raw tick archive, verify and repair candle files. No NATS consumer,
 * no ownership: the CLI passes its own catalog, store and DuckDB connection.
 */
export { CandleBuilder, rollUpCandles, sameValues } from './maintenance/build.js';
export {
  type BackfillOptions,
  CandleMaintenance,
  type CandleMaintenanceDeps,
  type CandleSource,
  type FileCheck,
  type FileProblem,
  type PartitionReport,
  periodRange,
  type RebuildReport,
  type UpdateOptions,
  type VerifyOptions,
  type VerifyReport,
} from './maintenance/maintenance.js';
export { diffPartition, type PartitionDiff, type RebuildPolicy } from './maintenance/plan.js';
