import type { DuckDBConnection } from '@duckdb/node-api';
import { requireServers } from '@parquetry/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  openTestLake,
  startApi,
  type TestKeys,
  type TestLake,
  testConfig,
  writeKeys,
  writeTicks,
} from './lake-fixture.js';

// Fuzzing POST /v1/exports on the real service over a real lake: whatever the dataset name,
// columns, filters, limit and partition_by, the answer is never a 5xx, and no text of the
// request ever reaches DuckDB as SQL (it is bound, or refused before any SQL exists). Every
// generated string carries MARK; every statement DuckDB receives is recorded and searched.
const skip = await requireServers({ nats: true });
const MARK = 'ζq';

const TICK_COLUMNS = ['symbol', 'date', 'ts', 'price', 'size', 'side', 'trade_id', 'stream_seq'];
const OPS = ['=', '!=', '<', '<=', '>', '>=', 'in', 'between', 'like', 'is_null'];

const marked = fc.string({ maxLength: 40 }).map((s) => `${MARK}${s}`);
const hostile = fc.constantFrom(
  `${MARK}'; DROP TABLE t; --`,
  `${MARK}") UNION SELECT * FROM read_text('/etc/passwd') --`,
  `${MARK}../../etc/passwd`,
  `${MARK}$1`,
  `${MARK}%_\\`,
  `${MARK}\u0000nul`,
  `${MARK}${'x'.repeat(2000)}`,
);
const text = fc.oneof(marked, hostile);
const scalar = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt().map(String),
);
const column = fc.oneof(fc.constantFrom(...TICK_COLUMNS), text);
const filter = fc.record(
  {
    column,
    op: fc.oneof(fc.constantFrom(...OPS), text),
    value: fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.tuple(scalar, scalar), fc.object()),
  },
  { requiredKeys: [] },
);
const validFilter = fc.oneof(
  fc.record({
    column: fc.constantFrom(...TICK_COLUMNS),
    op: fc.constantFrom('=', '!=', '<', '>='),
    value: fc.oneof(text, fc.double({ noNaN: true }), fc.integer()),
  }),
  fc.record({
    column: fc.constantFrom('symbol', 'side', 'trade_id'),
    op: fc.constant('in'),
    value: fc.array(text, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    column: fc.constantFrom('price', 'size', 'stream_seq'),
    op: fc.constant('between'),
    value: fc.tuple(fc.integer(), fc.integer()),
  }),
  fc.record({
    column: fc.constantFrom('symbol', 'side', 'trade_id'),
    op: fc.constant('like'),
    value: text.map((t) => t.slice(0, 200)),
  }),
  fc.record({ column: fc.constantFrom(...TICK_COLUMNS), op: fc.constant('is_null'), value: fc.boolean() }),
);
/** Mostly well-formed requests with hostile values: these get through validation to DuckDB. */
const validish = fc.record(
  {
    dataset: fc.constantFrom('ticks', 'ticks', 'ticks', 'product_prices_daily'),
    format: fc.constantFrom('parquet', 'csv', 'json'),
    columns: fc.shuffledSubarray(TICK_COLUMNS, { minLength: 1 }),
    filters: fc.array(validFilter, { maxLength: 3 }),
    limit: fc.integer({ min: 1, max: 1000 }),
    partition_by: fc.shuffledSubarray(['symbol', 'side'], { minLength: 1 }),
  },
  { requiredKeys: ['dataset', 'format'] },
);
const wild = fc.record(
  {
    dataset: fc.oneof(
      fc.constantFrom('ticks', 'products', 'product_prices_daily', 'candles_1m'),
      text,
      fc.constantFrom('../ticks', 'ticks/../products', 'TICKS', ''),
    ),
    format: fc.oneof(fc.constantFrom('parquet', 'csv', 'json'), text),
    compression: fc.oneof(fc.constantFrom('snappy', 'zstd', 'gzip', 'none'), text),
    columns: fc.array(column, { maxLength: 5 }),
    filters: fc.array(filter, { maxLength: 4 }),
    limit: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.double(), text),
    partition_by: fc.array(column, { maxLength: 2 }),
    date_range: fc.record({
      start: fc.oneof(
        text,
        fc.date().map((d) => d.toISOString()),
      ),
      end: text,
    }),
    extra: text,
  },
  { requiredKeys: ['dataset', 'format'] },
);
const request = fc.oneof({ arbitrary: validish, weight: 3 }, { arbitrary: wild, weight: 1 });

describe.skipIf(skip)('fuzzing POST /v1/exports', () => {
  let lake: TestLake;
  let keys: TestKeys;
  let server: Awaited<ReturnType<typeof startApi>>;
  const statements: string[] = [];

  beforeAll(async () => {
    lake = await openTestLake('fs');
    await writeTicks(lake, 300);
    keys = writeKeys(lake.dir.path);
    server = await startApi(testConfig(lake, keys, await freePort(), { RATE_LIMIT_PER_MIN: '100000' }), lake);
    // Record every statement any connection of the service's DuckDB receives (they open lazily).
    const instance = server.api.duck.instance;
    const connect = instance.connect.bind(instance);
    instance.connect = async () => record(await connect(), statements);
  });

  afterAll(async () => {
    await server?.close();
    await lake?.close();
  });

  it('never answers 5xx and never puts request text into SQL', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (body) => {
        const r = await fetch(`${server.base}/v1/exports`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keys.reader}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const json = (await r.json()) as { error?: { code?: unknown; message?: unknown } };
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect(r.status, JSON.stringify(body).slice(0, 400)).toBeLessThan(500);
        if (r.status >= 400) {
          expect(typeof json.error?.code).toBe('string');
          expect(typeof json.error?.message).toBe('string');
        }
      }),
      { numRuns: 250, seed: Number(process.env.FUZZ_SEED ?? 20250903) },
    );
    // Valid requests with hostile values do reach DuckDB: the property is not vacuous.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(5);
    expect(statements.some((s) => s.startsWith('COPY'))).toBe(true);
    const leaked = statements.filter((s) => s.includes(MARK));
    expect(leaked).toEqual([]);
  });

  it('dataset names and ids from anywhere never reach the filesystem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(text, fc.constantFrom('..', '../..', '%2e%2e', '.', '~')), async (name) => {
        for (const path of [
          `/v1/exports/${encodeURIComponent(name)}`,
          `/v1/downloads/${encodeURIComponent(name)}`,
        ]) {
          const r = await fetch(`${server.base}${path}`, {
            headers: { authorization: `Bearer ${keys.reader}` },
          });
          expect(r.status).toBeGreaterThanOrEqual(400);
          expect(r.status).toBeLessThan(500);
          await r.arrayBuffer();
        }
      }),
      { numRuns: 100, seed: 7 },
    );
  });
});

/** The same connection, with the text of every statement it is given kept in `out`. */
function record(conn: DuckDBConnection, out: string[]): DuckDBConnection {
  return new Proxy(conn, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (typeof args[0] === 'string') out.push(args[0]);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
