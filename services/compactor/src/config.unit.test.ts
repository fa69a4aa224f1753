import { loadConfig } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { compactorConfigSchema } from './config.js';
import { parseJob } from './jobs.js';

describe('compactor configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(compactorConfigSchema, {});
    expect(c.HTTP_PORT).toBe(9103);
    expect(c.DUCKDB_MEMORY_LIMIT).toBe('1GB');
    expect(c.TARGET_FILE_SIZE_MB).toBe(128);
    expect(c.POLICY_DATASETS).toEqual(['products', 'ticks', 'candles']);
    expect(c.COMPACTOR_CRASH_AT).toBeUndefined();
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig(compactorConfigSchema, { DUCKDB_MEMORY_LIMIT: 'lots' })).toThrow(
      /DUCKDB_MEMORY_LIMIT/,
    );
    expect(() => loadConfig(compactorConfigSchema, { COMPACTOR_CRASH_AT: 'nowhere' })).toThrow(
      /COMPACTOR_CRASH_AT/,
    );
    expect(() => loadConfig(compactorConfigSchema, { POLICY_SMALL_FILE_MB: '500' })).toThrow(
      /POLICY_SMALL_FILE_MB/,
    );
  });
});

describe('job payloads', () => {
  it('fills defaults and names the field of a bad job', () => {
    expect(parseJob('compact', { dataset: 'ticks' })).toMatchObject({
      dry_run: false,
      backup: false,
      min_file_count: 2,
    });
    expect(() => parseJob('compact', { dataset: 'ticks', extra: 1 })).toThrow(/compact job/);
    expect(() => parseJob('upsert', { dataset: 'ticks', source: { key: 'x' }, key_columns: [] })).toThrow(
      /key_columns/,
    );
    expect(() => parseJob('delete', { dataset: 'Ticks; DROP', filters: [] })).toThrow(/dataset/);
  });
});
