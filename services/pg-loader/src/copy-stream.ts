/**
 * One COPY FROM STDIN statement inside a savepoint, written with backpressure. A COPY that
 * PostgreSQL refuses (a bad value, a constraint) rolls back to its savepoint and reports the
 * error, so the transaction goes on and the caller can bisect the rows.
 */
import type pg from 'pg';
import type { CopyStreamQuery } from 'pg-copy-streams';
import { from as copyFrom } from 'pg-copy-streams';
import { BINARY_COPY_HEADER, BINARY_COPY_TRAILER } from './copy-binary.js';

export type CopyFormat = 'binary' | 'text';

const SAVEPOINT = 'parquetry_copy';

/** The error PostgreSQL sent, with its SQLSTATE. */
export interface PgError extends Error {
  code?: string;
  detail?: string;
  where?: string;
}

/**
 * A row-level failure: some rows are bad, others may load. Data exceptions (class 22) and
 * integrity violations (class 23) qualify; 22P03 (bad binary format) means the encoder and the
 * column disagree for every row, and anything else (connection, lock, disk) is not about rows.
 */
export function isRowLevelError(err: unknown): boolean {
  const code = (err as PgError | undefined)?.code;
  if (typeof code !== 'string' || code === '22P03') return false;
  return code.startsWith('22') || code.startsWith('23');
}

export function describePgError(err: unknown): string {
  const e = err as PgError;
  const detail = e.detail ? ` (${e.detail})` : '';
  return `${e.code ? `${e.code} ` : ''}${e.message}${detail}`;
}

/** Bytes the COPY stream may buffer before write() waits: overlaps encoding with the socket. */
const HIGH_WATER_MARK = 4 * 1024 * 1024;

export class CopyStatement {
  private failure: PgError | undefined;
  private ended = false;
  private readonly stream: CopyStreamQuery;
  private readonly done: Promise<void>;

  private constructor(
    private readonly client: pg.ClientBase,
    sql: string,
    private readonly format: CopyFormat,
  ) {
    this.stream = client.query(copyFrom(sql, { highWaterMark: HIGH_WATER_MARK }));
    this.done = new Promise<void>((resolve) => {
      this.stream.once('finish', () => resolve());
      // `on`, not `once`: a lost connection can emit more than one error (EPIPE, then the
      // end of the socket); the first one is the failure, the others must not go uncaught.
      this.stream.on('error', (err: PgError) => {
        this.failure ??= err;
        resolve();
      });
    });
    if (format === 'binary') this.stream.write(BINARY_COPY_HEADER);
  }

  /** SAVEPOINT, then COPY `table (columns)` FROM STDIN in `format`. */
  static async start(client: pg.ClientBase, copySql: string, format: CopyFormat): Promise<CopyStatement> {
    await client.query(`SAVEPOINT ${SAVEPOINT}`);
    return new CopyStatement(client, copySql, format);
  }

  get failed(): PgError | undefined {
    return this.failure;
  }

  /** Write bytes; waits when the stream is full. After a failure, writes are dropped. */
  async write(buf: Buffer): Promise<void> {
    if (this.failure !== undefined || buf.length === 0) return;
    if (this.stream.write(buf)) return;
    await Promise.race([new Promise((r) => this.stream.once('drain', r)), this.done]);
  }

  /**
   * Finish the COPY: RELEASE on success; on a row-level failure ROLLBACK TO the savepoint and
   * return the error; any other failure is thrown (the transaction is lost anyway).
   */
  async end(): Promise<{ ok: true; rows: number } | { ok: false; error: PgError }> {
    if (this.failure === undefined) {
      if (this.format === 'binary') this.stream.write(BINARY_COPY_TRAILER);
      this.stream.end();
    }
    this.ended = true;
    await this.done;
    if (this.failure !== undefined) {
      if (!isRowLevelError(this.failure)) throw this.failure;
      await this.client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await this.client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return { ok: false, error: this.failure };
    }
    await this.client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return { ok: true, rows: this.stream.rowCount };
  }

  /**
   * Leave COPY mode after a failure elsewhere (DuckDB, a signal): CopyFail makes the server end
   * the statement, so the connection can run the ROLLBACK that follows.
   */
  async abort(reason: Error): Promise<void> {
    if (this.failure !== undefined || this.ended) return;
    this.ended = true;
    this.stream.destroy(reason);
    await this.done;
  }
}

/** COPY the given parts as one statement in a savepoint; used to retry sub-ranges of a batch. */
export async function copyParts(
  client: pg.ClientBase,
  copySql: string,
  format: CopyFormat,
  parts: readonly Buffer[],
): Promise<{ ok: true; rows: number } | { ok: false; error: PgError }> {
  const stmt = await CopyStatement.start(client, copySql, format);
  for (const p of parts) await stmt.write(p);
  return stmt.end();
}
