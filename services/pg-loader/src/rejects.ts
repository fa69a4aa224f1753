/**
 * Where rejected rows go: `<table>_rejects` in the load's own transaction (so a rolled-back load
 * leaves no orphan rejects), or an NDJSON file renamed into place only when the load commits.
 */

import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type pg from 'pg';
import { quoteIdent } from './plan.js';
import { type TableRef, tableSql } from './table.js';

export interface RejectedRow {
  file: string;
  /** 1-based position of the row in its file as read (for CSV lines DuckDB couldn't split: the line number). */
  rowNumber: number;
  reason: string;
  /** The row as JSON text, or a value to serialize. */
  raw: string | unknown;
}

export interface RejectSink {
  /** Write rows; called between COPY statements (never while one is streaming). */
  write(rows: readonly RejectedRow[]): Promise<void>;
  /** After COMMIT (true) or ROLLBACK (false). */
  finish(committed: boolean): Promise<void>;
  readonly target: string;
}

export function rejectsTableDdl(t: TableRef): string {
  return `CREATE TABLE IF NOT EXISTS ${tableSql(t)} (
  load_id text NOT NULL,
  file_path text NOT NULL,
  row_number bigint NOT NULL,
  reason text NOT NULL,
  raw jsonb,
  rejected_at timestamptz NOT NULL DEFAULT now()
)`;
}

function rawJson(raw: unknown): string {
  if (typeof raw === 'string') {
    try {
      JSON.parse(raw);
      return raw;
    } catch {
      return JSON.stringify(raw);
    }
  }
  return JSON.stringify(raw, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/** jsonb can't hold \u0000: replace it so the reject row itself is never refused. */
function storable(json: string): string {
  return json.replaceAll('\\u0000', '\\\\u0000');
}

export class TableRejectSink implements RejectSink {
  readonly target: string;
  constructor(
    private readonly client: pg.ClientBase,
    private readonly table: TableRef,
    private readonly loadId: string,
  ) {
    this.target = tableSql(table);
  }

  async write(rows: readonly RejectedRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 5000) {
      const part = rows.slice(i, i + 5000);
      await this.client.query(
        `INSERT INTO ${tableSql(this.table)} (${['load_id', 'file_path', 'row_number', 'reason', 'raw'].map(quoteIdent).join(', ')})
         SELECT $1, f, n, r, j::jsonb FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[]) AS u(f, n, r, j)`,
        [
          this.loadId,
          part.map((r) => r.file),
          part.map((r) => r.rowNumber),
          part.map((r) => r.reason.replaceAll('\u0000', '\\0')),
          part.map((r) => storable(rawJson(r.raw))),
        ],
      );
    }
  }

  async finish(): Promise<void> {}
}

export class FileRejectSink implements RejectSink {
  readonly target: string;
  private readonly partial: string;
  private out: WriteStream | undefined;

  constructor(
    path: string,
    private readonly loadId: string,
  ) {
    this.target = path;
    this.partial = `${path}.partial`;
  }

  async write(rows: readonly RejectedRow[]): Promise<void> {
    this.out ??= createWriteStream(this.partial, { flags: 'w' });
    for (const r of rows) {
      const line = `{"load_id":${JSON.stringify(this.loadId)},"file_path":${JSON.stringify(r.file)},"row_number":${r.rowNumber},"reason":${JSON.stringify(r.reason)},"raw":${rawJson(r.raw)}}\n`;
      if (!this.out.write(line)) await once(this.out, 'drain');
    }
  }

  async finish(committed: boolean): Promise<void> {
    if (this.out === undefined) return;
    const out = this.out;
    this.out = undefined;
    await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
    if (committed) await rename(this.partial, this.target);
    else await rm(this.partial, { force: true });
  }
}
