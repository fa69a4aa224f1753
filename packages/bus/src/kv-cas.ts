import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { TransientError } from '@parquetry/service';

/**
 * Compare-and-set on a JetStream key-value bucket that also holds when the bucket is replicated.
 *
 * A KV update expects the key's last revision (Nats-Expected-Last-Subject-Sequence). On a
 * clustered stream nats-server checks that header only before proposing the write, not in
 * consensus: two updates from the same revision that are in flight together are both accepted
 * and the second silently overwrites the first (nats-server#4320; on the 2.9.10 this project
 * runs on, 4 writers doing read-modify-write on one R3 key lost 403 of 1,200 accepted updates).
 * The stream's last sequence (Nats-Expected-Last-Sequence) is checked against the leader's
 * count of proposals in flight, so on a replicated bucket every write here expects both: the
 * key's revision and the stream's last sequence as read before the key. Writes to the bucket
 * are then serialized (a write to any key makes a concurrent one to another key retry); on a
 * single-replica bucket the per-key check is atomic and is the only one sent.
 */
export interface CasVersion {
  /** The key's revision as read (0: the key has never been written). */
  revision: number;
  /** The stream's last sequence, read before the key; only on a replicated bucket. */
  streamSeq?: number;
}

export interface CasRead {
  /** The key's last entry (a delete marker included), or null when it has none. */
  entry: KvEntry | null;
  version: CasVersion;
}

/** True when a write lost its compare-and-set: read again and redo the change. */
export function isCasConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

const MAX_READ_ATTEMPTS = 100;

export class KvCas {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly bucket: string,
    /** Whether the bucket has more than one replica (then writes expect the stream sequence too). */
    readonly replicated: boolean,
  ) {}

  /** Call after the bucket has its final replica count (a bucket scaled later is not noticed). */
  static async open(js: JetStreamClient, kv: KV, bucket: string): Promise<KvCas> {
    const jsm = await js.jetstreamManager();
    const info = await jsm.streams.info(`KV_${bucket}`);
    return new KvCas(js, jsm, kv, bucket, info.config.num_replicas > 1);
  }

  /** The key's entry and the version a write of its successor must expect. */
  async get(key: string): Promise<CasRead> {
    if (!this.replicated) {
      const entry = await this.kv.get(key);
      return { entry, version: { revision: entry?.revision ?? 0 } };
    }
    for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
      const streamSeq = (await this.jsm.streams.info(`KV_${this.bucket}`)).state.last_seq;
      const entry = await this.kv.get(key);
      const revision = entry?.revision ?? 0;
      // Written between the two reads: this entry is newer than the sequence to expect.
      if (revision <= streamSeq) return { entry, version: { revision, streamSeq } };
    }
    throw new TransientError(
      `KV_${this.bucket}: ${key} kept changing between reading the stream and the key`,
    );
  }

  /** Writes `value` if the key (and on a replicated bucket, the whole bucket) is unchanged since `version`; its new revision. */
  async put(key: string, value: Uint8Array | string, version: CasVersion): Promise<number> {
    const ack = await this.js.publish(`$KV.${this.bucket}.${key}`, value, {
      expect: {
        lastSubjectSequence: version.revision,
        ...(version.streamSeq !== undefined ? { lastSequence: version.streamSeq } : {}),
      },
    });
    return ack.seq;
  }
}
