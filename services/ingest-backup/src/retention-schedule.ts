import type { JetStreamClient } from '@nats-io/jetstream';
import { publishJson, subjects } from '@parquetry/bus';
import {
  applyRetention,
  type Catalog,
  type ObjectStore,
  type RetentionResult,
  retentionEvents,
} from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';

export interface RetentionScheduleDeps {
  catalog: Catalog;
  store: ObjectStore;
  js: JetStreamClient;
  logger: Logger;
  metrics: Metrics;
  datasets: readonly string[];
  maxAgeDays: number;
  intervalMs: number;
  /** First run this long after start, so a restart storm does not pile retention runs up. */
  firstRunDelayMs?: number;
  clock?: () => number;
}

/**
 * The seed's `max_age_days`: every `intervalMs`, partitions dated before the window are dropped
 * from the catalog (one commit each; see applyRetention) and the drop is announced on
 * `lake.committed.<dataset>` as a `remove`, so pg-loader deletes the same rows. Runs are serial;
 * a failed run is logged and retried at the next tick (retention is idempotent).
 */
export class RetentionSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: RetentionScheduleDeps) {}

  start(): void {
    const { intervalMs, firstRunDelayMs = Math.min(intervalMs, 30_000) } = this.deps;
    const schedule = (ms: number) => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.running = this.runOnce()
          .then(() => undefined)
          .finally(() => schedule(intervalMs));
      }, ms);
      this.timer.unref();
    };
    schedule(firstRunDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }

  /** One pass over every dataset; never throws. */
  async runOnce(): Promise<RetentionResult[]> {
    const { catalog, store, logger, metrics, maxAgeDays, clock = Date.now } = this.deps;
    const results: RetentionResult[] = [];
    for (const dataset of this.deps.datasets) {
      try {
        const result = await applyRetention({ catalog, store, dataset, maxAgeDays, now: new Date(clock()) });
        results.push(result);
        if (result.partitions === 0) continue;
        metrics
          .counter('parquetry_files_removed_total', 'Lake files removed (retention, compaction, vacuum)', [
            'dataset',
            'reason',
          ])
          .inc({ dataset, reason: 'retention' }, result.files);
        logger.info(
          {
            dataset,
            keep_from: result.keepFrom,
            partitions: result.partitions,
            files: result.files,
            rows: result.rows,
          },
          'retention_partitions_dropped',
        );
        await this.announce(result);
      } catch (err) {
        logger.warn({ err, dataset }, 'retention_failed');
      }
    }
    return results;
  }

  private async announce(result: RetentionResult): Promise<void> {
    const { js, logger } = this.deps;
    for (const event of retentionEvents(result)) {
      try {
        await publishJson(js, subjects.lakeCommitted(event.dataset), event, { msgId: event.commit_id });
      } catch (err) {
        logger.warn({ err, dataset: event.dataset, commit_id: event.commit_id }, 'retention_publish_failed');
      }
    }
  }
}
