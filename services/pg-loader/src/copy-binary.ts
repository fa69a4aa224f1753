/**
 * PostgreSQL COPY encoders working straight from DuckDB's vector memory.
 *
 * Values are never turned into JS objects: fixed-width columns are byte-swapped (DuckDB is
 * little-endian, the COPY binary format big-endian) and rebased where the epochs differ;
 * strings are copied as bytes. A batch is encoded in two column-major passes: sizes first,
 * then one exactly-sized Buffer, so nothing is copied twice. Every encoded batch keeps the end
 * offset of each row, so a failed COPY can be retried on any sub-range of rows (bisection).
 */

/** How a value travels: the DuckDB physical layout read and the PostgreSQL binary format written. */
export type WireKind =
  | 'bool'
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'numeric'
  | 'text'
  | 'json'
  | 'jsonb'
  | 'bytea'
  | 'uuid'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'time'
  | 'interval';

/**
 * Bytes per item in DuckDB's vector for each wire kind. `numeric`, `uuid` and the JSON kinds
 * arrive as VARCHAR (16-byte string_t): DuckDB renders them as text, the encoder converts.
 */
export const SOURCE_WIDTH: Record<WireKind, number> = {
  bool: 1,
  int2: 2,
  int4: 4,
  int8: 8,
  float4: 4,
  float8: 8,
  numeric: 16,
  text: 16,
  json: 16,
  jsonb: 16,
  bytea: 16,
  uuid: 16,
  date: 4,
  timestamp: 8,
  timestamptz: 8,
  time: 8,
  interval: 16,
};

/** One column of a record batch as raw vector memory (DuckDB's layout). */
export interface RawColumn {
  /** `rows * SOURCE_WIDTH[kind]` bytes. */
  data: Uint8Array;
  /** Bit i set = row i is not NULL; `null` means every row is valid. */
  validity: Uint8Array | null;
  /** Payload of a string longer than 12 bytes, whose pointer sits at `data[offset .. offset + 8)`. */
  readOutOfLine(offset: number, length: number): Uint8Array;
}

export interface RawBatch {
  rows: number;
  columns: RawColumn[];
}

/** Encoded rows of one batch: row i is `buffer[rowEnds[i-1] .. rowEnds[i])` (row -1 ends at 0). */
export interface EncodedRows {
  buffer: Buffer;
  rowEnds: Uint32Array;
  /** Rows actually encoded (skipped rows take zero bytes). */
  encodedRows: number;
}

/** `PGCOPY\n\377\r\n\0`, flags, header extension length. */
export const BINARY_COPY_HEADER: Buffer = Buffer.from([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);
/** Field count -1 ends the data. */
export const BINARY_COPY_TRAILER: Buffer = Buffer.from([0xff, 0xff]);

/** Microseconds and days between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MICROS = 946_684_800_000_000;
const PG_EPOCH_DAYS = 10_957;
const TWO_32 = 4_294_967_296;
const EPOCH_HI = Math.floor(PG_EPOCH_MICROS / TWO_32);
const EPOCH_LO = PG_EPOCH_MICROS % TWO_32;
const INT32_MAX = 0x7fffffff;

/** Fixed PostgreSQL binary size of each kind's value; -1 = variable. */
const PG_WIDTH: Record<WireKind, number> = {
  bool: 1,
  int2: 2,
  int4: 4,
  int8: 8,
  float4: 4,
  float8: 8,
  numeric: -1,
  text: -1,
  json: -1,
  jsonb: -1,
  bytea: -1,
  uuid: 16,
  date: 4,
  timestamp: 8,
  timestamptz: 8,
  time: 8,
  interval: 16,
};

/** Whether row's value in the column is not NULL. */
export function isValidRow(col: RawColumn, row: number): boolean {
  return isValid(col.validity, row);
}

/** Row's VARCHAR value as a JS string (for the few rows that need one: rejects). */
export function readText(col: RawColumn, row: number): string {
  return Buffer.from(stringBytes(col, row)).toString('utf8');
}

function isValid(validity: Uint8Array | null, row: number): boolean {
  return validity === null || ((validity[row >> 3]! >> (row & 7)) & 1) === 1;
}

function stringLength(data: Uint8Array, row: number): number {
  const o = row * 16;
  return (data[o]! | (data[o + 1]! << 8) | (data[o + 2]! << 16) | (data[o + 3]! << 24)) >>> 0;
}

/** The bytes of row's string_t: inline (≤ 12 bytes) or through the pointer. */
function stringBytes(col: RawColumn, row: number): Uint8Array {
  const len = stringLength(col.data, row);
  const o = row * 16;
  if (len <= 12) return col.data.subarray(o + 4, o + 4 + len);
  return col.readOutOfLine(o + 8, len);
}

function writeInt32BE(buf: Uint8Array, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = v >>> 16;
  buf[p + 2] = v >>> 8;
  buf[p + 3] = v;
}

/** Encodes record batches in PostgreSQL's binary COPY format. */
export class BinaryRowEncoder {
  private readonly kinds: readonly WireKind[];
  private readonly fixedRowBytes: number;

  constructor(kinds: readonly WireKind[]) {
    this.kinds = kinds;
    // Field count + one length word per field + every fixed-width payload.
    let fixed = 2 + 4 * kinds.length;
    for (const k of kinds) if (PG_WIDTH[k] > 0) fixed += PG_WIDTH[k];
    this.fixedRowBytes = fixed;
  }

  /** Encode `batch`; rows with `skip[i] === 1` are left out (zero bytes). */
  encode(batch: RawBatch, skip: Uint8Array | null = null): EncodedRows {
    const { rows, columns } = batch;
    const kinds = this.kinds;
    if (columns.length !== kinds.length) {
      throw new Error(`binary encoder: ${columns.length} columns for ${kinds.length} kinds`);
    }
    // Pass 1: row sizes. NULL fixed-width values still reserve their payload in fixedRowBytes;
    // subtract it back so the row is exact.
    const size = new Uint32Array(rows).fill(this.fixedRowBytes);
    const numerics: (Uint8Array | null)[][] = [];
    for (let c = 0; c < kinds.length; c++) {
      const kind = kinds[c]!;
      const col = columns[c]!;
      const w = PG_WIDTH[kind];
      const v = col.validity;
      if (kind === 'numeric') {
        const enc: (Uint8Array | null)[] = new Array(rows);
        for (let r = 0; r < rows; r++) {
          if (!isValid(v, r) || (skip !== null && skip[r] === 1)) {
            enc[r] = null;
            continue;
          }
          const e = encodeNumeric(Buffer.from(stringBytes(col, r)).toString('latin1'));
          enc[r] = e;
          size[r]! += e.length;
        }
        numerics[c] = enc;
      } else if (w < 0) {
        const extra = kind === 'jsonb' ? 1 : 0;
        for (let r = 0; r < rows; r++) if (isValid(v, r)) size[r]! += stringLength(col.data, r) + extra;
      } else if (v !== null) {
        for (let r = 0; r < rows; r++) if (!isValid(v, r)) size[r]! -= w;
      }
    }
    const rowEnds = new Uint32Array(rows);
    let total = 0;
    let encodedRows = 0;
    for (let r = 0; r < rows; r++) {
      if (skip === null || skip[r] !== 1) {
        total += size[r]!;
        encodedRows++;
      }
      rowEnds[r] = total;
    }
    const buf = Buffer.allocUnsafe(total);
    // Pass 2: field count, then each column writes at its row's cursor.
    const cursor = new Uint32Array(rows);
    const nfields = kinds.length;
    for (let r = 0; r < rows; r++) {
      if (skip !== null && skip[r] === 1) continue;
      const p = r === 0 ? 0 : rowEnds[r - 1]!;
      buf[p] = nfields >>> 8;
      buf[p + 1] = nfields;
      cursor[r] = p + 2;
    }
    for (let c = 0; c < kinds.length; c++) {
      writeColumn(kinds[c]!, columns[c]!, rows, skip, buf, cursor, numerics[c]);
    }
    return { buffer: buf, rowEnds, encodedRows };
  }
}

function writeNull(buf: Uint8Array, p: number): void {
  buf[p] = 0xff;
  buf[p + 1] = 0xff;
  buf[p + 2] = 0xff;
  buf[p + 3] = 0xff;
}

function writeColumn(
  kind: WireKind,
  col: RawColumn,
  rows: number,
  skip: Uint8Array | null,
  buf: Buffer,
  cursor: Uint32Array,
  numerics: (Uint8Array | null)[] | undefined,
): void {
  const d = col.data;
  const v = col.validity;
  switch (kind) {
    case 'bool':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 1);
        p += 4;
        buf[p] = d[r]! === 0 ? 0 : 1;
        cursor[r] = p + 1;
      }
      return;
    case 'int2':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 2);
        p += 4;
        const o = r * 2;
        buf[p] = d[o + 1]!;
        buf[p + 1] = d[o]!;
        cursor[r] = p + 2;
      }
      return;
    case 'int4':
    case 'float4':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 4);
        p += 4;
        const o = r * 4;
        buf[p] = d[o + 3]!;
        buf[p + 1] = d[o + 2]!;
        buf[p + 2] = d[o + 1]!;
        buf[p + 3] = d[o]!;
        cursor[r] = p + 4;
      }
      return;
    case 'int8':
    case 'float8':
    case 'time':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 8);
        p += 4;
        const o = r * 8;
        buf[p] = d[o + 7]!;
        buf[p + 1] = d[o + 6]!;
        buf[p + 2] = d[o + 5]!;
        buf[p + 3] = d[o + 4]!;
        buf[p + 4] = d[o + 3]!;
        buf[p + 5] = d[o + 2]!;
        buf[p + 6] = d[o + 1]!;
        buf[p + 7] = d[o]!;
        cursor[r] = p + 8;
      }
      return;
    case 'date':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 4);
        p += 4;
        const o = r * 4;
        const days = d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24);
        // ±infinity: DuckDB uses ±INT32_MAX, PostgreSQL INT32_MAX / INT32_MIN.
        const pgDays =
          days === INT32_MAX ? INT32_MAX : days === -INT32_MAX ? -INT32_MAX - 1 : days - PG_EPOCH_DAYS;
        writeInt32BE(buf, p, pgDays);
        cursor[r] = p + 4;
      }
      return;
    case 'timestamp':
    case 'timestamptz':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 8);
        p += 4;
        const o = r * 8;
        const lo = (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24)) >>> 0;
        const hi = d[o + 4]! | (d[o + 5]! << 8) | (d[o + 6]! << 16) | (d[o + 7]! << 24);
        let outHi: number;
        let outLo: number;
        if (hi === INT32_MAX && lo === 0xffffffff) {
          outHi = hi; // infinity is INT64_MAX on both sides
          outLo = lo;
        } else if (hi === -INT32_MAX - 1 && lo === 1) {
          outHi = hi; // DuckDB -infinity is -INT64_MAX, PostgreSQL's is INT64_MIN
          outLo = 0;
        } else {
          // 64-bit subtraction in two 32-bit halves: no BigInt on the hot path.
          outLo = lo - EPOCH_LO;
          let borrow = 0;
          if (outLo < 0) {
            outLo += TWO_32;
            borrow = 1;
          }
          outHi = (hi - EPOCH_HI - borrow) | 0;
        }
        writeInt32BE(buf, p, outHi);
        writeInt32BE(buf, p + 4, outLo);
        cursor[r] = p + 8;
      }
      return;
    case 'interval':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 16);
        p += 4;
        // DuckDB {months i32, days i32, micros i64} → PostgreSQL {micros i64, days i32, months i32}.
        const o = r * 16;
        for (let i = 0; i < 8; i++) buf[p + i] = d[o + 15 - i]!;
        for (let i = 0; i < 4; i++) buf[p + 8 + i] = d[o + 7 - i]!;
        for (let i = 0; i < 4; i++) buf[p + 12 + i] = d[o + 3 - i]!;
        cursor[r] = p + 16;
      }
      return;
    case 'text':
    case 'json':
    case 'bytea':
    case 'jsonb': {
      const version = kind === 'jsonb';
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        const len = stringLength(d, r);
        writeInt32BE(buf, p, version ? len + 1 : len);
        p += 4;
        if (version) buf[p++] = 1; // jsonb binary format version
        const o = r * 16;
        if (len <= 12) {
          for (let i = 0; i < len; i++) buf[p + i] = d[o + 4 + i]!;
        } else {
          buf.set(col.readOutOfLine(o + 8, len), p);
        }
        cursor[r] = p + len;
      }
      return;
    }
    case 'uuid':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        if (!isValid(v, r)) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, 16);
        p += 4;
        writeUuid(stringBytes(col, r), buf, p);
        cursor[r] = p + 16;
      }
      return;
    case 'numeric':
      for (let r = 0; r < rows; r++) {
        if (skip !== null && skip[r] === 1) continue;
        let p = cursor[r]!;
        const e = numerics?.[r] ?? null;
        if (e === null) {
          writeNull(buf, p);
          cursor[r] = p + 4;
          continue;
        }
        writeInt32BE(buf, p, e.length);
        p += 4;
        buf.set(e, p);
        cursor[r] = p + e.length;
      }
      return;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** `xxxxxxxx-xxxx-…` text (as DuckDB renders a UUID) → 16 bytes. */
function writeUuid(text: Uint8Array, buf: Uint8Array, p: number): void {
  let n = 0;
  let hi = -1;
  for (let i = 0; i < text.length; i++) {
    const h = hexValue(text[i]!);
    if (h < 0) continue;
    if (hi < 0) hi = h;
    else {
      buf[p + n++] = (hi << 4) | h;
      hi = -1;
      if (n === 16) break;
    }
  }
  if (n !== 16) throw new Error(`not a UUID: ${Buffer.from(text).toString('utf8')}`);
}

const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;
const NUMERIC_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function numericSpecial(sign: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(sign, 4);
  return b;
}

/**
 * A decimal string ('-12.345', '1e-05', 'nan', 'inf') in PostgreSQL's binary numeric format:
 * ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
 */
export function encodeNumeric(text: string): Uint8Array {
  const t = text.trim();
  const lower = t.toLowerCase();
  if (lower === 'nan') return numericSpecial(NUMERIC_NAN);
  if (lower === 'inf' || lower === 'infinity' || lower === '+inf' || lower === '+infinity') {
    return numericSpecial(NUMERIC_PINF);
  }
  if (lower === '-inf' || lower === '-infinity') return numericSpecial(NUMERIC_NINF);
  const m = NUMERIC_TEXT.exec(t);
  if (m === null || (m[2] === '' && (m[3] === undefined || m[3] === ''))) {
    throw new Error(`not a number: ${JSON.stringify(text.slice(0, 40))}`);
  }
  const negative = m[1] === '-';
  let intPart = m[2] ?? '';
  let fracPart = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : Number.parseInt(m[4], 10);
  if (exp > 0) {
    const moved = fracPart.slice(0, exp).padEnd(exp, '0');
    intPart += moved;
    fracPart = fracPart.slice(exp);
  } else if (exp < 0) {
    const k = -exp;
    const padded = intPart.padStart(k, '0');
    fracPart = padded.slice(padded.length - k) + fracPart;
    intPart = padded.slice(0, padded.length - k);
  }
  intPart = intPart.replace(/^0+/, '');
  const dscale = fracPart.length;
  // Base-10000 groups aligned on the decimal point.
  const intPadded = intPart.padStart(Math.ceil(intPart.length / 4) * 4, '0');
  const fracPadded = fracPart.padEnd(Math.ceil(fracPart.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < intPadded.length; i += 4) groups.push(Number.parseInt(intPadded.slice(i, i + 4), 10));
  const intGroups = groups.length;
  for (let i = 0; i < fracPadded.length; i += 4) groups.push(Number.parseInt(fracPadded.slice(i, i + 4), 10));
  let weight = intGroups - 1;
  let start = 0;
  while (start < groups.length && groups[start] === 0) {
    start++;
    weight--;
  }
  let end = groups.length;
  while (end > start && groups[end - 1] === 0) end--;
  const digits = groups.slice(start, end);
  const out = Buffer.allocUnsafe(8 + 2 * digits.length);
  out.writeUInt16BE(digits.length, 0);
  out.writeInt16BE(digits.length === 0 ? 0 : weight, 2);
  out.writeUInt16BE(negative && digits.length > 0 ? NUMERIC_NEG : NUMERIC_POS, 4);
  out.writeUInt16BE(dscale, 6);
  for (let i = 0; i < digits.length; i++) out.writeUInt16BE(digits[i]!, 8 + 2 * i);
  return out;
}

/**
 * Encodes text-format COPY where DuckDB already rendered each row as one line (see
 * `textLineExpression` in plan.ts): the encoder only copies the bytes.
 */
export function encodeTextLines(col: RawColumn, rows: number, skip: Uint8Array | null = null): EncodedRows {
  const rowEnds = new Uint32Array(rows);
  let total = 0;
  let encodedRows = 0;
  for (let r = 0; r < rows; r++) {
    if (skip === null || skip[r] !== 1) {
      total += stringLength(col.data, r);
      encodedRows++;
    }
    rowEnds[r] = total;
  }
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  const d = col.data;
  for (let r = 0; r < rows; r++) {
    if (skip !== null && skip[r] === 1) continue;
    const len = stringLength(d, r);
    const o = r * 16;
    if (len <= 12) for (let i = 0; i < len; i++) buf[p + i] = d[o + 4 + i]!;
    else buf.set(col.readOutOfLine(o + 8, len), p);
    p += len;
  }
  return { buffer: buf, rowEnds, encodedRows };
}

/** Bytes of rows [from, to) of an encoded batch (a zero-copy view). */
export function rowRange(enc: EncodedRows, from: number, to: number): Buffer {
  const start = from === 0 ? 0 : enc.rowEnds[from - 1]!;
  const end = to === 0 ? 0 : enc.rowEnds[to - 1]!;
  return enc.buffer.subarray(start, end);
}

const PG_EPOCH_MS = PG_EPOCH_MICROS / 1000;

/**
 * Decode one binary-COPY row back to JSON-friendly values: used to record a row that
 * PostgreSQL refused (constraint violation) in the rejects table.
 */
export function decodeBinaryRow(row: Uint8Array, kinds: readonly WireKind[]): unknown[] {
  const b = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  const n = b.readInt16BE(0);
  const out: unknown[] = [];
  let p = 2;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32BE(p);
    p += 4;
    if (len < 0) {
      out.push(null);
      continue;
    }
    const v = b.subarray(p, p + len);
    p += len;
    out.push(decodeValue(kinds[i] ?? 'bytea', v));
  }
  return out;
}

function int64(v: Buffer, at = 0): bigint {
  return v.readBigInt64BE(at);
}

function jsonNumber(x: bigint): number | string {
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(x)
    : x.toString();
}

function decodeValue(kind: WireKind, v: Buffer): unknown {
  switch (kind) {
    case 'bool':
      return v[0] !== 0;
    case 'int2':
      return v.readInt16BE(0);
    case 'int4':
      return v.readInt32BE(0);
    case 'int8':
      return jsonNumber(int64(v));
    case 'float4':
      return v.readFloatBE(0);
    case 'float8':
      return v.readDoubleBE(0);
    case 'date':
      return new Date((v.readInt32BE(0) + PG_EPOCH_DAYS) * 86_400_000).toISOString().slice(0, 10);
    case 'timestamp':
    case 'timestamptz': {
      const micros = int64(v);
      const iso = new Date(Number(micros / 1000n) + PG_EPOCH_MS).toISOString();
      return kind === 'timestamp' ? iso.slice(0, -1) : iso;
    }
    case 'time':
      return jsonNumber(int64(v));
    case 'interval':
      return { micros: jsonNumber(int64(v)), days: v.readInt32BE(8), months: v.readInt32BE(12) };
    case 'uuid': {
      const h = v.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case 'numeric':
      return decodeNumeric(v);
    case 'jsonb':
      return parseJsonOr(v.subarray(1).toString('utf8'));
    case 'json':
      return parseJsonOr(v.toString('utf8'));
    case 'text':
      return v.toString('utf8');
    case 'bytea':
      return `\\x${v.toString('hex')}`;
  }
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** PostgreSQL binary numeric → decimal string. */
export function decodeNumeric(v: Uint8Array): string {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const ndigits = b.readUInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readUInt16BE(6);
  if (sign === NUMERIC_NAN) return 'NaN';
  if (sign === NUMERIC_PINF) return 'Infinity';
  if (sign === NUMERIC_NINF) return '-Infinity';
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(b.readUInt16BE(8 + 2 * i));
  let int = '';
  for (let w = 0; w <= weight; w++) {
    const d = digits[w] ?? 0;
    int += w === 0 ? String(d) : String(d).padStart(4, '0');
  }
  if (int === '') int = '0';
  let frac = '';
  for (let w = weight + 1; frac.length < dscale; w++) {
    const d = w < 0 ? 0 : (digits[w] ?? 0);
    frac += String(d).padStart(4, '0');
  }
  frac = frac.slice(0, dscale);
  const body = frac === '' ? int : `${int}.${frac}`;
  return sign === NUMERIC_NEG ? `-${body}` : body;
}
