import { SYMBOL_PATTERN, type Tick, tick as tickSchema } from '@parquetry/lake';
import type { z } from 'zod';

/**
 * Tick messages (`market.ticks.<symbol>`, DESIGN.md "Bus") → ticks, one verdict per tick.
 *
 * A message is one tick or `{symbol, ticks: [...]}`. A fault of the whole message (not JSON,
 * not an object, a bad subject) rejects the message; a fault of one tick of an array rejects
 * that tick only, and the others go on. Reasons are short, low-cardinality codes (they become
 * dead-letter reasons and metric labels): `invalid_json`, `invalid_utf8`, `invalid_symbol`,
 * `subject_mismatch`, `invalid_timestamp`, `invalid_price`, `invalid_size`, `schema_violation`.
 *
 * Validation is the shared zod `tick` schema. A hand-written check runs first and accepts
 * only ticks the schema surely accepts, producing the same value (checked by a property
 * test): the common case then costs no zod call, and everything else gets the schema's
 * verdict and message.
 *
 * Before all that, `scanTick` reads the common message — one flat ASCII object of strings and
 * numbers — straight from the bytes, without a string of the body or JSON.parse: it returns the
 * very tick the general path would, or gives up and lets the general path decide (property test
 * in decode.unit.test.ts). That halves the per-tick cost of the service's hot loop.
 */
export type RejectCode =
  | 'invalid_json'
  | 'invalid_utf8'
  | 'invalid_symbol'
  | 'subject_mismatch'
  | 'invalid_timestamp'
  | 'invalid_price'
  | 'invalid_size'
  | 'schema_violation'
  | 'too_large';

export interface TickReject {
  /** Position in the message's `ticks` array; undefined when the whole message is rejected. */
  index: number | undefined;
  reason: RejectCode;
  detail: string;
  /** What is dead-lettered: the tick as sent (or the whole message body). */
  body: unknown;
}

export interface DecodedMessage {
  /** `{symbol, ticks: [...]}` rather than a single tick. */
  array: boolean;
  ticks: Tick[];
  /** For each accepted tick: its index in the `ticks` array (undefined for a single-tick message) … */
  indices: (number | undefined)[];
  /** … and the tick as sent (array elements only: a single tick's dead letter is its message). */
  sources: unknown[];
  rejects: TickReject[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ISO_DATE_PREFIX = /^\d{4}-\d{2}-\d{2}/;

/** The symbol of `market.ticks.<symbol>` when it matches SYMBOL_PATTERN, else ''. */
function symbolOfSubject(subject: string): string {
  const n = subject.length;
  if (n < 14 || n > 13 + 32 || !subject.startsWith('market.ticks.')) return '';
  for (let i = 13; i < n; i++) {
    const c = subject.charCodeAt(i);
    // [A-Za-z0-9_-], as SYMBOL_PATTERN
    if (
      !(
        (c >= 0x61 && c <= 0x7a) ||
        (c >= 0x41 && c <= 0x5a) ||
        (c >= 0x30 && c <= 0x39) ||
        c === 0x5f ||
        c === 0x2d
      )
    )
      return '';
  }
  return subject.slice(13);
}

export function decodeTickMessage(subject: string, data: Uint8Array): DecodedMessage {
  const subjectSymbol = symbolOfSubject(subject);
  if (subjectSymbol === '') {
    return whole('invalid_symbol', `subject ${subject} does not name a valid symbol`, undefined);
  }
  const scanned = scanTick(data, subjectSymbol);
  if (scanned !== undefined) {
    return { array: false, ticks: [scanned], indices: [undefined], sources: [undefined], rejects: [] };
  }
  return decodeGeneral(subjectSymbol, data);
}

/**
 * The tick of a valid single-tick message of the common shape (`scanTick`), or undefined:
 * then `decodeTickMessage` has the verdict. What the service's hot loop calls first, to spare
 * a DecodedMessage per message.
 */
export function decodeCommonTick(subject: string, data: Uint8Array): Tick | undefined {
  const subjectSymbol = symbolOfSubject(subject);
  return subjectSymbol === '' ? undefined : scanTick(data, subjectSymbol);
}

/** The general path (JSON.parse, then `fastTick` or the zod schema); `decodeTickMessage` without `scanTick`. */
export function decodeTickMessageGeneral(subject: string, data: Uint8Array): DecodedMessage {
  const subjectSymbol = symbolOfSubject(subject);
  if (subjectSymbol === '') {
    return whole('invalid_symbol', `subject ${subject} does not name a valid symbol`, undefined);
  }
  return decodeGeneral(subjectSymbol, data);
}

function decodeGeneral(subjectSymbol: string, data: Uint8Array): DecodedMessage {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return whole('invalid_utf8', 'message body is not UTF-8', undefined);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return whole('invalid_json', `message body is not JSON: ${(err as Error).message}`, undefined);
  }
  if (!isRecord(body)) return whole('schema_violation', 'a tick message must be a JSON object', body);

  const list = body.ticks;
  const out: DecodedMessage = { array: list !== undefined, ticks: [], indices: [], sources: [], rejects: [] };
  if (list === undefined) {
    decodeOne(body, subjectSymbol, undefined, out);
    return out;
  }
  if (!Array.isArray(list) || list.length === 0) {
    return whole('schema_violation', '`ticks` must be a non-empty array', body);
  }
  if (body.symbol !== undefined && (typeof body.symbol !== 'string' || !SYMBOL_PATTERN.test(body.symbol))) {
    return whole('invalid_symbol', `symbol ${JSON.stringify(body.symbol)?.slice(0, 40)} is not valid`, body);
  }
  for (let i = 0; i < list.length; i++) {
    const element = list[i];
    if (!isRecord(element)) {
      out.rejects.push({
        index: i,
        reason: 'schema_violation',
        detail: 'a tick must be an object',
        body: element,
      });
      continue;
    }
    const raw =
      element.symbol === undefined && body.symbol !== undefined
        ? { symbol: body.symbol, ...element }
        : element;
    decodeOne(raw, subjectSymbol, i, out);
  }
  return out;
}

function decodeOne(
  raw: Record<string, unknown>,
  subjectSymbol: string,
  index: number | undefined,
  out: DecodedMessage,
) {
  let t = fastTick(raw);
  if (t === undefined) {
    const parsed = tickSchema.safeParse(raw);
    if (!parsed.success) {
      out.rejects.push({ index, ...describeIssues(parsed.error), body: raw });
      return;
    }
    t = parsed.data;
  }
  if (t.symbol !== subjectSymbol) {
    out.rejects.push({
      index,
      reason: 'subject_mismatch',
      detail: `tick symbol ${t.symbol} does not match the subject's ${subjectSymbol}`,
      body: raw,
    });
    return;
  }
  out.ticks.push(t);
  out.indices.push(index);
  out.sources.push(index === undefined ? undefined : raw);
}

// ---- scanTick: the common single-tick message, read from its bytes --------------------------

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const latin1 = new TextDecoder('latin1');
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

/** The string of the ASCII bytes data[from, to), without a view object for short ones. */
function ascii(data: Uint8Array, from: number, to: number): string {
  if (to - from <= 12) {
    let text = '';
    for (let i = from; i < to; i++) text += String.fromCharCode(data[i]!);
    return text;
  }
  return latin1Slice ? latin1Slice.call(data, from, to) : latin1.decode(data.subarray(from, to));
}

/** Fields `scanTick` reads (bit positions of its duplicate-key check). */
const Field = { Unknown: 0, Symbol: 1, Ts: 2, Price: 3, Size: 4, Side: 5, TradeId: 6 } as const;

/** Field of the key at data[from, to) (ASCII, no escapes); -1 for `ticks` (an array message). */
function fieldOf(data: Uint8Array, from: number, to: number): number {
  switch (to - from) {
    case 2:
      return data[from] === 0x74 && data[from + 1] === 0x73 ? Field.Ts : Field.Unknown; // ts
    case 4:
      if (
        data[from] === 0x73 &&
        data[from + 1] === 0x69 &&
        data[from + 2] === 0x7a &&
        data[from + 3] === 0x65
      )
        return Field.Size; // size
      if (
        data[from] === 0x73 &&
        data[from + 1] === 0x69 &&
        data[from + 2] === 0x64 &&
        data[from + 3] === 0x65
      )
        return Field.Side; // side
      return Field.Unknown;
    case 5:
      if (equalsAscii(data, from, 'price')) return Field.Price;
      if (equalsAscii(data, from, 'ticks')) return -1;
      return Field.Unknown;
    case 6:
      return equalsAscii(data, from, 'symbol') ? Field.Symbol : Field.Unknown;
    case 8:
      return equalsAscii(data, from, 'trade_id') ? Field.TradeId : Field.Unknown;
    default:
      return Field.Unknown;
  }
}

function equalsAscii(data: Uint8Array, from: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (data[from + i] !== text.charCodeAt(i)) return false;
  return true;
}

function isWs(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * The tick of a message that is one flat JSON object of ASCII strings (no escapes) and
 * numbers, exactly as `decodeTickMessage`'s general path would accept it — or undefined,
 * and the general path decides (anything else: arrays, nesting, escapes, non-ASCII,
 * literals, duplicate keys, invalid values, a symbol other than the subject's).
 */
export function scanTick(data: Uint8Array, subjectSymbol: string): Tick | undefined {
  const n = data.length;
  let i = 0;
  while (isWs(data[i])) i++;
  if (data[i] !== 0x7b) return undefined; // {
  i++;
  let seen = 0;
  let symbolOk = false;
  let ts: number | undefined;
  let tsText: string | undefined;
  let price: number | undefined;
  let size: number | undefined;
  let side: 'buy' | 'sell' | undefined;
  let tradeId: string | undefined;
  for (;;) {
    while (isWs(data[i])) i++;
    if (data[i] !== QUOTE) return undefined; // also `{}`: let the general path say so
    const keyFrom = ++i;
    for (;;) {
      const b = data[i];
      if (b === undefined || b === BACKSLASH || b < 0x20 || b >= 0x80) return undefined;
      if (b === QUOTE) break;
      i++;
    }
    const field = fieldOf(data, keyFrom, i);
    if (field < 0) return undefined;
    if (field !== Field.Unknown) {
      if (seen & (1 << field)) return undefined; // duplicate key: JSON.parse keeps the last one
      seen |= 1 << field;
    }
    i++;
    while (isWs(data[i])) i++;
    if (data[i] !== COLON) return undefined;
    i++;
    while (isWs(data[i])) i++;
    const first = data[i];
    if (first === QUOTE) {
      const from = ++i;
      for (;;) {
        const b = data[i];
        if (b === undefined || b === BACKSLASH || b < 0x20 || b >= 0x80) return undefined;
        if (b === QUOTE) break;
        i++;
      }
      const to = i++;
      switch (field) {
        case Field.Symbol:
          if (to - from !== subjectSymbol.length || !equalsAscii(data, from, subjectSymbol)) return undefined;
          symbolOk = true;
          break;
        case Field.Side:
          if (to - from === 3 && equalsAscii(data, from, 'buy')) side = 'buy';
          else if (to - from === 4 && equalsAscii(data, from, 'sell')) side = 'sell';
          else return undefined;
          break;
        case Field.TradeId:
          if (to - from < 1 || to - from > 128) return undefined;
          tradeId = ascii(data, from, to);
          break;
        case Field.Ts:
          tsText = ascii(data, from, to);
          break;
        case Field.Unknown:
          break;
        default:
          return undefined; // price or size as a string
      }
    } else if (first === MINUS || (first !== undefined && first >= ZERO && first <= NINE)) {
      const from = i;
      i = numberEnd(data, i);
      if (i < 0) return undefined;
      if (field !== Field.Unknown) {
        const v = numberValue(data, from, i);
        if (!Number.isFinite(v)) return undefined;
        switch (field) {
          case Field.Ts:
            ts = v;
            break;
          case Field.Price:
            price = v;
            break;
          case Field.Size:
            size = v;
            break;
          case Field.TradeId:
            if (!Number.isSafeInteger(v)) return undefined;
            tradeId = String(v);
            break;
          default:
            return undefined; // symbol or side as a number
        }
      }
    } else return undefined; // true, false, null, objects, arrays
    while (isWs(data[i])) i++;
    if (data[i] === COMMA) {
      i++;
      continue;
    }
    if (data[i] !== 0x7d) return undefined; // }
    i++;
    break;
  }
  while (i < n && isWs(data[i])) i++;
  if (i !== n) return undefined;

  if (!symbolOk) return undefined;
  let ms: number;
  if (ts !== undefined) ms = ts;
  else if (tsText !== undefined) {
    if (!ISO_DATE_PREFIX.test(tsText)) return undefined;
    ms = Date.parse(tsText);
    if (!Number.isFinite(ms)) return undefined;
  } else return undefined;
  if (price === undefined || !(price > 0)) return undefined;
  if (size === undefined || !(size >= 0)) return undefined;
  const t: Tick = { symbol: subjectSymbol, ts: ms, price, size };
  if (side !== undefined) t.side = side;
  if (tradeId !== undefined) t.trade_id = tradeId;
  return t;
}

/** End of the JSON number starting at `i`, or -1 when it is not one (JSON grammar, strictly). */
function numberEnd(data: Uint8Array, i: number): number {
  if (data[i] === MINUS) i++;
  if (data[i] === ZERO) i++;
  else if (isDigit(data[i]) && data[i] !== ZERO) i = digitsEnd(data, i);
  else return -1;
  if (data[i] === DOT) {
    if (!isDigit(data[i + 1])) return -1;
    i = digitsEnd(data, i + 1);
  }
  if (data[i] === 0x65 || data[i] === 0x45) {
    i++;
    if (data[i] === PLUS || data[i] === MINUS) i++;
    if (!isDigit(data[i])) return -1;
    i = digitsEnd(data, i);
  }
  return i;
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= ZERO && b <= NINE;
}

function digitsEnd(data: Uint8Array, i: number): number {
  while (isDigit(data[i])) i++;
  return i;
}

/**
 * The value JSON.parse gives the (valid) number text data[from, to). Up to 15 digits and a
 * decimal exponent within ±22, digits / 10^k (or × 10^k) is one correctly rounded operation
 * on exact operands (Clinger's fast path), hence the same double; anything else goes through
 * Number(), which rounds correctly too.
 */
function numberValue(data: Uint8Array, from: number, to: number): number {
  let i = from;
  const negative = data[i] === MINUS;
  if (negative) i++;
  let digits = 0;
  let mantissa = 0;
  let scale = 0;
  let b = data[i];
  while (b !== undefined && b >= ZERO && b <= NINE && i < to) {
    mantissa = mantissa * 10 + (b - ZERO);
    digits++;
    b = data[++i];
  }
  if (b === DOT) {
    b = data[++i];
    while (b !== undefined && b >= ZERO && b <= NINE && i < to) {
      mantissa = mantissa * 10 + (b - ZERO);
      digits++;
      scale--;
      b = data[++i];
    }
  }
  if (i < to || digits > 15) return Number(ascii(data, from, to));
  let v: number;
  if (scale === 0) v = mantissa;
  else if (scale >= -22) v = mantissa / POW10[-scale]!;
  else return Number(ascii(data, from, to));
  return negative ? -v : v;
}

/**
 * The schema's result for the plain common shape, or undefined to let the schema decide.
 * Never accepts what the schema rejects (see decode.unit.test.ts).
 */
export function fastTick(raw: Record<string, unknown>): Tick | undefined {
  const { symbol, ts, price, size, side, trade_id } = raw;
  if (typeof symbol !== 'string' || !SYMBOL_PATTERN.test(symbol)) return undefined;
  let ms: number;
  if (typeof ts === 'number') {
    if (!Number.isFinite(ts)) return undefined;
    ms = ts;
  } else if (typeof ts === 'string') {
    if (!ISO_DATE_PREFIX.test(ts)) return undefined;
    ms = Date.parse(ts);
    if (!Number.isFinite(ms)) return undefined;
  } else return undefined;
  if (typeof price !== 'number' || !Number.isFinite(price) || !(price > 0)) return undefined;
  if (typeof size !== 'number' || !Number.isFinite(size) || !(size >= 0)) return undefined;
  if (side !== undefined && side !== 'buy' && side !== 'sell') return undefined;
  let id: string | undefined;
  if (trade_id !== undefined) {
    if (typeof trade_id === 'string') {
      if (trade_id.length < 1 || trade_id.length > 128) return undefined;
      id = trade_id;
    } else if (typeof trade_id === 'number' && Number.isSafeInteger(trade_id)) {
      id = String(trade_id);
    } else return undefined;
  }
  const t: Tick = { symbol, ts: ms, price, size };
  if (side !== undefined) t.side = side;
  if (id !== undefined) t.trade_id = id;
  return t;
}

const FIELD_REASON: Record<string, RejectCode> = {
  symbol: 'invalid_symbol',
  ts: 'invalid_timestamp',
  price: 'invalid_price',
  size: 'invalid_size',
};

function describeIssues(error: z.ZodError): { reason: RejectCode; detail: string } {
  const first = error.issues[0];
  const field = typeof first?.path[0] === 'string' ? first.path[0] : '';
  const detail = error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(tick)'}: ${i.message}`)
    .join('; ');
  return { reason: FIELD_REASON[field] ?? 'schema_violation', detail };
}

function whole(reason: RejectCode, detail: string, body: unknown): DecodedMessage {
  return {
    array: false,
    ticks: [],
    indices: [],
    sources: [],
    rejects: [{ index: undefined, reason, detail, body }],
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
