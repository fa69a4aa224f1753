import { applyRetention, DATASETS, getDataset, type RetentionResult, vacuum } from '@parquetry/lake';
import { ConflictError } from '@parquetry/service';
import { attemptCommitId, commitPrefix, newNonce, newOpId } from '../domain/names.js';
import type { OpResult } from '../domain/report.js';
import { type CompactorOp, parseJob, type RewriteOp } from '../jobs.js';
import { planCompact } from '../ops/compact.js';
import { planRepartition } from '../ops/repartition.js';
import { planDelete, planUpdate } from '../ops/row-rewrite.js';
import { planUpsert } from '../ops/upsert.js';
import { alreadyCommittedResult, findCommitted } from './committed.js';
import type { OpContext } from './context.js';
import { dryRunResult, executePlan, type RewritePlan } from './execute.js';
import { StepTimings } from './timings.js';

/** Whole re-plans after a conflict with a concurrent writer before the op gives up (retryable). */
export const MAX_OP_ATTEMPTS = 8;

export interface VacuumOpResult {
  op: 'vacuum';
  op_id: string;
  status: 'dry_run' | 'done';
  dry_run: boolean;
  dataset?: string;
  grace_minutes: number;
  /** Replaced files past the grace period, deleted (or that would be). */
  expired: string[];
  /** Files no catalog entry knows, older than the grace period, deleted (or that would be). */
  orphans: string[];
  bytes: number;
  duration_ms: number;
}

export interface CleanupOpResult {
  op: 'cleanup';
  op_id: string;
  status: 'dry_run' | 'done';
  dry_run: boolean;
  days: number;
  datasets: RetentionResult[];
  /** Vacuum run afterwards (not in a dry run): files of dropped partitions past the grace. */
  vacuum?: Omit<VacuumOpResult, 'op' | 'op_id' | 'status' | 'dry_run' | 'duration_ms'>;
  duration_ms: number;
}

export type JobResult = OpResult | VacuumOpResult | CleanupOpResult;

function planFor(ctx: OpContext, op: RewriteOp, job: unknown, opId: string): Promise<RewritePlan> {
  switch (op) {
    case 'compact':
      return planCompact(ctx, parseJob('compact', job), opId);
    case 'delete':
      return planDelete(ctx, parseJob('delete', job), opId);
    case 'update':
      return planUpdate(ctx, parseJob('update', job), opId);
    case 'upsert':
      return planUpsert(ctx, parseJob('upsert', job), opId);
    case 'repartition':
      return planRepartition(ctx, parseJob('repartition', job), opId);
    default: {
      const never: never = op;
      throw new Error(`unknown op ${String(never)}`);
    }
  }
}

/**
 * Runs one rewrite operation: validate, plan from the catalog snapshot, then (unless a dry run)
 * backup → write → validate → one atomic commit. A conflict (a concurrent compaction replaced a
 * file we read) re-plans from a fresh snapshot; appends by ingest never conflict. An op id that
 * is already committed (a redelivered job, or a retry after a crash) reports that commit and
 * applies nothing.
 */
export async function runRewrite(ctx: OpContext, op: RewriteOp, raw: unknown): Promise<OpResult> {
  const started = Date.now();
  const job = parseJob(op, raw);
  const opId = job.op_id ?? newOpId(ctx.clock());
  if (!job.dry_run && job.op_id !== undefined) {
    const found = await findCommitted(ctx.catalog, job.dataset, commitPrefix(op, opId));
    if (found) return alreadyCommittedResult(op, opId, job.dataset, found, started);
  }
  for (let attempt = 1; ; attempt++) {
    const timings = new StepTimings();
    const plan = await planFor(ctx, op, job, opId);
    timings.mark('plan');
    try {
      if (job.dry_run) return dryRunResult(plan, started, attempt);
      if (plan.partitions.length === 0) {
        return {
          ...dryRunResult(plan, started, attempt),
          status: 'nothing_to_do',
          dry_run: false,
        };
      }
      const nonce = newNonce();
      return await executePlan(ctx, plan, {
        commitId: attemptCommitId(op, opId, nonce),
        nonce,
        backup: job.backup,
        attempts: attempt,
        started,
        timings,
      });
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= MAX_OP_ATTEMPTS) throw err;
      ctx.logger.warn({ op, op_id: opId, dataset: job.dataset, attempt, err }, 'retry');
      await new Promise((r) => setTimeout(r, Math.random() * 50 * attempt));
    } finally {
      await plan.release();
    }
  }
}

export async function runVacuum(ctx: OpContext, raw: unknown): Promise<VacuumOpResult> {
  const started = Date.now();
  const job = parseJob('vacuum', raw);
  const graceMinutes = job.grace_minutes ?? ctx.defaults.vacuumGraceMinutes;
  if (job.dataset !== undefined) getDataset(job.dataset);
  const r = await vacuum({
    catalog: ctx.catalog,
    store: ctx.store,
    dataset: job.dataset,
    graceMs: graceMinutes * 60_000,
    now: ctx.clock(),
    dryRun: job.dry_run,
  });
  const result: VacuumOpResult = {
    op: 'vacuum',
    op_id: job.op_id ?? newOpId(ctx.clock()),
    status: job.dry_run ? 'dry_run' : 'done',
    dry_run: job.dry_run,
    ...(job.dataset ? { dataset: job.dataset } : {}),
    grace_minutes: graceMinutes,
    expired: r.expired,
    orphans: r.orphans,
    bytes: r.bytes,
    duration_ms: Date.now() - started,
  };
  if (!job.dry_run && r.expired.length + r.orphans.length > 0) {
    ctx.metrics
      ?.counter('parquetry_files_removed_total', 'Lake files removed (retention, compaction, vacuum)', [
        'dataset',
        'reason',
      ])
      .inc({ dataset: job.dataset ?? 'all', reason: 'vacuum' }, r.expired.length + r.orphans.length);
    ctx.logger.info(
      { op: 'vacuum', expired: r.expired.length, orphans: r.orphans.length, bytes: r.bytes },
      'vacuum',
    );
  }
  return result;
}

export async function runCleanup(ctx: OpContext, raw: unknown): Promise<CleanupOpResult> {
  const started = Date.now();
  const job = parseJob('cleanup', raw);
  const datasets: RetentionResult[] = [];
  for (const def of DATASETS) {
    datasets.push(
      await applyRetention({
        catalog: ctx.catalog,
        store: ctx.store,
        dataset: def.name,
        maxAgeDays: job.days,
        now: ctx.clock(),
        dryRun: job.dry_run,
      }),
    );
  }
  let vac: CleanupOpResult['vacuum'];
  if (!job.dry_run) {
    const {
      op: _o,
      op_id: _i,
      status: _s,
      dry_run: _d,
      duration_ms: _t,
      ...rest
    } = await runVacuum(ctx, {
      ...(job.grace_minutes !== undefined ? { grace_minutes: job.grace_minutes } : {}),
    });
    vac = rest;
  }
  ctx.logger.info({ op: 'cleanup', days: job.days, dry_run: job.dry_run }, 'retention');
  return {
    op: 'cleanup',
    op_id: job.op_id ?? newOpId(ctx.clock()),
    status: job.dry_run ? 'dry_run' : 'done',
    dry_run: job.dry_run,
    days: job.days,
    datasets,
    ...(vac ? { vacuum: vac } : {}),
    duration_ms: Date.now() - started,
  };
}

/** Any `lake.ops.<op>` job, by op: the one entry the service and the CLI share. */
export function runOperation(ctx: OpContext, op: CompactorOp, raw: unknown): Promise<JobResult> {
  if (op === 'vacuum') return runVacuum(ctx, raw);
  if (op === 'cleanup') return runCleanup(ctx, raw);
  return runRewrite(ctx, op, raw);
}
