// The demo market feed's input: the real Binance trades of shared/data/market (hftbacktest
// captures, `<receive ns> <json>` per line; the format is documented in
// services/candle-aggregator/src/domain/binance.ts) replayed on a clock that ends "now".
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const TRADE_EVENT = /"e"\s*:\s*"trade"/;

/** One capture line → `{symbol, ts, price, size, side, trade}` (trade id as a number), or undefined. */
export function parseCaptureLine(line) {
  const space = line.indexOf(' ');
  if (space < 0) return undefined;
  const body = line.slice(space + 1);
  if (!TRADE_EVENT.test(body)) return undefined;
  let msg;
  try {
    msg = JSON.parse(body);
  } catch {
    return undefined;
  }
  const d = msg && typeof msg.data === 'object' && msg.data !== null ? msg.data : msg;
  if (
    d?.e !== 'trade' ||
    typeof d.s !== 'string' ||
    !Number.isSafeInteger(d.t) ||
    !Number.isSafeInteger(d.T)
  ) {
    return undefined;
  }
  const price = Number(d.p);
  const size = Number(d.q);
  if (!(price > 0) || !(size >= 0)) return undefined;
  return { symbol: d.s, ts: d.T, price, size, side: d.m ? 'sell' : 'buy', trade: d.t };
}

/** Every trade of the `*.gz` captures in `dir`, ordered by trade id, duplicates dropped. [] when missing. */
export function loadCaptureTrades(dir) {
  if (!existsSync(dir)) return [];
  const byId = new Map();
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.gz'))
    .sort()) {
    const text = gunzipSync(readFileSync(join(dir, f))).toString('utf8');
    for (const line of text.split('\n')) {
      const t = parseCaptureLine(line);
      if (t) byId.set(`${t.symbol}:${t.trade}`, t);
    }
  }
  return [...byId.values()].sort((a, b) => a.symbol.localeCompare(b.symbol) || a.trade - b.trade);
}

/**
 * The replay clock: the capture repeats back to back from its own first trade onward, loop k
 * playing trade i at `ts_i + k * span` with trade id `id_i + k * idSpan`. The mapping depends
 * on nothing but the capture, so a restarted feed re-publishes exactly the ticks it published
 * before (same ts, same id: duplicates, dropped downstream), and no two different ticks share
 * an id. `ticksFrom(ms)` starts one whole loop before `ms`, so the history of the last ~10
 * minutes is there at once and later ticks follow the wall clock.
 */
export function replayPlan(trades) {
  if (trades.length === 0) throw new Error('no trades to replay');
  const sorted = [...trades].sort((a, b) => a.ts - b.ts || a.trade - b.trade);
  let minId = Infinity;
  let maxId = -Infinity;
  for (const t of sorted) {
    minId = Math.min(minId, t.trade);
    maxId = Math.max(maxId, t.trade);
  }
  const minTs = sorted[0].ts;
  const span = sorted[sorted.length - 1].ts - minTs + 1000;
  const idSpan = maxId - minId + 1;
  const tick = (k, i) => {
    const t = sorted[i];
    return {
      symbol: t.symbol,
      ts: t.ts + k * span,
      price: t.price,
      size: t.size,
      side: t.side,
      trade_id: String(t.trade + k * idSpan),
    };
  };
  return {
    span,
    perLoop: sorted.length,
    tick,
    /** The loop playing at `ms`. */
    loopAt: (ms) => Math.floor((ms - minTs) / span),
    /** Every tick from the start of the loop before the one playing at `ms`, without end. */
    *ticksFrom(ms) {
      for (let k = Math.max(0, Math.floor((ms - minTs) / span) - 1); ; k++) {
        for (let i = 0; i < sorted.length; i++) yield tick(k, i);
      }
    },
  };
}
