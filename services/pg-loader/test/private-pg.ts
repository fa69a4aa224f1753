/**
 * A private PostgreSQL cluster for tests that restart the server: initdb in a temporary
 * directory, started with pg_ctl on a free port. The shared server other tests use is never
 * touched. As root, the cluster runs as the `postgres` user (initdb refuses root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type TempDir, tempDir } from '@parquetry/testkit';

export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl restart -m <mode>`: immediate kills every backend with no clean shutdown. */
  restart(mode?: 'immediate' | 'fast'): void;
  /** `pg_ctl stop -m <mode>` (the server stays down until `start`). */
  stop(mode?: 'immediate' | 'fast'): void;
  start(): void;
  close(): void;
}

/** The directory with initdb and pg_ctl: PG_BIN, `pg_config --bindir`, or the newest /usr/lib/postgresql/<v>/bin. */
export function findPgBin(): string | undefined {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  if (process.env.PG_BIN && has(process.env.PG_BIN)) return process.env.PG_BIN;
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (has(dir)) return dir;
  } catch {}
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find(has);
}

function postgresUid(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** Starts a cluster, or says why it can't. */
export async function startPrivatePostgres(): Promise<PrivatePostgres | { unavailable: string }> {
  const bin = findPgBin();
  if (bin === undefined) return { unavailable: 'initdb/pg_ctl not found (set PG_BIN)' };
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUid() : undefined;
  if (asRoot && owner === undefined) return { unavailable: 'running as root and there is no postgres user' };
  const dir: TempDir = tempDir('pgl-private-pg-');
  if (owner) chownSync(dir.path, owner.uid, owner.gid);
  const data = join(dir.path, 'data');
  const log = join(dir.path, 'server.log');
  const port = await freePort();
  const run = (tool: string, args: string[]) => {
    const argv = [join(bin, tool), ...args];
    const r = owner
      ? spawnSync('runuser', ['-u', 'postgres', '--', ...argv], { encoding: 'utf8', timeout: 60_000 })
      : spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) {
      throw new Error(
        `${tool} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout || r.error?.message}`,
      );
    }
  };
  const options = [
    `-p ${port}`,
    `-k ${dir.path}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c shared_buffers=32MB',
    '-c max_connections=20',
  ].join(' ');
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    run('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
  } catch (err) {
    dir.remove();
    return { unavailable: (err as Error).message };
  }
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart(mode = 'immediate') {
      run('pg_ctl', ['-D', data, '-o', options, '-l', log, '-m', mode, '-w', '-t', '60', 'restart']);
      running = true;
    },
    stop(mode = 'immediate') {
      run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
      running = false;
    },
    start() {
      run('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
      running = true;
    },
    close() {
      try {
        if (running) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        running = false;
        dir.remove();
      }
    },
  };
}
