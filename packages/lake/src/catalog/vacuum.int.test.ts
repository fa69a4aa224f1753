import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FsObjectStore } from '../store/fs.js';
import { openCatalog } from './catalog.js';
import type { NewFile } from './types.js';
import { vacuum } from './vacuum.js';

const HOUR = 3_600_000;
const NOW = Date.now();
const DIR = 'ticks/symbol=ES/date=2025-09-03';
const P = { symbol: 'ES', date: '2025-09-03' };

let server: Awaited<ReturnType<typeof startNats>>;
let nc: NatsConnection;
const dir = tempDir('pq-vacuum-');

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc.close();
  await server.stop();
  dir.remove();
});

it('deletes replaced files after the grace period and old orphans, nothing young, nothing metadata', async () => {
  const store = new FsObjectStore(dir.path);
  let clock = new Date(NOW - 3 * HOUR);
  const catalog = await openCatalog({ nc, clock: () => clock });
  const crashed = await openCatalog({
    nc,
    writerId: 'crashed',
    onStep: (s) => {
      if (s.phase === 'reserve') throw new Error('simulated kill -9');
    },
  });

  const put = async (name: string, ageMs: number): Promise<NewFile> => {
    const key = `${DIR}/${name}`;
    const body = `bytes of ${name}`;
    await store.put(key, body);
    const t = new Date(NOW - ageMs);
    await utimes(join(store.root, ...key.split('/')), t, t);
    return { path: key, rows: 1, bytes: body.length, sha256: 'x' };
  };
  const [a, b, ab] = await Promise.all([
    put('a.parquet', 3 * HOUR),
    put('b.parquet', 3 * HOUR),
    put('ab.parquet', 3 * HOUR),
  ]);
  await catalog.commit({ dataset: 'ticks', commitId: 'w1', changes: [{ partition: P, add: [a, b] }] });
  await catalog.commit({
    dataset: 'ticks',
    commitId: 'compact-old',
    changes: [{ partition: P, add: [ab], remove: [a.path, b.path] }],
  });

  clock = new Date(NOW - 10 * 60_000);
  const [c, c2] = await Promise.all([put('c.parquet', 2 * HOUR), put('c2.parquet', 2 * HOUR)]);
  await catalog.commit({ dataset: 'ticks', commitId: 'w2', changes: [{ partition: P, add: [c] }] });
  await catalog.commit({
    dataset: 'ticks',
    commitId: 'compact-young',
    changes: [{ partition: P, add: [c2], remove: [c.path] }],
  });

  const orphan = await put('orphan.parquet', 2 * HOUR);
  await put('young.parquet', 60_000); // a write whose commit is still to come
  await put('_metadata_20250903.json', 2 * HOUR);
  await put('_staging.parquet', 2 * HOUR);
  // A commit in flight (its writer died before reserving anything): its files are not orphans.
  const inFlight = await put('inflight.parquet', 2 * HOUR);
  const nextDay = {
    path: 'ticks/symbol=ES/date=2025-09-04/inflight.parquet',
    rows: 1,
    bytes: 10,
    sha256: 'x',
  };
  await store.put(nextDay.path, 'x');
  await expect(
    crashed.commit({
      dataset: 'ticks',
      commitId: 'in-flight',
      changes: [
        { partition: P, add: [inFlight] },
        { partition: { symbol: 'ES', date: '2025-09-04' }, add: [nextDay] },
      ],
    }),
  ).rejects.toThrow('simulated kill -9');

  const opts = { catalog, store, dataset: 'ticks', graceMs: HOUR, now: new Date(NOW) };
  const planned = await vacuum({ ...opts, dryRun: true });
  expect(planned).toEqual({
    dryRun: true,
    expired: [a.path, b.path],
    orphans: [orphan.path],
    bytes: a.bytes + b.bytes + orphan.bytes,
  });
  expect(await store.head(a.path)).toBeDefined();

  const done = await vacuum(opts);
  expect(done).toEqual({ ...planned, dryRun: false });
  for (const key of [a.path, b.path, orphan.path]) expect(await store.head(key)).toBeUndefined();
  const kept = ['ab', 'c', 'c2', 'young', 'inflight'].map((n) => `${DIR}/${n}.parquet`);
  for (const key of [...kept, `${DIR}/_metadata_20250903.json`, `${DIR}/_staging.parquet`]) {
    expect(await store.head(key)).toBeDefined();
  }
  const m = await catalog.partition('ticks', P);
  expect(m.removed.map((r) => r.path)).toEqual([c.path]);
  expect(m.files.map((f) => f.path).sort()).toEqual([ab.path, c2.path]);

  expect(await vacuum(opts)).toEqual({ dryRun: false, expired: [], orphans: [], bytes: 0 });
});
