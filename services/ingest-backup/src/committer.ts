import type { JetStreamClient } from '@nats-io/jetstream';
import type { PendingFlush, SeqCheckpoint } from '@parquetry/bus';
import { type BusMessage, type Outcome, Outcomes, publishJson, SeqRanges, subjects } from '@parquetry/bus';
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

/** Another instance's pending flush younger than this may still be committing: wait for it. */
const FOREIGN_PENDING_GRACE_MS = 60_000;

/** A message whose flush is still committing comes back after this. */
const IN_FLIGHT_RETRY_MS = 2000;

/** What is known of a delivered message's sequence: in the lake, not yet, or being committed. */
export type SeqState = 'committed' | 'new' | 'in_flight';

/**
 * The last step of every flush, in the order that makes it exactly-once: record the pending
 * flush in the checkpoint, commit to the catalog, mark the sequences committed, announce the
 * commit on `lake.committed.<dataset>`, and only then ack. A failure before the commit naks
 * every message for a retry. A commit that fails is run once more with the same id, which
 * finishes it if part of it applied. If that fails too (NATS failing over), the pending entry
 * stays, and a message of it that comes back is held until the entry is settled against the
 * catalog (`settle`): never written a second time, never acked without its data.
 */
export class LakeCommitter {
  /** Commit ids between `begin` and the end of `commit` in this process. */
  private readonly inFlight = new Set<string>();

  constructor(private readonly deps: CommitterDeps) {}

  newCommitId(dataset: string): string {
    counter = (counter + 1) % 1e9;
    return `${this.deps.instance}-${dataset}-${Date.now().toString(36)}-${counter.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /**
   * Before a batch is screened: a redelivered message may have been committed by another
   * instance that died before its ack went out, which this instance's copy of the checkpoint
   * (refreshed by its own writes) does not show yet. Re-reads the checkpoint once for a batch
   * holding a redelivery; false when NATS did not answer (then its redeliveries should wait).
   */
  async refreshFor(messages: readonly BusMessage[]): Promise<boolean> {
    if (!messages.some((m) => m.redelivered)) return true;
    try {
      await this.deps.checkpoint.refresh();
      return true;
    } catch (err) {
      this.deps.logger.warn({ err }, 'checkpoint_refresh_failed');
      return false;
    }
  }

  /** The outcome for a message to look at again in a moment (its state is not known yet). */
  later(): Outcome {
    return Outcomes.retry(undefined, IN_FLIGHT_RETRY_MS);
  }

  /** Synchronous first look at a delivered sequence: `pending` needs `settle`. */
  stateOf(seq: number): SeqState | 'pending' {
    const { checkpoint } = this.deps;
    if (checkpoint.isCommitted(seq)) return 'committed';
    return checkpoint.pendingFor(seq) ? 'pending' : 'new';
  }

  /**
   * Whether a sequence covered by a pending flush is in the lake. A flush still committing (here,
   * or recently in another instance) is `in_flight`: the message should come back later. Any
   * other pending entry is settled now by asking the catalog whether its commit applied.
   */
  async settle(seq: number, now = Date.now()): Promise<SeqState> {
    const { checkpoint } = this.deps;
    if (checkpoint.isCommitted(seq)) return 'committed';
    const p = checkpoint.pendingFor(seq);
    if (!p) return 'new';
    const foreign = p.instance !== this.deps.instance;
    if (this.inFlight.has(p.commitId) || (foreign && now - p.at < FOREIGN_PENDING_GRACE_MS))
      return 'in_flight';
    // A commit of its writer left half-done is finished first; then one partition answers for all.
    await this.deps.catalog.finishIntent(p.commitId, p.instance);
    await checkpoint.resolvePending(this.pendingApplied, (x) => x.commitId === p.commitId);
    return checkpoint.isCommitted(seq) ? 'committed' : 'new';
  }

  /**
   * What to do with a delivered message before it is written: `undefined` when it is new; ack
   * when its sequence is in the lake (counted as a duplicate); retry in a moment while the flush
   * that covers it is still committing. Settling a pending entry asks NATS: a failure is a retry.
   */
  async screen(msg: BusMessage, dataset: string): Promise<Outcome | undefined> {
    let state: SeqState;
    try {
      state = await this.settle(msg.seq);
    } catch (err) {
      return Outcomes.retry(err);
    }
    if (state === 'new') return undefined;
    if (state === 'in_flight') return this.later();
    this.deps.metrics
      .counter('parquetry_duplicates_dropped_total', 'input already in the lake', ['dataset'])
      .inc({ dataset });
    return Outcomes.ack();
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
      this.inFlight.add(commitId);
      try {
        await checkpoint.begin(commitId, { dataset, partition: changes[0]!.partition }, seqs);
        try {
          await catalog.commit({ dataset, commitId, changes });
        } catch (err) {
          // The reply, or a later step of a multi-partition commit, may be lost while part of it
          // applied. The same commit again finishes it (every step is idempotent by commit id);
          // asking one partition whether it applied would take half a commit for all of it. If
          // this fails too, the pending entry stays and is settled when a message comes back.
          logger.warn({ err, dataset, commit_id: commitId }, 'commit_failed_retrying');
          await catalog.commit({ dataset, commitId, changes });
        }
        await checkpoint.complete(commitId, SeqRanges.fromSeqs(seqs).toJSON()).catch((err: unknown) => {
          // The data is committed, so the messages are acked below. The pending entry stays and is
          // settled against the catalog when one of them comes back (a lost ack) or at a restart.
          logger.warn({ err, dataset, commit_id: commitId }, 'checkpoint_complete_failed');
        });
      } finally {
        this.inFlight.delete(commitId);
      }
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
        logger.warn({ err, dataset, commit_id: commitId }, 'lake_committed_publish_failed');
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
