import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  /** kill -9 and start again on the same port and store (for restart tests). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function natsBinary(): string | undefined {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

export function natsAvailable(): boolean {
  return natsBinary() !== undefined;
}

async function launch(
  bin: string,
  port: number,
  storeDir: string,
): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 15_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /Listening for client connections on [^\n]*:(\d+)/.exec(log);
      if (m && /Server is ready/.test(log)) {
        clearTimeout(timer);
        proc.stderr?.off('data', onData);
        proc.stderr?.resume();
        proc.stdout?.resume();
        resolve({ proc, port: Number(m[1]) });
      }
    };
    proc.stderr?.on('data', onData);
    proc.stdout?.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    });
  });
}

/** A real nats-server with JetStream on a random port and its own temporary store. */
export async function startNats(): Promise<NatsServerHandle> {
  const bin = natsBinary();
  if (!bin) throw new Error('nats-server not found: install it or set NATS_SERVER_BIN');
  const storeDir = mkdtempSync(join(tmpdir(), 'pq-nats-'));
  let { proc, port } = await launch(bin, -1, storeDir);
  const kill = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  };
  const handle: NatsServerHandle = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    async restart() {
      await kill('SIGKILL');
      ({ proc } = await launch(bin, port, storeDir));
    },
    async stop() {
      await kill('SIGTERM');
      rmSync(storeDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}
