export * from './fixtures/csv.js';
export * from './fixtures/products.js';
export * from './nats.js';
export * from './parquet.js';
export * from './postgres.js';
export * from './require.js';
export * from './s3.js';
export * from './tmp.js';
