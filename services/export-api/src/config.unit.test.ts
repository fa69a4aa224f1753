import { loadConfig } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { exportApiConfigSchema } from './config.js';

const base = { API_KEYS_FILE: '/etc/parquetry/keys.json', EXPORT_SIGNING_SECRET: 'x'.repeat(32) };

describe('export-api config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(exportApiConfigSchema, base);
    expect(c.HTTP_PORT).toBe(8080);
    expect(c.DOWNLOAD_URL_TTL_S).toBe(3600);
    expect(c.PUBLIC_BASE_URL).toBe('http://localhost:8080');
    expect(c.signingSecretEphemeral).toBe(false);
    expect(c.LAKE_URL).toBe('file://./data/lake');
  });

  it('requires the keys file', () => {
    expect(() =>
      loadConfig(exportApiConfigSchema, { EXPORT_SIGNING_SECRET: base.EXPORT_SIGNING_SECRET }),
    ).toThrow(/API_KEYS_FILE/);
  });

  it('requires a signing secret on a filesystem lake unless NODE_ENV is development or test', () => {
    const noSecret = { API_KEYS_FILE: base.API_KEYS_FILE };
    expect(() => loadConfig(exportApiConfigSchema, noSecret)).toThrow(/EXPORT_SIGNING_SECRET/);
    expect(() => loadConfig(exportApiConfigSchema, { ...noSecret, NODE_ENV: 'staging' })).toThrow(
      /EXPORT_SIGNING_SECRET/,
    );
    const dev = loadConfig(exportApiConfigSchema, { ...noSecret, NODE_ENV: 'development' });
    expect(dev.signingSecretEphemeral).toBe(true);
    expect(dev.EXPORT_SIGNING_SECRET).toHaveLength(64);
    // S3 lakes sign with S3; the secret is optional there.
    const s3 = loadConfig(exportApiConfigSchema, { ...noSecret, LAKE_URL: 's3://bucket/lake' });
    expect(s3.signingSecretEphemeral).toBe(true);
    expect(() => loadConfig(exportApiConfigSchema, { ...base, EXPORT_SIGNING_SECRET: 'short' })).toThrow(
      /EXPORT_SIGNING_SECRET/,
    );
  });

  it('checks the link lifetimes against each other', () => {
    expect(() =>
      loadConfig(exportApiConfigSchema, {
        ...base,
        DOWNLOAD_URL_TTL_S: '7200',
        DOWNLOAD_URL_MAX_TTL_S: '3600',
      }),
    ).toThrow(/DOWNLOAD_URL_TTL_S/);
    expect(() => loadConfig(exportApiConfigSchema, { ...base, DOWNLOAD_URL_MAX_TTL_S: '9999999' })).toThrow(
      /DOWNLOAD_URL_MAX_TTL_S/,
    );
    const c = loadConfig(exportApiConfigSchema, { ...base, PUBLIC_BASE_URL: 'https://data.example.com/' });
    expect(c.PUBLIC_BASE_URL).toBe('https://data.example.com');
  });
});
