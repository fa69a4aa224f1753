import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, ConflictError, InvalidInputError } from '@parquetry/service';
import { tempDir } from '@parquetry/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { UnauthorizedError } from '../errors.js';
import { createKey, createKeyInFile, hashApiKey, KeyStore, revokeKeyInFile } from './keys.js';

const dirs: { remove(): void }[] = [];
function keysPath(): string {
  const d = tempDir('pq-keys-');
  dirs.push(d);
  return join(d.path, 'keys.json');
}
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

function unauthorized(fn: () => unknown): UnauthorizedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthorizedError);
    return err as UnauthorizedError;
  }
  throw new Error('expected UnauthorizedError');
}

describe('createKey', () => {
  it('makes a prefixed 32-byte random key and stores only its hash', () => {
    const a = createKey({ name: 'analyst', datasets: ['products'] });
    const b = createKey({ name: 'analyst', datasets: ['products'] });
    expect(a.key).toMatch(/^pq_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.record.sha256).toBe(hashApiKey(a.key));
    expect(JSON.stringify(a.record)).not.toContain(a.key.slice(3));
    expect(a.record).toMatchObject({ name: 'analyst', datasets: ['products'], admin: false, revoked: false });
  });

  it('validates names, datasets and row scopes', () => {
    expect(() => createKey({ name: 'bad name', datasets: ['products'] })).toThrow(InvalidInputError);
    expect(() => createKey({ name: 'a', datasets: [] })).toThrow(InvalidInputError);
    expect(() => createKey({ name: 'a', datasets: ['*', 'products'] })).toThrow(InvalidInputError);
    expect(() => createKey({ name: 'a', datasets: ['../x'] })).toThrow(InvalidInputError);
    expect(() =>
      createKey({
        name: 'a',
        datasets: ['products'],
        rowScopes: { products: [{ column: 'retailer', op: 'drop' } as never] },
      }),
    ).toThrow(InvalidInputError);
  });
});

describe('keys file', () => {
  it('createKeyInFile writes the hash atomically with mode 0600 and returns the clear key once', async () => {
    const file = keysPath();
    const first = await createKeyInFile({ file, name: 'ops', datasets: ['*'], admin: true });
    const second = await createKeyInFile({
      file,
      name: 'retail',
      datasets: ['products'],
      rowScopes: { products: [{ column: 'retailer', op: 'in', value: ['falabella', 'ripley'] }] },
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(first.key);
    expect(text).not.toContain(second.key);
    const store = await KeyStore.fromFile(file);
    expect(store.authenticate(`Bearer ${first.key}`)).toMatchObject({
      name: 'ops',
      admin: true,
      datasets: '*',
    });
    const retail = store.authenticate(`bearer ${second.key}`);
    expect(retail.name).toBe('retail');
    expect(retail.rowScopes.products).toEqual([
      { column: 'retailer', op: 'in', value: ['falabella', 'ripley'] },
    ]);
    await expect(createKeyInFile({ file, name: 'ops', datasets: ['ticks'] })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(
      createKeyInFile({ file, name: 'x', datasets: ['nope'], knownDatasets: ['products', 'ticks'] }),
    ).rejects.toThrow(/unknown dataset/);
  });

  it('answers no key, a wrong key, a malformed header and a revoked key with the same 401', async () => {
    const file = keysPath();
    const { key } = await createKeyInFile({ file, name: 'gone', datasets: ['ticks'] });
    const store = await KeyStore.fromFile(file);
    expect(store.authenticate(`Bearer ${key}`).name).toBe('gone');
    await revokeKeyInFile({ file, name: 'gone' });
    expect(await store.refresh()).toBe(true);
    const errors = [
      undefined,
      '',
      'Bearer',
      `Basic ${key}`,
      `Bearer ${key}x`,
      `Bearer ${'a'.repeat(600)}`,
      `Bearer ${key}`, // revoked
    ].map((h) => unauthorized(() => store.authenticate(h)));
    expect(new Set(errors.map((e) => `${e.status} ${e.code} ${e.message}`)).size).toBe(1);
    expect(store.list()).toEqual([expect.objectContaining({ name: 'gone', revoked: true })]);
  });

  it('refuses a file with a misspelt or unknown field rather than widening a key', async () => {
    const file = keysPath();
    const { record } = createKey({ name: 'k', datasets: ['products'] });
    writeFileSync(file, JSON.stringify({ keys: [{ ...record, row_scope: {} }] }));
    await expect(KeyStore.fromFile(file)).rejects.toBeInstanceOf(ConfigError);
    writeFileSync(file, JSON.stringify({ keys: [record, { ...record, name: 'k2' }] }));
    await expect(KeyStore.fromFile(file)).rejects.toThrow(/duplicate key/);
  });

  it('keeps the keys in force when a refreshed file is invalid', async () => {
    const file = keysPath();
    const { key } = await createKeyInFile({ file, name: 'k', datasets: ['products'] });
    const store = await KeyStore.fromFile(file);
    writeFileSync(file, '{"keys": [ broken');
    await expect(store.refresh()).rejects.toBeInstanceOf(ConfigError);
    expect(store.authenticate(`Bearer ${key}`).name).toBe('k');
  });
});
