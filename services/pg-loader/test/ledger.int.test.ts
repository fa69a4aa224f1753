import { join } from 'node:path';
import { createTestDatabase, requireServers, type TestDatabase, tempDir } from '@parquetry/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEDGER_TABLE, ledgerEntries, loadFileOnce, sha256File } from '../src/index.js';
import { config, count, writeFixture } from './helpers.js';

const skip = await requireServers({ postgres: true });
const ROWS = 200_000;

describe.skipIf(skip)('loadFileOnce', () => {
  let db: TestDatabase;
  const clients: pg.Client[] = [];
  const dir = tempDir('pgl-ledger-');
  const file = join(dir.path, 'part-0001.parquet');
  // 128 MB: too little for eager, so the file streams in batches (the path a big file takes).
  const cfg = config({
    database: { table_name: 'unused', batch_rows: 16_384 },
    os_configuration: { memory_limit_mb: 128 },
  });

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: db.url });
    c.on('error', () => {}); // the killed-connection test breaks one on purpose
    await c.connect();
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await writeFixture(
      file,
      `SELECT i AS id, i * 0.5 AS price, 'row ' || i::VARCHAR AS label FROM range(${ROWS}) t(i)`,
    );
  });

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await db?.drop();
    dir.remove();
  });

  it('loads a file once; the same file again loads nothing', async () => {
    const c = await connect();
    const first = await loadFileOnce(c, 'once', file, { config: cfg });
    expect(first).toMatchObject({
      status: 'loaded',
      rows: ROWS,
      loaded: ROWS,
      rejected: 0,
      table: 'public.once',
    });
    expect(first.sha256).toBe(await sha256File(file));
    const second = await loadFileOnce(c, 'once', file, { config: cfg });
    expect(second).toMatchObject({ status: 'skipped', loaded: 0 });
    expect(await count(c, 'once')).toBe(ROWS);
    expect(await ledgerEntries(c, 'public.once')).toEqual([
      expect.objectContaining({ file, rows: ROWS, sha256: first.sha256 }),
    ]);
  });

  it('two loaders racing on the same file load it once', async () => {
    const [a, b] = [await connect(), await connect()];
    const results = await Promise.all([
      loadFileOnce(a, 'race', file, { config: cfg, ledgerKey: 'lake/part-0001.parquet' }),
      loadFileOnce(b, 'race', file, { config: cfg, ledgerKey: 'lake/part-0001.parquet' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['loaded', 'skipped']);
    expect(await count(a, 'race')).toBe(ROWS);
  });

  it('a connection destroyed mid-COPY leaves nothing; the retry loads exactly once', async () => {
    const victim = await connect();
    let killedAt = -1;
    await expect(
      loadFileOnce(victim, 'killed', file, {
        config: cfg,
        onProgress: (p) => {
          if (killedAt < 0 && p.rows > 0) {
            killedAt = p.rows;
            // Simulates a crash of the loader: the socket goes away while COPY data is in flight.
            (
              victim as unknown as { connection: { stream: { destroy(): void } } }
            ).connection.stream.destroy();
          }
        },
      }),
    ).rejects.toThrow();
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(ROWS);
    const c = await connect();
    expect(await count(c, 'pg_tables', `tablename = 'killed'`)).toBe(0);
    expect(await count(c, LEDGER_TABLE, `table_name = 'public.killed'`)).toBe(0);
    const retry = await loadFileOnce(c, 'killed', file, { config: cfg });
    expect(retry.status).toBe('loaded');
    expect((await loadFileOnce(c, 'killed', file, { config: cfg })).status).toBe('skipped');
    expect(await count(c, 'killed')).toBe(ROWS);
  });

  it('refuses a file whose content changed under the same name', async () => {
    const c = await connect();
    const f = join(dir.path, 'mutable.parquet');
    await writeFixture(f, `SELECT 1 AS id`);
    await loadFileOnce(c, 'changed', f, { config: cfg });
    await writeFixture(f, `SELECT 2 AS id`);
    await expect(loadFileOnce(c, 'changed', f, { config: cfg })).rejects.toMatchObject({
      code: 'file_changed',
    });
    expect(await count(c, 'changed')).toBe(1);
  });
});
