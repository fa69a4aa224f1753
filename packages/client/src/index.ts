// @parquetry/client: a typed, dependency-free client of export-api (fetch-based, Node 20+).
export * from './client.js';
export * from './errors.js';
export type * from './types.js';
