import { join } from 'node:path';
import { createTestDatabase, requireServers, type TestDatabase, tempDir } from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad, SCHEMA_REGISTRY_TABLE } from '../src/index.js';
import { config, count, writeFixture } from './helpers.js';

const skip = await requireServers({ postgres: true });

describe.skipIf(skip)('schema drift', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const dir = tempDir('pgl-drift-');
  const f = (name: string) => join(dir.path, `${name}.parquet`);
  let table = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const base = `i AS id, (i * 1.5)::DOUBLE AS price, 'n' || i::VARCHAR AS name`;
    await writeFixture(f('v1'), `SELECT ${base} FROM range(100) t(i)`);
    await writeFixture(f('added'), `SELECT ${base}, (i % 7)::INTEGER AS qty FROM range(100, 200) t(i)`);
    await writeFixture(f('removed'), `SELECT i AS id, (i * 1.5)::DOUBLE AS price FROM range(100, 200) t(i)`);
    await writeFixture(
      f('retyped'),
      `SELECT i AS id, CASE WHEN i % 10 = 0 THEN 'abc' ELSE (i * 1.5)::VARCHAR END AS price, 'n' || i::VARCHAR AS name
       FROM range(100, 200) t(i)`,
    );
    // Decimals as DuckDB arithmetic makes them: same scale, another precision (price + 1 widens).
    await writeFixture(
      f('dec_v1'),
      `SELECT i AS id, (i * 1.25)::DECIMAL(10,2) AS price FROM range(100) t(i)`,
    );
    await writeFixture(
      f('dec_wider'),
      `SELECT i::INTEGER AS id, CASE WHEN i = 150 THEN 123456789.5 ELSE i * 1.25 END::DECIMAL(12,2) AS price
       FROM range(100, 200) t(i)`,
    );
    await writeFixture(
      f('dec_finer'),
      `SELECT i AS id, (i * 1.25)::DECIMAL(12,4) AS price FROM range(100, 200) t(i)`,
    );
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
    dir.remove();
  });

  /** A fresh table loaded from v1, then `next` appended under `policy`. */
  async function appendDrifted(next: string, policy: 'fail' | 'evolve' | 'ignore', first = 'v1') {
    const name = `drift_${table++}`;
    await runLoad({ source: f(first), config: config({ database: { table_name: name } }), pg: db.url });
    const load = runLoad({
      source: f(next),
      config: config({ database: { table_name: name, if_table_exists: 'append', schema_drift: policy } }),
      pg: db.url,
    });
    return { name, load };
  }

  async function columns(name: string): Promise<string[]> {
    const r = await client.query<{ c: string }>(
      `SELECT column_name || ' ' || data_type AS c FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
      [name],
    );
    return r.rows.map((x) => x.c);
  }

  it.each([
    ['added', '+ qty integer'],
    ['removed', '- name text'],
    ['retyped', '~ price double precision -> text'],
  ])('fail: %s columns stop the load with a diff, table untouched', async (next, diffLine) => {
    const { name, load } = await appendDrifted(next, 'fail');
    await expect(load).rejects.toMatchObject({
      code: 'schema_drift',
      message: expect.stringContaining(diffLine),
    });
    expect(await count(client, name)).toBe(100);
    expect(await columns(name)).toEqual(['id bigint', 'price double precision', 'name text']);
  });

  it('evolve: added columns are added and loaded; the persisted schema follows', async () => {
    const { name, load } = await appendDrifted('added', 'evolve');
    const r = await load;
    expect(r.loaded).toBe(100);
    expect(r.drift?.added).toEqual([{ name: 'qty', pgType: 'integer' }]);
    expect(await columns(name)).toEqual(['id bigint', 'price double precision', 'name text', 'qty integer']);
    expect(await count(client, name, 'qty IS NOT NULL')).toBe(100);
    const persisted = await client.query(
      `SELECT columns FROM ${SCHEMA_REGISTRY_TABLE} WHERE table_name = $1`,
      [`public.${name}`],
    );
    expect(persisted.rows[0].columns.map((c: { name: string }) => c.name)).toEqual([
      'id',
      'price',
      'name',
      'qty',
    ]);
  });

  it('evolve: removed columns load as NULL', async () => {
    const { name, load } = await appendDrifted('removed', 'evolve');
    expect((await load).loaded).toBe(100);
    expect(await count(client, name, 'name IS NULL')).toBe(100);
    expect(await count(client, name)).toBe(200);
  });

  it('evolve: a retyped column becomes text — no row lost, no value changes its text', async () => {
    const { name, load } = await appendDrifted('retyped', 'evolve');
    const r = await load;
    expect([r.rows, r.loaded, r.rejected]).toEqual([100, 100, 0]);
    expect(r.drift?.retyped).toEqual([{ name: 'price', from: 'double precision', to: 'text' }]);
    expect(await columns(name)).toEqual(['id bigint', 'price text', 'name text']);
    // The old rows read as PostgreSQL wrote the doubles; the new ones as the file had them.
    expect(await count(client, name, 'id < 100 AND price = (id * 1.5::float8)::text')).toBe(100);
    expect(await count(client, name, `id >= 100 AND id % 10 = 0 AND price = 'abc'`)).toBe(10);
    expect(await count(client, name, `id = 101 AND price = '151.5'`)).toBe(1);
    const persisted = await client.query<{ columns: { name: string; pgType: string }[] }>(
      `SELECT columns FROM ${SCHEMA_REGISTRY_TABLE} WHERE table_name = $1`,
      [`public.${name}`],
    );
    expect(persisted.rows[0]!.columns.find((c) => c.name === 'price')?.pgType).toBe('text');
    // Numbers after it load as their text, with no further ALTER.
    await writeFixture(
      f('v1_more'),
      `SELECT i AS id, (i * 1.5)::DOUBLE AS price, 'n' || i::VARCHAR AS name FROM range(200, 300) t(i)`,
    );
    const again = await runLoad({
      source: f('v1_more'),
      config: config({ database: { table_name: name, if_table_exists: 'append', schema_drift: 'evolve' } }),
      pg: db.url,
    });
    expect(again.loaded).toBe(100);
    expect(await count(client, name, `id = 201 AND price = '301.5'`)).toBe(1);
    expect(await columns(name)).toEqual(['id bigint', 'price text', 'name text']);
  });

  it('evolve: a failed load leaves the retyped column as it was', async () => {
    const { name, load } = await appendDrifted('v1', 'evolve');
    expect((await load).skippedFiles).toHaveLength(1); // the same file again: the ledger skips it
    await client.query(`CREATE UNIQUE INDEX ON ${name} (id)`);
    // The ALTER runs, then the rows collide with the unique index (ids 0…99 again) and the
    // load is rejected row by row until max_rows stops it: everything rolls back.
    await writeFixture(
      f('retyped_dup'),
      `SELECT i AS id, (i * 1.5)::VARCHAR AS price, 'n' AS name FROM range(100) t(i)`,
    );
    await expect(
      runLoad({
        source: f('retyped_dup'),
        config: config({
          database: {
            table_name: name,
            if_table_exists: 'append',
            schema_drift: 'evolve',
            rejects: { to: 'table', max_rows: 5 },
          },
        }),
        pg: db.url,
      }),
    ).rejects.toMatchObject({ code: 'too_many_rejects' });
    expect(await columns(name)).toEqual(['id bigint', 'price double precision', 'name text']);
    expect(await count(client, name)).toBe(100);
  });

  it('ignore: added columns are left out', async () => {
    const { name, load } = await appendDrifted('added', 'ignore');
    expect((await load).loaded).toBe(100);
    expect(await columns(name)).toEqual(['id bigint', 'price double precision', 'name text']);
    expect(await count(client, name)).toBe(200);
  });

  it('ignore: a retyped column is cast to the table type, misfits rejected', async () => {
    const { name, load } = await appendDrifted('retyped', 'ignore');
    const r = await load;
    expect(r.rows).toBe(100);
    expect(r.rejected).toBe(10);
    expect(r.loaded).toBe(90);
    expect(await count(client, name)).toBe(190);
    expect(await count(client, name, 'id = 101 AND price = 151.5')).toBe(1);
    const rej = await client.query(`SELECT reason FROM ${name}_rejects ORDER BY row_number LIMIT 1`);
    expect(rej.rows[0].reason).toBe('price: cannot cast abc to double precision');
  });

  it('ignore: removed columns load as NULL', async () => {
    const { name, load } = await appendDrifted('removed', 'ignore');
    const r = await load;
    expect(r.loaded).toBe(100);
    expect(r.drift?.removed).toEqual([{ name: 'name', pgType: 'text' }]);
    expect(await count(client, name, 'name IS NULL')).toBe(100);
    expect(await count(client, name, 'name IS NOT NULL')).toBe(100);
  });

  it.each(['fail', 'evolve', 'ignore'] as const)(
    '%s: a wider integer or decimal precision is not drift; a value beyond the table type is a reject',
    async (policy) => {
      const { name, load } = await appendDrifted('dec_wider', policy, 'dec_v1');
      const r = await load;
      expect(r.drift?.retyped).toEqual([]);
      expect(r.drift?.widened).toEqual([
        { name: 'id', from: 'bigint', to: 'integer' },
        { name: 'price', from: 'numeric(10,2)', to: 'numeric(12,2)' },
      ]);
      expect([r.rows, r.loaded, r.rejected]).toEqual([100, 99, 1]);
      expect(await columns(name)).toEqual(['id bigint', 'price numeric']);
      const sum = await client.query<{ s: string }>(`SELECT sum(price) AS s FROM ${name} WHERE id >= 100`);
      expect(Number(sum.rows[0]!.s)).toBe(
        Array.from({ length: 100 }, (_, k) => k + 100)
          .filter((i) => i !== 150)
          .reduce((a, i) => a + i * 1.25, 0),
      );
      const rej = await client.query<{ row_number: string; reason: string }>(
        `SELECT row_number, reason FROM ${name}_rejects`,
      );
      expect(rej.rows.map((x) => [Number(x.row_number), x.reason])).toEqual([
        [51, expect.stringContaining('price')],
      ]);
    },
  );

  it('a finer decimal scale would round: drift under fail; evolve makes the column numeric', async () => {
    const failed = await appendDrifted('dec_finer', 'fail', 'dec_v1');
    await expect(failed.load).rejects.toMatchObject({
      code: 'schema_drift',
      message: expect.stringContaining('~ price numeric(10,2) -> numeric(12,4)'),
    });
    expect(await count(client, failed.name)).toBe(100);

    const { name, load } = await appendDrifted('dec_finer', 'evolve', 'dec_v1');
    expect((await load).loaded).toBe(100);
    expect(await columns(name)).toEqual(['id bigint', 'price numeric']);
    // Unconstrained numeric: every value keeps its own scale, so its text.
    const text = await client.query<{ id: string; p: string }>(
      `SELECT id, price::text AS p FROM ${name} WHERE id IN (1, 101) ORDER BY id`,
    );
    expect(text.rows.map((x) => [Number(x.id), x.p])).toEqual([
      [1, '1.25'],
      [101, '126.2500'],
    ]);
  });
});
