import type { Tick } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';

/**
 * Parser for raw Binance spot websocket captures (hftbacktest format): one line per
 * message, `<receive time, ns since epoch> <json>`, the JSON either a combined-stream
 * wrapper `{"stream": "...", "data": {...}}` or the bare event. Only trade events
 * (`e: "trade"`) become ticks; depth and bookTicker lines are skipped.
 * Trade fields: `t` trade id, `p` price, `q` quantity, `T` trade time (ms), `m` buyer is
 * the maker, so the aggressor sold: `m: true` → side `sell`.
 * Pure: the caller reads (and gunzips) the file.
 */
export interface CaptureTrade {
  /** When the capture received the message, epoch ms (floor of the ns stamp). */
  receivedAtMs: number;
  tick: Tick;
}

interface BinanceTradeEvent {
  e: 'trade';
  s: string;
  t: number;
  p: string;
  q: string;
  T: number;
  m: boolean;
}

const TRADE_EVENT = /"e"\s*:\s*"trade"/;

/** One capture line → a trade, or undefined for other messages and blank lines. */
export function parseBinanceCaptureLine(line: string): CaptureTrade | undefined {
  const space = line.indexOf(' ');
  if (space < 0) {
    if (line.trim() === '') return undefined;
    throw new InvalidInputError(`capture line without a timestamp: ${line.slice(0, 80)}`);
  }
  const body = line.slice(space + 1);
  // Cheap pre-filter: most lines are depth updates, not worth a JSON.parse.
  if (!TRADE_EVENT.test(body)) return undefined;
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch (cause) {
    throw new InvalidInputError(`capture line is not JSON: ${line.slice(0, 80)}`, { cause });
  }
  const data = (isObject(msg) && isObject(msg.data) ? msg.data : msg) as Partial<BinanceTradeEvent>;
  if (!isObject(data) || data.e !== 'trade') return undefined;
  const price = Number(data.p);
  const size = Number(data.q);
  if (
    typeof data.s !== 'string' ||
    !Number.isSafeInteger(data.t) ||
    !Number.isSafeInteger(data.T) ||
    !Number.isFinite(price) ||
    !Number.isFinite(size) ||
    typeof data.m !== 'boolean'
  ) {
    throw new InvalidInputError(`malformed Binance trade: ${body.slice(0, 200)}`);
  }
  const ns = line.slice(0, space);
  if (!/^\d+$/.test(ns)) throw new InvalidInputError(`bad capture timestamp: ${ns.slice(0, 40)}`);
  return {
    receivedAtMs: Number(BigInt(ns) / 1_000_000n),
    tick: {
      symbol: data.s,
      ts: data.T!,
      price,
      size,
      side: data.m ? 'sell' : 'buy',
      trade_id: String(data.t),
    },
  };
}

/** Every trade of a capture's text, in file order. */
export function parseBinanceCapture(text: string): CaptureTrade[] {
  const out: CaptureTrade[] = [];
  for (const line of text.split('\n')) {
    const trade = parseBinanceCaptureLine(line);
    if (trade) out.push(trade);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
