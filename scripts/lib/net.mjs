// Small network helpers for scripts/start.mjs: is something listening, a free port, wait for HTTP.
import { createServer, connect as tcpConnect } from 'node:net';

/** `{host, port}` of the first server in a URL list like NATS_URL (`nats://a:4222,nats://b:4222`). */
export function hostPort(url, defaultPort) {
  const first = String(url).split(',')[0].trim();
  const u = new URL(first.includes('://') ? first : `tcp://${first}`);
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port) || defaultPort };
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
export function canConnect(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when nothing listens on `port` (all interfaces), i.e. a service can bind it. */
export function isPortFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** A port the system picks as free right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `preferred` when free, otherwise any free port. */
export async function pickPort(preferred) {
  return (await isPortFree(preferred)) ? preferred : await freePort();
}

/**
 * Poll `url` until it answers 2xx; false after `timeoutMs` or as soon as `gaveUp()` says so
 * (the process behind it died).
 */
export async function waitHttp(url, { timeoutMs = 60_000, intervalMs = 250, gaveUp = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gaveUp()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
