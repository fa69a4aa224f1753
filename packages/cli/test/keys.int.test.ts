import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashApiKey, KeyStore } from '@parquetry/export-api/auth';
import { tempDir } from '@parquetry/testkit';
import { afterAll, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const dir = tempDir('pq-cli-keys-');
const file = join(dir.path, 'keys.json');
const env = { API_KEYS_FILE: file };
afterAll(() => dir.remove());

it('creates a key: printed once, only its hash stored, and export-api accepts it', async () => {
  const run = await runCli(
    ['keys', 'create', '--name', 'ops', '--datasets', 'products,ticks', '--admin', '--json'],
    env,
  );
  expect(run.code).toBe(0);
  const created = run.json<{ name: string; key: string; datasets: string[]; admin: boolean; file: string }>();
  expect(created).toMatchObject({ name: 'ops', datasets: ['products', 'ticks'], admin: true, file });
  const stored = readFileSync(file, 'utf8');
  expect(stored).not.toContain(created.key);
  expect(stored).toContain(hashApiKey(created.key));

  const keys = await KeyStore.fromFile(file);
  const who = keys.authenticate(`Bearer ${created.key}`);
  expect(who.name).toBe('ops');
  expect(who.admin).toBe(true);

  // Human output: the key alone on stdout (for scripts), the explanation on stderr.
  const plain = await runCli(['keys', 'create', '--name', 'reader', '--datasets', 'candles'], env);
  expect(plain.code).toBe(0);
  expect(plain.stdout).toMatch(/^pq_[A-Za-z0-9_-]+\n$/);
  expect(plain.stderr).toMatch(/not shown again/);
  expect((await KeyStore.fromFile(file)).authenticate(`Bearer ${plain.stdout.trim()}`).admin).toBe(false);
});

it('refuses a duplicate name, an unknown dataset and a missing keys file setting', async () => {
  expect((await runCli(['keys', 'create', '--name', 'ops', '--datasets', 'products'], env)).code).toBe(1);
  const unknown = await runCli(['keys', 'create', '--name', 'x', '--datasets', 'orders', '--json'], env);
  expect(unknown.code).toBe(2);
  expect(unknown.json<{ error: { message: string } }>().error.message).toMatch(
    /valid: products, ticks, candles/,
  );
  const noFile = await runCli(['keys', 'create', '--name', 'y', '--datasets', 'products'], {});
  expect(noFile.code).toBe(1);
  expect(noFile.stderr).toMatch(/API_KEYS_FILE/);
  expect((await runCli(['keys', 'create', '--datasets', 'products'], env)).code).toBe(2);
});
