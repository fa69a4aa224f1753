import { mkdirSync, realpathSync } from 'node:fs';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { type SandboxOptions, sandboxStatements } from '../query/sandbox.js';

/**
 * The one DuckDB instance of export-api, confined by query/sandbox.ts before any query runs,
 * and pools of connections on it. A connection runs one statement at a time, so work is lent
 * a connection for its duration; separate pools keep long exports from starving candle reads.
 */
export class SandboxedDuckDB {
  private readonly pools: ConnectionPool[] = [];

  private constructor(
    readonly instance: DuckDBInstance,
    readonly version: string,
    readonly allowedDirectories: readonly string[],
  ) {}

  /**
   * Opens the instance and runs the sandbox statements on it. Directories are created and
   * resolved (symlinks, `/tmp` on macOS) so DuckDB's path check compares real paths.
   */
  static async open(opts: SandboxOptions): Promise<SandboxedDuckDB> {
    const real = (dir: string) => {
      mkdirSync(dir, { recursive: true });
      return realpathSync(dir);
    };
    const sandbox: SandboxOptions = {
      ...opts,
      allowedDirectories: opts.allowedDirectories.map(real),
      tempDirectory: real(opts.tempDirectory),
    };
    const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
    const conn = await instance.connect();
    try {
      for (const statement of sandboxStatements(sandbox)) await conn.run(statement);
      const v = await conn.runAndReadAll('SELECT version() AS v');
      const version = String(v.getRowObjectsJS()[0]?.v ?? 'unknown');
      return new SandboxedDuckDB(instance, version, sandbox.allowedDirectories);
    } catch (err) {
      instance.closeSync();
      throw err;
    } finally {
      conn.closeSync();
    }
  }

  /** A new pool of at most `size` connections (opened on first use). */
  pool(size: number): ConnectionPool {
    const pool = new ConnectionPool(() => this.instance.connect(), size);
    this.pools.push(pool);
    return pool;
  }

  close(): void {
    for (const p of this.pools.splice(0)) p.close();
    this.instance.closeSync();
  }
}

export class ConnectionPool {
  private readonly idle: DuckDBConnection[] = [];
  private readonly waiting: ((conn: DuckDBConnection | Error) => void)[] = [];
  private opened = 0;
  private closed = false;

  constructor(
    private readonly open: () => Promise<DuckDBConnection>,
    private readonly size: number,
  ) {
    if (size < 1) throw new Error('a connection pool needs at least one connection');
  }

  /** Runs `fn` with a connection of its own; waits for one when all are busy. */
  async use<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      return await fn(conn);
    } finally {
      this.release(conn);
    }
  }

  private async acquire(): Promise<DuckDBConnection> {
    if (this.closed) throw new Error('connection pool is closed');
    const free = this.idle.pop();
    if (free) return free;
    if (this.opened < this.size) {
      this.opened++;
      try {
        return await this.open();
      } catch (err) {
        this.opened--;
        throw err;
      }
    }
    const next = await new Promise<DuckDBConnection | Error>((resolve) => this.waiting.push(resolve));
    if (next instanceof Error) throw next;
    return next;
  }

  private release(conn: DuckDBConnection): void {
    if (this.closed) {
      conn.closeSync();
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(conn);
    else this.idle.push(conn);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(new Error('connection pool is closed'));
    for (const c of this.idle.splice(0)) c.closeSync();
  }
}
