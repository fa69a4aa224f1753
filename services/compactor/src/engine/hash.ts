import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * The worker's code, evaluated as CommonJS (so the same text runs from src under vitest and
 * from dist): sha256 of a file read in 1 MiB chunks into one reused buffer.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const buf = Buffer.allocUnsafe(1024 * 1024);
parentPort.on('message', ({ id, path }) => {
  try {
    const hash = createHash('sha256');
    const fd = openSync(path, 'r');
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    parentPort.postMessage({ id, hex: hash.digest('hex') });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
});
`;

interface Job {
  id: number;
  path: string;
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

/**
 * A few worker threads hashing files, so the outputs of an operation are hashed side by side
 * (on all cores, off the main thread) once DuckDB is done with them. Workers are made on first
 * use, held (ref'd) only while they have work, and replaced if one dies.
 */
class HashPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private workers = 0;
  private nextId = 0;

  constructor(private readonly size: number) {}

  hash(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: ++this.nextId, path, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const w = this.idle.pop() ?? (this.workers < this.size ? this.spawn() : undefined);
      if (!w) return;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.ref();
      w.postMessage({ id: job.id, path: job.path });
    }
  }

  private spawn(): Worker {
    const w = new Worker(WORKER, { eval: true });
    this.workers++;
    w.on('message', (m: { id: number; hex?: string; error?: string }) => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      w.unref();
      this.idle.push(w);
      if (job && job.id === m.id) {
        if (m.hex !== undefined) job.resolve(m.hex);
        else job.reject(new Error(`sha256 of ${job.path}: ${m.error}`));
      }
      this.pump();
    });
    let dead = false;
    const gone = (err: Error) => {
      if (dead) return;
      dead = true;
      const job = this.busy.get(w);
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.workers--;
      job?.reject(err);
      this.pump();
    };
    w.on('error', gone);
    w.on('exit', (code) => gone(new Error(`hash worker exited with code ${code}`)));
    return w;
  }
}

let pool: HashPool | undefined;

/**
 * The sha256 of a file (hex), computed in a worker thread: the same digest as `sha256File` from
 * @parquetry/lake. Up to one file per core is hashed at a time.
 */
export function hashFile(path: string): Promise<string> {
  pool ??= new HashPool(Math.max(1, Math.min(4, availableParallelism())));
  return pool.hash(path);
}
