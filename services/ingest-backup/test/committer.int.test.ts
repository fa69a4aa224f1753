/**
 * The commit step when NATS fails over in the middle of it (seen in test-e2e/cluster as
 * duplicated ticks): a catalog commit that applied although its reply was lost, an outcome that
 * cannot be learnt at once, and a message of a flush still committing that comes back. Real
 * NATS, a real catalog and checkpoint; the catalog is wrapped only to lose a reply.
 */
import { Kvm } from '@nats-io/kv';
import { type BusMessage, connectBus, KvCas, SeqCheckpoint } from '@parquetry/bus';
import { type Catalog, type NewFile, openCatalog, type PartitionChange } from '@parquetry/lake';
import { Metrics, silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LakeCommitter } from '../src/committer.js';

const skip = await requireServers({ nats: true });

/** Delivered messages as the committer sees them: a sequence, and an ack it must call. */
function delivered(seqs: number[]) {
  const acked: number[] = [];
  const messages = seqs.map(
    (seq) => ({ seq, ack: async () => void acked.push(seq) }) as unknown as BusMessage,
  );
  return { messages, acked };
}

const file = (name: string): NewFile => ({
  path: `ticks/symbol=X/date=2025-09-03/${name}.parquet`,
  rows: 10,
  bytes: 100,
  sha256: '0'.repeat(64),
});
const change = (name: string): PartitionChange[] => [
  { partition: { symbol: 'X', date: '2025-09-03' }, add: [file(name)] },
];
const timeout = () => Object.assign(new Error('timeout'), { name: 'TimeoutError' });

describe.skipIf(skip)('LakeCommitter when NATS fails mid-commit', () => {
  let nats: NatsServerHandle;
  let close: () => Promise<void>;
  let catalog: Catalog;
  let make: (
    key: string,
    wrap?: Partial<Catalog>,
    instance?: string,
  ) => Promise<{ committer: LakeCommitter; cp: SeqCheckpoint }>;

  beforeAll(async () => {
    nats = await startNats();
    const bus = await connectBus({ url: nats.url, name: 'committer-test', logger: silentLogger() });
    close = () => bus.close();
    catalog = await openCatalog({ nc: bus.nc, writerId: 'committer-test' });
    const bucket = 'committer_test_checkpoints';
    const kv = await KvCas.open(bus.js, await new Kvm(bus.nc).create(bucket, { history: 1 }), bucket);
    make = async (key, wrap = {}, instance = 'i1') => {
      const cp = new SeqCheckpoint(kv, key, instance);
      // The real catalog, with some methods replaced (a lost reply, an unreachable catalog).
      const wrapped = Object.assign(Object.create(catalog) as Catalog, wrap);
      const committer = new LakeCommitter({
        catalog: wrapped,
        checkpoint: cp,
        js: bus.js,
        logger: silentLogger(),
        metrics: new Metrics('t', { defaults: false }),
        instance,
      });
      await cp.start(committer.pendingApplied);
      return { committer, cp };
    };
  });
  afterAll(async () => {
    await close?.();
    await nats?.stop();
  });

  it('runs a commit whose reply was lost again under its id: committed once, acked', async () => {
    let calls = 0;
    const { committer } = await make('lost-reply', {
      commit: async (input) => {
        const r = await catalog.commit(input);
        if (calls++ === 0) throw timeout();
        return r;
      },
    });
    const { messages, acked } = delivered([1, 2, 3]);
    await committer.commit('ticks', 'c-lost-reply', change('lost-reply'), messages);
    expect(acked).toEqual([1, 2, 3]);
    expect([1, 2, 3].map((s) => committer.stateOf(s))).toEqual(['committed', 'committed', 'committed']);
    const m = await catalog.partition('ticks', { symbol: 'X', date: '2025-09-03' });
    expect(m.files.filter((f) => f.path.endsWith('/lost-reply.parquet'))).toHaveLength(1);
  });

  it('keeps a flush of unknown outcome pending; a message of it that comes back is settled, not rewritten', async () => {
    let catalogDown = true;
    const { committer } = await make('unknown', {
      commit: async (input) => {
        await catalog.commit(input);
        throw timeout();
      },
      isApplied: (...args: Parameters<Catalog['isApplied']>) =>
        catalogDown ? Promise.reject(timeout()) : catalog.isApplied(...args),
    });
    const { messages, acked } = delivered([10, 11]);
    await expect(committer.commit('ticks', 'c-unknown', change('unknown'), messages)).rejects.toThrow(
      /timeout/,
    );
    expect(acked).toEqual([]);
    expect(committer.stateOf(10)).toBe('pending');
    // Redelivered while the catalog still cannot answer: try again later, do not write it.
    expect(await committer.screen(messages[0]!, 'ticks')).toMatchObject({ kind: 'retry' });
    catalogDown = false;
    // Once it answers: the commit applied, so the message is a duplicate and is acked.
    expect(await committer.screen(messages[0]!, 'ticks')).toEqual({ kind: 'ack' });
    expect(committer.stateOf(11)).toBe('committed');
  });

  it('forgets a pending flush whose commit never applied, so its messages are written again', async () => {
    let catalogDown = true;
    const { committer } = await make('never', {
      commit: async () => {
        throw timeout();
      },
      isApplied: (...args: Parameters<Catalog['isApplied']>) =>
        catalogDown ? Promise.reject(timeout()) : catalog.isApplied(...args),
    });
    const { messages } = delivered([20]);
    await expect(committer.commit('ticks', 'c-never', change('never'), messages)).rejects.toThrow(/timeout/);
    catalogDown = false;
    expect(await committer.settle(20)).toBe('new');
    expect(committer.stateOf(20)).toBe('new');
  });

  it('asks a message of a flush still committing to come back later', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { committer } = await make('in-flight', {
      commit: async (input) => {
        await gate;
        return await catalog.commit(input);
      },
    });
    const { messages, acked } = delivered([30]);
    const running = committer.commit('ticks', 'c-in-flight', change('in-flight'), messages);
    while (committer.stateOf(30) !== 'pending') await new Promise((r) => setTimeout(r, 10));
    expect(await committer.settle(30)).toBe('in_flight');
    expect(await committer.screen(messages[0]!, 'ticks')).toMatchObject({ kind: 'retry', delayMs: 2000 });
    release();
    await running;
    expect(acked).toEqual([30]);
    expect(await committer.settle(30)).toBe('committed');
  });

  it('drops a redelivery another instance committed before it died (its ack lost), once the batch holds a redelivery', async () => {
    const { committer: survivor } = await make('two-instances', {}, 'i1');
    const { committer: died } = await make('two-instances', {}, 'i2');
    const { messages } = delivered([40, 41]);
    await died.commit('ticks', 'c-died', change('died'), messages);
    // The survivor's copy of the checkpoint predates that commit.
    expect(survivor.stateOf(40)).toBe('new');
    const first = { seq: 40, redelivered: false } as BusMessage;
    expect(await survivor.refreshFor([first])).toBe(true);
    expect(survivor.stateOf(40)).toBe('new'); // a first delivery costs no read
    const again = { seq: 40, redelivered: true } as BusMessage;
    expect(await survivor.refreshFor([first, again])).toBe(true);
    expect(survivor.stateOf(40)).toBe('committed');
    expect(await survivor.screen(again, 'ticks')).toEqual({ kind: 'ack' });
  });
});
