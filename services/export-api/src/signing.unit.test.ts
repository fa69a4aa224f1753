import { ConfigError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ForbiddenError } from './errors.js';
import { isExportObjectKey, signDownloadToken, verifyDownloadToken } from './signing.js';

const SECRET = 's'.repeat(32);
const NOW = Date.UTC(2025, 8, 3, 12);
const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const payload = { v: 1 as const, key: `exports/${ID}/data.parquet`, export_id: ID, exp: NOW / 1000 + 3600 };

function forbidden(fn: () => unknown): ForbiddenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ForbiddenError);
    expect((err as ForbiddenError).status).toBe(403);
    return err as ForbiddenError;
  }
  throw new Error('expected ForbiddenError');
}

describe('download tokens', () => {
  it('round-trips a payload until it expires', () => {
    const token = signDownloadToken(payload, SECRET);
    expect(verifyDownloadToken(token, SECRET, NOW)).toEqual(payload);
    expect(verifyDownloadToken(token, SECRET, payload.exp * 1000 - 1)).toEqual(payload);
    expect(forbidden(() => verifyDownloadToken(token, SECRET, payload.exp * 1000)).message).toMatch(
      /expired/,
    );
  });

  it('rejects a token signed with another secret', () => {
    const token = signDownloadToken(payload, 't'.repeat(32));
    expect(forbidden(() => verifyDownloadToken(token, SECRET, NOW)).message).toBe('invalid download token');
  });

  it('rejects any single-character change', () => {
    const token = signDownloadToken(payload, SECRET);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.constantFrom(...alphabet), (i, ch) => {
        fc.pre(token[i] !== ch);
        const tampered = token.slice(0, i) + ch + token.slice(i + 1);
        forbidden(() => verifyDownloadToken(tampered, SECRET, NOW));
      }),
      { numRuns: 500 },
    );
  });

  it('rejects a payload swapped in from another token (key, expiry)', () => {
    const [, sig] = signDownloadToken(payload, SECRET).split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, exp: payload.exp + 10_000 })).toString(
      'base64url',
    );
    forbidden(() => verifyDownloadToken(`${forged}.${sig}`, SECRET, NOW));
    const other = Buffer.from(JSON.stringify({ ...payload, key: 'catalog/state.json' })).toString(
      'base64url',
    );
    forbidden(() => verifyDownloadToken(`${other}.${sig}`, SECRET, NOW));
  });

  it('answers garbage with 403, never another error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.jsonValue(), fc.string({ unit: 'binary' })), (junk) => {
        forbidden(() => verifyDownloadToken(junk, SECRET, NOW));
      }),
      { numRuns: 500 },
    );
    forbidden(() => verifyDownloadToken(`${'a'.repeat(3000)}.${'b'.repeat(43)}`, SECRET, NOW));
  });

  it('never signs a key outside its export, and verification re-checks it', () => {
    for (const key of [
      `exports/${ID}/../../catalog/x`,
      `exports/${ID}/./a`,
      `exports/other-export/a.parquet`,
      'products/retailer=x/a.parquet',
      `exports/${ID}/`,
      `exports/${ID}/a\\b`,
      `/exports/${ID}/a`,
    ]) {
      expect(isExportObjectKey(key, ID)).toBe(false);
      expect(() => signDownloadToken({ ...payload, key }, SECRET)).toThrow();
    }
    expect(isExportObjectKey(`exports/${ID}/retailer=falabella/data_0.parquet`, ID)).toBe(true);
  });

  it('refuses a short secret', () => {
    expect(() => signDownloadToken(payload, 'short')).toThrow(ConfigError);
  });
});
