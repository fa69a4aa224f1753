import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { publishJson, subjects } from '@parquetry/bus';
import type {
  DatasetDef,
  FileEntry,
  LakeCommitted,
  NewFile,
  PartitionChange,
  PartitionValues,
} from '@parquetry/lake';
import { ConflictError, ParquetryError } from '@parquetry/service';
import { backupKey, backupManifestKey, outputFileName } from '../domain/names.js';
import { type OpResult, type PartitionReport, partitionReport, totalsOf } from '../domain/report.js';
import type { RewriteOp } from '../jobs.js';
import type { OpContext } from './context.js';
import { type StagedFile, timeRange } from './duck.js';
import { hashFile } from './hash.js';
import { StepTimings } from './timings.js';

/** One partition an operation changes: files it replaces and how many rows its new files must hold. */
export interface PlannedPartition {
  values: PartitionValues;
  /** Partition path `col=value/...`. */
  path: string;
  /** Live files in the snapshot the plan was made from. */
  live: FileEntry[];
  /** Live files the commit replaces (must still be live at commit, or the commit conflicts). */
  remove: FileEntry[];
  /** Rows the added files hold together: checked against their footers before the commit. */
  expectedRows: number;
  /** Files and bytes the new files are expected to take (dry run). */
  estimate: { files: number; bytes: number };
  rowsDeleted?: number;
  rowsUpdated?: number;
  rowsInserted?: number;
}

export interface RewritePlan {
  op: RewriteOp;
  opId: string;
  def: DatasetDef;
  partitions: PlannedPartition[];
  /**
   * Writes the new files of every partition under `stageDir`; keyed by partition path. A plan
   * that writes its files one after another hands each finished file to `finished` (awaiting
   * it before its next statement, as the callback reads the file's footer on the same DuckDB
   * connection), so the file is hashed and uploaded while the next one is written.
   */
  write(
    stageDir: string,
    finished?: (partitionPath: string, file: StagedFile) => Promise<void>,
    timings?: StepTimings,
  ): Promise<Map<string, StagedFile[]>>;
  details?: Record<string, unknown>;
  /** Frees what planning held (temp tables, downloaded copies). */
  release(): Promise<void>;
}

/** The new files do not hold the rows the plan computed: nothing is committed. */
export class RowCountMismatchError extends ParquetryError {
  constructor(message: string, details: Record<string, unknown>) {
    super('row_count_mismatch', message, { retryable: false, status: 500, details });
  }
}

export interface ExecuteOptions {
  commitId: string;
  nonce: string;
  backup: boolean;
  attempts: number;
  started: number;
  /** Where the steps' times go (planning has been charged already); a fresh one when absent. */
  timings?: StepTimings;
}

function report(p: PlannedPartition, added: readonly NewFile[] | undefined): PartitionReport {
  return partitionReport({
    partition: p.path,
    values: p.values,
    live: p.live,
    remove: p.remove,
    added: added ?? [],
    ...(added
      ? {}
      : { estimate: { files: p.estimate.files, rows: p.expectedRows, bytes: p.estimate.bytes } }),
    rowsDeleted: p.rowsDeleted,
    rowsUpdated: p.rowsUpdated,
    rowsInserted: p.rowsInserted,
  });
}

export function dryRunResult(plan: RewritePlan, started: number, attempts = 1): OpResult {
  const partitions = plan.partitions.map((p) => report(p, undefined));
  return {
    op: plan.op,
    op_id: plan.opId,
    dataset: plan.def.name,
    status: 'dry_run',
    dry_run: true,
    partitions,
    totals: totalsOf(partitions),
    attempts,
    duration_ms: Date.now() - started,
    ...(plan.details ? { details: plan.details } : {}),
  };
}

/** Copies every replaced file under `_backups/<op-id>/` with a note of the operation. */
async function backupFiles(ctx: OpContext, plan: RewritePlan, commitId: string): Promise<string> {
  const files = plan.partitions.flatMap((p) => p.remove);
  for (const f of files) {
    const local = await ctx.store.localPath(f.path);
    await ctx.store.putFile(backupKey(plan.opId, f.path), local);
    ctx.heartbeat?.();
  }
  const note = {
    op: plan.op,
    op_id: plan.opId,
    commit_id: commitId,
    dataset: plan.def.name,
    created_at: ctx.clock().toISOString(),
    files: files.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
  };
  await ctx.store.put(backupManifestKey(plan.opId), `${JSON.stringify(note, null, 2)}\n`);
  return `_backups/${plan.opId}/`;
}

/** Checks each partition's new files against the rows the plan computed, before anything is uploaded. */
function validateRows(plan: RewritePlan, staged: Map<string, StagedFile[]>): void {
  const known = new Set(plan.partitions.map((p) => p.path));
  for (const path of staged.keys()) {
    if (!known.has(path)) {
      throw new RowCountMismatchError(
        `${plan.op}: wrote files for partition ${path} that the plan does not have`,
        {
          partition: path,
        },
      );
    }
  }
  for (const p of plan.partitions) {
    const rows = (staged.get(p.path) ?? []).reduce((n, f) => n + f.rows, 0);
    if (rows !== p.expectedRows) {
      throw new RowCountMismatchError(
        `${plan.op}: partition ${p.path} would hold ${rows} new rows, the plan expects ${p.expectedRows}; nothing committed`,
        { partition: p.path, written: rows, expected: p.expectedRows },
      );
    }
  }
}

/** Staged files hashed and uploaded at the same time. */
const UPLOAD_CONCURRENCY = 4;

/** Runs the functions it is given at most `n` at a time, in the order given. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active < n) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/**
 * The common tail of every rewrite: backup → write (staged locally; each finished file is
 * hashed and uploaded under a new name, invisible until committed, while the next is written)
 * → row counts checked against the plan → one atomic catalog commit that removes exactly the
 * files read and adds the new ones → `lake.committed.<dataset>`. A crash anywhere leaves the
 * previous snapshot readable; what was uploaded and not committed is an orphan that vacuum
 * sweeps. A ConflictError (someone replaced a file we read) or a row-count mismatch propagates
 * after deleting this attempt's uploads, which no commit can reference.
 */
export async function executePlan(ctx: OpContext, plan: RewritePlan, o: ExecuteOptions): Promise<OpResult> {
  const { store, catalog, logger } = ctx;
  const timings = o.timings ?? new StepTimings();
  ctx.crash('planned');
  const backup = o.backup ? await backupFiles(ctx, plan, o.commitId) : undefined;
  if (o.backup) ctx.crash('backed_up');
  timings.mark('backup');

  const stage = await mkdtemp(join(ctx.workDir, `${plan.op}-${plan.opId}-`));
  const uploaded: string[] = [];
  // Each staged file's upload (hash, then move into the store), started as soon as it is written.
  const uploads = new Map<string, Promise<NewFile>>();
  let commitStarted = false;
  let committed = false;
  const now = ctx.clock();
  let n = 0;
  const slot = limiter(UPLOAD_CONCURRENCY);
  const accept = async (partitionPath: string, s: StagedFile): Promise<void> => {
    if (uploads.has(s.local)) return;
    const key = `${plan.def.root}/${partitionPath}/${outputFileName(plan.op, plan.opId, o.nonce, ++n, now)}`;
    // The footer's statistics, read now: the connection is free and the file still local.
    const time =
      plan.def.timeColumn !== undefined
        ? await timings.time('time_range', () =>
            timeRange(ctx.conn, s.local, plan.def.timeColumn!).catch(() => ({})),
          )
        : {};
    const upload = slot(async (): Promise<NewFile> => {
      const sha256 = await timings.time('hash', () => hashFile(s.local));
      await timings.time('upload', () => store.putFile(key, s.local, { move: true }));
      uploaded.push(key);
      ctx.heartbeat?.();
      return { path: key, rows: s.rows, bytes: s.bytes, sha256, ...time };
    });
    upload.catch(() => {}); // awaited below; a failure must not surface as unhandled first
    uploads.set(s.local, upload);
  };
  try {
    const staged = await plan.write(stage, accept, timings);
    timings.mark('write');
    validateRows(plan, staged);
    // Files a plan did not hand over while writing start now, a few at a time.
    for (const p of plan.partitions) for (const s of staged.get(p.path) ?? []) await accept(p.path, s);
    const added = new Map<string, NewFile[]>();
    for (const p of plan.partitions) {
      added.set(p.path, await Promise.all((staged.get(p.path) ?? []).map((s) => uploads.get(s.local)!)));
    }
    timings.mark('finish_uploads');
    ctx.crash('written');
    // What readers will open is what we wrote: sizes as the store reports them.
    await Promise.all(
      [...added.values()].flat().map(async (f) => {
        const head = await store.head(f.path);
        if (head?.size !== f.bytes) {
          throw new RowCountMismatchError(
            `${plan.op}: uploaded ${f.path} has ${head?.size ?? 'no'} bytes, wrote ${f.bytes}`,
            { path: f.path },
          );
        }
      }),
    );
    ctx.crash('validated');
    timings.mark('verify');

    const changes: PartitionChange[] = plan.partitions.map((p) => ({
      partition: p.values,
      add: added.get(p.path) ?? [],
      remove: p.remove.map((f) => f.path),
    }));
    commitStarted = true;
    await catalog.commit(
      { dataset: plan.def.name, commitId: o.commitId, changes },
      { writerId: ctx.writerId },
    );
    committed = true;
    ctx.crash('committed');
    timings.mark('commit');

    await announce(ctx, plan.def.name, o.commitId, changes, now);
    ctx.crash('published');
    timings.mark('announce');

    const partitions = plan.partitions.map((p) => report(p, added.get(p.path) ?? []));
    const result: OpResult = {
      op: plan.op,
      op_id: plan.opId,
      dataset: plan.def.name,
      status: 'committed',
      dry_run: false,
      commit_id: o.commitId,
      partitions,
      totals: totalsOf(partitions),
      ...(backup ? { backup } : {}),
      attempts: o.attempts,
      duration_ms: Date.now() - o.started,
      timings_ms: timings.toJSON(),
      ...(plan.details ? { details: plan.details } : {}),
    };
    logger.info(
      {
        op: plan.op,
        op_id: plan.opId,
        dataset: plan.def.name,
        commit_id: o.commitId,
        totals: result.totals,
        duration_ms: result.duration_ms,
        timings_ms: result.timings_ms,
      },
      'operation_committed',
    );
    return result;
  } catch (err) {
    // Uploads still running finish first, so every key they wrote is known below.
    await Promise.allSettled(uploads.values());
    // Only uploads that certainly belong to no commit go now: a failure before the commit
    // began, or a conflict. An unknown outcome (NATS down mid-commit) leaves them to vacuum,
    // which checks the catalog first.
    const certainlyUncommitted = !commitStarted || (!committed && err instanceof ConflictError);
    if (certainlyUncommitted) await Promise.all(uploaded.map((k) => store.delete(k).catch(() => {})));
    throw err;
  } finally {
    await rm(stage, { recursive: true, force: true }).catch(() => {});
  }
}

/** `lake.committed.<dataset>` with `operation: 'replace'`, so pg-loader and caches follow the swap. */
export async function announce(
  ctx: OpContext,
  dataset: string,
  commitId: string,
  changes: readonly {
    partition: PartitionValues;
    add: readonly Pick<NewFile, 'path' | 'rows' | 'bytes'>[];
    remove?: readonly string[];
  }[],
  at: Date,
): Promise<void> {
  if (!ctx.js) return;
  const event: LakeCommitted = {
    dataset,
    commit_id: commitId,
    committed_at: at.toISOString(),
    operation: 'replace',
    partitions: changes.map((c) => ({
      values: c.partition,
      added: c.add.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
      removed: [...(c.remove ?? [])],
    })),
  };
  try {
    await publishJson(ctx.js, subjects.lakeCommitted(dataset), event, { msgId: commitId });
  } catch (err) {
    // The commit stands; followers also read the catalog, so a lost notice is not a loss.
    ctx.logger.warn({ err, dataset, commit_id: commitId }, 'lake_committed_publish_failed');
  }
}
