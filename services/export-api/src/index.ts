// Public entry of @parquetry/export-api: the app factory and seams for main(), the key-file
// functions for the operator CLI (`keys create`), and the pure query/signing modules.

export * from './api/schemas.js';
export * from './app.js';
export * from './audit.js';
export * from './auth/keys.js';
export * from './auth/plugin.js';
export * from './candles/config.js';
export * from './candles/module.js';
export * from './candles/schemas.js';
export * from './config.js';
export * from './datasets.js';
export { SandboxedDuckDB } from './duck/sandboxed-duckdb.js';
export * from './errors.js';
export * from './exports/engine.js';
export * from './exports/links.js';
export * from './exports/records.js';
export * from './exports/service.js';
export * from './openapi.js';
export * from './query/sandbox.js';
export * from './rate-limit.js';
export type { DownloadStore } from './routes/downloads.js';
export * from './server.js';
export * from './signing.js';
