import { Kvm } from '@nats-io/kv';
import {
  type BatchHandler,
  type Bus,
  type ConsumerLoop,
  ensureConsumer,
  ensureStreamReplicas,
  ensureStreams,
  KvCas,
  runConsumer,
  SeqCheckpoint,
  STREAM_DEFS,
  STREAM_NAMES,
} from '@parquetry/bus';
import {
  type Catalog,
  type DuckDB,
  LAKE_WRITE_TEMP_DIR,
  type ObjectStore,
  openCatalog,
  sweepSpills,
} from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';
import { LakeCommitter } from './committer.js';
import type { IngestConfig } from './config.js';
import type { FlushPolicy } from './domain/buffer.js';
import { ProductsSink } from './products-sink.js';
import { RetentionSchedule } from './retention-schedule.js';
import { TicksSink } from './ticks-sink.js';

export interface IngestBackupDeps {
  config: IngestConfig;
  bus: Bus;
  store: ObjectStore;
  duck: DuckDB;
  logger: Logger;
  metrics: Metrics;
  clock?: () => number;
}

export interface IngestBackup {
  catalog: Catalog;
  products: ProductsSink;
  ticks?: TicksSink;
  retention: RetentionSchedule;
  /** Stop fetching, flush what is buffered, ack it; resolves when done. */
  stop(): Promise<void>;
  ready(): boolean;
}

const SERVICE = 'ingest-backup';
const CHECKPOINT_BUCKET = 'ingest_checkpoints';
/** Messages held unacknowledged by the consumer (above what is pulled, for redeliveries). */
const MAX_ACK_PENDING = 50_000;
/** Messages pulled and not yet settled; buffered ones stay unsettled until their commit. */
const MAX_IN_FLIGHT = 40_000;

interface Sink {
  handle: BatchHandler;
  flushDue(): void;
  flushAll(): Promise<void>;
}

/** Wires ingest-backup: streams, consumers, catalog recovery, checkpoints, sinks and flush timers. */
export async function createIngestBackup(deps: IngestBackupDeps): Promise<IngestBackup> {
  const { config, bus, store, duck, logger, metrics } = deps;
  await ensureStreams(bus.jsm, STREAM_DEFS, { replicas: config.STREAM_REPLICAS });
  const catalog = await openCatalog({
    nc: bus.nc,
    writerId: config.INSTANCE_ID,
    logger,
    metrics,
    replicas: config.STREAM_REPLICAS,
  });
  // Logs `catalog_intents_recovered` itself when there was something to finish.
  await catalog.recover(config.INSTANCE_ID);
  const kv = await new Kvm(bus.nc).create(CHECKPOINT_BUCKET, {
    history: 1,
    replicas: config.STREAM_REPLICAS ?? 1,
  });
  if (config.STREAM_REPLICAS)
    await ensureStreamReplicas(bus.jsm, `KV_${CHECKPOINT_BUCKET}`, config.STREAM_REPLICAS);
  const checkpoints = await KvCas.open(bus.js, kv, CHECKPOINT_BUCKET);

  const policy: FlushPolicy = {
    maxAgeMs: config.FLUSH_MAX_AGE_MS,
    maxGroupBytes: config.FLUSH_GROUP_MB * 1024 * 1024,
    maxTotalBytes: config.BUFFER_MAX_MB * 1024 * 1024,
    // Half the pull window: a flush starts while the other half keeps arriving.
    maxTotalItems: MAX_IN_FLIGHT / 2,
  };
  const maxFileBytes = config.MAX_FILE_SIZE_MB * 1024 * 1024;
  const loops: ConsumerLoop[] = [];
  const timers: NodeJS.Timeout[] = [];

  const start = async (
    stream: string,
    durable: string,
    dataset: string,
    makeSink: (c: LakeCommitter) => Sink,
  ) => {
    const checkpoint = new SeqCheckpoint(checkpoints, durable, config.INSTANCE_ID);
    const committer = new LakeCommitter({
      catalog,
      checkpoint,
      js: bus.js,
      logger: logger.child({ dataset }),
      metrics,
      instance: config.INSTANCE_ID,
    });
    await checkpoint.start(committer.pendingApplied);
    const sink = makeSink(committer);
    // ack_wait outlives a flush; held messages are also touched (inProgress) while buffered.
    await ensureConsumer(bus.jsm, stream, durable, {
      ackWaitMs: config.ACK_WAIT_MS,
      maxAckPending: MAX_ACK_PENDING,
      description: `${SERVICE} → ${dataset}`,
    });
    loops.push(
      await runConsumer({
        js: bus.js,
        nc: bus.nc,
        stream,
        durable,
        handler: sink.handle,
        dlqService: SERVICE,
        logger: logger.child({ stream, consumer: durable }),
        metrics,
        batchSize: config.FETCH_BATCH,
        maxInFlight: MAX_IN_FLIGHT,
        // Buffered messages stay unsettled until their commit: a flush in progress plus a full
        // buffer behind it, then pulling waits (memory stays bounded when writes fall behind).
        maxInFlightBytes: 2 * config.BUFFER_MAX_MB * 1024 * 1024,
        maxDeliver: config.MAX_DELIVER,
        maxMessageBytes: config.MAX_MESSAGE_BYTES,
        inProgressEveryMs: Math.floor(config.ACK_WAIT_MS / 3),
        onStop: () => sink.flushAll(),
      }),
    );
    const tick = Math.max(5, Math.min(250, Math.floor(config.FLUSH_MAX_AGE_MS / 4)));
    timers.push(setInterval(() => sink.flushDue(), tick));
    return sink;
  };

  // Two product files written at once (see ProductsSink's `conns`).
  const productConns = [duck.conn, await duck.connect()];
  // Buffered product bodies wait on disk; a process killed mid-buffer leaves its spill behind.
  const swept = await sweepSpills(LAKE_WRITE_TEMP_DIR);
  if (swept > 0) logger.info({ dirs: swept }, 'spills_swept');
  const products = (await start(
    STREAM_NAMES.products,
    `${SERVICE}-products`,
    'products',
    (committer) =>
      new ProductsSink({
        catalog,
        store,
        conns: productConns,
        committer,
        logger,
        metrics,
        policy,
        compression: config.PARQUET_COMPRESSION,
        maxFileBytes,
        spillDir: LAKE_WRITE_TEMP_DIR,
        clock: deps.clock,
      }),
  )) as ProductsSink;

  let ticks: TicksSink | undefined;
  if (config.ARCHIVE_TICKS) {
    const ticksConn = await duck.connect();
    ticks = (await start(
      STREAM_NAMES.ticks,
      `${SERVICE}-ticks`,
      'ticks',
      (committer) =>
        new TicksSink({
          store,
          conn: ticksConn,
          committer,
          logger,
          metrics,
          policy,
          compression: config.PARQUET_COMPRESSION,
          maxFileBytes,
          clock: deps.clock,
        }),
    )) as TicksSink;
  }

  const retention = new RetentionSchedule({
    catalog,
    store,
    js: bus.js,
    logger: logger.child({ task: 'retention' }),
    metrics,
    datasets: config.ARCHIVE_TICKS ? ['products', 'ticks'] : ['products'],
    maxAgeDays: config.PARQUET_MAX_AGE_DAYS,
    intervalMs: config.RETENTION_INTERVAL_MS,
    clock: deps.clock,
  });
  retention.start();

  let stopped = false;
  return {
    catalog,
    products,
    ticks,
    retention,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      await retention.stop();
      await Promise.all(loops.map((l) => l.stop()));
    },
    ready: () => !stopped && bus.isConnected() && loops.every((l) => l.isRunning()),
  };
}
