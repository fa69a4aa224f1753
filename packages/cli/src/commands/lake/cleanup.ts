import { publishJson, subjects } from '@parquetry/bus';
import { applyRetention, type RetentionResult, retentionEvents, vacuum } from '@parquetry/lake';
import type { CliContext } from '../../context.js';
import { openBus, openLakeCatalog, openLakeStore } from '../resources.js';
import { formatBytes, formatCount } from './summary.js';

/** Datasets with a `date` partition that retention applies to. */
export const RETENTION_DATASETS = ['products', 'ticks'] as const;

export interface CleanupOptions {
  days: number;
  dryRun?: boolean;
  /** How long replaced files stay readable before vacuum deletes them (readers of older snapshots). */
  graceMinutes: number;
  now?: Date;
}

export interface CleanupResult {
  dry_run: boolean;
  days: number;
  /** First date kept; partitions dated before it were dropped. */
  keep_from: string;
  retention: Omit<RetentionResult, 'keepFrom' | 'dryRun'>[];
  /** What vacuum deleted now (or would, in a dry run): files replaced more than the grace ago, and orphans. */
  vacuum: { grace_minutes: number; expired: number; orphans: number; bytes: number };
  /** Files dropped by this run's retention: still on storage until a vacuum after the grace. */
  awaiting_vacuum: { files: number; bytes: number; after: string };
}

/**
 * `lake cleanup --days N [--dry-run]`: retention through the catalog (old partitions of products
 * and ticks dropped, one commit each, their metadata files deleted, each drop announced on
 * `lake.committed.<dataset>` like the service's schedule does), then vacuum of what is past
 * its grace. Files dropped now are only deleted by a later vacuum, so readers in flight never
 * lose a file.
 */
export async function lakeCleanup(ctx: CliContext, opts: CleanupOptions): Promise<CleanupResult> {
  const [catalog, store] = await Promise.all([openLakeCatalog(ctx), openLakeStore(ctx)]);
  const now = opts.now ?? new Date();
  const dryRun = opts.dryRun ?? false;
  const retention: RetentionResult[] = [];
  for (const dataset of RETENTION_DATASETS) {
    const result = await applyRetention({ catalog, store, dataset, maxAgeDays: opts.days, now, dryRun });
    retention.push(result);
    // Followers (pg-loader) delete the same rows; the ids make a re-announcement a duplicate.
    const events = retentionEvents(result, now);
    if (events.length > 0) {
      const bus = await openBus(ctx);
      for (const e of events) {
        // The drop is committed either way; a follower that misses it reconciles with the catalog.
        await publishJson(bus.js, subjects.lakeCommitted(e.dataset), e, { msgId: e.commit_id }).catch((err) =>
          process.stderr.write(`warning: could not announce ${e.commit_id}: ${(err as Error).message}\n`),
        );
      }
    }
  }
  const graceMs = opts.graceMinutes * 60_000;
  const swept = { expired: 0, orphans: 0, bytes: 0 };
  for (const dataset of RETENTION_DATASETS) {
    const v = await vacuum({ catalog, store, dataset, graceMs, now, dryRun });
    swept.expired += v.expired.length;
    swept.orphans += v.orphans.length;
    swept.bytes += v.bytes;
  }
  return {
    dry_run: dryRun,
    days: opts.days,
    keep_from: retention[0]!.keepFrom,
    retention: retention.map(({ keepFrom: _k, dryRun: _d, ...r }) => r),
    vacuum: { grace_minutes: opts.graceMinutes, ...swept },
    awaiting_vacuum: {
      files: retention.reduce((n, r) => n + r.files, 0),
      bytes: retention.reduce((n, r) => n + r.bytes, 0),
      after: new Date(now.getTime() + graceMs).toISOString(),
    },
  };
}

export function printCleanup(r: CleanupResult): void {
  const verb = r.dry_run ? 'would drop' : 'dropped';
  process.stdout.write(
    `${r.dry_run ? '[dry run] ' : ''}retention: keeping partitions dated ${r.keep_from} or later\n`,
  );
  for (const d of r.retention) {
    process.stdout.write(
      `  ${d.dataset}: ${verb} ${formatCount(d.partitions)} partitions, ${formatCount(d.files)} files, ` +
        `${formatCount(d.rows)} rows, ${formatBytes(d.bytes)}\n`,
    );
  }
  const vverb = r.dry_run ? 'would delete' : 'deleted';
  process.stdout.write(
    `vacuum: ${vverb} ${formatCount(r.vacuum.expired)} replaced files and ${formatCount(r.vacuum.orphans)} orphans ` +
      `(${formatBytes(r.vacuum.bytes)}) older than ${r.vacuum.grace_minutes} min\n`,
  );
  if (r.awaiting_vacuum.files > 0) {
    process.stdout.write(
      `${formatCount(r.awaiting_vacuum.files)} dropped files (${formatBytes(r.awaiting_vacuum.bytes)}) ` +
        `${r.dry_run ? 'would stay' : 'stay'} on storage for readers in flight; a vacuum after ${r.awaiting_vacuum.after} deletes them\n`,
    );
  }
}
