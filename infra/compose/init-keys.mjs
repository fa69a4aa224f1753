// One-shot of docker-compose.yml (`keys-init`, run in the export-api image): makes sure the API
// keys file exists in the `keys` volume. The first time, it creates the file with one admin key
// for every dataset and prints that key once: `docker compose logs keys-init`. Later runs leave
// the file alone. Add keys with `pnpm parquetry keys create --file …` on a copy of the volume, or
// by running this image with your own script; only SHA-256 hashes are stored (DESIGN.md "Security").
import { existsSync } from 'node:fs';
import { createKeyInFile } from './dist/auth/keys.js';

const file = process.env.API_KEYS_FILE;
if (!file) {
  console.error('API_KEYS_FILE is not set');
  process.exit(1);
}
if (existsSync(file)) {
  console.log(`${file} exists: keys unchanged`);
} else {
  const { key } = await createKeyInFile({ file, name: 'admin', datasets: ['*'], admin: true });
  console.log(`created ${file} with one admin key, shown this once:\n${key}`);
}
