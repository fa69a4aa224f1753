import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatLine } from './log-format.mjs';
import { planNats } from './nats.mjs';
import { canConnect, hostPort, pickPort } from './net.mjs';
import { isStubMain, SERVICES, serviceState } from './services.mjs';

const listen = () =>
  new Promise<Server & { port: number }>((resolve) => {
    const s = createServer();
    s.listen(0, '0.0.0.0', () => resolve(Object.assign(s, { port: (s.address() as { port: number }).port })));
  });

describe('start helpers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pq-start-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('knows the five services and their DESIGN.md ports', () => {
    expect(Object.fromEntries(SERVICES.map((s: { name: string; port: number }) => [s.name, s.port]))).toEqual(
      {
        'ingest-backup': 9101,
        'candle-aggregator': 9102,
        compactor: 9103,
        'pg-loader': 9104,
        'export-api': 8080,
      },
    );
  });

  it('tells a stub main from a real one, and a missing build', () => {
    expect(isStubMain('export {};\n//# sourceMappingURL=main.js.map\n')).toBe(true);
    expect(isStubMain('/** not yet */\nexport {};')).toBe(true);
    expect(isStubMain("import { x } from 'y';\nx();\nexport {};")).toBe(false);
    mkdirSync(join(dir, 'services', 'a', 'dist'), { recursive: true });
    mkdirSync(join(dir, 'services', 'b', 'dist'), { recursive: true });
    writeFileSync(join(dir, 'services', 'a', 'dist', 'main.js'), 'export {};\n');
    writeFileSync(join(dir, 'services', 'b', 'dist', 'main.js'), 'runMain("b", main);\n');
    expect(serviceState(dir, 'a').state).toBe('stub');
    expect(serviceState(dir, 'b').state).toBe('ok');
    expect(serviceState(dir, 'c').state).toBe('missing');
  });

  it('parses server URLs and moves to a free port when the preferred one is taken', async () => {
    expect(hostPort('nats://10.0.0.1:4333,nats://10.0.0.2:4333', 4222)).toEqual({
      host: '10.0.0.1',
      port: 4333,
    });
    expect(hostPort('nats://localhost', 4222)).toEqual({ host: 'localhost', port: 4222 });
    const taken = await listen();
    try {
      expect(await canConnect('127.0.0.1', taken.port)).toBe(true);
      const port = await pickPort(taken.port);
      expect(port).not.toBe(taken.port);
      expect(port).toBeGreaterThan(0);
    } finally {
      taken.close();
    }
  });

  it('uses a NATS that answers and refuses to start one for another machine', async () => {
    const server = await listen();
    try {
      expect((await planNats(`nats://127.0.0.1:${server.port}`, join(dir, 'nats'))).mode).toBe('existing');
    } finally {
      server.close();
    }
    // 192.0.2.0/24 is TEST-NET-1: nothing answers there.
    const remote = await planNats('nats://192.0.2.1:4222', join(dir, 'nats'));
    expect(remote.mode).toBe('error');
    expect(remote.message).toMatch(/not this machine/);
  });

  it('shortens pino lines and keeps other output as it is', () => {
    const line = JSON.stringify({
      level: 40,
      time: '2026-11-21T20:30:37.123Z',
      service: 'ingest-backup',
      msg: 'retry',
      stream: 'TICKS',
      err: { message: 'boom', stack: '…' },
    });
    expect(formatLine('ingest-backup', line, { width: 14 })).toBe(
      'ingest-backup | 20:30:37 warn  retry stream=TICKS err=boom',
    );
    expect(formatLine('nats', '[1] INF ready', { width: 5 })).toBe('nats | [1] INF ready');
    expect(formatLine('x', line, { width: 2, json: true })).toBe(`x | ${line}`);
  });
});
