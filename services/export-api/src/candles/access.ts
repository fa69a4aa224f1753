import { CANDLES, type Filter, type Timeframe } from '@parquetry/lake';
import type { ApiKey } from '../auth/keys.js';
import { canReadDatasetInfo, rowScopesFor } from '../datasets.js';
import { ForbiddenError } from '../errors.js';

/**
 * Who may read which candle series. The candle routes read the `candles` dataset, one timeframe
 * at a time, so a key needs `candles` or `candles_<tf>` (the derived dataset of that timeframe,
 * lake/lake-datasets.ts). Row scopes of those datasets apply too: a series is one symbol and
 * one timeframe, so scopes on `symbol` and `timeframe` are decided per series; a scope on any
 * other column cannot be honoured by answers built from whole series, and fails closed (the
 * key can still use exports, which apply every row scope in SQL).
 */

export function candleDatasetOf(tf: Timeframe) {
  return { name: `${CANDLES.name}_${tf}`, derived_from: CANDLES.name };
}

export type SeriesAccess = { allowed: true } | { allowed: false; reason: string };

function likeRegex(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '%') re += '[\\s\\S]*';
    else if (ch === '_') re += '[\\s\\S]';
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether a series value (text) satisfies a filter; comparisons are on text, as DuckDB compares VARCHAR. */
export function filterMatches(value: string, f: Filter): boolean {
  switch (f.op) {
    case '=':
      return value === String(f.value);
    case '!=':
      return value !== String(f.value);
    case '<':
      return value < String(f.value);
    case '<=':
      return value <= String(f.value);
    case '>':
      return value > String(f.value);
    case '>=':
      return value >= String(f.value);
    case 'in':
      return f.value.some((v) => String(v) === value);
    case 'between':
      return value >= String(f.value[0]) && value <= String(f.value[1]);
    case 'like':
      return likeRegex(f.value).test(value);
    case 'is_null':
      return !f.value; // a series always has a symbol and a timeframe
  }
}

export function seriesAccess(key: ApiKey, tf: Timeframe, symbol: string): SeriesAccess {
  const dataset = candleDatasetOf(tf);
  if (!canReadDatasetInfo(key, dataset)) {
    return { allowed: false, reason: `this key may not read dataset "${CANDLES.name}" (timeframe ${tf})` };
  }
  for (const f of rowScopesFor(key, dataset) ?? []) {
    const value = f.column === 'symbol' ? symbol : f.column === 'timeframe' ? tf : undefined;
    if (value === undefined) {
      return {
        allowed: false,
        reason: `this key's row scope on column "${f.column}" cannot be applied to candle routes; use exports`,
      };
    }
    if (!filterMatches(value, f)) {
      return {
        allowed: false,
        reason: `this key may not read ${tf} candles of symbol ${JSON.stringify(symbol)}`,
      };
    }
  }
  return { allowed: true };
}

export function assertSeriesAllowed(key: ApiKey, tf: Timeframe, symbol: string): void {
  const access = seriesAccess(key, tf, symbol);
  if (!access.allowed) {
    throw new ForbiddenError(access.reason, { details: { dataset: CANDLES.name, timeframe: tf, symbol } });
  }
}

/** Whether the key may read some candles of this timeframe (before a symbol is known). */
export function canReadTimeframe(key: ApiKey, tf: Timeframe): boolean {
  return canReadDatasetInfo(key, candleDatasetOf(tf));
}
