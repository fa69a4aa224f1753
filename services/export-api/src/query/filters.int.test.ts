import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBType,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import {
  type BoundType,
  type ColumnType,
  type CompiledQuery,
  compileQuery,
  type Filter,
  sqlString,
  TICKS,
  withSource,
} from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { tempDir } from '@parquetry/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxStatements } from './sandbox.js';

// Real DuckDB: the compiled SQL must be valid, bind as intended and filter the right rows.
const dir = tempDir('pq-export-sql-');
const lake = join(dir.path, 'lake');
const file = join(lake, 'ticks.parquet');
const HOSTILE = ["'; DROP TABLE t; --", '" OR 1=1 --', '$1', '%_\\', 'plain'];
let db: DuckDBInstance;
let conn: DuckDBConnection;

interface Row {
  symbol: string;
  date: string;
  ts: string;
  price: number;
  size: number;
  side: string | null;
  trade_id: string;
  stream_seq: bigint;
}
const rows: Row[] = Array.from({ length: 40 }, (_, i) => ({
  symbol: i % 2 ? 'ES' : 'NQ',
  date: `2025-09-0${1 + (i % 3)}`,
  ts: new Date(Date.UTC(2025, 8, 1 + (i % 3), 10, i)).toISOString(),
  price: 100 + i * 0.25,
  size: i % 5,
  side: i % 4 === 0 ? null : i % 2 ? 'buy' : 'sell',
  trade_id: HOSTILE[i % HOSTILE.length]!,
  stream_seq: 9_007_199_254_740_990n + BigInt(i),
}));

const DUCKDB_TYPES: Record<BoundType, DuckDBType> = { VARCHAR, DOUBLE, BIGINT, INTEGER, BOOLEAN };

/** How the engine is expected to run a compiled query: explicit binding types, never guessed. */
async function run(q: CompiledQuery): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(
    withSource(q, source()),
    q.params,
    q.paramTypes.map((t) => DUCKDB_TYPES[t]),
  );
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

function source(): string {
  return `read_parquet([${sqlString(file)}])`;
}

async function query(parts: Parameters<typeof compileQuery>[0]) {
  return run(compileQuery(parts));
}

beforeAll(async () => {
  mkdirSync(lake, { recursive: true });
  db = await DuckDBInstance.create(':memory:', { threads: '1' });
  conn = await db.connect();
  const cols = Object.entries(TICKS.columns)
    .map(([c, t]) => `"${c}" ${t}`)
    .join(', ');
  await conn.run(`CREATE TABLE t (${cols})`);
  // Insert through bound parameters too, so hostile values are stored verbatim.
  for (const r of rows) {
    await conn.run(
      'INSERT INTO t VALUES ($1, CAST($2 AS DATE), CAST($3 AS TIMESTAMPTZ), $4, $5, $6, $7, $8)',
      [r.symbol, r.date, r.ts, r.price, r.size, r.side, r.trade_id, r.stream_seq] as never,
    );
  }
  await conn.run(`COPY t TO ${sqlString(file)} (FORMAT parquet)`);
});

afterAll(() => {
  conn?.closeSync();
  db?.closeSync();
  dir.remove();
});

const ticks = { schema: TICKS.columns, timeColumn: TICKS.timeColumn };

describe('compiled queries on DuckDB', () => {
  it('returns exactly the rows the filters describe', async () => {
    const got = await query({
      ...ticks,
      columns: ['trade_id', 'price'],
      filters: [
        { column: 'symbol', op: 'in', value: ['ES'] },
        { column: 'price', op: 'between', value: [101, 105] },
        { column: 'side', op: 'is_null', value: false },
      ],
    });
    const want = rows.filter((r) => r.symbol === 'ES' && r.price >= 101 && r.price <= 105 && r.side !== null);
    expect(want.length).toBeGreaterThan(0);
    expect(got.map((r) => r.price).sort()).toEqual(want.map((r) => r.price).sort());
  });

  it('matches hostile strings verbatim, as data', async () => {
    for (const value of HOSTILE) {
      const got = await query({
        ...ticks,
        columns: ['trade_id'],
        filters: [{ column: 'trade_id', op: '=', value }],
      });
      expect(got.length).toBe(rows.filter((r) => r.trade_id === value).length);
      expect(got.every((r) => r.trade_id === value)).toBe(true);
    }
  });

  it('applies date_range (end date inclusive), BIGINT beyond 2^53, limit with time order', async () => {
    const day = await query({
      ...ticks,
      columns: ['ts'],
      dateRange: { start: '2025-09-02', end: '2025-09-02' },
    });
    expect(day.length).toBe(rows.filter((r) => r.date === '2025-09-02').length);

    const big = await query({
      ...ticks,
      columns: ['stream_seq'],
      filters: [{ column: 'stream_seq', op: '=', value: '9007199254740993' }],
    });
    expect(big).toEqual([{ stream_seq: 9_007_199_254_740_993n }]);

    const first = await query({ ...ticks, columns: ['ts'], limit: 3 });
    const oldest = rows
      .map((r) => r.ts)
      .sort()
      .slice(0, 3);
    expect(first.map((r) => (r.ts as Date).toISOString())).toEqual(oldest);
  });

  it('the row scope bounds what any filter can reach', async () => {
    const scope: Filter[] = [{ column: 'symbol', op: '=', value: 'ES' }];
    const got = await query({
      ...ticks,
      columns: ['symbol'],
      filters: [{ column: 'symbol', op: 'in', value: ['ES', 'NQ'] }],
      rowScopes: scope,
    });
    expect(new Set(got.map((r) => r.symbol))).toEqual(new Set(['ES']));
  });

  it('every query that compiles also runs: random typed filters never fail inside DuckDB', async () => {
    const date = fc.date({
      min: new Date('0001-01-01T00:00:00Z'),
      max: new Date('9999-12-31T00:00:00Z'),
      noInvalidDate: true,
    });
    const typed = (type: ColumnType): fc.Arbitrary<unknown> =>
      type === 'DOUBLE'
        ? fc.double({ noNaN: true, noDefaultInfinity: true })
        : type === 'BIGINT'
          ? fc.oneof(fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String))
          : type === 'DATE'
            ? date.map((d) => d.toISOString().slice(0, 10))
            : type === 'TIMESTAMPTZ'
              ? fc.oneof(
                  date.map((d) => d.toISOString()),
                  fc.integer(),
                )
              : fc.string();
    const filter = fc
      .constantFrom(...(Object.entries(TICKS.columns) as [string, ColumnType][]))
      .chain(([column, type]) =>
        fc.oneof(
          fc.record({
            column: fc.constant(column),
            op: fc.constantFrom('=', '!=', '<', '>='),
            value: typed(type),
          }),
          fc.record({
            column: fc.constant(column),
            op: fc.constant('in'),
            value: fc.array(typed(type), { minLength: 1, maxLength: 3 }),
          }),
          fc.record({
            column: fc.constant(column),
            op: fc.constant('between'),
            value: fc.tuple(typed(type), typed(type)),
          }),
          fc.record({ column: fc.constant(column), op: fc.constant('like'), value: fc.string() }),
        ),
      );
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(filter, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 50 }),
        async (filters, limit) => {
          let q: ReturnType<typeof compileQuery>;
          try {
            q = compileQuery({ ...ticks, filters, limit });
          } catch (err) {
            if (err instanceof InvalidInputError) return;
            throw err;
          }
          await run(q);
          ran += 1;
        },
      ),
      { numRuns: 150 },
    );
    expect(ran).toBeGreaterThan(50);
  });
});

describe('DuckDB sandbox', () => {
  it('reads the lake, refuses every other path, and cannot be switched off', async () => {
    const sandboxed = await DuckDBInstance.create(':memory:', { threads: '1' });
    const c = await sandboxed.connect();
    try {
      const tmp = join(dir.path, 'tmp');
      mkdirSync(tmp);
      for (const s of sandboxStatements({ allowedDirectories: [lake, tmp], tempDirectory: tmp }))
        await c.run(s);
      const ok = await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${sqlString(file)})`);
      expect(ok.getRowObjectsJS()).toEqual([{ n: BigInt(rows.length) }]);
      await expect(c.run("SELECT * FROM read_csv('/etc/passwd')")).rejects.toThrow(/Permission|disabled/);
      await expect(
        c.run(`SELECT * FROM read_parquet(${sqlString(`${lake}/../outside.parquet`)})`),
      ).rejects.toThrow();
      await expect(c.run(`COPY (SELECT 1) TO ${sqlString(join(dir.path, 'out.csv'))}`)).rejects.toThrow();
      await expect(c.run('SET enable_external_access = true')).rejects.toThrow(/locked/);
      await c.run(`COPY (SELECT 1 AS x) TO ${sqlString(join(tmp, 'ok.csv'))}`);
      // Connections opened after the lock are confined too, and run in UTC.
      const later = await sandboxed.connect();
      try {
        await expect(later.run("SELECT * FROM read_csv('/etc/passwd')")).rejects.toThrow();
        const tz = await later.runAndReadAll("SELECT current_setting('TimeZone') AS tz");
        expect(tz.getRowObjectsJS()).toEqual([{ tz: 'UTC' }]);
      } finally {
        later.closeSync();
      }
    } finally {
      c.closeSync();
      sandboxed.closeSync();
    }
  });
});
