export { type CandleAggregatorApp, type CandleAggregatorDeps, createCandleAggregator } from './app.js';
export { type CandleConfig, candleConfigSchema } from './config.js';
export * from './domain/index.js';
export { CandleLake, readCandleFiles } from './lake/candle-lake.js';
export { candlePartition, latestRevisions } from './lake/rows.js';
export { ownedPartitions, symbolPartition } from './partitioning.js';
