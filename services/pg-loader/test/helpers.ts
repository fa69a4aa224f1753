/**
 * Test helpers for pg-loader: fixture files written by DuckDB, and a checksum computed in SQL
 * on both sides — DuckDB over the file, PostgreSQL over the table — to compare a load with its
 * source without trusting pg-loader's own reading of either.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import type pg from 'pg';
import { expect } from 'vitest';
import { type LoadConfig, type LoadConfigInput, parseLoadConfig } from '../src/index.js';

export async function duckQuery<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    const r = await c.runAndReadAll(sql);
    return r.getRowObjectsJS() as T[];
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

/** Write the rows of a DuckDB SELECT to a Parquet, CSV (with header) or NDJSON file. */
export async function writeFixture(path: string, select: string): Promise<void> {
  const format = path.endsWith('.parquet')
    ? 'FORMAT parquet'
    : path.endsWith('.csv')
      ? 'FORMAT csv, HEADER true'
      : 'FORMAT json';
  await duckQuery(`COPY (${select}) TO '${path}' (${format})`);
}

export function config(
  input: Omit<LoadConfigInput, 'database'> & { database: LoadConfigInput['database'] },
): LoadConfig {
  return parseLoadConfig(input);
}

/** How a column is compared: exact sums, ordered text digests, or float aggregates. */
export type CheckKind = 'int' | 'float' | 'text' | 'ts' | 'date' | 'numeric' | 'bool' | 'json';

export interface CheckColumn {
  /** Column name in the source file. */
  source: string;
  /** Column name in the table. */
  target: string;
  kind: CheckKind;
}

function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** One SELECT of aggregates, with the same aliases in both dialects, all rendered as text. */
function checksumSql(
  dialect: 'duckdb' | 'pg',
  from: string,
  cols: readonly CheckColumn[],
  orderBy: CheckColumn,
): string {
  const text = (e: string) => (dialect === 'duckdb' ? `CAST(${e} AS VARCHAR)` : `(${e})::text`);
  const parts = [`${text('count(*)')} AS n`];
  cols.forEach((c, i) => {
    const col = q(dialect === 'duckdb' ? c.source : c.target);
    const ord = q(dialect === 'duckdb' ? orderBy.source : orderBy.target);
    parts.push(`${text(`count(${col})`)} AS nn${i}`);
    switch (c.kind) {
      case 'int':
        parts.push(`${text(`sum(${col})`)} AS s${i}`);
        break;
      case 'numeric':
        parts.push(
          `${text(`sum(${col})`)} AS s${i}`,
          `${text(`min(${col})`)} AS lo${i}`,
          `${text(`max(${col})`)} AS hi${i}`,
        );
        break;
      case 'float':
        parts.push(
          `${text(`sum(${col})`)} AS s${i}`,
          `${text(`min(${col})`)} AS lo${i}`,
          `${text(`max(${col})`)} AS hi${i}`,
        );
        break;
      case 'text':
        parts.push(`md5(string_agg(${col}, '|' ORDER BY ${ord})) AS s${i}`);
        break;
      case 'ts':
        parts.push(
          dialect === 'duckdb'
            ? `${text(`sum(epoch_us(${col}))`)} AS s${i}`
            : `${text(`sum((extract(epoch from ${col}) * 1000000)::bigint)`)} AS s${i}`,
        );
        break;
      case 'date':
        parts.push(
          dialect === 'duckdb'
            ? `${text(`sum(date_diff('day', DATE '2000-01-01', ${col}))`)} AS s${i}`
            : `${text(`sum(${col} - DATE '2000-01-01')`)} AS s${i}`,
        );
        break;
      case 'bool':
        parts.push(`${text(`count(*) FILTER (WHERE ${col})`)} AS s${i}`);
        break;
      case 'json':
        parts.push(
          dialect === 'duckdb'
            ? `${text(`sum(length(CAST(to_json(${col}) AS VARCHAR)) > 0)`)} AS s${i}`
            : `${text(`count(*) FILTER (WHERE ${col} IS NOT NULL AND ${col}::text <> '')`)} AS s${i}`,
        );
        break;
    }
  });
  return `SELECT ${parts.join(', ')} FROM ${from}`;
}

/** Aggregates over `reader` (a DuckDB table function call); text digests ordered by `orderBy`. */
export async function duckChecksum(
  reader: string,
  cols: readonly CheckColumn[],
  orderBy: CheckColumn = cols[0]!,
) {
  const [row] = await duckQuery<Record<string, string | null>>(checksumSql('duckdb', reader, cols, orderBy));
  return row!;
}

export async function pgChecksum(
  client: pg.ClientBase,
  table: string,
  cols: readonly CheckColumn[],
  orderBy: CheckColumn = cols[0]!,
) {
  const r = await client.query<Record<string, string | null>>(checksumSql('pg', table, cols, orderBy));
  return r.rows[0]!;
}

/** Equal row counts and per-column aggregates; float sums within 1e-9 relative, min/max exact. */
export function expectSameChecksum(
  source: Record<string, string | null>,
  table: Record<string, string | null>,
  cols: readonly CheckColumn[],
): void {
  expect(table.n).toBe(source.n);
  cols.forEach((c, i) => {
    const label = `${c.source} → ${c.target}`;
    expect(table[`nn${i}`], `${label} non-null count`).toBe(source[`nn${i}`]);
    const a = source[`s${i}`] ?? null;
    const b = table[`s${i}`] ?? null;
    if (c.kind === 'float') {
      const x = Number(a);
      const y = Number(b);
      expect(Math.abs(x - y) / Math.max(1, Math.abs(x)), `${label} sum`).toBeLessThan(1e-9);
      expect(Number(table[`lo${i}`]), `${label} min`).toBe(Number(source[`lo${i}`]));
      expect(Number(table[`hi${i}`]), `${label} max`).toBe(Number(source[`hi${i}`]));
    } else if (c.kind === 'numeric') {
      for (const k of ['s', 'lo', 'hi']) {
        expect(Number(table[`${k}${i}`]), `${label} ${k}`).toBe(Number(source[`${k}${i}`]));
        expect(trimZeros(table[`${k}${i}`]), `${label} ${k} digits`).toBe(trimZeros(source[`${k}${i}`]));
      }
    } else {
      expect(b, `${label} checksum`).toBe(a);
    }
  });
}

function trimZeros(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

export async function count(client: pg.ClientBase, table: string, where = 'true'): Promise<number> {
  const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`);
  return Number(r.rows[0]!.n);
}
