import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { type CasVersion, isCasConflict, KvCas } from '@parquetry/bus';
import {
  ConflictError,
  InvalidInputError,
  type Logger,
  type Metrics,
  mapLimit,
  ParquetryError,
  silentLogger,
  TransientError,
} from '@parquetry/service';
import { getDataset } from '../datasets.js';
import { type PartitionValues, partitionPath } from '../partition.js';
import { decodeValue, encodeValue } from './codec.js';
import { type CommitTarget, prepareCommit } from './commit-input.js';
import {
  checkWriterId,
  DEFAULT_CATALOG_BUCKET,
  intentKey,
  intentPrefix,
  manifestKey,
  manifestPrefix,
} from './keys.js';
import {
  applyChange,
  checkChange,
  emptyManifest,
  hasCommit,
  matchesWhere,
  pendingOf,
  releaseChange,
  reserveChange,
  settleSnapshot,
  staleLinks,
} from './manifest.js';
import type { Commit, CommitResult, FileEntry, PartitionManifest } from './types.js';

/** A multi-partition commit in flight, stored under `t.<writerId>.<hash(commitId)>`. */
export interface CommitIntent {
  writerId: string;
  commit: Commit;
  /** Catalog keys of the commit's partitions, in the order of `commit.changes`. */
  partitions: string[];
  createdAt: string;
}

/** A point in the commit protocol; the test hook may throw there to simulate a crash. */
export interface CommitStep {
  phase: 'intent' | 'reserve' | 'apply' | 'done';
  commitId: string;
  partition?: string;
}

export interface CatalogOptions {
  nc?: NatsConnection;
  /** Alternative to `nc`; values are then limited to the default 1 MiB max payload. */
  js?: JetStreamClient;
  bucket?: string;
  /** Names this process in intent keys; a restarted writer recovers its own intents (recover()). */
  writerId?: string;
  logger?: Logger;
  clock?: () => Date;
  metrics?: Metrics;
  /** How long one operation keeps retrying NATS failures (timeouts, a restarting server). */
  retryForMs?: number;
  /** For tests: called before each step of a multi-partition commit; throwing there acts as a crash. */
  onStep?: (step: CommitStep) => void | Promise<void>;
  /**
   * Replicas of the bucket (STREAM_REPLICAS): set when the bucket is created, and an existing
   * bucket with another count is brought to it. Left out: created with 1, an existing one untouched.
   */
  replicas?: number;
}

export interface RecoverResult {
  /** Commits found in flight and completed. */
  rolledForward: string[];
  /** Commits found before all partitions were reserved and whose reservation conflicted: undone. */
  abandoned: string[];
}

/** Bucket limits: values up to 8 MiB (the server's max_payload is the real cap), one previous revision kept. */
const BUCKET_HISTORY = 2;
const BUCKET_MAX_VALUE = 8 * 1024 * 1024;
const HEADER_ROOM = 4096;
const MAX_CAS_ATTEMPTS = 200;
const READ_CONCURRENCY = 16;
const SNAPSHOT_ROUNDS = 4;

const RETRYABLE_NATS = new Set([
  'TimeoutError',
  'NoResponders',
  'StreamNotFoundError',
  'RequestError',
  'ConnectionError',
  'ProtocolError',
  'JetStreamError',
  'JetStreamStatusError',
  'JetStreamApiError',
]);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const jitter = (attempt: number, baseMs: number, capMs: number) =>
  Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 10));

interface Stored {
  /** Absent when the key holds a delete marker. */
  manifest?: PartitionManifest;
  /** What the write of its successor expects (compare-and-set). */
  cas: CasVersion;
}

type Mutation<R> = { result: R; next?: PartitionManifest };

/** Opens (creating if needed) the catalog bucket. Safe to call from every process at start. */
export async function openCatalog(opts: CatalogOptions): Promise<Catalog> {
  const js = opts.js ?? (opts.nc ? jetstream(opts.nc) : undefined);
  if (!js) throw new InvalidInputError('openCatalog needs a NATS connection (nc) or a JetStream client (js)');
  const bucket = opts.bucket ?? DEFAULT_CATALOG_BUCKET;
  const kv = await new Kvm(js).create(bucket, {
    history: BUCKET_HISTORY,
    maxValueSize: BUCKET_MAX_VALUE,
    description: 'Parquetry lake catalog: partition manifests and commit intents',
    ...(opts.replicas ? { replicas: opts.replicas } : {}),
  });
  const jsm = await js.jetstreamManager();
  if (opts.replicas) {
    // Kvm.create leaves an existing bucket as it is: scale it in place (JetStream does so live).
    const info = await jsm.streams.info(`KV_${bucket}`);
    if (info.config.num_replicas !== opts.replicas) {
      await jsm.streams.update(`KV_${bucket}`, { ...info.config, num_replicas: opts.replicas });
    }
  }
  const prefix = `$KV.${bucket}.`;
  const cas = await KvCas.open(js, kv, bucket);
  return new Catalog(kv, cas, bucket, opts, {
    async purgeKey(key) {
      await jsm.streams.purge(`KV_${bucket}`, { filter: `${prefix}${key}` });
    },
    async subjectKeys(filter) {
      const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}${filter}` });
      return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
    },
  });
}

/** Direct stream operations on the catalog's bucket. */
export interface CatalogStreamOps {
  /** Removes a key with its history and no delete marker (intents are short-lived). */
  purgeKey(key: string): Promise<void>;
  /**
   * Keys of the bucket matching `filter`, from the stream's subject list: one API request, no
   * consumer. It includes deleted keys (their marker is a message); callers read each key anyway.
   */
  subjectKeys(filter: string): Promise<string[]>;
}

/**
 * The lake catalog: one manifest per partition in a JetStream KV bucket, changed only with
 * compare-and-set, commits idempotent by id, multi-partition commits made atomic with an intent
 * and per-partition reservations (docs/adr/0002-catalog-commit-protocol.md).
 */
export class Catalog {
  private readonly logger: Logger;
  private readonly clock: () => Date;
  private readonly retryForMs: number;
  private readonly maxValueBytes: number;
  private readonly writerId: string;
  private readonly commits?: ReturnType<Metrics['counter']>;

  constructor(
    private readonly kv: KV,
    private readonly cas: KvCas,
    readonly bucket: string,
    private readonly opts: CatalogOptions,
    private readonly streamOps: CatalogStreamOps,
  ) {
    this.logger = opts.logger ?? silentLogger();
    this.clock = opts.clock ?? (() => new Date());
    this.retryForMs = opts.retryForMs ?? 30_000;
    this.writerId = checkWriterId(opts.writerId ?? 'default');
    const maxPayload = opts.nc?.info?.max_payload ?? 1024 * 1024;
    this.maxValueBytes = Math.min(BUCKET_MAX_VALUE, maxPayload) - HEADER_ROOM;
    this.commits = opts.metrics?.counter('parquetry_commits_total', 'Catalog commits by outcome', [
      'dataset',
      'outcome',
    ]);
  }

  // ---- reads -------------------------------------------------------------------------------

  /** The stored manifest of one partition (an empty one with revision 0 if it has none). */
  async partition(dataset: string, values: PartitionValues): Promise<PartitionManifest> {
    const def = getDataset(dataset);
    const stored = await this.read(manifestKey(def.name, partitionPath(def.partitionColumns, values)));
    return stored ?? emptyManifest(def.name, values, this.now());
  }

  /**
   * Every partition of a dataset as one consistent snapshot: a multi-partition commit shows in
   * all its partitions or in none. Sorted by partition path.
   */
  async partitions(
    dataset: string,
    filter?: (values: PartitionValues) => boolean,
  ): Promise<PartitionManifest[]> {
    const def = getDataset(dataset);
    const manifests = await this.readAll(def.name);
    for (let round = 0; round < SNAPSHOT_ROUNDS; round++) {
      const stale = staleLinks(manifests);
      if (stale.length === 0) break;
      for (const [key, stored] of await this.readMany(stale)) if (stored) manifests.set(key, stored);
    }
    return settleSnapshot(manifests)
      .filter((m) => !filter || filter(m.partition))
      .map((m) => ({ m, path: partitionPath(def.partitionColumns, m.partition) }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((x) => x.m);
  }

  /**
   * The manifests of these partitions as the same consistent snapshot `partitions()` gives, without
   * reading the whole dataset: the partitions of a multi-partition commit reserved or applied in
   * one of them are read too, so a commit applied in any partition shows in these as well (a file
   * it removed is not live here although this partition's stored manifest still lists it).
   * Partitions without a manifest are left out. In the order of `values`, duplicates once.
   */
  async settledPartitions(dataset: string, values: readonly PartitionValues[]): Promise<PartitionManifest[]> {
    const def = getDataset(dataset);
    const keyOf = (v: PartitionValues) => manifestKey(def.name, partitionPath(def.partitionColumns, v));
    const keys = [...new Set(values.map(keyOf))];
    const manifests = new Map<string, PartitionManifest>();
    const readInto = async (list: readonly string[]) => {
      for (const [key, stored] of await this.readMany(list)) if (stored) manifests.set(key, stored);
    };
    await readInto(keys);
    // A reserved change here shows once its commit is applied anywhere: read its other partitions
    // (after these, so a commit seen applied there is at least as new as the reservation seen here).
    const others = new Set<string>();
    for (const m of manifests.values()) {
      for (const p of m.pending) for (const key of p.partitions) if (!keys.includes(key)) others.add(key);
    }
    await readInto([...others]);
    const settled = new Map(settleSnapshot(manifests).map((m) => [keyOf(m.partition), m]));
    return keys.map((k) => settled.get(k)).filter((m): m is PartitionManifest => m !== undefined);
  }

  /** The stored manifests of a dataset as read, reservations included, without settling (vacuum). */
  async storedPartitions(dataset: string): Promise<PartitionManifest[]> {
    return [...(await this.readAll(getDataset(dataset).name)).values()];
  }

  /** The live files of the current snapshot, optionally only partitions matching `where` (partition columns). */
  async liveFiles(dataset: string, where?: Record<string, string>): Promise<FileEntry[]> {
    const def = getDataset(dataset);
    const unknown = Object.keys(where ?? {}).filter((k) => !def.partitionColumns.includes(k));
    if (unknown.length > 0) {
      throw new InvalidInputError(
        `${def.name} is partitioned by ${def.partitionColumns.join(', ')}; cannot filter on ${unknown.join(', ')}`,
      );
    }
    const manifests = await this.partitions(def.name, (v) => matchesWhere(v, where));
    return manifests.flatMap((m) => m.files).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Which of these source idempotency keys are already committed in the partition. */
  async hasSources(dataset: string, values: PartitionValues, keys: readonly string[]): Promise<string[]> {
    const sources = new Set((await this.partition(dataset, values)).sources);
    return keys.filter((k) => sources.has(k));
  }

  /** Whether a commit was applied to this partition (reconciling a commit whose reply was lost). */
  async isApplied(dataset: string, values: PartitionValues, commitId: string): Promise<boolean> {
    return hasCommit(await this.partition(dataset, values), commitId);
  }

  /** Every multi-partition commit in flight, of every writer (vacuum keeps their files). */
  async intents(writerId?: string): Promise<CommitIntent[]> {
    const keys = await this.keys(`${writerId ? intentPrefix(writerId) : 't.'}>`);
    const out: CommitIntent[] = [];
    for (const key of keys) {
      const intent = await this.readIntent(key);
      if (intent) out.push(intent);
    }
    return out;
  }

  private async readIntent(key: string): Promise<CommitIntent | undefined> {
    const entry = await this.withRetry('read intent', () => this.kv.get(key));
    return entry?.operation === 'PUT' ? decodeValue<CommitIntent>(key, entry.value) : undefined;
  }

  // ---- commits -----------------------------------------------------------------------------

  /**
   * Applies a commit exactly once. Calling again with the same id (a retry, or reconciling a
   * commit whose reply was lost) reports `already` and changes nothing. Throws ConflictError when
   * a file to remove is no longer live (someone else replaced it) or is reserved by a commit in flight.
   */
  async commit(input: Commit, opts: { writerId?: string } = {}): Promise<CommitResult> {
    const now = this.now();
    const { commit, targets } = prepareCommit(input, now);
    if (targets.length === 0) return { commitId: commit.commitId, partitions: {} };
    if (targets.length === 1) {
      const t = targets[0]!;
      const outcome = await this.applyOne(commit, t, undefined);
      this.logger.debug(
        { dataset: commit.dataset, commit_id: commit.commitId, partition: t.path, outcome },
        'commit',
      );
      return { commitId: commit.commitId, partitions: { [t.path]: outcome } };
    }
    const writerId = checkWriterId(opts.writerId ?? this.writerId);
    const intent: CommitIntent = { writerId, commit, partitions: targets.map((t) => t.key), createdAt: now };
    const key = intentKey(writerId, commit.commitId);
    const body = encodeValue(key, intent, this.maxValueBytes);
    await this.withRetry('write intent', () => this.kv.put(key, body));
    await this.step({ phase: 'intent', commitId: commit.commitId });
    return await this.runIntent(intent);
  }

  /**
   * Finishes one commit this writer left half-done (its intent still there: a multi-partition
   * commit interrupted by a crash or a NATS failover), as `recover` does for all of them; true
   * when there was one. Afterwards `isApplied` on any of its partitions is the whole answer.
   */
  async finishIntent(commitId: string, writerId: string = this.writerId): Promise<boolean> {
    const intent = await this.readIntent(intentKey(checkWriterId(writerId), commitId));
    if (intent?.commit.commitId !== commitId) return false;
    try {
      await this.runIntent(intent);
    } catch (err) {
      // Undone: it never got all its reservations, and nothing of it applied.
      if (!(err instanceof ConflictError)) throw err;
    }
    return true;
  }

  /** Completes (or, if it never got all its reservations, undoes) every commit this writer left in flight. */
  async recover(writerId: string = this.writerId): Promise<RecoverResult> {
    const result: RecoverResult = { rolledForward: [], abandoned: [] };
    for (const intent of await this.intents(writerId)) {
      try {
        await this.runIntent(intent);
        result.rolledForward.push(intent.commit.commitId);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        result.abandoned.push(intent.commit.commitId);
      }
    }
    if (result.rolledForward.length + result.abandoned.length > 0) {
      this.logger.info({ writer_id: writerId, ...result }, 'catalog_intents_recovered');
    }
    return result;
  }

  /**
   * Vacuum: forgets these replaced files, unless one is live or reserved again (restored).
   * Returns the paths it dropped; only those may be deleted from the store.
   */
  async forgetRemoved(dataset: string, values: PartitionValues, paths: readonly string[]): Promise<string[]> {
    const def = getDataset(dataset);
    const key = manifestKey(def.name, partitionPath(def.partitionColumns, values));
    return await this.mutate(key, emptyManifest(def.name, values, this.now()), (m) => {
      const inUse = new Set([
        ...m.files.map((f) => f.path),
        ...m.pending.flatMap((p) => p.change.add.map((f) => f.path)),
      ]);
      const drop = new Set(paths.filter((p) => !inUse.has(p)));
      const dropped = m.removed.filter((r) => drop.has(r.path)).map((r) => r.path);
      if (dropped.length === 0) return { result: [] };
      const removed = m.removed.filter((r) => !drop.has(r.path));
      return { result: dropped, next: { ...m, removed, updatedAt: this.now() } };
    });
  }

  // ---- the protocol ----------------------------------------------------------------------------

  /**
   * Phase 1 reserves the change in every partition (in key order, so two multi-partition commits
   * meet at the same first partition), phase 2 applies each reservation, then the intent goes.
   * Readers treat the commit as visible once any partition applied it. Every step is idempotent,
   * so a restarted writer simply runs this again from its intent.
   */
  private async runIntent(intent: CommitIntent): Promise<CommitResult> {
    const { commit } = intent;
    const def = getDataset(commit.dataset);
    const targets: CommitTarget[] = commit.changes
      .map((change, i) => ({
        key: intent.partitions[i]!,
        path: partitionPath(def.partitionColumns, change.partition),
        change,
      }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    let appliedSomewhere = false;
    try {
      for (const t of targets) {
        await this.step({ phase: 'reserve', commitId: commit.commitId, partition: t.path });
        const state = await this.mutate<'applied' | 'reserved'>(
          t.key,
          this.emptyOf(commit, t),
          (m) => {
            if (hasCommit(m, commit.commitId)) return { result: 'applied' };
            if (pendingOf(m, commit.commitId)) return { result: 'reserved' };
            checkChange(m, commit.commitId, t.change);
            const pending = {
              commitId: commit.commitId,
              writerId: intent.writerId,
              change: t.change,
              partitions: intent.partitions,
            };
            return { result: 'reserved', next: reserveChange(m, pending, this.now()) };
          },
          t.path,
        );
        if (state === 'applied') appliedSomewhere = true;
      }
    } catch (err) {
      if (err instanceof ConflictError && !appliedSomewhere) await this.abandon(intent, targets, err);
      throw err;
    }
    const partitions: CommitResult['partitions'] = {};
    for (const t of targets) {
      await this.step({ phase: 'apply', commitId: commit.commitId, partition: t.path });
      partitions[t.path] = await this.applyOne(commit, t, intent.partitions);
    }
    await this.step({ phase: 'done', commitId: commit.commitId });
    await this.withRetry('delete intent', () =>
      this.streamOps.purgeKey(intentKey(intent.writerId, commit.commitId)),
    );
    this.logger.debug({ dataset: commit.dataset, commit_id: commit.commitId, partitions }, 'commit');
    return { commitId: commit.commitId, partitions };
  }

  /** Applies one partition's change (from its reservation when it has one); idempotent by commit id. */
  private async applyOne(
    commit: Commit,
    t: CommitTarget,
    linked: string[] | undefined,
  ): Promise<'applied' | 'already'> {
    const outcome = await this.mutate<'applied' | 'already'>(
      t.key,
      this.emptyOf(commit, t),
      (m) => {
        if (hasCommit(m, commit.commitId)) return { result: 'already' };
        const change = pendingOf(m, commit.commitId)?.change;
        if (!change) checkChange(m, commit.commitId, t.change);
        const next = applyChange(m, {
          commitId: commit.commitId,
          change: change ?? t.change,
          now: this.now(),
          linkedPartitions: linked,
        });
        return { result: 'applied', next };
      },
      t.path,
    );
    this.commits?.inc({ dataset: commit.dataset, outcome });
    return outcome;
  }

  /** A reservation conflicted before the commit was visible anywhere: release what it holds and drop the intent. */
  private async abandon(intent: CommitIntent, targets: CommitTarget[], cause: ConflictError): Promise<void> {
    const id = intent.commit.commitId;
    for (const t of targets) {
      const stored = await this.read(t.key);
      if (stored && hasCommit(stored, id)) {
        throw new ParquetryError(
          'commit_stuck',
          `commit ${id} is applied in ${t.path} but conflicts elsewhere`,
          {
            cause,
            details: { commitId: id },
          },
        );
      }
    }
    for (const t of targets) {
      await this.mutate(t.key, this.emptyOf(intent.commit, t), (m) =>
        pendingOf(m, id) ? { result: null, next: releaseChange(m, id, this.now()) } : { result: null },
      );
    }
    await this.withRetry('delete intent', () => this.streamOps.purgeKey(intentKey(intent.writerId, id)));
    this.logger.warn({ dataset: intent.commit.dataset, commit_id: id, err: cause }, 'commit_abandoned');
  }

  private async step(step: CommitStep): Promise<void> {
    await this.opts.onStep?.(step);
  }

  // ---- KV access -------------------------------------------------------------------------------

  /**
   * Read, change, compare-and-set; on a lost race read again. A write whose reply was lost is
   * found applied on the re-read (the change functions are idempotent), so it is never doubled.
   */
  private async mutate<R>(
    key: string,
    empty: PartitionManifest,
    change: (m: PartitionManifest) => Mutation<R>,
    label = key,
  ): Promise<R> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const stored = await this.readForUpdate(key);
      const current = stored.manifest ?? empty;
      const { result, next } = change(current);
      if (!next) return result;
      const { revision: _r, ...value } = next;
      const body = encodeValue(key, value, this.maxValueBytes);
      try {
        await this.withRetry('write manifest', () => this.cas.put(key, body, stored.cas));
        return result;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        this.commits?.inc({ dataset: current.dataset, outcome: 'conflict_retry' });
        await sleep(jitter(attempt, 2, 200));
      }
    }
    throw new ConflictError(`partition ${label}: gave up after ${MAX_CAS_ATTEMPTS} concurrent updates`);
  }

  private emptyOf(commit: Commit, t: CommitTarget): PartitionManifest {
    return emptyManifest(commit.dataset, t.change.partition, this.now());
  }

  private async read(key: string): Promise<PartitionManifest | undefined> {
    const entry = await this.withRetry('read manifest', () => this.kv.get(key));
    return entry ? this.decode(key, entry) : undefined;
  }

  /** The manifest with the version its successor must expect (one more request on a replicated bucket). */
  private async readForUpdate(key: string): Promise<Stored> {
    const { entry, version } = await this.withRetry('read manifest', () => this.cas.get(key));
    return { manifest: entry ? this.decode(key, entry) : undefined, cas: version };
  }

  private decode(key: string, entry: KvEntry): PartitionManifest | undefined {
    if (entry.operation !== 'PUT') return undefined;
    const value = decodeValue<Omit<PartitionManifest, 'revision'>>(key, entry.value);
    return { ...value, revision: entry.revision };
  }

  private async readMany(keys: readonly string[]): Promise<Map<string, PartitionManifest | undefined>> {
    const manifests = await mapLimit(keys, READ_CONCURRENCY, (key) => this.read(key));
    return new Map(keys.map((key, i) => [key, manifests[i]]));
  }

  private async readAll(dataset: string): Promise<Map<string, PartitionManifest>> {
    const stored = await this.readMany(await this.keys(`${manifestPrefix(dataset)}>`));
    const out = new Map<string, PartitionManifest>();
    for (const [key, s] of stored) if (s) out.set(key, s);
    return out;
  }

  /**
   * Keys matching `filter`, from the bucket stream's subject list: one API request, no consumer
   * (deleted keys included; callers read each key anyway). Not `kv.keys()`: that creates an
   * ordered consumer, which lives on one server, and nats-server 2.9 places it on any peer of the
   * stream, a dead one included (nats-server#3791): after a cluster node died, about one listing
   * in three timed out (5 s each) until the node came back (reproduced; see test-e2e/cluster).
   */
  private async keys(filter: string): Promise<string[]> {
    return await this.withRetry('list keys', () => this.streamOps.subjectKeys(filter));
  }

  /** Retries NATS failures (not CAS losses, not our own errors) with backoff until `retryForMs` is spent. */
  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const name = (err as Error | undefined)?.name ?? '';
        const retryable = !isCasConflict(err) && !(err instanceof ParquetryError) && RETRYABLE_NATS.has(name);
        if (!retryable || this.opts.nc?.isClosed()) throw err;
        if (Date.now() >= deadline) throw new TransientError(`catalog: ${what} failed`, { cause: err });
        this.logger.warn({ err, attempt, op: what }, 'retry');
        await sleep(jitter(attempt, 50, 2000));
      }
    }
  }

  private now(): string {
    return this.clock().toISOString();
  }
}
