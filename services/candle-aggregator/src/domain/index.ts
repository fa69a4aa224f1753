export * from './aggregator.js';
export * from './binance.js';
export * from './candle.js';
export * from './exact-sum.js';
export * from './reference.js';
export * from './rollup.js';
export * from './snapshot.js';
export * from './time.js';
