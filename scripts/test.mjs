// `pnpm test`: install, build, then every test level (unit, integration, e2e) against real servers.
import { spawnSync } from 'node:child_process';
import { ensureBuilt } from './pnpm.mjs';

ensureBuilt();
const args = ['vitest', 'run', ...process.argv.slice(2)];
const r = spawnSync('npx', args, {
  stdio: 'inherit',
  env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=4096' },
});
process.exit(r.status ?? 1);
