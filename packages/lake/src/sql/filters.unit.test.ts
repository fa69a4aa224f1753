import { ConfigError, InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../datasets.js';
import { CANDLES, PRODUCTS, TICKS } from '../datasets.js';
import { sqlIdent } from '../parquet/duckdb.js';
import { compileQuery, type Filter, parseIsoTime, SOURCE_PLACEHOLDER, withSource } from './filters.js';

const ticks = { schema: TICKS.columns, timeColumn: TICKS.timeColumn };

function invalidInput(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as InvalidInputError;
  }
  throw new Error('expected InvalidInputError');
}

describe('compileQuery', () => {
  it('selects every column in schema order by default, with no WHERE', () => {
    const q = compileQuery(ticks);
    expect(q.sql).toBe(
      `SELECT ${Object.keys(TICKS.columns).map(sqlIdent).join(', ')} FROM ${SOURCE_PLACEHOLDER}`,
    );
    expect(q.params).toEqual([]);
    expect(q.selectedColumns).toEqual(Object.keys(TICKS.columns));
  });

  it('binds every value with a cast to the column type', () => {
    const q = compileQuery({
      ...ticks,
      columns: ['ts', 'price'],
      filters: [
        { column: 'symbol', op: 'in', value: ['ES', 'NQ'] },
        { column: 'price', op: 'between', value: [10, 20.5] },
        { column: 'side', op: 'is_null', value: false },
        { column: 'trade_id', op: 'like', value: 'x%' },
        { column: 'stream_seq', op: '>=', value: '9007199254740993' },
      ],
      dateRange: { start: '2025-09-01', end: '2025-09-02' },
      limit: 10,
    });
    expect(q.sql).toBe(
      'SELECT "ts", "price" FROM __PARQUETRY_SOURCE__ WHERE ("symbol" IN (CAST($1 AS VARCHAR), CAST($2 AS VARCHAR)))' +
        ' AND ("price" BETWEEN CAST($3 AS DOUBLE) AND CAST($4 AS DOUBLE)) AND ("side" IS NOT NULL)' +
        ' AND ("trade_id" LIKE CAST($5 AS VARCHAR)) AND ("stream_seq" >= CAST($6 AS BIGINT))' +
        ' AND ("ts" >= CAST($7 AS TIMESTAMPTZ) AND "ts" < CAST($8 AS TIMESTAMPTZ)) ORDER BY "ts" LIMIT $9',
    );
    expect(q.params).toEqual([
      'ES',
      'NQ',
      10,
      20.5,
      'x%',
      9007199254740993n,
      '2025-09-01T00:00:00.000Z',
      // a bare end date includes that whole day
      '2025-09-03T00:00:00.000Z',
      10n,
    ]);
    expect(q.paramTypes).toEqual([
      'VARCHAR',
      'VARCHAR',
      'DOUBLE',
      'DOUBLE',
      'VARCHAR',
      'BIGINT',
      'VARCHAR',
      'VARCHAR',
      'BIGINT',
    ]);
    expect(q.schema).toEqual({ ts: 'TIMESTAMPTZ', price: 'DOUBLE' });
    expect(q.timeRange).toEqual({ startMs: Date.parse('2025-09-01'), endMs: Date.parse('2025-09-03') });
  });

  it('ANDs the row scope in before the request filters, and reports both as predicates', () => {
    const scope: Filter[] = [{ column: 'retailer', op: 'in', value: ['falabella', 'ripley'] }];
    const q = compileQuery({
      schema: PRODUCTS.columns,
      columns: ['retailer'],
      filters: [{ column: 'retailer', op: '=', value: 'paris' }],
      rowScopes: scope,
    });
    expect(q.sql).toContain(
      'WHERE ("retailer" IN (CAST($1 AS VARCHAR), CAST($2 AS VARCHAR))) AND ("retailer" = CAST($3 AS VARCHAR))',
    );
    expect(q.params).toEqual(['falabella', 'ripley', 'paris']);
    expect(q.predicates).toHaveLength(2);
  });

  it('fails closed when a row scope does not fit the schema', () => {
    const scope: Filter[] = [{ column: 'no_such_column', op: '=', value: 'x' }];
    expect(() => compileQuery({ ...ticks, rowScopes: scope })).toThrow(ConfigError);
  });

  it('canonicalises timestamps to UTC and treats zone-less times as UTC', () => {
    const q = compileQuery({
      ...ticks,
      filters: [
        { column: 'ts', op: '>', value: '2025-09-03T14:30:22+02:00' },
        { column: 'ts', op: '<', value: '2025-09-03 14:30' },
        { column: 'ts', op: '!=', value: 1_756_909_822_000 },
      ],
    });
    expect(q.params).toEqual([
      '2025-09-03T12:30:22.000Z',
      '2025-09-03T14:30:00.000Z',
      '2025-09-03T14:30:22.000Z',
    ]);
    expect(q.sql).toContain('"ts" <> CAST($3 AS TIMESTAMPTZ)');
  });

  it('quotes identifiers so a name cannot end its quoting', () => {
    const schema: Record<string, ColumnType> = { 'we"ird; DROP': 'VARCHAR' };
    const q = compileQuery({ schema, filters: [{ column: 'we"ird; DROP', op: '=', value: 'v' }] });
    expect(q.sql).toBe(
      'SELECT "we""ird; DROP" FROM __PARQUETRY_SOURCE__ WHERE ("we""ird; DROP" = CAST($1 AS VARCHAR))',
    );
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['unknown column', { columns: ['nope'] }, /unknown column "nope"/],
    ['prototype names are not columns', { columns: ['__proto__'] }, /unknown column/],
    [
      'constructor is not a column',
      { filters: [{ column: 'constructor', op: '=', value: 'x' }] },
      /unknown column/,
    ],
    ['repeated columns', { columns: ['ts', 'ts'] }, /must not repeat/],
    ['unknown op', { filters: [{ column: 'price', op: 'regexp', value: 'x' }] }, /filters/],
    [
      'string for a number',
      { filters: [{ column: 'price', op: '=', value: '1; DROP' }] },
      /expects a number/,
    ],
    ['number for a string', { filters: [{ column: 'symbol', op: '=', value: 1 }] }, /expects a string/],
    ['like on a number', { filters: [{ column: 'price', op: 'like', value: '1%' }] }, /like is not allowed/],
    ['bad timestamp', { filters: [{ column: 'ts', op: '>', value: 'yesterday' }] }, /expects an ISO-8601/],
    ['impossible date', { filters: [{ column: 'date', op: '=', value: '2025-02-30' }] }, /expects a date/],
    ['between with one value', { filters: [{ column: 'price', op: 'between', value: [1] }] }, /filters/],
    ['is_null with a string', { filters: [{ column: 'side', op: 'is_null', value: 'yes' }] }, /filters/],
    ['empty in list', { filters: [{ column: 'side', op: 'in', value: [] }] }, /filters/],
    [
      'in list too long',
      { filters: [{ column: 'side', op: 'in', value: Array(1001).fill('buy') }] },
      /filters/,
    ],
    ['extra filter field', { filters: [{ column: 'side', op: '=', value: 'buy', raw: 'x' }] }, /filters/],
    ['limit zero', { limit: 0 }, /limit/],
    ['fractional limit', { limit: 1.5 }, /limit/],
    [
      'end before start',
      { dateRange: { start: '2025-09-02', end: '2025-09-01T00:00:00Z' } },
      /end must be after start/,
    ],
    ['partition by a double', { partitionBy: ['price'] }, /cannot partition by DOUBLE/],
    [
      'partition by an unselected column',
      { columns: ['ts'], partitionBy: ['symbol'] },
      /must also be selected/,
    ],
    ['partition by traversal', { partitionBy: ['../../etc'] }, /unknown column/],
    [
      'int32 overflow',
      { schema: CANDLES.columns, filters: [{ column: 'revision', op: '=', value: 2 ** 31 }] },
      /32-bit/,
    ],
  ])('rejects %s with a 400', (_name, extra, message) => {
    const err = invalidInput(() => compileQuery({ ...ticks, ...extra }));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
  });

  it('rejects date_range on a dataset without a time column', () => {
    const err = invalidInput(() =>
      compileQuery({ schema: { a: 'VARCHAR' }, dateRange: { start: '2025-01-01', end: '2025-01-02' } }),
    );
    expect(err.message).toMatch(/no time column/);
  });

  it('withSource fills the one placeholder', () => {
    const q = compileQuery({ ...ticks, columns: ['ts'] });
    expect(withSource(q, "read_parquet(['/lake/a.parquet'])")).toBe(
      `SELECT "ts" FROM read_parquet(['/lake/a.parquet'])`,
    );
  });
});

describe('parseIsoTime', () => {
  it('reads dates, times and offsets as UTC instants', () => {
    expect(parseIsoTime('2025-09-03')).toBe(Date.UTC(2025, 8, 3));
    expect(parseIsoTime('2025-09-03T01:02:03.5Z')).toBe(Date.UTC(2025, 8, 3, 1, 2, 3, 500));
    expect(parseIsoTime('2025-09-03T01:02:03-03')).toBe(Date.UTC(2025, 8, 3, 4, 2, 3));
    expect(parseIsoTime('0050-01-01')).toBe(Date.parse('0050-01-01T00:00:00Z'));
    for (const bad of ['2025-13-01', '2025-09-03T24:00', '0000-01-01', 'now', '2025-09-03T01:02:03+0200x']) {
      expect(parseIsoTime(bad)).toBeUndefined();
    }
  });
});

// ---- fuzzing: random JSON never produces anything but a 400, and never reaches the SQL text ----

const MARK = 'ZQX';
/** Strings that carry a marker so their presence in SQL is detectable, plus SQL-ish payloads. */
const hostileString = fc
  .oneof(
    fc.string(),
    fc.constantFrom("'; DROP TABLE x; --", '" OR 1=1 --', '$1', '../../etc/passwd', '\u0000', 'ts', '*'),
  )
  .map((s) => `${MARK}${s}`);
const value = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constantFrom('2025-09-03', '2025-09-03T10:00:00Z', 'ES'),
);
const columnName = fc.oneof(
  fc.constantFrom(...Object.keys(TICKS.columns), '__proto__', 'constructor', 'toString'),
  hostileString,
);
const date = fc.date({ min: new Date('2000-01-01'), max: new Date('2040-01-01'), noInvalidDate: true });

/** A value of the right type for the column (hostile text for text columns). */
function typedValue(type: ColumnType): fc.Arbitrary<unknown> {
  switch (type) {
    case 'DOUBLE':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'BIGINT':
    case 'INTEGER':
      return fc.integer();
    case 'DATE':
      return date.map((d) => d.toISOString().slice(0, 10));
    case 'TIMESTAMPTZ':
      return date.map((d) => d.toISOString());
    case 'BOOLEAN':
      return fc.boolean();
    default:
      return hostileString;
  }
}

/** Mostly well-formed filters (so the success path is exercised), some deliberately off. */
const typedFilter = fc
  .constantFrom(...(Object.entries(TICKS.columns) as [string, ColumnType][]))
  .chain(([column, type]) =>
    fc.oneof(
      fc.record({
        column: fc.constant(column),
        op: fc.constantFrom('=', '!=', '<', '<=', '>', '>='),
        value: typedValue(type),
      }),
      fc.record({
        column: fc.constant(column),
        op: fc.constant('in'),
        value: fc.array(typedValue(type), { minLength: 1, maxLength: 4 }),
      }),
      fc.record({
        column: fc.constant(column),
        op: fc.constant('between'),
        value: fc.tuple(typedValue(type), typedValue(type)),
      }),
      fc.record({ column: fc.constant(column), op: fc.constant('like'), value: hostileString }),
      fc.record({ column: fc.constant(column), op: fc.constant('is_null'), value: fc.boolean() }),
    ),
  );
const randomFilter = fc.oneof(
  fc.record({
    column: columnName,
    op: fc.constantFrom('=', '!=', '<', '<=', '>', '>=', 'in', 'between', 'like', 'is_null', 'drop'),
    value: fc.oneof(value, fc.array(value, { maxLength: 4 })),
  }),
  fc.jsonValue(),
);
const filter = fc.oneof({ arbitrary: typedFilter, weight: 6 }, { arbitrary: randomFilter, weight: 1 });
const sometimesJunk = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: arb, weight: 8 }, { arbitrary: fc.jsonValue(), weight: 1 });
const requestParts = fc.record(
  {
    columns: sometimesJunk(
      fc.oneof(
        { arbitrary: fc.constant(Object.keys(TICKS.columns)), weight: 2 },
        { arbitrary: fc.subarray(Object.keys(TICKS.columns), { minLength: 1 }), weight: 2 },
        { arbitrary: fc.array(columnName, { maxLength: 5 }), weight: 1 },
      ),
    ),
    filters: sometimesJunk(fc.array(filter, { maxLength: 4 })),
    dateRange: sometimesJunk(
      fc.oneof(
        fc
          .tuple(date, date)
          .map((pair) => pair.map((d) => d.toISOString()).sort())
          .map(([start, end]) => ({ start, end })),
        fc.record({ start: value, end: value }),
      ),
    ),
    limit: sometimesJunk(fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.double())),
    partitionBy: sometimesJunk(fc.oneof(fc.constant(['symbol']), fc.array(columnName, { maxLength: 3 }))),
  },
  { requiredKeys: [] },
);

/** Every token of a compiled query is from this vocabulary or a quoted schema column. */
const VOCABULARY = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'IN',
  'BETWEEN',
  'LIKE',
  'IS',
  'NOT',
  'NULL',
  'ORDER',
  'BY',
  'LIMIT',
  'CAST',
  'AS',
  'VARCHAR',
  'DOUBLE',
  'BIGINT',
  'INTEGER',
  'BOOLEAN',
  'DATE',
  'TIMESTAMPTZ',
  '=',
  '<>',
  '<',
  '<=',
  '>',
  '>=',
  '(',
  ')',
  ',',
  SOURCE_PLACEHOLDER,
]);

function tokensOutsideVocabulary(sql: string, columns: readonly string[]): string[] {
  const quoted = new Set(columns.map(sqlIdent));
  const tokens = sql.match(/"(?:[^"]|"")*"|\$\d+|<>|<=|>=|[(),=<>]|[^\s(),=<>"]+/g) ?? [];
  return tokens.filter((t) => !VOCABULARY.has(t) && !quoted.has(t) && !/^\$\d+$/.test(t));
}

describe('compileQuery fuzzing', () => {
  it('throws only InvalidInputError and never puts request text into SQL', () => {
    let compiled = 0;
    fc.assert(
      fc.property(requestParts, (parts) => {
        try {
          const q = compileQuery({ ...ticks, ...parts });
          compiled += 1;
          expect(q.sql).not.toContain(MARK);
          expect(tokensOutsideVocabulary(q.sql, Object.keys(TICKS.columns))).toEqual([]);
          const placeholders = new Set(q.sql.match(/\$\d+/g));
          expect(placeholders.size).toBe(q.params.length);
          expect(q.paramTypes.length).toBe(q.params.length);
        } catch (err) {
          if (!(err instanceof InvalidInputError)) throw err;
          expect(err.status).toBe(400);
        }
      }),
      { numRuns: 3000 },
    );
    // The generator must also reach the success path, or the SQL checks above prove nothing.
    expect(compiled).toBeGreaterThan(150);
  });

  it('binds every accepted string value as a parameter, verbatim', () => {
    fc.assert(
      fc.property(fc.array(hostileString, { minLength: 1, maxLength: 5 }), (values) => {
        const q = compileQuery({ ...ticks, filters: [{ column: 'trade_id', op: 'in', value: values }] });
        expect(q.params).toEqual(values);
        expect(q.sql).not.toContain(MARK);
      }),
    );
  });
});
