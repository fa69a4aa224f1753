export * from './concurrency.js';
export * from './config.js';
export * from './disk-free.js';
export * from './errors.js';
export * from './http.js';
export * from './lifecycle.js';
export * from './logger.js';
export * from './metrics.js';
