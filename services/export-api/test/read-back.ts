import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '@parquetry/lake';
import { parseCsv, readParquetIndependent } from '@parquetry/testkit';
import { expect } from 'vitest';
import type { SourceRow } from './lake-fixture.js';

/**
 * TEST HELPERS: read an exported file back twice — with DuckDB, and without it (hyparquet for
 * Parquet, our own parsing for CSV and NDJSON) — and compare rows with the source as
 * multisets, after normalising each value by the export's schema type (CSV cannot tell NULL
 * from '', so '' counts as NULL everywhere).
 */

export type Row = Record<string, unknown>;

export function extensionOf(format: string, compression: string): string {
  if (format === 'parquet') return 'parquet';
  const base = format === 'csv' ? 'csv' : 'ndjson';
  return compression === 'gzip' ? `${base}.gz` : base;
}

export async function readWithDuckDB(conn: DuckDBConnection, path: string, format: string): Promise<Row[]> {
  const source =
    format === 'parquet'
      ? `read_parquet(${sqlString(path)})`
      : format === 'csv'
        ? `read_csv(${sqlString(path)}, header = true, all_varchar = true)`
        : `read_json(${sqlString(path)}, format = 'newline_delimited')`;
  const r = await conn.runAndReadAll(`SELECT * FROM ${source}`);
  return r.getRowObjectsJS() as Row[];
}

export async function readIndependently(
  path: string,
  bytes: Buffer,
  format: string,
  gz: boolean,
): Promise<Row[]> {
  if (format === 'parquet') return readParquetIndependent(path);
  const text = (gz ? gunzipSync(bytes) : bytes).toString('utf8');
  if (format === 'json') {
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Row);
  }
  const [header, ...lines] = parseCsv(text, ',');
  return lines.map((cells) => Object.fromEntries(header!.map((h, i) => [h, cells[i] ?? ''])));
}

/** Saves the download and reads it both ways; both must agree before either is compared. */
export async function readBoth(
  conn: DuckDBConnection,
  dir: string,
  name: string,
  bytes: Buffer,
  format: string,
  compression: string,
): Promise<{ duck: Row[]; own: Row[] }> {
  const path = join(dir, `${name}.${extensionOf(format, compression)}`);
  writeFileSync(path, bytes);
  if (compression === 'gzip' && format !== 'parquet') expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
  if (format === 'parquet') expect(bytes.subarray(0, 4).toString('latin1')).toBe('PAR1');
  return {
    duck: await readWithDuckDB(conn, path, format),
    own: await readIndependently(path, bytes, format, compression === 'gzip'),
  };
}

const TS = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/;

function timestampMs(v: unknown): number | null {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const s = String(v);
  const m = TS.exec(s);
  if (!m) throw new Error(`not a timestamp: ${s}`);
  let zone = m[3] ?? 'Z';
  if (/^[+-]\d{2}$/.test(zone)) zone = `${zone}:00`;
  if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(`${m[1]}T${m[2]}${zone}`);
}

/** One value in a form every reader agrees on, by the column's type in the export schema. */
export function normalize(v: unknown, type: string): unknown {
  if (v === null || v === undefined || v === '') return null;
  switch (type) {
    case 'TIMESTAMPTZ':
      return timestampMs(v);
    case 'DATE':
      return v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10);
    case 'DOUBLE':
    case 'BIGINT':
    case 'INTEGER':
      return Number(v);
    case 'BOOLEAN':
      return v === true || v === 'true';
    default:
      if (typeof v === 'string') return v;
      if (typeof v === 'object' && !(v instanceof Date)) return JSON.stringify(v);
      return String(v);
  }
}

export function normalizeRows(rows: readonly Row[], schema: Record<string, string>): string[] {
  const cols = Object.keys(schema);
  return rows.map((r) => JSON.stringify(cols.map((c) => normalize(r[c], schema[c]!)))).sort();
}

/** A source row seen through an export's schema: DuckDB matches column names ignoring ASCII case. */
export function project(row: SourceRow, schema: Record<string, string>): Row {
  const lower = new Map(Object.keys(row).map((k) => [k.replace(/[A-Z]/g, (c) => c.toLowerCase()), k]));
  const out: Row = {};
  for (const c of Object.keys(schema)) {
    const k = lower.get(c.replace(/[A-Z]/g, (x) => x.toLowerCase()));
    out[c] = k === undefined ? null : row[k];
  }
  return out;
}

/** Both readings equal the expected rows (as multisets). */
export function expectRows(
  read: { duck: Row[]; own: Row[] },
  expected: readonly Row[],
  schema: Record<string, string>,
) {
  const want = normalizeRows(expected, schema);
  const viaDuck = normalizeRows(read.duck, schema);
  const viaOwn = normalizeRows(read.own, schema);
  expect(viaDuck.length).toBe(want.length);
  expect(viaOwn).toEqual(viaDuck);
  expect(viaDuck).toEqual(want);
}
