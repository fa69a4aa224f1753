import type { JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  type Bus,
  ensureStreamReplicas,
  ensureStreams,
  KvCas,
  STREAM_DEFS,
  STREAM_NAMES,
} from '@parquetry/bus';
import { type Catalog, type DuckDB, type ObjectStore, openCatalog } from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';
import type { CandleConfig } from './config.js';
import { CandleLake } from './lake/candle-lake.js';
import { BusOutputs } from './outputs.js';
import { PartitionWorker, type WorkerConfig } from './partition-worker.js';
import { ownedPartitions, partitionName } from './partitioning.js';
import { CandlePipeline, type OwnedPartition } from './pipeline.js';
import { OwnershipLostError, PartitionOwnership } from './state/ownership.js';
import { TickSource } from './tick-source.js';

export interface CandleAggregatorDeps {
  config: CandleConfig;
  bus: Bus;
  store: ObjectStore;
  duck: DuckDB;
  logger: Logger;
  metrics: Metrics;
  clock?: () => number;
  /** Called when the service cannot go on (ownership lost, consumer failed); main exits. */
  onFatal?: (err: unknown) => void;
  /**
   * KV buckets of the lake catalog and of the partition state (defaults `lake_catalog`,
   * `candle_state`). Only tests and sandboxes change them, to run a second, independent
   * aggregator against the same stream.
   */
  catalogBucket?: string;
  stateBucket?: string;
}

export interface CandleAggregatorApp {
  catalog: Catalog;
  lake: CandleLake;
  /** Partitions this instance owns. */
  partitions: number[];
  /** Stop consuming, flush candles, persist state, release the partitions. */
  stop(): Promise<void>;
  ready(): boolean;
  /** Stream sequence handled last. */
  lastSeq(): number;
  stats(): {
    pendingCandles: number;
    pendingPublishes: number;
    lastSeq: number;
    partitions: ReturnType<PartitionWorker['stats']>[];
  };
}

export const STATE_BUCKET = 'candle_state';
const SERVICE = 'candle-aggregator';
/** Idle closes are evaluated at most this often in stream time. */
const CLOCK_STEP_MS = 500;
/** Hold the stream while this many publishes wait for their acks. */
const MAX_PENDING_PUBLISHES = 20_000;

/** Wires candle-aggregator: streams, catalog, partition ownership and state, the tick loop, periodic jobs. */
export async function createCandleAggregator(deps: CandleAggregatorDeps): Promise<CandleAggregatorApp> {
  const { config, bus, store, duck, logger, metrics } = deps;
  const clock = deps.clock ?? Date.now;
  await ensureStreams(bus.jsm, STREAM_DEFS, { replicas: config.STREAM_REPLICAS });
  const catalog = await openCatalog({
    nc: bus.nc,
    bucket: deps.catalogBucket,
    writerId: config.INSTANCE_ID,
    logger,
    metrics,
    replicas: config.STREAM_REPLICAS,
  });
  await catalog.recover(config.INSTANCE_ID);
  const stateBucket = deps.stateBucket ?? STATE_BUCKET;
  const kv = await new Kvm(bus.nc).create(stateBucket, {
    history: 1,
    description: 'candle-aggregator partition ownership and state',
    replicas: config.STREAM_REPLICAS ?? 1,
  });
  if (config.STREAM_REPLICAS)
    await ensureStreamReplicas(bus.jsm, `KV_${stateBucket}`, config.STREAM_REPLICAS);
  const stateKv = await KvCas.open(bus.js, kv, stateBucket);

  const workerConfig: WorkerConfig = {
    graceMs: config.CANDLE_GRACE_MS,
    latenessMs: config.CANDLE_LATENESS_MS,
    maxFutureMs: config.MAX_FUTURE_MS,
    idleCloseMs: config.IDLE_CLOSE_MS,
    clockStepMs: CLOCK_STEP_MS,
  };
  const P = config.CANDLE_PARTITIONS;
  const partitions = ownedPartitions(P, config.INSTANCE_INDEX, config.INSTANCE_COUNT);
  const owned: OwnedPartition[] = [];
  for (const p of partitions) {
    const ownership = new PartitionOwnership({
      kv: stateKv,
      store,
      name: partitionName(p, P),
      instanceId: config.INSTANCE_ID,
      ttlMs: config.OWNERSHIP_TTL_MS,
      logger,
      clock,
    });
    const record = await ownership.acquire();
    const state = await ownership.loadState();
    const worker = new PartitionWorker(p, P, workerConfig, state);
    const journal = record.journal.filter((j) => j.id > worker.journalId).sort((a, b) => a.id - b.id);
    owned.push({ worker, ownership, journal, savedSeq: worker.seq });
    logger.info(
      { partition: ownership.name, seq: worker.seq, journal: journal.length, outbox: worker.pendingCandles },
      'partition_acquired',
    );
  }

  const outputs = new BusOutputs(bus.nc, logger, metrics);
  const lake = new CandleLake({
    catalog,
    store,
    conn: await duck.connect(),
    js: bus.js,
    logger,
    metrics,
    compression: config.PARQUET_COMPRESSION,
    maxFiles: config.COMPACT_MAX_FILES,
    writerId: config.INSTANCE_ID,
  });
  const pipeline = new CandlePipeline({
    partitions: P,
    owned,
    outputs,
    lake,
    logger,
    metrics,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
    clock,
  });

  // ---- the tick loop -------------------------------------------------------------------
  let stopping = false;
  let failed: unknown;
  let lastSeq = pipeline.startSeq() - 1;
  let lastMessageAt = clock();
  let caughtUp = true;
  let sinceCheck = 0;
  const consumed = metrics.counter(
    'parquetry_messages_consumed_total',
    'Messages received by the consumer loop',
    ['stream'],
  );
  let consumedSinceCount = 0;

  const overloaded = () =>
    outputs.pending > MAX_PENDING_PUBLISHES || pipeline.pendingCandles > 4 * config.LAKE_FLUSH_CANDLES;
  let relieving = false;
  /** Back-pressure: hold the stream until publishes and the lake catch up. */
  const relieve = () => {
    if (relieving) return;
    relieving = true;
    source.pause();
    const check = () => {
      if (stopping) return;
      if (pipeline.flushDue(clock(), config.LAKE_FLUSH_MS, config.LAKE_FLUSH_CANDLES)) void pipeline.flush();
      if (overloaded()) {
        setTimeout(check, 5);
        return;
      }
      relieving = false;
      source.resume();
    };
    setTimeout(check, 5);
  };

  const onMessage = (m: JsMsg) => {
    if (stopping) return;
    const info = m.info;
    pipeline.handle(m, info.streamSequence, Math.floor(info.timestampNanos / 1e6));
    lastSeq = info.streamSequence;
    caughtUp = info.pending === 0;
    consumedSinceCount++;
    if (caughtUp || (++sinceCheck & 1023) === 0) {
      lastMessageAt = clock();
      consumed.inc({ stream: STREAM_NAMES.ticks }, consumedSinceCount);
      consumedSinceCount = 0;
      if (overloaded()) relieve();
    }
  };

  const source = new TickSource({
    js: bus.js,
    startSeq: pipeline.startSeq(),
    batch: config.FETCH_BATCH,
    onMessage,
    onError: (err) => fatal(err),
    logger,
  });

  const fatal = (err: unknown) => {
    if (failed !== undefined) return;
    failed = err;
    logger.error(
      { err },
      err instanceof OwnershipLostError ? 'ownership lost, stopping' : 'stopping after failure',
    );
    stopping = true;
    void source.stop();
    deps.onFatal?.(err);
  };

  await source.start();
  logger.info(
    { partitions: partitions.map((p) => partitionName(p, P)), startSeq: pipeline.startSeq() },
    'started',
  );

  // ---- periodic jobs -------------------------------------------------------------------
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, job: () => Promise<void>, what: string) => {
    let running = false;
    const t = setInterval(() => {
      if (running || stopping) return;
      running = true;
      job()
        .catch((err: unknown) => {
          if (err instanceof OwnershipLostError) fatal(err);
          else logger.warn({ err, job: what }, 'periodic_job_failed');
        })
        .finally(() => {
          running = false;
        });
    }, ms);
    timers.push(t);
  };
  /** Runs `job` with the stream held: no message is handled until it is done. */
  const held = async (job: () => Promise<void>) => {
    source.pause();
    try {
      await job();
    } finally {
      source.resume();
    }
  };

  const flushTick = Math.max(10, Math.min(250, Math.floor(config.LAKE_FLUSH_MS / 4)));
  every(
    flushTick,
    async () => {
      if (pipeline.flushDue(clock(), config.LAKE_FLUSH_MS, config.LAKE_FLUSH_CANDLES)) await pipeline.flush();
    },
    'flush',
  );
  every(config.SNAPSHOT_INTERVAL_MS, () => pipeline.checkpoint(), 'checkpoint');
  every(
    Math.max(100, Math.floor(config.OWNERSHIP_TTL_MS / 3)),
    async () => {
      for (const o of owned) await o.ownership.renew();
    },
    'renew',
  );
  if (config.QUIET_CLOSE_MS > 0) {
    every(
      Math.max(50, Math.min(1000, Math.floor(config.QUIET_CLOSE_MS / 4))),
      async () => {
        const now = clock();
        if (!caughtUp || now - lastMessageAt < config.QUIET_CLOSE_MS) return;
        await held(() => pipeline.quietStep(now));
      },
      'quiet',
    );
  }

  let stopPromise: Promise<void> | undefined;
  const stop = async () => {
    stopping = true;
    for (const t of timers) clearInterval(t);
    await source.stop();
    if (failed === undefined) {
      await pipeline.flush();
      if (pipeline.pendingCandles > 0) await pipeline.flush();
      await pipeline.checkpoint(true);
      await outputs.settled();
      outputs.stop();
      for (const o of owned)
        await o.ownership.release().catch((err: unknown) => logger.warn({ err }, 'partition_release_failed'));
    } else {
      outputs.stop();
    }
    logger.info({ lastSeq }, 'stopped');
  };

  return {
    catalog,
    lake,
    partitions,
    stop: () => (stopPromise ??= stop()),
    ready: () => !stopping && failed === undefined && bus.isConnected(),
    lastSeq: () => lastSeq,
    stats: () => ({
      pendingCandles: pipeline.pendingCandles,
      pendingPublishes: outputs.pending,
      lastSeq,
      partitions: owned.map((o) => o.worker.stats()),
    }),
  };
}

export { SERVICE };
