// NATS for scripts/start.mjs: use the server at NATS_URL, or start a local `nats-server -js`
// with its store under ./data/nats when nothing answers there.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { canConnect, hostPort } from './net.mjs';

const LOCAL = new Set(['127.0.0.1', 'localhost', '0.0.0.0', '::1']);

/** The nats-server binary: NATS_SERVER_BIN, or `nats-server` when it is on the PATH. */
export function natsServerBin() {
  const bin = process.env.NATS_SERVER_BIN ?? 'nats-server';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? { bin, version: r.stdout.trim() } : undefined;
}

/**
 * Decide how to get a bus: `{mode: 'existing'}` when NATS_URL answers, `{mode: 'local', args}`
 * (the nats-server command line) when it does not and names this machine, or `{mode: 'error', message}`.
 */
export async function planNats(url, storeDir) {
  const { host, port } = hostPort(url, 4222);
  if (await canConnect(host, port)) return { mode: 'existing', host, port };
  if (!LOCAL.has(host)) {
    return {
      mode: 'error',
      message: `nothing answers at NATS_URL ${url}, and it is not this machine: start it first`,
    };
  }
  const found = natsServerBin();
  if (!found) {
    return {
      mode: 'error',
      message:
        `nothing answers at ${url} and nats-server is not installed (set NATS_SERVER_BIN, or install it: ` +
        'apt-get install nats-server, brew install nats-server, or https://github.com/nats-io/nats-server/releases)',
    };
  }
  mkdirSync(storeDir, { recursive: true });
  const bind = host === 'localhost' || host === '::1' ? '127.0.0.1' : host;
  return {
    mode: 'local',
    host: bind,
    port,
    bin: found.bin,
    version: found.version,
    args: ['-js', '-a', bind, '-p', String(port), '-sd', storeDir],
  };
}

/** Wait until the started server accepts connections. */
export async function waitNats(host, port, { timeoutMs = 15_000, gaveUp = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gaveUp()) {
    if (await canConnect(host, port, 500)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
