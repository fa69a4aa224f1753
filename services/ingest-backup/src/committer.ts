import type { JetStreamClient } from '@nats-io/jetstream';
import type { PendingFlush, SeqCheckpoint } from '@parquetry/bus';
import { type BusMessage, publishJson, subjects } from '@parquetry/bus';
import type { Catalog, LakeCommitted, PartitionChange, PartitionValues } from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';

export interface CommitterDeps {
  catalog: Catalog;
  checkpoint: SeqCheckpoint;
  js: JetStreamClient;
  logger: Logger;
  metrics: Metrics;
  instance: string;
}

let counter = 0;

/**
 * The last step of every flush, in the order that makes it exactly-once: record the pending
 * flush in the checkpoint, commit to the catalog, mark the sequences committed, announce the
 * commit on `lake.committed.<dataset>`, and only then ack. A failure before the commit nak's
 * every message for a retry; a failure after it leaves the checkpoint to settle it on restart.
 */
export class LakeCommitter {
  constructor(private readonly deps: CommitterDeps) {}

  newCommitId(dataset: string): string {
    counter = (counter + 1) % 1e9;
    return `${this.deps.instance}-${dataset}-${Date.now().toString(36)}-${counter.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  }

  async commit(
    dataset: string,
    commitId: string,
    changes: PartitionChange[],
    messages: readonly BusMessage[],
  ): Promise<void> {
    const { catalog, checkpoint, js, logger, metrics } = this.deps;
    const seqs = messages.map((m) => m.seq);
    if (changes.length > 0) {
      await checkpoint.begin(commitId, { dataset, partition: changes[0]!.partition }, seqs);
      try {
        await catalog.commit({ dataset, commitId, changes });
      } catch (err) {
        // Not applied for sure only if the catalog says so; otherwise leave it pending for restart.
        const applied = await this.isApplied(dataset, changes[0]!.partition, commitId).catch(() => undefined);
        if (applied === false) await checkpoint.abandon(commitId).catch(() => {});
        throw err;
      }
      await checkpoint.complete(commitId);
      const rows = changes.reduce((n, c) => n + c.add.reduce((m, f) => m + f.rows, 0), 0);
      const bytes = changes.reduce((n, c) => n + c.add.reduce((m, f) => m + f.bytes, 0), 0);
      metrics
        .counter('parquetry_rows_written_total', 'rows committed to the lake', ['dataset'])
        .inc({ dataset }, rows);
      metrics.counter('parquetry_files_written_total', 'Parquet files committed', ['dataset']).inc(
        { dataset },
        changes.reduce((n, c) => n + c.add.length, 0),
      );
      metrics
        .counter('parquetry_bytes_written_total', 'Parquet bytes committed', ['dataset'])
        .inc({ dataset }, bytes);
      metrics
        .gauge('parquetry_last_commit_timestamp_seconds', 'time of the last commit', ['dataset'])
        .set({ dataset }, Date.now() / 1000);
      const event: LakeCommitted = {
        dataset,
        commit_id: commitId,
        committed_at: new Date().toISOString(),
        operation: 'append',
        partitions: changes.map((c) => ({
          values: c.partition,
          added: c.add.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
          removed: [],
        })),
      };
      try {
        await publishJson(js, subjects.lakeCommitted(dataset), event, { msgId: commitId });
      } catch (err) {
        // The data is committed; followers also read the catalog, so a lost event is not a loss.
        logger.warn({ err, dataset, commit_id: commitId }, 'could not publish lake.committed');
      }
      logger.debug({ dataset, commit_id: commitId, rows, files: changes.length }, 'commit');
    }
    await Promise.all(messages.map((m) => m.ack()));
  }

  isApplied(dataset: string, values: PartitionValues, commitId: string): Promise<boolean> {
    return this.deps.catalog.isApplied(dataset, values, commitId);
  }

  /** For the checkpoint: was this pending flush's commit applied? */
  readonly pendingApplied = (p: PendingFlush): Promise<boolean> =>
    this.isApplied(p.probe.dataset, p.probe.partition, p.commitId);
}
