// bench/api: export-api over loopback. Runs each part in its own process, one after the other:
// api/candles.mjs (GET /v1/candles, warm cache and cache off, against DuckDB on the same files)
// and, when present, api/exports.mjs (export throughput). Arguments are passed to every part.
// Usage: pnpm build && node bench/api/run.mjs [--duration 10] [--connections 10] [--runs 3]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const parts = ['candles.mjs', 'exports.mjs']
  .map((f) => fileURLToPath(new URL(f, import.meta.url)))
  .filter((f) => existsSync(f));
let failed = 0;
for (const part of parts) {
  const r = spawnSync(process.execPath, [part, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
