import { InvalidInputError } from '@parquetry/service';
import { InvalidArgumentError } from 'commander';

/** Parsers for commander options; a bad value is a usage error (exit code 2). */

/** Accumulates a repeatable option (`--where a=b --where c=d`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive integer, got 0');
  return n;
}

/** `YYYY-MM-DD`, a real calendar date. */
export function isoDate(value: string): string {
  const ms = Date.parse(`${value}T00:00:00Z`);
  // An impossible date (2025-13-01) parses to NaN, on which toISOString would throw.
  const ok =
    /^\d{4}-\d{2}-\d{2}$/.test(value) && Number.isFinite(ms) && new Date(ms).toISOString().startsWith(value);
  if (!ok) throw new InvalidArgumentError(`expected a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  return value;
}

/** `a,b , c` → ['a', 'b', 'c']. */
export function commaList(value: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

/**
 * `['retailer=jumbo', 'date=2025-09-03']` → `{retailer: 'jumbo', date: '2025-09-03'}`. Called from
 * actions, where commander no longer reports its own errors: throws InvalidInputError (exit 2).
 */
export function parseWhere(pairs: readonly string[] = []): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--where expects column=value, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq).trim();
    if (key in out && out[key] !== pair.slice(eq + 1)) {
      throw new InvalidInputError(`--where gives ${key} twice`);
    }
    out[key] = pair.slice(eq + 1);
  }
  return out;
}
