import { SYMBOL_PATTERN, tick as tickSchema } from '@parquetry/lake';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTickMessage, decodeTickMessageGeneral, fastTick, scanTick } from './decode.js';

/**
 * `decodeTickMessage` reads the common message from its bytes (`scanTick`) and hands anything
 * else to the general path (JSON.parse, `fastTick`, the zod schema). Both must give the same
 * verdict and the same tick for every message, and the byte reader must really take the
 * common shape (else these tests would pass with a scanner that always gives up).
 */
const encoder = new TextEncoder();
const SUBJECT_SYMBOL = 'BTC-USD';
const SUBJECT = `market.ticks.${SUBJECT_SYMBOL}`;

/** JSON number texts, including forms JSON.stringify never writes. */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.integer({ min: -1e6, max: 1e15 }).map(String),
  fc
    .tuple(fc.nat({ max: 99_999_999 }), fc.nat({ max: 999_999_999 }), fc.integer({ min: 0, max: 12 }))
    .map(([a, b, pad]) => `${a}.${String(b).padStart(pad, '0')}`),
  fc
    .tuple(
      fc.nat({ max: 9_999 }),
      fc.nat({ max: 9_999 }),
      fc.constantFrom('e', 'E', 'e+', 'e-', 'E-'),
      fc.nat(400),
    )
    .map(([a, b, e, x]) => `${a}.${b}${e}${x}`),
  fc.constantFrom(
    '0',
    '-0',
    '0.0',
    '1e400',
    '-1e400',
    '5e-324',
    '123456789012345678901234567890',
    '0.1234567890123456789',
    '9007199254740993',
    '1.7976931348623157e308',
    '01',
    '1.',
    '.5',
    '1e',
    '--1',
    '+1',
  ),
);

const stringText = fc.oneof(
  fc.constantFrom(
    SUBJECT_SYMBOL,
    'ETH-USD',
    'buy',
    'sell',
    'Buy',
    '',
    '2025-09-01T00:00:00Z',
    '2025-13-45',
    'x',
  ),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s).slice(1, -1)),
  fc.string({ unit: 'binary', maxLength: 6 }).map((s) => JSON.stringify(s).slice(1, -1)),
  fc.nat().map(String),
  fc.constant('a'.repeat(129)),
  fc.constant('a\\u0041'),
);

const valueText = fc.oneof(
  { weight: 5, arbitrary: numberText },
  { weight: 5, arbitrary: stringText.map((s) => `"${s}"`) },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', '{}', '[]', '[1]', '{"a":1}') },
);

const key = fc.constantFrom(
  'symbol',
  'ts',
  'price',
  'size',
  'side',
  'trade_id',
  'ticks',
  'venue',
  'x',
  'pric',
  's\\u0069de',
);
const ws = fc.constantFrom('', '', '', ' ', '\n', '\t ', '\r\n');

/** A message text built field by field: valid, nearly valid, or broken in small ways. */
const messageText = fc
  .tuple(
    fc.array(fc.tuple(ws, key, ws, ws, valueText, ws), { maxLength: 8 }),
    ws,
    ws,
    fc.constantFrom('', '', ' ', ',', 'x'),
  )
  .map(
    ([fields, before, after, tail]) =>
      `${before}{${fields.map(([a, k, b, c, v, d]) => `${a}"${k}"${b}:${c}${v}${d}`).join(',')}}${after}${tail}`,
  );

/** A plausible valid tick, formatted in any order and spacing. */
const validTickText = fc
  .record(
    {
      symbol: fc.constant(`"${SUBJECT_SYMBOL}"`),
      ts: fc.oneof(
        fc.integer({ min: 0, max: 4e12 }).map(String),
        fc.constantFrom('"2025-09-01T00:00:00.123Z"', '"2025-09-01"', '1.7566848e12'),
      ),
      price: fc.oneof(
        fc.double({ min: 1e-8, max: 1e7, noNaN: true }).map((v) => JSON.stringify(v)),
        fc
          .tuple(fc.integer({ min: 1, max: 99_999 }), fc.nat({ max: 99_999_999 }))
          .map(([a, b]) => `${a}.${b}`),
      ),
      size: fc.oneof(
        fc.double({ min: 0, max: 1e6, noNaN: true }).map((v) => JSON.stringify(v)),
        fc.tuple(fc.nat({ max: 9_999 }), fc.nat({ max: 9_999 })).map(([a, b]) => `${a}.${b}`),
      ),
      side: fc.constantFrom('"buy"', '"sell"'),
      trade_id: fc.oneof(
        fc.nat().map((n) => `"${n}"`),
        fc.nat().map(String),
        fc.constant('"t-1_x"'),
      ),
    },
    { requiredKeys: ['symbol', 'ts', 'price', 'size'] },
  )
  .chain((fields) => fc.shuffledSubarray(Object.entries(fields), { minLength: Object.keys(fields).length }))
  .chain((entries) =>
    fc
      .array(ws, { minLength: entries.length + 1, maxLength: entries.length + 1 })
      .map(
        (spaces) => `{${entries.map(([k, v], i) => `${spaces[i]}"${k}":${v}`).join(',')}${spaces.at(-1)}}`,
      ),
  );

describe('decodeTickMessage (byte reader) vs the general path', () => {
  it('gives the same result for any message text', () => {
    fc.assert(
      fc.property(messageText, (text) => {
        const data = encoder.encode(text);
        expect(decodeTickMessage(SUBJECT, data)).toEqual(decodeTickMessageGeneral(SUBJECT, data));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same result for damaged bytes of valid ticks', () => {
    fc.assert(
      fc.property(validTickText, fc.nat(), fc.integer({ min: 0, max: 255 }), (text, at, byte) => {
        const data = encoder.encode(text);
        data[at % data.length] = byte;
        expect(decodeTickMessage(SUBJECT, data)).toEqual(decodeTickMessageGeneral(SUBJECT, data));
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same result for valid ticks with one more field (duplicate, unknown, odd)', () => {
    fc.assert(
      fc.property(validTickText, key, valueText, fc.boolean(), (text, k, v, atStart) => {
        const field = `"${k}":${v}`;
        const withField = atStart ? `{${field},${text.slice(1)}` : `${text.slice(0, -1)},${field}}`;
        const data = encoder.encode(withField);
        expect(decodeTickMessage(SUBJECT, data)).toEqual(decodeTickMessageGeneral(SUBJECT, data));
      }),
      { numRuns: 3000 },
    );
  });

  it('reads valid ticks itself, to the value the schema gives', () => {
    fc.assert(
      fc.property(validTickText, (text) => {
        const data = encoder.encode(text);
        const scanned = scanTick(data, SUBJECT_SYMBOL);
        expect(scanned).toBeDefined();
        const parsed = tickSchema.parse(JSON.parse(text));
        expect(scanned).toEqual(parsed);
        expect(fastTick(JSON.parse(text))).toEqual(parsed);
        expect(decodeTickMessage(SUBJECT, data)).toEqual(decodeTickMessageGeneral(SUBJECT, data));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads numbers bit for bit as JSON.parse does', () => {
    fc.assert(
      fc.property(numberText, (n) => {
        const text = `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"size":${n}}`;
        let expected: unknown;
        try {
          expected = JSON.parse(text).size;
        } catch {
          expected = 'invalid';
        }
        const scanned = scanTick(encoder.encode(text), SUBJECT_SYMBOL);
        if (scanned !== undefined) expect(Object.is(scanned.size, expected)).toBe(true);
        else
          expect(expected === 'invalid' || !(Number(expected) >= 0) || !Number.isFinite(expected)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves arrays, escapes, non-ASCII, duplicate keys and other symbols to the general path', () => {
    const undecided = [
      `{"symbol":"${SUBJECT_SYMBOL}","ticks":[{"ts":1,"price":1,"size":1}]}`,
      `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"size":1,"trade_id":"a\\"b"}`,
      `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"size":1,"venue":"Zürich"}`,
      `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"price":2,"size":1}`,
      `{"symbol":"ETH-USD","ts":1,"price":1,"size":1}`,
      `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":0,"size":1}`,
      `{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"size":1,"side":null}`,
      `\uFEFF{"symbol":"${SUBJECT_SYMBOL}","ts":1,"price":1,"size":1}`,
    ];
    for (const text of undecided) {
      const data = encoder.encode(text);
      expect(scanTick(data, SUBJECT_SYMBOL)).toBeUndefined();
      expect(decodeTickMessage(SUBJECT, data)).toEqual(decodeTickMessageGeneral(SUBJECT, data));
    }
    // The last one is a valid tick for the general path (TextDecoder drops the BOM).
    expect(decodeTickMessage(SUBJECT, encoder.encode(undecided.at(-1)!)).ticks).toHaveLength(1);
  });

  it('takes the symbol from the subject exactly when SYMBOL_PATTERN accepts it', () => {
    const symbol = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('', 'a'.repeat(32), 'a'.repeat(33), 'BTC.USD', 'BTC USD', 'ü', '*', '>'),
    );
    fc.assert(
      fc.property(fc.constantFrom('market.ticks.', 'market.tick.', 'x.ticks.', ''), symbol, (prefix, sym) => {
        const data = encoder.encode(JSON.stringify({ symbol: sym, ts: 1, price: 1, size: 1 }));
        const valid = prefix === 'market.ticks.' && SYMBOL_PATTERN.test(sym);
        const decoded = decodeTickMessage(`${prefix}${sym}`, data);
        expect(decoded.rejects.map((r) => r.reason)).toEqual(valid ? [] : ['invalid_symbol']);
        expect(decoded.ticks.map((t) => t.symbol)).toEqual(valid ? [sym] : []);
      }),
      { numRuns: 1000 },
    );
  });
});
