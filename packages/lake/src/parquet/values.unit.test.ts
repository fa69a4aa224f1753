import type { DuckDBDateValue, DuckDBTimestampTZValue } from '@duckdb/node-api';
import { InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoDateFromDays, isoFromMicros } from './reader.js';
import { encoderFor, parseIsoDays, parseIsoMicros } from './values.js';

describe('timestamp and date parsing', () => {
  it('parses ISO-8601 with zones and sub-millisecond digits', () => {
    expect(parseIsoMicros('2025-09-03T14:30:22Z')).toBe(BigInt(Date.UTC(2025, 8, 3, 14, 30, 22)) * 1000n);
    expect(parseIsoMicros('2025-09-03T14:30:22.123456Z')).toBe(
      BigInt(Date.UTC(2025, 8, 3, 14, 30, 22, 123)) * 1000n + 456n,
    );
    expect(parseIsoMicros('2025-09-03T16:30:22+02:00')).toBe(parseIsoMicros('2025-09-03T14:30:22Z'));
    expect(parseIsoMicros('2025-09-03 09:30:22-0500')).toBe(parseIsoMicros('2025-09-03T14:30:22Z'));
    expect(parseIsoMicros('2025-09-03T14:30')).toBe(parseIsoMicros('2025-09-03T14:30:00Z'));
    expect(parseIsoMicros('2025-09-03')).toBe(BigInt(Date.UTC(2025, 8, 3)) * 1000n);
    expect(parseIsoMicros('1969-12-31T23:59:59.999999Z')).toBe(-1n);
  });

  it('refuses what is not a real instant', () => {
    for (const s of [
      '',
      'yesterday',
      '2025-02-30',
      '2025-13-01T00:00:00Z',
      '2025-09-03T24:00:00Z',
      '2025-9-3',
      '03/09/2025',
    ]) {
      expect(parseIsoMicros(s), s).toBeUndefined();
    }
    expect(parseIsoDays('2025-09-03T00:00:00Z')).toBeUndefined();
    expect(parseIsoDays('2025-09-03')).toBe(Date.UTC(2025, 8, 3) / 86_400_000);
  });

  it('property: micros → ISO → micros round-trips', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 16n), max: 10n ** 17n }), (micros) => {
        expect(parseIsoMicros(isoFromMicros(micros))).toBe(micros);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: -200_000, max: 200_000 }), (days) => {
        expect(parseIsoDays(isoDateFromDays(days))).toBe(days);
      }),
    );
  });
});

describe('encoderFor', () => {
  it('converts each type and passes null/undefined as NULL', () => {
    const ts = encoderFor({ name: 't', type: 'TIMESTAMPTZ' });
    expect((ts(1725373822123, 0) as DuckDBTimestampTZValue).micros).toBe(1725373822123000n);
    expect((ts('2024-09-03T14:30:22.123Z', 0) as DuckDBTimestampTZValue).micros).toBe(1725373822123000n);
    expect((ts(new Date(1725373822123), 0) as DuckDBTimestampTZValue).micros).toBe(1725373822123000n);
    expect(ts(null, 0)).toBeNull();
    expect(ts(undefined, 0)).toBeNull();
    expect((encoderFor({ name: 'd', type: 'DATE' })('1970-01-02', 0) as DuckDBDateValue).days).toBe(1);
    expect(encoderFor({ name: 'b', type: 'BIGINT' })(42, 0)).toBe(42n);
    expect(encoderFor({ name: 'b', type: 'BIGINT' })('-9223372036854775808', 0)).toBe(-(2n ** 63n));
    expect(encoderFor({ name: 'v', type: 'VARCHAR' })({ a: 1 }, 0)).toBe('{"a":1}');
    expect(encoderFor({ name: 'v', type: 'VARCHAR' })('plain', 0)).toBe('plain');
    expect(encoderFor({ name: 'v', type: 'VARCHAR', json: true })('plain', 0)).toBe('"plain"');
    expect(encoderFor({ name: 'j', type: 'JSON' })([1, 'a'], 0)).toBe('[1,"a"]');
  });

  it('rejects values that do not fit, naming the column and row', () => {
    const cases: [Parameters<typeof encoderFor>[0], unknown][] = [
      [{ name: 'b', type: 'BIGINT' }, 2 ** 53],
      [{ name: 'b', type: 'BIGINT' }, 1.5],
      [{ name: 'b', type: 'BIGINT' }, '9223372036854775808'],
      [{ name: 'i', type: 'INTEGER' }, 2 ** 31],
      [{ name: 'd', type: 'DOUBLE' }, '1.5'],
      [{ name: 'x', type: 'BOOLEAN' }, 'true'],
      [{ name: 'dt', type: 'DATE' }, '2025-02-30'],
      [{ name: 'ts', type: 'TIMESTAMPTZ' }, 'soon'],
      [{ name: 'ts', type: 'TIMESTAMPTZ' }, Number.NaN],
    ];
    for (const [col, value] of cases) {
      expect(() => encoderFor(col)(value, 7), `${col.type} ${String(value)}`).toThrow(InvalidInputError);
      expect(() => encoderFor(col)(value, 7)).toThrow(new RegExp(`column "${col.name}" row 7`));
    }
    expect(() => encoderFor({ name: 'n', type: 'BIGINT', json: true })).toThrow(InvalidInputError);
  });
});
