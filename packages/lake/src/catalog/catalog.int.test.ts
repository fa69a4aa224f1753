import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ConflictError } from '@parquetry/service';
import { type NatsServerHandle, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PartitionValues, partitionPath } from '../partition.js';
import { type Catalog, type CatalogOptions, openCatalog } from './catalog.js';
import { manifestKey } from './keys.js';
import type { NewFile } from './types.js';

let server: NatsServerHandle;
const connections: NatsConnection[] = [];
let bucketSeq = 0;

beforeAll(async () => {
  server = await startNats();
});
afterAll(async () => {
  for (const nc of connections) await nc.close();
  await server.stop();
});

async function open(bucket: string, opts: Partial<CatalogOptions> = {}): Promise<Catalog> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  return await openCatalog({ nc, bucket, ...opts });
}
const newBucket = () => `cat_test_${++bucketSeq}`;

const day = (date: string): PartitionValues => ({ symbol: 'ES', date });
const file = (date: string, name: string, rows = 10): NewFile => ({
  path: `ticks/symbol=ES/date=${date}/${name}.parquet`,
  rows,
  bytes: rows * 100,
  sha256: 'f'.repeat(64),
});
const paths = (files: { path: string }[]) => files.map((f) => f.path).sort();

describe('catalog commits', () => {
  it('commits files and reads them back, per partition and across partitions', async () => {
    const cat = await open(newBucket());
    const r = await cat.commit({
      dataset: 'ticks',
      commitId: 'c1',
      changes: [
        {
          partition: day('2025-09-03'),
          add: [file('2025-09-03', 'a'), file('2025-09-03', 'b')],
          sources: ['seq:1-10'],
        },
      ],
    });
    expect(r).toEqual({ commitId: 'c1', partitions: { 'symbol=ES/date=2025-09-03': 'applied' } });
    await cat.commit({
      dataset: 'ticks',
      commitId: 'c2',
      changes: [{ partition: day('2025-09-04'), add: [file('2025-09-04', 'c')] }],
    });

    const m = await cat.partition('ticks', day('2025-09-03'));
    expect(m.revision).toBeGreaterThan(0);
    expect(m.partition).toEqual(day('2025-09-03'));
    expect(m.files[0]).toMatchObject({ commitId: 'c1', rows: 10, bytes: 1000 });
    expect(paths(await cat.liveFiles('ticks'))).toEqual(
      paths([file('2025-09-03', 'a'), file('2025-09-03', 'b'), file('2025-09-04', 'c')]),
    );
    expect(paths(await cat.liveFiles('ticks', { date: '2025-09-04' }))).toEqual([
      file('2025-09-04', 'c').path,
    ]);
    expect((await cat.partitions('ticks')).map((p) => p.partition.date)).toEqual([
      '2025-09-03',
      '2025-09-04',
    ]);
    expect(await cat.liveFiles('products')).toEqual([]);
    const absent = await cat.partition('ticks', day('2030-01-01'));
    expect(absent).toMatchObject({ revision: 0, files: [] });
    await expect(cat.liveFiles('ticks', { price: '1' })).rejects.toThrow(/cannot filter on price/);
  });

  it('lists the same keys from the stream subjects as KV listing does', async () => {
    const cat = await open(newBucket());
    for (const date of ['2025-09-03', '2025-09-04', '2025-09-05'])
      await cat.commit({
        dataset: 'ticks',
        commitId: `k-${date}`,
        changes: [{ partition: day(date), add: [file(date, 'a')] }],
      });
    const internals = cat as unknown as {
      kv: { keys(filter: string): Promise<AsyncIterable<string>> };
      streamOps: { subjectKeys(filter: string): Promise<string[]> };
    };
    const viaKv: string[] = [];
    for await (const k of await internals.kv.keys('m.ticks.>')) viaKv.push(k);
    expect(viaKv).toHaveLength(3);
    expect((await internals.streamOps.subjectKeys('m.ticks.>')).sort()).toEqual(viaKv.sort());
    expect(await internals.streamOps.subjectKeys('m.products.>')).toEqual([]);
  });

  it('treats a retry of the same commit id as already applied and adds nothing', async () => {
    const cat = await open(newBucket());
    const commit = {
      dataset: 'ticks',
      commitId: 'retry-1',
      changes: [{ partition: day('2025-09-03'), add: [file('2025-09-03', 'a')] }],
    };
    await cat.commit(commit);
    const again = await cat.commit(commit);
    expect(again.partitions).toEqual({ 'symbol=ES/date=2025-09-03': 'already' });
    const m = await cat.partition('ticks', day('2025-09-03'));
    expect(m.files).toHaveLength(1);
    expect(m.commits).toEqual(['retry-1']);
    expect(await cat.isApplied('ticks', day('2025-09-03'), 'retry-1')).toBe(true);
    expect(await cat.isApplied('ticks', day('2025-09-03'), 'other')).toBe(false);
  });

  it('keeps every file when two writers on two connections append to one partition at once', async () => {
    const bucket = newBucket();
    const [a, b] = await Promise.all([open(bucket, { writerId: 'a' }), open(bucket, { writerId: 'b' })]);
    const appends = (cat: Catalog, w: string) =>
      Array.from({ length: 50 }, (_, i) =>
        cat.commit({
          dataset: 'ticks',
          commitId: `${w}-${i}`,
          changes: [
            { partition: day('2025-09-03'), add: [file('2025-09-03', `${w}-${i}`)], sources: [`${w}:${i}`] },
          ],
        }),
      );
    const results = await Promise.all([...appends(a, 'a'), ...appends(b, 'b')]);
    expect(results.every((r) => Object.values(r.partitions)[0] === 'applied')).toBe(true);
    const m = await a.partition('ticks', day('2025-09-03'));
    expect(m.files).toHaveLength(100);
    expect(new Set(m.files.map((f) => f.path)).size).toBe(100);
    expect(m.commits).toHaveLength(100);
    expect(m.sources).toHaveLength(100);
  });

  it('replaces files, and refuses to remove a file that was already replaced', async () => {
    const cat = await open(newBucket());
    const p = day('2025-09-03');
    await cat.commit({
      dataset: 'ticks',
      commitId: 'w1',
      changes: [{ partition: p, add: [file('2025-09-03', 'a'), file('2025-09-03', 'b')] }],
    });
    const compact = (id: string, out: string) =>
      cat.commit({
        dataset: 'ticks',
        commitId: id,
        changes: [
          {
            partition: p,
            add: [file('2025-09-03', out, 20)],
            remove: [file('2025-09-03', 'a').path, file('2025-09-03', 'b').path],
          },
        ],
      });
    await compact('compact-1', 'ab');
    const err = await compact('compact-2', 'ab2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    const m = await cat.partition('ticks', p);
    expect(paths(m.files)).toEqual([file('2025-09-03', 'ab').path]);
    expect(paths(m.removed)).toEqual(paths([file('2025-09-03', 'a'), file('2025-09-03', 'b')]));
    // The loser's retry with its id is still refused, never half-applied.
    await expect(compact('compact-2', 'ab2')).rejects.toBeInstanceOf(ConflictError);
  });

  it('answers which source keys a partition already holds', async () => {
    const cat = await open(newBucket());
    const p = { retailer: 'falabella', date: '2025-09-03' };
    await cat.commit({
      dataset: 'products',
      commitId: 'p1',
      changes: [
        {
          partition: p,
          add: [
            {
              path: 'products/retailer=falabella/date=2025-09-03/phones_20250903_143022_ab12cd34.parquet',
              rows: 3,
              bytes: 10,
              sha256: 'x',
            },
          ],
          sources: ['batch-1', 'batch-2'],
        },
      ],
    });
    expect(await cat.hasSources('products', p, ['batch-0', 'batch-2', 'batch-1'])).toEqual([
      'batch-2',
      'batch-1',
    ]);
    expect(await cat.hasSources('products', { ...p, date: '2025-09-04' }, ['batch-1'])).toEqual([]);
  });
});

/**
 * A real JetStream client whose first reply to each manifest write is dropped after the server
 * applied the write: what a timeout or a connection loss at the wrong moment looks like.
 */
function losingReplies(js: JetStreamClient, lost: string[]): JetStreamClient {
  const seen = new Set<string>();
  return new Proxy(js, {
    get(target, prop) {
      if (prop === 'publish') {
        return async (subject: string, ...rest: unknown[]) => {
          const ack = await (target.publish as (...a: unknown[]) => Promise<unknown>)(subject, ...rest);
          if (subject.includes('.m.') && !seen.has(subject)) {
            seen.add(subject);
            lost.push(subject);
            throw Object.assign(new Error('reply lost'), { name: 'TimeoutError' });
          }
          return ack;
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('lost replies', () => {
  it('finds a write whose reply was lost applied on the re-read and never applies it twice', async () => {
    const bucket = newBucket();
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const lost: string[] = [];
    const cat = await openCatalog({ nc, js: losingReplies(jetstream(nc), lost), bucket, writerId: 'w' });
    const single = await cat.commit({
      dataset: 'ticks',
      commitId: 's1',
      changes: [{ partition: day('2025-09-03'), add: [file('2025-09-03', 's1')] }],
    });
    expect(single.partitions).toEqual({ 'symbol=ES/date=2025-09-03': 'already' });
    const multi = await cat.commit({
      dataset: 'ticks',
      commitId: 'm1',
      changes: ['2025-09-03', '2025-09-04'].map((d) => ({ partition: day(d), add: [file(d, 'm1')] })),
    });
    expect(Object.keys(multi.partitions)).toHaveLength(2);
    expect(lost).toHaveLength(2);
    const stored = await (await open(bucket)).storedPartitions('ticks');
    expect(stored.map((m) => [m.files.length, m.commits, m.pending.length]).sort()).toEqual([
      [1, ['m1'], 0],
      [2, ['s1', 'm1'], 0],
    ]);
  });
});

describe('multi-partition commits', () => {
  const spanning = (id: string, suffix = id) => ({
    dataset: 'ticks',
    commitId: id,
    changes: ['2025-09-03', '2025-09-04', '2025-09-05'].map((d) => ({
      partition: day(d),
      add: [file(d, `${suffix}-${d}`)],
      sources: [`${id}:${d}`],
    })),
  });

  it('rolls forward a commit whose writer died after applying one partition, exactly once', async () => {
    const bucket = newBucket();
    let applies = 0;
    const crashing = await open(bucket, {
      writerId: 'ingest-1',
      onStep: (s) => {
        if (s.phase === 'apply' && ++applies === 2) throw new Error('simulated kill -9');
      },
    });
    await expect(crashing.commit(spanning('m1'))).rejects.toThrow('simulated kill -9');

    const reader = await open(bucket);
    const applied = (await reader.partitions('ticks')).filter((m) => m.commits.includes('m1'));
    expect((await reader.storedPartitions('ticks')).filter((m) => m.commits.includes('m1'))).toHaveLength(1);
    // A reader already sees the whole commit (its reservations applied virtually), never a third of it.
    expect(applied).toHaveLength(3);
    expect(await reader.liveFiles('ticks')).toHaveLength(3);
    expect(await reader.intents('ingest-1')).toHaveLength(1);

    const restarted = await open(bucket, { writerId: 'ingest-1' });
    expect(await restarted.recover()).toEqual({ rolledForward: ['m1'], abandoned: [] });
    const stored = await reader.storedPartitions('ticks');
    expect(stored.map((m) => [m.files.length, m.commits, m.pending.length])).toEqual([
      [1, ['m1'], 0],
      [1, ['m1'], 0],
      [1, ['m1'], 0],
    ]);
    expect(await reader.intents()).toEqual([]);
    // Recovering again, or the caller retrying its commit, changes nothing.
    expect(await restarted.recover()).toEqual({ rolledForward: [], abandoned: [] });
    const retry = await restarted.commit(spanning('m1'));
    expect(Object.values(retry.partitions)).toEqual(['already', 'already', 'already']);
    expect(await reader.liveFiles('ticks')).toHaveLength(3);
  });

  it('settledPartitions: a few partitions as the snapshot shows them, a commit applied elsewhere included', async () => {
    const bucket = newBucket();
    let applies = 0;
    const crashing = await open(bucket, {
      writerId: 'ingest-1',
      onStep: (s) => {
        if (s.phase === 'apply' && ++applies === 2) throw new Error('simulated kill -9');
      },
    });
    await expect(crashing.commit(spanning('m3'))).rejects.toThrow('simulated kill -9');
    const reader = await open(bucket);
    const days = ['2025-09-03', '2025-09-04', '2025-09-05'];
    // Applied in one partition, reserved in two: each one read alone shows the whole commit.
    for (const d of days) {
      const [m] = await reader.settledPartitions('ticks', [day(d)]);
      expect(paths(m!.files)).toEqual([file(d, `m3-${d}`).path]);
    }
    const stored = await Promise.all(days.map((d) => reader.partition('ticks', day(d))));
    expect(stored.map((m) => m.files.length).sort()).toEqual([0, 0, 1]);
    // Same as partitions() for those, in the order asked, duplicates once, unknown ones left out.
    const asked = [day('2025-09-05'), day('2025-09-03'), day('2025-09-05'), day('2030-01-01')];
    const some = await reader.settledPartitions('ticks', asked);
    expect(some.map((m) => m.partition.date)).toEqual(['2025-09-05', '2025-09-03']);
    const all = await reader.partitions('ticks');
    for (const m of some) {
      expect(paths(m.files)).toEqual(paths(all.find((x) => x.partition.date === m.partition.date)!.files));
    }
  });

  it('hides a commit whose writer died while reserving, then completes it on recovery', async () => {
    const bucket = newBucket();
    let reserves = 0;
    const crashing = await open(bucket, {
      writerId: 'w',
      onStep: (s) => {
        if (s.phase === 'reserve' && ++reserves === 3) throw new Error('simulated kill -9');
      },
    });
    await expect(crashing.commit(spanning('m2'))).rejects.toThrow('simulated kill -9');
    const reader = await open(bucket);
    expect(await reader.liveFiles('ticks')).toEqual([]);
    expect(await (await open(bucket, { writerId: 'w' })).recover('w')).toEqual({
      rolledForward: ['m2'],
      abandoned: [],
    });
    expect(await reader.liveFiles('ticks')).toHaveLength(3);
  });

  it('abandons a commit whose reservation conflicts, releasing what it reserved', async () => {
    const bucket = newBucket();
    const cat = await open(bucket, { writerId: 'compactor' });
    await cat.commit(spanning('base', 'old'));
    const replaceAll = (id: string, removeFrom: string[]) => ({
      dataset: 'ticks',
      commitId: id,
      changes: removeFrom.map((d) => ({
        partition: day(d),
        add: [file(d, `${id}-${d}`)],
        remove: [file(d, `old-${d}`).path],
      })),
    });
    // Someone already replaced the file of the partition the commit reserves last (it goes in key order),
    // so the conflict comes after two reservations that must be released.
    const dates = ['2025-09-03', '2025-09-04', '2025-09-05'];
    const keyOf = (d: string) => manifestKey('ticks', partitionPath(['symbol', 'date'], day(d)));
    const last = [...dates].sort((x, y) => (keyOf(x) < keyOf(y) ? -1 : 1))[2]!;
    await cat.commit(replaceAll('single', [last]));
    const err = await cat.commit(replaceAll('multi', dates)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    const stored = await cat.storedPartitions('ticks');
    expect(stored.every((m) => m.pending.length === 0 && !m.commits.includes('multi'))).toBe(true);
    expect(await cat.intents()).toEqual([]);
    // The released files can be replaced by another commit.
    const others = dates.filter((d) => d !== last);
    await cat.commit(replaceAll('multi-2', others));
    expect(paths(await cat.liveFiles('ticks'))).toEqual(
      paths([...others.map((d) => file(d, `multi-2-${d}`)), file(last, `single-${last}`)]),
    );
  });
});
