import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  absorbsType,
  applyNaming,
  BASE_OVERHEAD_BYTES,
  CHUNK_ROWS,
  chooseStrategy,
  createTableSql,
  DriftError,
  defaultPgType,
  diffSchema,
  estimateRowBytes,
  evolvedType,
  formatDiff,
  LOAD_HEADROOM_BYTES,
  normalizePgType,
  PlanError,
  planColumns,
  resolveDrift,
  selectSql,
  targetNames,
  textLineExpression,
} from './plan.js';

const MB = 1024 * 1024;

describe('naming', () => {
  it.each([
    ['Precio Normal', 'snake', 'precio_normal'],
    ['precioNormal', 'snake', 'precio_normal'],
    ['HTTPServerURL', 'snake', 'http_server_url'],
    ['Categoría ', 'snake', 'categoria'],
    ['2024 sales (%)', 'snake', '_2024_sales'],
    ['pRICE', 'capitalize', 'Price'],
    ['Price', 'lower', 'price'],
    ['Price', 'upper', 'PRICE'],
    ['Mixed Case', 'preserve', 'Mixed Case'],
  ] as const)('%s → %s = %s', (name, style, expected) => {
    expect(applyNaming(name, style)).toBe(expected);
  });

  it('applies renames by source or styled name, over the style', () => {
    expect(
      targetNames(['Precio Normal', 'SKU'], {
        naming: 'snake',
        rename: { 'Precio Normal': 'price', sku: 'product_id' },
      }),
    ).toEqual(['price', 'product_id']);
  });

  it('refuses names that collide after naming, saying which sources', () => {
    expect(() => targetNames(['Price', 'price'], { naming: 'lower', rename: {} })).toThrow(
      /"Price" and "price" both become "price"/,
    );
  });

  it('names the config key of a rename for a column that does not exist', () => {
    try {
      targetNames(['a'], { naming: 'snake', rename: { b: 'x' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PlanError);
      expect((err as PlanError).key).toBe('schema_config.rename.b');
    }
  });

  it('refuses names over 63 bytes instead of letting PostgreSQL truncate them', () => {
    expect(() => targetNames(['x'.repeat(64)], { naming: 'preserve', rename: {} })).toThrow(/longer than 63/);
  });
});

describe('types', () => {
  it.each([
    ['int', 'integer'],
    ['INT8', 'bigint'],
    ['float', 'double precision'],
    ['Decimal(10, 2)', 'numeric(10,2)'],
    ['character varying(20)', 'text'],
    ['timestamp with time zone', 'timestamptz'],
    ['timestamp(3) without time zone', 'timestamp'],
    ['datetime', 'timestamp'],
    ['string', 'text'],
    ['jsonb', 'jsonb'],
  ])('normalizes %s to %s', (input, expected) => {
    expect(normalizePgType(input)).toBe(expected);
  });

  it('returns undefined for types it cannot load', () => {
    expect(normalizePgType('point')).toBeUndefined();
    expect(normalizePgType('numeric(5,7)')).toBeUndefined();
  });

  it.each([
    ['BIGINT', 'bigint'],
    ['UBIGINT', 'numeric'],
    ['DECIMAL(18,3)', 'numeric(18,3)'],
    ['TIMESTAMP WITH TIME ZONE', 'timestamptz'],
    ['TIMESTAMP_MS', 'timestamp'],
    ['STRUCT(a INTEGER, b VARCHAR)', 'jsonb'],
    ['INTEGER[]', 'jsonb'],
    ['MAP(VARCHAR, INTEGER)', 'jsonb'],
    ["ENUM('a', 'b')", 'text'],
    ['UTINYINT', 'smallint'],
  ])('maps DuckDB %s to %s by default', (duck, pg) => {
    expect(defaultPgType(duck)).toBe(pg);
  });
});

describe('planColumns', () => {
  const sources = [
    { name: 'Id', duckType: 'BIGINT' },
    { name: 'Precio', duckType: 'VARCHAR' },
    { name: 'Fecha', duckType: 'VARCHAR' },
    { name: 'Ts', duckType: 'TIMESTAMP WITH TIME ZONE' },
  ];

  it('passes matching types through and try-casts the rest, marking those that can fail', () => {
    const plans = planColumns(sources, {
      naming: 'snake',
      rename: {},
      dataTypes: { precio: 'numeric', Fecha: 'date', id: 'integer' },
      decimalPrecision: { precision: 12, scale: 2 },
      dateFormats: { Fecha: '%d/%m/%Y' },
    });
    expect(plans.map((p) => [p.name, p.pgType, p.wire])).toEqual([
      ['id', 'integer', 'int4'],
      ['precio', 'numeric(12,2)', 'numeric'],
      ['fecha', 'date', 'date'],
      ['ts', 'timestamptz', 'timestamptz'],
    ]);
    expect(plans[0]!.expr).toBe('TRY_CAST(s."Id" AS INTEGER)');
    expect(plans[1]!.expr).toContain('DECIMAL(12,2)');
    expect(plans[2]!.expr).toBe(`TRY_CAST(try_strptime(s."Fecha", '%d/%m/%Y') AS DATE)`);
    expect(plans[3]!.expr).toBe('s."Ts"');
    expect(plans.map((p) => p.failsWhen !== null)).toEqual([true, true, true, false]);
  });

  it('uses the sniffed type of text columns (CSV, NDJSON) as the default target type', () => {
    const [p] = planColumns([{ name: 'n', duckType: 'VARCHAR', inferredType: 'BIGINT' }], {
      naming: 'snake',
      rename: {},
      dataTypes: {},
    });
    expect(p!.pgType).toBe('bigint');
    expect(p!.expr).toBe('TRY_CAST(s."n" AS BIGINT)');
    expect(p!.failsWhen).not.toBeNull();
  });

  it('widening integer casts cannot fail', () => {
    const [p] = planColumns([{ name: 'n', duckType: 'INTEGER' }], {
      naming: 'snake',
      rename: {},
      dataTypes: { n: 'bigint' },
    });
    expect(p!.failsWhen).toBeNull();
  });

  it('names the config key of a cast for a missing column', () => {
    expect(() => planColumns(sources, { naming: 'snake', rename: {}, dataTypes: { nope: 'text' } })).toThrow(
      /no column "nope"/,
    );
  });

  it('adds the reject reason and raw row only when some cast can fail', () => {
    const safe = planColumns([{ name: 'a', duckType: 'BIGINT' }], {
      naming: 'snake',
      rename: {},
      dataTypes: {},
    });
    expect(selectSql(safe, 'read_parquet([])', 'binary')).toBe(
      'SELECT s."a" AS c0 FROM read_parquet([]) AS s',
    );
    const risky = planColumns([{ name: 'a', duckType: 'VARCHAR' }], {
      naming: 'snake',
      rename: {},
      dataTypes: { a: 'int' },
    });
    const sql = selectSql(risky, 'read_csv([])', 'binary');
    expect(sql).toContain('AS __pq_reason');
    expect(sql).toContain('to_json(s)');
    expect(sql).toContain("'a: cannot cast '");
  });

  it('builds a tab-separated, escaped text COPY line with \\N for NULL', () => {
    const plans = planColumns(
      [
        { name: 'a', duckType: 'BIGINT' },
        { name: 'b', duckType: 'VARCHAR' },
        { name: 'c', duckType: 'BOOLEAN' },
      ],
      { naming: 'snake', rename: {}, dataTypes: {} },
    );
    const line = textLineExpression(plans);
    expect(line).toMatch(/^concat\(COALESCE\(CAST\(s\."a" AS VARCHAR\), '\\N'\), chr\(9\)/);
    expect(line).toContain(
      `replace(replace(replace(replace(CAST(s."b" AS VARCHAR), '\\', '\\\\'), chr(9), '\\t'), chr(10), '\\n'), chr(13), '\\r')`,
    );
    expect(line).toContain(`CASE WHEN s."c" THEN 't' ELSE 'f' END`);
    expect(line.endsWith('chr(10))')).toBe(true);
  });
});

describe('DDL', () => {
  it('quotes identifiers', () => {
    expect(createTableSql('"public"."t"', [{ name: 'we"ird', pgType: 'text' }])).toBe(
      'CREATE TABLE "public"."t" ("we""ird" text)',
    );
  });
});

describe('schema drift', () => {
  const table = [
    { name: 'id', pgType: 'bigint' },
    { name: 'price', pgType: 'double precision' },
    { name: 'gone', pgType: 'text' },
  ];
  const incoming = [
    { name: 'id', pgType: 'bigint' },
    { name: 'price', pgType: 'text' },
    { name: 'added', pgType: 'date' },
  ];

  it('diffs added, removed and retyped columns', () => {
    const d = diffSchema(table, incoming);
    expect(d).toEqual({
      added: [{ name: 'added', pgType: 'date' }],
      removed: [{ name: 'gone', pgType: 'text' }],
      retyped: [{ name: 'price', from: 'double precision', to: 'text' }],
    });
    expect(formatDiff(d)).toBe('+ added date\n- gone text\n~ price double precision -> text');
  });

  it('fail stops on any difference with the diff in the message', () => {
    expect(() => resolveDrift(table, incoming, 'fail', 't')).toThrow(/\+ added date\n- gone text/);
    expect(resolveDrift(table, table, 'fail', 't').addColumns).toEqual([]);
  });

  it('evolve adds new columns, loads removed ones as NULL and widens retyped ones', () => {
    const r = resolveDrift(table, [incoming[0]!, incoming[2]!], 'evolve', 't');
    expect(r.addColumns).toEqual([{ name: 'added', pgType: 'date' }]);
    expect(r.nullColumns.map((c) => c.name)).toEqual(['price', 'gone']);
    expect([...r.loadTypes.keys()]).toEqual(['id', 'added']);
    expect(r.alterColumns).toBeUndefined();
    // double precision meets text: the column becomes text, the incoming values load as text.
    const w = resolveDrift(table, incoming, 'evolve', 't');
    expect(w.alterColumns).toEqual([{ name: 'price', from: 'double precision', to: 'text' }]);
    expect(w.loadTypes.get('price')).toBe('text');
    // A text column takes anything as its text, without an ALTER.
    const t = resolveDrift(
      [{ name: 'price', pgType: 'text' }],
      [{ name: 'price', pgType: 'bigint' }],
      'evolve',
      't',
    );
    expect(t.alterColumns).toBeUndefined();
    expect(t.loadTypes.get('price')).toBe('text');
    expect(() => resolveDrift(table, incoming, 'fail', 't')).toThrow(DriftError);
  });

  it('evolvedType: the narrowest type keeping every value and its text', () => {
    expect(evolvedType('integer', 'bigint')).toBe('bigint');
    expect(evolvedType('bigint', 'integer')).toBe('bigint');
    expect(evolvedType('smallint', 'integer')).toBe('integer');
    expect(evolvedType('integer', 'numeric(10,2)')).toBe('numeric');
    expect(evolvedType('numeric(10,2)', 'numeric(12,4)')).toBe('numeric');
    expect(evolvedType('numeric(10,2)', 'bigint')).toBe('numeric');
    expect(evolvedType('numeric', 'bigint')).toBe('numeric');
    expect(evolvedType('bigint', 'text')).toBe('text');
    expect(evolvedType('text', 'bigint')).toBe('text');
    expect(evolvedType('bigint', 'double precision')).toBe('text');
    expect(evolvedType('real', 'double precision')).toBe('text');
    expect(evolvedType('numeric(10,2)', 'double precision')).toBe('text');
    expect(evolvedType('date', 'timestamp with time zone')).toBe('text');
    expect(evolvedType('boolean', 'integer')).toBe('text');
    // Absorbed types stay the table's.
    expect(evolvedType('double precision', 'integer')).toBe('double precision');
    expect(evolvedType('numeric(23,2)', 'numeric(24,2)')).toBe('numeric(23,2)');
  });

  it('a type the table absorbs is not drift and loads as the table type under every policy', () => {
    const t = [
      { name: 'price', pgType: 'numeric(23,2)' },
      { name: 'n', pgType: 'bigint' },
      { name: 'x', pgType: 'double precision' },
    ];
    const widened = [
      { name: 'price', pgType: 'numeric(24,2)' },
      { name: 'n', pgType: 'integer' },
      { name: 'x', pgType: 'real' },
    ];
    const d = diffSchema(t, widened);
    expect(d.retyped).toEqual([]);
    expect(d.widened?.map((w) => w.name)).toEqual(['price', 'n', 'x']);
    for (const policy of ['fail', 'evolve', 'ignore'] as const) {
      expect([...resolveDrift(t, widened, policy, 't').loadTypes]).toEqual(t.map((c) => [c.name, c.pgType]));
    }
    // A finer scale would round, a wider integer or a float would not fit: still drift.
    expect(absorbsType('numeric(23,2)', 'numeric(23,3)')).toBe(false);
    expect(absorbsType('integer', 'bigint')).toBe(false);
    expect(absorbsType('numeric(10,2)', 'bigint')).toBe(false);
    expect(absorbsType('numeric(21,2)', 'bigint')).toBe(true);
    expect(absorbsType('numeric', 'numeric(38,9)')).toBe(true);
    expect(absorbsType('numeric(10,2)', 'double precision')).toBe(false);
    expect(absorbsType('double precision', 'integer')).toBe(true);
    expect(absorbsType('double precision', 'bigint')).toBe(false);
    expect(absorbsType('real', 'smallint')).toBe(true);
    expect(absorbsType('real', 'integer')).toBe(false);
    expect(() =>
      resolveDrift(t, [{ name: 'price', pgType: 'numeric(23,4)' }, t[1]!, t[2]!], 'fail', 't'),
    ).toThrow(/~ price numeric\(23,2\) -> numeric\(23,4\)/);
  });

  it('ignore drops added columns and casts retyped ones to the table type', () => {
    const r = resolveDrift(table, incoming, 'ignore', 't');
    expect(r.addColumns).toEqual([]);
    expect([...r.loadTypes]).toEqual([
      ['id', 'bigint'],
      ['price', 'double precision'],
    ]);
  });
});

describe('chooseStrategy', () => {
  const estimate = (rows: number) => ({ rows, rowsExact: true, rowBytes: 44, encodedRowBytes: 57 });

  it('counts what the process already holds against an explicit limit, not against measured memory', () => {
    const base = {
      estimate: estimate(50_000_000),
      availableBytes: 256 * MB,
      marginFraction: 0,
      limitBytes: 256 * MB,
    };
    const plain = chooseStrategy(base);
    const cli = chooseStrategy({ ...base, processBytes: 140 * MB });
    expect(plain.strategy).toBe('batched');
    expect(cli.batchRows).toBeLessThan(plain.batchRows);
    // usable = 256 - (140 + headroom) MB: an eighth of it per batch of 101-byte rows
    const usable = 256 * MB - 140 * MB - LOAD_HEADROOM_BYTES;
    expect(cli.batchRows).toBe(Math.floor(usable / 8 / 101 / CHUNK_ROWS) * CHUNK_ROWS);
    // A small process changes nothing: the fixed overhead is the floor.
    expect(chooseStrategy({ ...base, processBytes: 20 * MB })).toEqual(plain);
    const measured = { ...base, limitBytes: undefined, availableBytes: 4096 * MB };
    expect(chooseStrategy({ ...measured, processBytes: 140 * MB })).toEqual(chooseStrategy(measured));
  });

  it('is eager when the materialized input takes at most half the budget', () => {
    const c = chooseStrategy({
      estimate: estimate(1_000_000),
      availableBytes: 4096 * MB,
      marginFraction: 0.2,
    });
    expect(c.strategy).toBe('eager');
    expect(c.budgetBytes).toBe(Math.floor(4096 * MB * 0.8));
    expect(c.reason).toContain('1,000,000 rows × 101 B');
    expect(c.reason).toContain('20% OS margin');
  });

  it('does not materialize big inputs even when memory is plentiful', () => {
    const c = chooseStrategy({
      estimate: estimate(20_000_000),
      availableBytes: 24 * 1024 * MB,
      marginFraction: 0.2,
    });
    expect(c.strategy).toBe('batched');
    expect(c.reason).toContain('where materializing stops paying');
    expect(c.batchRows).toBe(512 * CHUNK_ROWS);
  });

  it('batches a large input within an explicit 256 MB limit', () => {
    const c = chooseStrategy({
      estimate: estimate(50_000_000),
      availableBytes: 64 * 1024 * MB,
      marginFraction: 0.2,
      limitBytes: 256 * MB,
    });
    expect(c.strategy).toBe('batched');
    expect(c.budgetBytes).toBe(256 * MB);
    expect(c.batchRows % CHUNK_ROWS).toBe(0);
    expect(c.batchRows * 101).toBeLessThanOrEqual((256 * MB - BASE_OVERHEAD_BYTES) / 8);
    expect(c.reason).toContain('configured limit 256 MB');
  });

  it('streams in small batches when memory is tight', () => {
    const c = chooseStrategy({ estimate: estimate(50_000_000), availableBytes: 100 * MB, marginFraction: 0 });
    expect(c.strategy).toBe('streaming');
    expect(c.batchRows).toBeGreaterThanOrEqual(CHUNK_ROWS);
  });

  it('keeps the bytes in flight within the budget at any input size (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2_000_000_000 }),
        fc.integer({ min: 8, max: 4000 }),
        fc.integer({ min: 128, max: 64 * 1024 }),
        (rows, rowBytes, budgetMb) => {
          const e = { rows, rowsExact: true, rowBytes, encodedRowBytes: rowBytes };
          const c = chooseStrategy({
            estimate: e,
            availableBytes: 0,
            marginFraction: 0,
            limitBytes: budgetMb * MB,
          });
          const usable = budgetMb * MB - BASE_OVERHEAD_BYTES;
          const inFlight = c.strategy === 'eager' ? c.eagerBytes : c.batchRows * rowBytes * 2;
          expect(inFlight).toBeLessThanOrEqual(Math.max(usable / 2, CHUNK_ROWS * rowBytes * 2));
        },
      ),
    );
  });

  it('honours a configured batch size', () => {
    const c = chooseStrategy({
      estimate: estimate(50_000_000),
      availableBytes: 0,
      marginFraction: 0,
      limitBytes: 256 * MB,
      batchRows: 10_000,
    });
    expect(c.batchRows).toBe(10_000);
  });
});

describe('estimateRowBytes', () => {
  it('counts fixed widths, string headers and payloads over 12 bytes', () => {
    expect(
      estimateRowBytes([
        { wire: 'int8', avgBytes: 0 },
        { wire: 'text', avgBytes: 5 },
        { wire: 'text', avgBytes: 20 },
      ]),
    ).toEqual({ rowBytes: 8 + 16 + 36, encodedRowBytes: 2 + 12 + 9 + 24 });
  });
});
