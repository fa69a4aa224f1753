import { Kvm } from '@nats-io/kv';
import { type BusMessage, connectBus, KvCas, type Outcome, SeqCheckpoint } from '@parquetry/bus';
import { type Catalog, type DuckDB, FsObjectStore, openCatalog, openDuckDB } from '@parquetry/lake';
import { Metrics, silentLogger } from '@parquetry/service';
import { type NatsServerHandle, requireServers, startNats, type TempDir, tempDir } from '@parquetry/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LakeCommitter } from '../src/committer.js';
import { TicksSink } from '../src/ticks-sink.js';

const skip = await requireServers({ nats: true });

/** A delivered tick message: what the consumer loop hands the sink, with its acks and naks recorded. */
function tickMessage(seq: number, redelivered: boolean, log: string[]): BusMessage {
  const tick = { symbol: 'BTCUSDT', ts: Date.UTC(2025, 8, 3, 10, 0, 0) + seq, price: 100 + seq, size: 1 };
  return {
    seq,
    subject: 'market.ticks.BTCUSDT',
    redelivered,
    deliveryCount: redelivered ? 2 : 1,
    json: () => tick,
    ack: async () => void log.push(`ack ${seq}`),
    fail: async () => void log.push(`fail ${seq}`),
  } as unknown as BusMessage;
}

describe.skipIf(skip)('TicksSink: a message redelivered while this instance still holds it', () => {
  let nats: NatsServerHandle;
  let lake: TempDir;
  let duck: DuckDB;
  let catalog: Catalog;
  let sink: TicksSink;
  let close: () => Promise<void>;

  beforeAll(async () => {
    nats = await startNats();
    lake = tempDir('pq-ticks-sink-');
    const bus = await connectBus({ url: nats.url, name: 'ticks-sink-test', logger: silentLogger() });
    close = () => bus.close();
    catalog = await openCatalog({ nc: bus.nc, writerId: 'ticks-sink-test' });
    const bucket = 'ticks_sink_checkpoints';
    const cas = await KvCas.open(bus.js, await new Kvm(bus.nc).create(bucket, { history: 1 }), bucket);
    const checkpoint = new SeqCheckpoint(cas, 'TICKS_test', 'i1');
    const committer = new LakeCommitter({
      catalog,
      checkpoint,
      js: bus.js,
      logger: silentLogger(),
      metrics: new Metrics('t', { defaults: false }),
      instance: 'i1',
    });
    await checkpoint.start(committer.pendingApplied);
    duck = await openDuckDB({ threads: 1 });
    sink = new TicksSink({
      store: new FsObjectStore(lake.path),
      conn: duck.conn,
      committer,
      logger: silentLogger(),
      metrics: new Metrics('t', { defaults: false }),
      // Nothing is due by itself: the test decides when to flush.
      policy: { maxAgeMs: 3_600_000, maxGroupBytes: 1 << 30, maxTotalBytes: 1 << 30 },
      compression: 'snappy',
      maxFileBytes: 64 * 1024 * 1024,
    });
  });
  afterAll(async () => {
    duck?.close();
    await close?.();
    await nats?.stop();
    lake?.remove();
  });

  it('is asked to come back later, never written twice, and acked as a duplicate once committed', async () => {
    const log: string[] = [];
    const retry = (o: Outcome | undefined) => o?.kind;
    // First delivery: held for the flush.
    expect(await sink.handle([tickMessage(1, false, log), tickMessage(2, false, log)])).toEqual([
      undefined,
      undefined,
    ]);
    // Its ack_wait ran out while it waited: the copy must not join the buffer.
    expect((await sink.handle([tickMessage(1, true, log)])).map(retry)).toEqual(['retry']);
    await sink.flushAll();
    expect(log).toEqual(['ack 1', 'ack 2']);
    // Once the flush is committed, another copy is a duplicate: acked, not written.
    expect((await sink.handle([tickMessage(1, true, log)])).map(retry)).toEqual(['ack']);
    const files = await catalog.liveFiles('ticks');
    const paths = files.map((f) => `'${lake.path}/${f.path}'`).join(', ');
    const reader = await duck.connect();
    const rows = (await reader.runAndReadAll(`SELECT stream_seq FROM read_parquet([${paths}]) ORDER BY 1`))
      .getRows()
      .map((r) => Number(r[0]));
    expect(rows).toEqual([1, 2]);
  });
});
