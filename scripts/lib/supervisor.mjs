// One child process of scripts/start.mjs: prefixed output, restarts with backoff when it dies on
// its own (candle-aggregator exits on purpose and expects a supervisor), a clean stop on request.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { formatLine } from './log-format.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Supervised {
  /**
   * @param {object} o
   * @param {string} o.name prefix of its output lines
   * @param {string} o.command
   * @param {string[]} o.args
   * @param {NodeJS.ProcessEnv} [o.env]
   * @param {string} [o.cwd]
   * @param {number} [o.maxRestarts] consecutive restarts before giving up (default 5)
   * @param {(line: string) => void} [o.write] where formatted lines go (default stdout)
   * @param {(msg: string) => void} [o.say] start's own messages
   * @param {{json?: boolean, color?: boolean, width?: number}} [o.format]
   */
  constructor(o) {
    this.o = {
      maxRestarts: 5,
      write: (l) => process.stdout.write(`${l}\n`),
      say: () => {},
      format: {},
      ...o,
    };
    this.name = o.name;
    this.proc = undefined;
    this.stopping = false;
    this.failed = false;
    this.restarts = 0;
    this.exits = [];
  }

  get running() {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start() {
    const { command, args, env, cwd } = this.o;
    // Own process group: a terminal's Ctrl-C reaches start.mjs only, which then stops each
    // child exactly once (a second SIGINT would make a service skip its drain).
    const proc = spawn(command, args, { env, cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    this.startedAt = Date.now();
    const pipe = (stream) =>
      createInterface({ input: stream }).on('line', (line) =>
        this.o.write(formatLine(this.name, line, this.o.format)),
      );
    pipe(proc.stdout);
    pipe(proc.stderr);
    this.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        this.o.say(`${this.name}: cannot start: ${err.message}`);
        resolve({ code: null, signal: null });
      });
      proc.once('exit', (code, signal) => resolve({ code, signal }));
    }).then((r) => {
      this.exits.push(r);
      if (!this.stopping) void this.onUnexpectedExit(r);
      return r;
    });
    return this;
  }

  async onUnexpectedExit({ code, signal }) {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    // Up for two minutes: a fresh failure, not a crash loop.
    if (Date.now() - this.startedAt > 120_000) this.restarts = 0;
    if (this.restarts >= this.o.maxRestarts) {
      this.failed = true;
      this.o.say(`${this.name} exited (${how}) ${this.restarts + 1} times in a row: not restarting it`);
      return;
    }
    const delay = Math.min(30_000, 1000 * 2 ** this.restarts);
    this.restarts++;
    this.o.say(`${this.name} exited (${how}); restarting in ${delay / 1000} s`);
    await sleep(delay);
    if (!this.stopping) this.start();
  }

  /** Send `signal` once, wait up to `timeoutMs`, then SIGKILL. Resolves when the process is gone. */
  async stop(signal = 'SIGINT', timeoutMs = 30_000) {
    this.stopping = true;
    if (!this.running) return;
    const proc = this.proc;
    proc.kill(signal);
    const timer = setTimeout(() => {
      this.o.say(`${this.name} did not stop within ${timeoutMs / 1000} s: killing it`);
      proc.kill('SIGKILL');
    }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
