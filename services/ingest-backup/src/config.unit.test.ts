import { loadConfig } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { ingestConfigSchema } from './config.js';

describe('ingest-backup config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(ingestConfigSchema, {});
    expect(c.NATS_URL).toBe('nats://127.0.0.1:4222');
    expect(c.LAKE_URL).toBe('file://./data/lake');
    expect(c.HTTP_PORT).toBe(9101);
    expect(c.MAX_FILE_SIZE_MB).toBe(100);
    expect(c.PARQUET_MAX_AGE_DAYS).toBe(30);
  });

  it('names the variable in a bad value', () => {
    expect(() => loadConfig(ingestConfigSchema, { PARQUET_MAX_AGE_DAYS: 'soon' })).toThrow(
      /PARQUET_MAX_AGE_DAYS/,
    );
    expect(() => loadConfig(ingestConfigSchema, { LAKE_URL: 'ftp://x' })).toThrow(/LAKE_URL/);
    expect(() => loadConfig(ingestConfigSchema, { ARCHIVE_TICKS: 'maybe' })).toThrow(/ARCHIVE_TICKS/);
  });
});
