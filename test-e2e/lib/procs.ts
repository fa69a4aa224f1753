/**
 * The built services (`services/<name>/dist/main.js`) as child processes, each with its own
 * environment and HTTP port: start, kill -9, graceful stop, and their probes over plain HTTP.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const SERVICE_NAMES = [
  'ingest-backup',
  'candle-aggregator',
  'compactor',
  'pg-loader',
  'export-api',
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const mainOf = (name: ServiceName) => join(ROOT, 'services', name, 'dist', 'main.js');
export const CLI_MAIN = join(ROOT, 'packages', 'cli', 'dist', 'main.js');

/** The entry points that must be built (`npx -y pnpm@10 run build`) before these tests run. */
export function missingBuilds(): string[] {
  return [...SERVICE_NAMES.map(mainOf), CLI_MAIN].filter((m) => !existsSync(m));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(everyMs);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One service instance: a label (`ingest-backup#1`), its environment and its HTTP port. */
export class ServiceProcess {
  private proc: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private readonly lines: string[] = [];
  /** Every warn-or-above pino message seen, by `msg` (the line buffer above keeps only 200). */
  private readonly warnings = new Map<string, number>();
  readonly exits: Exit[] = [];
  starts = 0;
  kills = 0;
  /** Exits nobody asked for (the process died on its own); each was restarted after 1 s. */
  crashes = 0;
  /** For each crash, the last error-level log message before it (why the service gave up). */
  readonly crashReasons: string[] = [];
  private lastError = '';
  private expectExit = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly label: string,
    readonly service: ServiceName,
    readonly env: Record<string, string>,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): this {
    if (this.running) throw new Error(`${this.label} is already running`);
    const proc = spawn(process.execPath, [mainOf(this.service)], {
      env: { ...process.env, ...this.env, HTTP_PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.starts++;
    this.expectExit = false;
    const keep = (line: string) => {
      this.lines.push(line);
      if (this.lines.length > 200) this.lines.shift();
      if (line.startsWith('{') && /"level":[4-6]\d/.test(line)) {
        try {
          const entry = JSON.parse(line) as { msg?: unknown; level?: number; err?: { message?: unknown } };
          const msg = String(entry.msg);
          this.warnings.set(msg, (this.warnings.get(msg) ?? 0) + 1);
          if ((entry.level ?? 0) >= 50)
            this.lastError = `${msg}: ${String(entry.err?.message ?? '')}`.slice(0, 300);
        } catch {
          // not a pino line
        }
      }
    };
    createInterface({ input: proc.stdout! }).on('line', keep);
    createInterface({ input: proc.stderr! }).on('line', keep);
    this.exited = new Promise<Exit>((resolve) => {
      proc.once('error', (err) => {
        keep(`spawn error: ${err.message}`);
        resolve({ code: null, signal: null });
      });
      proc.once('exit', (code, signal) => resolve({ code, signal }));
    }).then((e) => {
      this.exits.push(e);
      // Like a supervisor (systemd, Kubernetes): a service that dies on its own is started again.
      if (!this.expectExit) {
        this.crashes++;
        this.crashReasons.push(this.lastError || (this.lines.at(-1) ?? '').slice(0, 300));
        keep(`exited on its own (${JSON.stringify(e)}): restarting in 1 s`);
        this.restartTimer = setTimeout(() => {
          if (!this.expectExit && !this.running) this.start();
        }, 1000);
      }
      return e;
    });
    return this;
  }

  /** SIGKILL: no drain, no flush, nothing acked that was not already. */
  async kill9(): Promise<void> {
    this.expectExit = true;
    clearTimeout(this.restartTimer);
    if (!this.running) return;
    this.kills++;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (the service drains), SIGKILL after `timeoutMs`; the exit. */
  async stop(timeoutMs = 20_000): Promise<Exit | undefined> {
    this.expectExit = true;
    clearTimeout(this.restartTimer);
    if (!this.running) return this.exits.at(-1);
    this.proc!.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    await this.kill9();
    this.start();
  }

  async getJson<T = Record<string, unknown>>(path: string): Promise<T | undefined> {
    try {
      const r = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(2000) });
      return r.ok ? ((await r.json()) as T) : undefined;
    } catch {
      return undefined;
    }
  }

  async isReady(): Promise<boolean> {
    try {
      const r = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      return r.ok;
    } catch {
      return false;
    }
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${this.label} to be ready`,
      async () => ((await this.isReady()) ? true : undefined),
      timeoutMs,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${this.label} output ---\n${this.tail()}`);
    });
  }

  /** The last lines of its output (for failure messages). */
  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  /** How many times pino logged, at warn or above, a `msg` matching `pattern` since the start. */
  warned(pattern: RegExp): number {
    let n = 0;
    for (const [msg, count] of this.warnings) if (pattern.test(msg)) n += count;
    return n;
  }
}
