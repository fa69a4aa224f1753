// Run pnpm the way the current process was started (pnpm sets npm_execpath), or through npx.
import { spawnSync } from 'node:child_process';

export function pnpm(args, opts = {}) {
  const execpath = process.env.npm_execpath;
  const [cmd, argv] =
    execpath && /pnpm/.test(execpath)
      ? [process.execPath, [execpath, ...args]]
      : ['npx', ['-y', 'pnpm@10', ...args]];
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/** Install dependencies and build every package: what both README commands need first. */
export function ensureBuilt() {
  pnpm(['install', '--frozen-lockfile', '--prefer-offline']);
  pnpm(['run', 'build']);
}
