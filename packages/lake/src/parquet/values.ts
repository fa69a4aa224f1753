/**
 * JS values → DuckDB values for the writer's column types. Pure; throws InvalidInputError naming
 * the column for a value that does not fit.
 */
import {
  BIGINT,
  BOOLEAN,
  DATE,
  DOUBLE,
  type DuckDBType,
  type DuckDBValue,
  dateValue,
  INTEGER,
  TIMESTAMPTZ,
  timestampTZValue,
  VARCHAR,
} from '@duckdb/node-api';
import { InvalidInputError } from '@parquetry/service';
import type { ColumnType } from '../datasets.js';
import { jsonText } from './infer.js';

const DAY_MS = 86_400_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|±HH[:MM]]` (space allowed for T; no zone = UTC). */
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Epoch microseconds of an ISO-8601 timestamp, keeping sub-millisecond digits; undefined if not one. */
export function parseIsoMicros(text: string): bigint | undefined {
  const m = ISO.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  // Date.UTC rolls 2025-02-30 over to March: refuse instead.
  if (
    Number.isNaN(ms) ||
    check.getUTCDate() !== Number(d) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const micros = BigInt(frac.padEnd(6, '0').slice(0, 6) || '0');
  return BigInt(ms) * 1000n + micros - BigInt(offsetMinutes) * 60_000_000n;
}

/** Days since 1970-01-01 of a strict `YYYY-MM-DD`; undefined if not one. */
export function parseIsoDays(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const micros = parseIsoMicros(text);
  return micros === undefined ? undefined : Number(micros / 1000n) / DAY_MS;
}

export type Encoder = (value: unknown, row: number) => DuckDBValue;

/**
 * The DuckDB type a column is stored as. JSON columns are plain VARCHAR holding JSON text, so
 * every Parquet reader (hyparquet, pandas, pg-loader) sees the same string DuckDB does.
 */
export function duckdbType(type: ColumnType): DuckDBType {
  switch (type) {
    case 'VARCHAR':
    case 'JSON':
      return VARCHAR;
    case 'BIGINT':
      return BIGINT;
    case 'INTEGER':
      return INTEGER;
    case 'DOUBLE':
      return DOUBLE;
    case 'BOOLEAN':
      return BOOLEAN;
    case 'DATE':
      return DATE;
    case 'TIMESTAMPTZ':
      return TIMESTAMPTZ;
  }
}

function describe(value: unknown): string {
  const text =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'object'
        ? jsonText(value)
        : String(value);
  return `${typeof value} ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

/**
 * An encoder for one column: null/undefined → NULL; otherwise the value converted for `type`.
 * `json` (or type JSON) writes every value as JSON text. VARCHAR takes any value: strings as
 * they are, anything else as JSON text.
 */
export function encoderFor(column: { name: string; type: ColumnType; json?: boolean }): Encoder {
  const bad = (value: unknown, row: number, expected: string): never => {
    throw new InvalidInputError(
      `column ${JSON.stringify(column.name)} row ${row}: expected ${expected}, got ${describe(value)}`,
      {
        details: { column: column.name, row },
      },
    );
  };
  if (column.json || column.type === 'JSON') {
    if (column.type !== 'VARCHAR' && column.type !== 'JSON') {
      throw new InvalidInputError(
        `column ${column.name}: json encoding needs VARCHAR or JSON, not ${column.type}`,
      );
    }
    return (v) => (v === null || v === undefined ? null : jsonText(v));
  }
  switch (column.type) {
    case 'VARCHAR':
      return (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : jsonText(v));
    case 'BOOLEAN':
      return (v, row) =>
        v === null || v === undefined ? null : typeof v === 'boolean' ? v : bad(v, row, 'a boolean');
    case 'DOUBLE':
      return (v, row) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number') return v;
        if (typeof v === 'bigint') return Number(v);
        return bad(v, row, 'a number');
      };
    case 'INTEGER':
      return (v, row) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) return v;
        return bad(v, row, 'a 32-bit integer');
      };
    case 'BIGINT':
      return (v, row) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
        if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) return v;
        if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) {
          const b = BigInt(v);
          if (b >= INT64_MIN && b <= INT64_MAX) return b;
        }
        return bad(v, row, 'a safe integer, a bigint or an integer string');
      };
    case 'DATE': {
      // A file's rows mostly share a few dates: remember parsed ones (bounded).
      const cache = new Map<string, DuckDBValue>();
      return (v, row) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'string') {
          const hit = cache.get(v);
          if (hit !== undefined) return hit;
          const days = parseIsoDays(v);
          if (days !== undefined) {
            if (cache.size >= 4096) cache.clear();
            const value = dateValue(days);
            cache.set(v, value);
            return value;
          }
        } else if (v instanceof Date && !Number.isNaN(v.getTime())) {
          return dateValue(Math.floor(v.getTime() / DAY_MS));
        }
        return bad(v, row, "a 'YYYY-MM-DD' date");
      };
    }
    case 'TIMESTAMPTZ':
      return (v, row) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number' && Number.isFinite(v))
          return timestampTZValue(BigInt(Math.round(v * 1000)));
        if (typeof v === 'string') {
          const micros = parseIsoMicros(v);
          if (micros !== undefined) return timestampTZValue(micros);
        } else if (v instanceof Date && !Number.isNaN(v.getTime())) {
          return timestampTZValue(BigInt(v.getTime()) * 1000n);
        }
        return bad(v, row, 'epoch milliseconds or an ISO-8601 timestamp');
      };
  }
}
