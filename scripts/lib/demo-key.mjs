// The demo API key of `pnpm start`: one admin key named `demo` in ./data/api-keys.json (stored
// as its SHA-256 like every key, DESIGN.md "Security"), replaced on every start so the printed
// key is always the one in force. Other keys in the file (`pnpm parquetry keys create`) stay.
// Uses export-api's own key functions, so the file is exactly what export-api reads.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const DEMO_KEY_NAME = 'demo';

/** Writes a fresh demo key into `file`; returns the clear key. */
export async function writeDemoKey(root, file) {
  const keys = await import(
    pathToFileURL(join(root, 'services', 'export-api', 'dist', 'auth', 'keys.js')).href
  );
  const current = await keys.readKeysFile(file, { missingIsEmpty: true });
  const { key, record } = keys.createKey({ name: DEMO_KEY_NAME, datasets: ['*'], admin: true });
  await keys.writeKeysFile(file, { keys: [...current.keys.filter((k) => k.name !== DEMO_KEY_NAME), record] });
  return key;
}

/** A signing secret for download links that survives restarts (`./data/signing-secret`, mode 0600). */
export function signingSecret(dataDir) {
  const file = join(dataDir, 'signing-secret');
  if (existsSync(file)) {
    const s = readFileSync(file, 'utf8').trim();
    if (s.length >= 32) return s;
  }
  const s = randomBytes(32).toString('hex');
  writeFileSync(file, `${s}\n`, { mode: 0o600 });
  return s;
}
