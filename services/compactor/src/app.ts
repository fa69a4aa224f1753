import {
  type BatchHandler,
  type Bus,
  type BusMessage,
  type ConsumerLoop,
  ensureConsumer,
  ensureStreams,
  type Outcome,
  Outcomes,
  outcomeForError,
  registerDeadLetterGauge,
  runConsumer,
  STREAM_DEFS,
  STREAM_NAMES,
} from '@parquetry/bus';
import { getDataset, type ObjectStore, partitionPath } from '@parquetry/lake';
import {
  InvalidInputError,
  isRetryable,
  type Logger,
  type Metrics,
  ParquetryError,
} from '@parquetry/service';
import type { CompactorConfig } from './config.js';
import { needsCompaction } from './domain/compact-plan.js';
import { resultSubject } from './domain/names.js';
import { equalityFilters } from './domain/partition-filter.js';
import { crashAt } from './engine/crash.js';
import { type OpEnvironment, openOpEnvironment } from './engine/open.js';
import { type JobResult, runOperation, runRewrite, runVacuum } from './engine/run.js';
import { type CompactorOp, isCompactorOp } from './jobs.js';

export const SERVICE = 'compactor';
export const OPS_CONSUMER = 'compactor';

export interface CompactorDeps {
  config: CompactorConfig;
  bus: Bus;
  store: ObjectStore;
  logger: Logger;
  metrics: Metrics;
  clock?: () => Date;
}

export interface PolicyRun {
  compacted: { dataset: string; partition: string; files_removed: number; files_added: number }[];
  vacuumed?: { expired: number; orphans: number };
}

export interface Compactor {
  env: OpEnvironment;
  /** Runs one op now, serialized with the queue and the policy (one DuckDB job at a time). */
  run(op: CompactorOp, job: unknown): Promise<JobResult>;
  /** One pass of the compaction policy (also run on its schedule when POLICY_ENABLED). */
  runPolicy(): Promise<PolicyRun>;
  ready(): boolean;
  stop(): Promise<void>;
}

/** What a job that failed for good reports on its result subject. */
export interface FailedJobResult {
  op: string;
  op_id: string;
  status: 'failed';
  error: { code: string; message: string; details?: unknown };
}

/**
 * Wires the compactor: streams, catalog recovery of this instance's intents, the `lake.ops.>`
 * work-queue consumer (one instance gets each job; the job's result goes to
 * `lake.results.<op>.<op-id>` and the log), and the compaction policy on its schedule.
 * Operations run one at a time per instance: they share one DuckDB with one memory budget.
 */
export async function createCompactor(deps: CompactorDeps): Promise<Compactor> {
  const { config, bus, store, logger, metrics } = deps;
  await ensureStreams(bus.jsm, STREAM_DEFS, { replicas: config.STREAM_REPLICAS });
  registerDeadLetterGauge(metrics, bus.jsm);
  const env = await openOpEnvironment({
    nc: bus.nc,
    js: bus.js,
    store,
    logger,
    metrics,
    writerId: config.INSTANCE_ID,
    replicas: config.STREAM_REPLICAS,
    workDir: config.WORK_DIR,
    memoryLimit: config.DUCKDB_MEMORY_LIMIT,
    threads: config.DUCKDB_THREADS,
    targetFileSizeMb: config.TARGET_FILE_SIZE_MB,
    vacuumGraceMinutes: config.VACUUM_GRACE_MINUTES,
    allowLocalFiles: false,
    crash: crashAt(config.COMPACTOR_CRASH_AT),
    clock: deps.clock,
  });
  // Logs `catalog_intents_recovered` itself when there was something to finish.
  await env.catalog.recover(config.INSTANCE_ID);

  const opsTotal = metrics.counter('parquetry_lake_ops_total', 'Lake operations run, by op and outcome', [
    'op',
    'outcome',
  ]);
  const opSeconds = metrics.histogram('parquetry_lake_op_seconds', 'Duration of lake operations', ['op']);

  let stopped = false;
  // One operation at a time: a promise chain.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };
  const run = (op: CompactorOp, job: unknown, heartbeat?: () => void) =>
    serial(async () => {
      const end = opSeconds.startTimer({ op });
      try {
        const result = await runOperation({ ...env.ctx, ...(heartbeat ? { heartbeat } : {}) }, op, job);
        opsTotal.inc({ op, outcome: result.status });
        return result;
      } catch (err) {
        opsTotal.inc({ op, outcome: 'failed' });
        throw err;
      } finally {
        end();
      }
    });

  const publishResult = (op: string, opId: string, body: unknown) => {
    try {
      bus.nc.publish(resultSubject(op, opId), JSON.stringify(body));
    } catch (err) {
      logger.warn({ err, op, op_id: opId }, 'result_publish_failed');
    }
  };

  const handle = async (msg: BusMessage): Promise<Outcome> => {
    const op = msg.subject.split('.')[2] ?? '';
    // A job without an op id gets one from its place in the stream, the same on every redelivery,
    // so a job redelivered after a crash finds its own commit instead of applying twice.
    const fallbackId = `q${msg.seq}-${msg.publishedAt.getTime().toString(36)}`;
    let opId = fallbackId;
    try {
      if (!isCompactorOp(op) || msg.subject.split('.').length !== 3) {
        throw new InvalidInputError(`unknown lake operation subject ${msg.subject}`, { code: 'unknown_op' });
      }
      const body = msg.json<Record<string, unknown>>();
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new InvalidInputError('a job is a JSON object', { code: 'invalid_job' });
      }
      if (typeof body.op_id === 'string') opId = body.op_id;
      const result = await run(op, { ...body, op_id: opId }, () => msg.inProgress());
      logger.info(
        {
          op,
          op_id: opId,
          status: result.status,
          ...('dataset' in result ? { dataset: result.dataset } : {}),
          ...('commit_id' in result && result.commit_id ? { commit_id: result.commit_id } : {}),
          ...('totals' in result ? { totals: result.totals } : {}),
          duration_ms: result.duration_ms,
        },
        'operation',
      );
      publishResult(op, opId, result);
      return Outcomes.ack();
    } catch (err) {
      const outcome = outcomeForError(err);
      // Retryable failures are delivered again; a final failure is reported (and dead-lettered).
      if (!isRetryable(err) || msg.deliveryCount >= config.MAX_DELIVER) {
        const e =
          err instanceof ParquetryError
            ? {
                code: err.code,
                message: err.message,
                ...(err.details !== undefined ? { details: err.details } : {}),
              }
            : { code: 'internal', message: err instanceof Error ? err.message : String(err) };
        const failed: FailedJobResult = { op, op_id: opId, status: 'failed', error: e };
        if (isCompactorOp(op)) publishResult(op, opId, failed);
        logger.warn({ op, op_id: opId, err }, 'operation_failed');
      }
      return outcome;
    }
  };

  const handler: BatchHandler = async (batch) => {
    const out: Outcome[] = [];
    for (const msg of batch) out.push(await handle(msg));
    return out;
  };

  await ensureConsumer(bus.jsm, STREAM_NAMES.lakeOps, OPS_CONSUMER, {
    ackWaitMs: config.JOB_ACK_WAIT_MS,
    maxAckPending: 64,
    description: 'compactor: lake operations (work queue)',
  });
  const loop: ConsumerLoop = await runConsumer({
    js: bus.js,
    nc: bus.nc,
    stream: STREAM_NAMES.lakeOps,
    durable: OPS_CONSUMER,
    handler,
    dlqService: SERVICE,
    logger,
    metrics,
    batchSize: 1,
    maxInFlight: 1,
    maxWaitMs: 2000,
    maxDeliver: config.MAX_DELIVER,
    maxMessageBytes: 1024 * 1024,
    inProgressEveryMs: Math.max(500, Math.floor(config.JOB_ACK_WAIT_MS / 3)),
    stopTimeoutMs: 60_000,
  });

  /** Compacts each partition holding more than POLICY_MAX_SMALL_FILES small files, one commit each. */
  const runPolicy = async (): Promise<PolicyRun> => {
    const out: PolicyRun = { compacted: [] };
    const smallBytes = config.POLICY_SMALL_FILE_MB * 1024 * 1024;
    for (const dataset of config.POLICY_DATASETS) {
      const def = getDataset(dataset);
      const manifests = await env.catalog.partitions(def.name);
      for (const m of manifests) {
        if (stopped) return out;
        if (!needsCompaction(m.files, smallBytes, config.POLICY_MAX_SMALL_FILES)) continue;
        // Appends by ingest never conflict with this commit; a concurrent compaction of the same
        // files does, and runRewrite re-plans from a fresh snapshot.
        const result = await serial(() =>
          runRewrite(env.ctx, 'compact', {
            dataset: def.name,
            partitions: equalityFilters(m.partition),
            max_file_size_mb: config.POLICY_SMALL_FILE_MB,
            min_file_count: 2,
          }),
        );
        if (result.status === 'committed') {
          const p = result.partitions[0];
          out.compacted.push({
            dataset: def.name,
            partition: partitionPath(def.partitionColumns, m.partition),
            files_removed: p?.files_removed ?? 0,
            files_added: p?.files_added ?? 0,
          });
          opsTotal.inc({ op: 'compact', outcome: 'policy' });
        }
      }
    }
    if (config.POLICY_VACUUM) {
      const v = await serial(() => runVacuum(env.ctx, {}));
      out.vacuumed = { expired: v.expired.length, orphans: v.orphans.length };
    }
    if (out.compacted.length > 0) logger.info({ compacted: out.compacted, vacuumed: out.vacuumed }, 'policy');
    return out;
  };

  let policyRunning: Promise<unknown> = Promise.resolve();
  const timer = config.POLICY_ENABLED
    ? setInterval(() => {
        policyRunning = runPolicy().catch((err) => logger.warn({ err }, 'policy_run_failed'));
      }, config.POLICY_INTERVAL_MS)
    : undefined;

  return {
    env,
    run: (op, job) => run(op, job),
    runPolicy,
    ready: () => !stopped && bus.isConnected() && loop.isRunning(),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      await loop.stop();
      await policyRunning;
      await chain.catch(() => {});
      env.close();
    },
  };
}
