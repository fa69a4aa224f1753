import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BINARY_COPY_HEADER,
  BinaryRowEncoder,
  decodeBinaryRow,
  decodeNumeric,
  encodeNumeric,
  encodeTextLines,
  type RawColumn,
  rowRange,
  type WireKind,
} from './copy-binary.js';

// Columns laid out the way DuckDB lays out its vectors (little-endian, 16-byte string_t).

function validityOf(values: readonly unknown[]): Uint8Array | null {
  if (values.every((v) => v !== null)) return null;
  const bits = new Uint8Array(Math.ceil(values.length / 64) * 8);
  values.forEach((v, i) => {
    if (v !== null) bits[i >> 3]! |= 1 << (i & 7);
  });
  return bits;
}

function fixedColumn(
  values: readonly (bigint | number | null)[],
  width: number,
  write: (dv: DataView, o: number, v: never) => void,
): RawColumn {
  const data = new Uint8Array(values.length * width);
  const dv = new DataView(data.buffer);
  values.forEach((v, i) => {
    if (v !== null) write(dv, i * width, v as never);
  });
  return { data, validity: validityOf(values), readOutOfLine: () => new Uint8Array() };
}

const int64Col = (v: (bigint | null)[]) =>
  fixedColumn(v, 8, (dv, o, x: bigint) => dv.setBigInt64(o, x, true));
const int32Col = (v: (number | null)[]) => fixedColumn(v, 4, (dv, o, x: number) => dv.setInt32(o, x, true));
const int16Col = (v: (number | null)[]) => fixedColumn(v, 2, (dv, o, x: number) => dv.setInt16(o, x, true));
const float64Col = (v: (number | null)[]) =>
  fixedColumn(v, 8, (dv, o, x: number) => dv.setFloat64(o, x, true));
const float32Col = (v: (number | null)[]) =>
  fixedColumn(v, 4, (dv, o, x: number) => dv.setFloat32(o, x, true));
const boolCol = (v: (boolean | null)[]) =>
  fixedColumn(
    v.map((x) => (x === null ? null : x ? 1 : 0)),
    1,
    (dv, o, x: number) => dv.setUint8(o, x),
  );

/** string_t: length, then ≤ 12 bytes inline, or a 4-byte prefix and an 8-byte pointer. */
function stringCol(values: readonly (string | null)[]): RawColumn {
  const data = new Uint8Array(values.length * 16);
  const dv = new DataView(data.buffer);
  const outOfLine = new Map<number, Uint8Array>();
  values.forEach((v, i) => {
    if (v === null) return;
    const bytes = Buffer.from(v, 'utf8');
    dv.setUint32(i * 16, bytes.length, true);
    if (bytes.length <= 12) data.set(bytes, i * 16 + 4);
    else outOfLine.set(i * 16 + 8, bytes);
  });
  return {
    data,
    validity: validityOf(values),
    readOutOfLine: (offset, length) => {
      const b = outOfLine.get(offset);
      if (!b || b.length !== length) throw new Error(`no out-of-line string at ${offset}`);
      return b;
    },
  };
}

/** Fields of one encoded row, split by their length words. */
function fields(row: Buffer): (Buffer | null)[] {
  const n = row.readInt16BE(0);
  const out: (Buffer | null)[] = [];
  let p = 2;
  for (let i = 0; i < n; i++) {
    const len = row.readInt32BE(p);
    p += 4;
    out.push(len < 0 ? null : row.subarray(p, p + len));
    if (len > 0) p += len;
  }
  expect(p).toBe(row.length);
  return out;
}

function encodeOne(kind: WireKind, col: RawColumn, rows: number) {
  const enc = new BinaryRowEncoder([kind]).encode({ rows, columns: [col] });
  return Array.from({ length: rows }, (_, i) => fields(rowRange(enc, i, i + 1))[0]!);
}

const PG_EPOCH_MICROS = 946_684_800_000_000n;

describe('BinaryRowEncoder', () => {
  it('writes integers and floats big-endian with their lengths, NULL as -1', () => {
    const rows = new BinaryRowEncoder(['int8', 'int4', 'int2', 'float8', 'float4', 'bool']).encode({
      rows: 3,
      columns: [
        int64Col([1n, -2n, null]),
        int32Col([7, null, -2147483648]),
        int16Col([null, 300, -1]),
        float64Col([1.5, Number.NaN, null]),
        float32Col([0.25, null, -3]),
        boolCol([true, false, null]),
      ],
    });
    const r0 = fields(rowRange(rows, 0, 1));
    expect(r0[0]!.readBigInt64BE(0)).toBe(1n);
    expect(r0[1]!.readInt32BE(0)).toBe(7);
    expect(r0[2]).toBeNull();
    expect(r0[3]!.readDoubleBE(0)).toBe(1.5);
    expect(r0[4]!.readFloatBE(0)).toBe(0.25);
    expect([...r0[5]!]).toEqual([1]);
    const r1 = fields(rowRange(rows, 1, 2));
    expect(r1[0]!.readBigInt64BE(0)).toBe(-2n);
    expect(r1[1]).toBeNull();
    expect(r1[2]!.readInt16BE(0)).toBe(300);
    expect(r1[3]!.readDoubleBE(0)).toBeNaN();
    expect([...r1[5]!]).toEqual([0]);
    const r2 = fields(rowRange(rows, 2, 3));
    expect(r2[0]).toBeNull();
    expect(r2[1]!.readInt32BE(0)).toBe(-2147483648);
    expect(r2[2]!.readInt16BE(0)).toBe(-1);
    expect(r2[4]!.readFloatBE(0)).toBe(-3);
    expect(r2[5]).toBeNull();
  });

  it('rebases timestamps on 2000-01-01 for any int64 microsecond value (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }), { minLength: 1, maxLength: 50 }),
        (micros) => {
          for (const kind of ['timestamp', 'timestamptz'] as const) {
            const out = encodeOne(kind, int64Col(micros), micros.length);
            out.forEach((f, i) => {
              expect(f!.readBigInt64BE(0)).toBe(micros[i]! - PG_EPOCH_MICROS);
            });
          }
        },
      ),
    );
  });

  it('maps ±infinity timestamps and dates to PostgreSQL sentinels', () => {
    const INT64_MAX = 2n ** 63n - 1n;
    const ts = encodeOne('timestamptz', int64Col([INT64_MAX, -INT64_MAX]), 2);
    expect(ts[0]!.readBigInt64BE(0)).toBe(INT64_MAX);
    expect(ts[1]!.readBigInt64BE(0)).toBe(-(2n ** 63n));
    const d = encodeOne('date', int32Col([2147483647, -2147483647, 0, 10957, 19723]), 5);
    expect(d.map((f) => f!.readInt32BE(0))).toEqual([2147483647, -2147483648, -10957, 0, 19723 - 10957]);
  });

  it('reorders intervals to micros, days, months', () => {
    const data = new Uint8Array(16);
    const dv = new DataView(data.buffer);
    dv.setInt32(0, 14, true); // months
    dv.setInt32(4, -3, true); // days
    dv.setBigInt64(8, 3_600_000_001n, true); // micros
    const [f] = encodeOne('interval', { data, validity: null, readOutOfLine: () => new Uint8Array() }, 1);
    expect(f!.readBigInt64BE(0)).toBe(3_600_000_001n);
    expect(f!.readInt32BE(8)).toBe(-3);
    expect(f!.readInt32BE(12)).toBe(14);
  });

  it('copies inline and out-of-line strings; jsonb gets its version byte', () => {
    const values = ['', 'short', 'exactly12byt', 'a much longer string, with ñ and 😀', null];
    const text = encodeOne('text', stringCol(values), values.length);
    expect(text.map((f) => (f === null ? null : f.toString('utf8')))).toEqual(values);
    const json = encodeOne('jsonb', stringCol(['{"a":1}', '[1,2,3,4,5,6,7,8]']), 2);
    expect(json.map((f) => [f![0], f!.subarray(1).toString()])).toEqual([
      [1, '{"a":1}'],
      [1, '[1,2,3,4,5,6,7,8]'],
    ]);
  });

  it('encodes UUID text as 16 bytes', () => {
    const [f] = encodeOne('uuid', stringCol(['0e37df36-f698-11e6-8dd4-cb9ced3df976']), 1);
    expect(f!.toString('hex')).toBe('0e37df36f69811e68dd4cb9ced3df976');
  });

  it('leaves skipped rows out with zero bytes and keeps row offsets for the rest', () => {
    const enc = new BinaryRowEncoder(['int4', 'text']).encode(
      { rows: 4, columns: [int32Col([1, 2, 3, 4]), stringCol(['a', 'bb', 'a string over twelve', null])] },
      Uint8Array.from([0, 1, 0, 0]),
    );
    expect(enc.encodedRows).toBe(3);
    expect(rowRange(enc, 1, 2).length).toBe(0);
    expect(fields(rowRange(enc, 0, 1))[1]!.toString()).toBe('a');
    expect(fields(rowRange(enc, 2, 3))[1]!.toString()).toBe('a string over twelve');
    expect(fields(rowRange(enc, 3, 4))[1]).toBeNull();
    expect(rowRange(enc, 0, 4).length).toBe(enc.buffer.length);
  });

  it('decodes its rows back for the rejects table', () => {
    const enc = new BinaryRowEncoder(['int8', 'timestamptz', 'date', 'text', 'numeric']).encode({
      rows: 1,
      columns: [
        int64Col([42n]),
        int64Col([1_700_000_000_123_000n]),
        int32Col([19723]),
        stringCol(['x']),
        stringCol(['-12.50']),
      ],
    });
    expect(decodeBinaryRow(rowRange(enc, 0, 1), ['int8', 'timestamptz', 'date', 'text', 'numeric'])).toEqual([
      42,
      '2023-11-14T22:13:20.123Z',
      '2024-01-01',
      'x',
      '-12.50',
    ]);
  });

  it('has the PGCOPY signature header', () => {
    expect(BINARY_COPY_HEADER.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
    expect(BINARY_COPY_HEADER.length).toBe(19);
  });
});

describe('encodeNumeric', () => {
  function parts(text: string) {
    const b = Buffer.from(encodeNumeric(text));
    const ndigits = b.readUInt16BE(0);
    return {
      ndigits,
      weight: b.readInt16BE(2),
      sign: b.readUInt16BE(4),
      dscale: b.readUInt16BE(6),
      digits: Array.from({ length: ndigits }, (_, i) => b.readUInt16BE(8 + 2 * i)),
    };
  }

  it('groups digits in base 10000 around the decimal point (PostgreSQL numeric.c layout)', () => {
    expect(parts('12345.678')).toEqual({
      ndigits: 3,
      weight: 1,
      sign: 0,
      dscale: 3,
      digits: [1, 2345, 6780],
    });
    expect(parts('-0.001')).toEqual({ ndigits: 1, weight: -1, sign: 0x4000, dscale: 3, digits: [10] });
    expect(parts('0')).toEqual({ ndigits: 0, weight: 0, sign: 0, dscale: 0, digits: [] });
    expect(parts('100000000')).toEqual({ ndigits: 1, weight: 2, sign: 0, dscale: 0, digits: [1] });
    expect(parts('1e-05')).toEqual({ ndigits: 1, weight: -2, sign: 0, dscale: 5, digits: [1000] });
    expect(parts('2.5E+3')).toEqual({ ndigits: 1, weight: 0, sign: 0, dscale: 0, digits: [2500] });
    expect(parts('nan').sign).toBe(0xc000);
    expect(parts('inf').sign).toBe(0xd000);
    expect(parts('-Infinity').sign).toBe(0xf000);
  });

  it('refuses text that is not a number', () => {
    expect(() => encodeNumeric('12a')).toThrow(/not a number/);
    expect(() => encodeNumeric('.')).toThrow(/not a number/);
  });

  it('round-trips any decimal string (property)', () => {
    const decimal = fc
      .tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,30}$/), fc.stringMatching(/^[0-9]{0,20}$/))
      .map(([neg, i, f]) => `${neg ? '-' : ''}${i}${f ? `.${f}` : ''}`);
    fc.assert(
      fc.property(decimal, (text) => {
        const canonical = (s: string) => {
          const neg = s.startsWith('-');
          const [i = '', f = ''] = s.replace('-', '').split('.');
          const int = i.replace(/^0+/, '') || '0';
          const body = f ? `${int}.${f}` : int;
          return neg && /[1-9]/.test(s) ? `-${body}` : body;
        };
        expect(decodeNumeric(encodeNumeric(text))).toBe(canonical(text));
      }),
    );
  });
});

describe('encodeTextLines', () => {
  it('copies the lines DuckDB built and skips rejected rows', () => {
    const lines = ['1\ta\n', '2\tskipped\n', '3\ta longer line than twelve\n'];
    const enc = encodeTextLines(stringCol(lines), 3, Uint8Array.from([0, 1, 0]));
    expect(enc.buffer.toString()).toBe(`${lines[0]}${lines[2]}`);
    expect(enc.encodedRows).toBe(2);
    expect(rowRange(enc, 2, 3).toString()).toBe(lines[2]);
  });
});
