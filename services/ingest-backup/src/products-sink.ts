import type { DuckDBConnection } from '@duckdb/node-api';
import type { BusMessage, Outcome } from '@parquetry/bus';
import {
  type Catalog,
  ColumnInferrer,
  discardLakeFiles,
  type JsonColumn,
  NDJSON_PIECE_BYTES,
  NdjsonSpill,
  type NewFile,
  type ObjectStore,
  type ParquetCompression,
  type PartitionChange,
  PRODUCT_FIXED_COLUMNS,
  PRODUCT_FIXED_PARQUET_COLUMNS,
  PRODUCTS,
  type ProductBatch,
  type ProductFixedColumn,
  partitionPath,
  productColumns,
  writeJsonLakeFiles,
  writeLakeFiles,
} from '@parquetry/lake';
import { InvalidInputError, type Logger, type Metrics, mapWorkers } from '@parquetry/service';
import type { LakeCommitter } from './committer.js';
import { decodeProductBatch } from './decode.js';
import { BacklogWatch, TAIL_QUIET_MS } from './domain/backlog.js';
import { type FlushPolicy, type Group, GroupBuffer } from './domain/buffer.js';
import {
  type BackupMetadata,
  type BackupStamp,
  type BatchSummary,
  backupFileName,
  backupMetadata,
  batchPartition,
  batchSourceKey,
  metadataFileName,
  newBackupId,
  productRowBatch,
  summarizeBatch,
} from './domain/products.js';
import { SerialQueue } from './serial.js';

/**
 * A buffered batch: its envelope, the types its products hold, and the message, whose raw body
 * waits in its group's spill (which DuckDB parses at flush time). Neither the parsed products
 * nor the body stay in memory: the buffer holds a few hundred bytes per batch.
 */
interface Item {
  batch: BatchSummary;
  kinds: ColumnInferrer;
  msg: BusMessage;
  key: string;
}

export interface ProductsSinkDeps {
  catalog: Catalog;
  store: ObjectStore;
  /**
   * One connection per file written at once. A group's file is small (tens of MB of bodies
   * holding a few large JSON documents), which DuckDB reads on about one thread: two files at
   * once use both cores.
   */
  conns: readonly DuckDBConnection[];
  committer: LakeCommitter;
  logger: Logger;
  metrics: Metrics;
  policy: FlushPolicy;
  compression: ParquetCompression;
  maxFileBytes: number;
  /** Where buffered bodies are spilled (NdjsonSpill). */
  spillDir: string;
  clock?: () => number;
}

/** 1 KB to 1 GB by powers of 4: a backup's size is judged against its usual order of magnitude. */
const BACKUP_BYTES_BUCKETS = Array.from({ length: 11 }, (_, i) => 1024 * 4 ** i);

/** Longest stretch of parsing between two turns of the event loop. */
const YIELD_EVERY_MS = 10;

/** Per buffered message beyond its body: envelope, inferred kinds, bookkeeping. */
const ITEM_OVERHEAD_BYTES = 2048;

/**
 * Product batches → Parquet, one file per retailer, day and category per flush. Messages are
 * held (not acked) until the file that carries them is committed; batches already in the lake
 * (by stream sequence, or by batch id for a batch published again later) are acked and dropped.
 */
export class ProductsSink {
  private readonly buffer: GroupBuffer<Item>;
  private readonly flushes = new SerialQueue();
  private readonly backlog = new BacklogWatch();
  /** A backlog just drained: the next flush takes everything (see BacklogWatch). */
  private drainedFlush = false;
  private readonly now: () => number;
  /** The spill of each buffered group, by group key; taken with the group. */
  private readonly spills = new Map<string, NdjsonSpill>();

  constructor(private readonly deps: ProductsSinkDeps) {
    this.buffer = new GroupBuffer<Item>(deps.policy);
    this.now = deps.clock ?? Date.now;
  }

  /** The consumer loop's batch handler. */
  readonly handle = async (messages: readonly BusMessage[]): Promise<(Outcome | undefined)[]> => {
    const outcomes: (Outcome | undefined)[] = [];
    let yielded = performance.now();
    const checkpointFresh = await this.deps.committer.refreshFor(messages);
    for (const msg of messages) {
      // A redelivery whose state is unknown waits; one held here already is dropped at its flush
      // (the same batch id twice in a flush, or already in the lake, is written once).
      outcomes.push(
        msg.redelivered && !checkpointFresh ? this.deps.committer.later() : await this.accept(msg),
      );
      // Parsing is CPU work on the event loop: every few ms, let the running flush's I/O
      // callbacks through, or each of its steps waits for a whole batch to be parsed.
      if (performance.now() - yielded > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        yielded = performance.now();
      }
    }
    // Parsing goes on while a flush writes. Memory is bounded by the consumer loop's limit on
    // unsettled bytes (buffered + being flushed), so the handler never waits for a flush.
    if (this.backlog.drained(messages.at(-1)?.pending ?? 0, this.now())) this.drainedFlush = true;
    this.flushDue();
    return outcomes;
  };

  private async accept(msg: BusMessage): Promise<Outcome | undefined> {
    const { committer } = this.deps;
    if (committer.stateOf(msg.seq) !== 'new') {
      const seen = await committer.screen(msg, 'products');
      if (seen) return seen;
    }
    let batch: ProductBatch;
    try {
      batch = decodeProductBatch(msg.subject, msg.json());
    } catch (err) {
      await msg.fail(err);
      return undefined;
    }
    const { retailer, date } = batchPartition(batch);
    const kinds = new ColumnInferrer();
    for (const p of batch.products) kinds.observe(p);
    const group = `${retailer}/${date}/${batch.category}`;
    const spill = await this.spillFor(group);
    const at = spill.append(msg.data);
    msg.releaseBody(() => spill.read(at));
    this.buffer.add(
      group,
      { batch: summarizeBatch(batch), kinds, msg, key: batchSourceKey(batch) },
      msg.size + ITEM_OVERHEAD_BYTES,
      this.now(),
    );
    this.gauge();
    return undefined;
  }

  /**
   * Flush what is due by age, size or memory budget (the timer). Coalesced with any flush still
   * waiting for its turn, so a slow flush does not gather a queue of timer flushes behind it.
   */
  flushDue(): void {
    if (this.backlog.quietTail(this.now(), TAIL_QUIET_MS)) this.drainedFlush = true;
    this.flushes.request(() => {
      const groups = this.drainedFlush ? this.buffer.takeAll() : this.buffer.takeDue(this.now());
      this.drainedFlush = false;
      return this.flush(groups);
    });
  }

  /** Flush everything buffered (graceful stop). */
  flushAll(): Promise<void> {
    return this.flushes.run(() => this.flush(this.buffer.takeAll()));
  }

  msUntilDue(): number | undefined {
    return this.buffer.msUntilDue(this.now());
  }

  private gauge(): void {
    this.deps.metrics
      .gauge('parquetry_buffer_bytes', 'estimated bytes buffered', ['dataset'])
      .set({ dataset: 'products' }, this.buffer.totalBytes);
  }

  private async flush(groups: Group<Item>[]): Promise<void> {
    this.gauge();
    if (groups.length === 0) return;
    const { catalog, committer, logger, metrics } = this.deps;
    // Taken with their groups, before any await: a batch arriving now starts a new spill.
    const spills = new Map(groups.map((g) => [g.key, this.takeSpill(g.key)] as const));
    const started = this.now();
    const messages = groups.flatMap((g) => g.items.map((i) => i.msg));
    const written: NewFile[] = [];
    let committing = false;
    try {
      const byPartition = new Map<
        string,
        { values: { retailer: string; date: string }; groups: Group<Item>[] }
      >();
      for (const g of groups) {
        const values = batchPartition(g.items[0]!.batch);
        const key = partitionPath(PRODUCTS.partitionColumns, values);
        const entry = byPartition.get(key) ?? { values, groups: [] };
        entry.groups.push(g);
        byPartition.set(key, entry);
      }
      // Which groups have batches not in the lake yet (batch ids, per partition).
      const tasks: {
        dir: string;
        values: { retailer: string; date: string };
        fresh: Item[];
        /** The group's spill holds exactly these batches (nothing dropped): DuckDB reads it as is. */
        spill?: NdjsonSpill;
      }[] = [];
      for (const [dir, { values, groups: partGroups }] of byPartition) {
        const keys = [...new Set(partGroups.flatMap((g) => g.items.map((i) => i.key)))];
        const present = new Set(await catalog.hasSources(PRODUCTS.name, values, keys));
        const seen = new Set<string>();
        for (const g of partGroups) {
          const fresh = g.items.filter((i) => {
            if (present.has(i.key) || seen.has(i.key)) return false;
            seen.add(i.key);
            return true;
          });
          const dropped = g.items.length - fresh.length;
          if (dropped > 0) {
            metrics
              .counter('parquetry_duplicates_dropped_total', 'input already in the lake', ['dataset'])
              .inc({ dataset: 'products' }, dropped);
          }
          const whole = fresh.length === g.items.length ? spills.get(g.key) : undefined;
          if (fresh.length > 0) tasks.push({ dir, values, fresh, spill: whole });
        }
      }
      // One file (or a few parts) per group, written on as many connections as there are.
      const stamps = tasks.map((): BackupStamp => ({ backupId: newBackupId(), backupTime: this.now() }));
      const files = await mapWorkers(tasks, this.deps.conns, async (t, i, conn) => {
        const out = await this.writeGroup(`products/${t.dir}`, t.fresh, t.spill, stamps[i]!, conn);
        written.push(...out);
        return out;
      });
      const changes: PartitionChange[] = [];
      const byDir = new Map<string, PartitionChange>();
      const metadata = new Map<
        string,
        { values: { retailer: string; date: string }; entries: BackupMetadata[] }
      >();
      tasks.forEach((t, i) => {
        let change = byDir.get(t.dir);
        if (!change) {
          change = { partition: t.values, add: [], sources: [] };
          byDir.set(t.dir, change);
          changes.push(change);
        }
        change.add.push(...files[i]!);
        change.sources!.push(...t.fresh.map((item) => item.key));
        const md = metadata.get(t.dir) ?? { values: t.values, entries: [] };
        for (const f of files[i]!)
          md.entries.push(
            backupMetadata(
              t.fresh.map((item) => item.batch),
              f,
              stamps[i]!,
            ),
          );
        metadata.set(t.dir, md);
      });
      const writtenAt = this.now();
      committing = true;
      await committer.commit(PRODUCTS.name, committer.newCommitId(PRODUCTS.name), changes, messages);
      const committed = this.now();
      this.recordBackups(changes, committed);
      for (const [dir, { values, entries }] of metadata) await this.writeMetadata(dir, values, entries);
      logger.debug(
        {
          dataset: 'products',
          messages: messages.length,
          files: changes.reduce((n, c) => n + c.add.length, 0),
          write_ms: writtenAt - started,
          commit_ms: committed - writtenAt,
        },
        'flush',
      );
      metrics
        .histogram('parquetry_flush_seconds', 'buffer flush: write, upload, commit', ['dataset'])
        .observe({ dataset: 'products' }, (this.now() - started) / 1000);
    } catch (err) {
      logger.warn({ err, dataset: 'products', messages: messages.length }, 'flush_failed');
      if (!committing) await discardLakeFiles(this.deps.store, written);
      // A dead letter reads its body back from the spill: settle before removing it.
      await Promise.all(messages.map((m) => m.fail(err)));
    } finally {
      await Promise.all([...spills.values()].map((spill) => spill?.remove()));
    }
  }

  private async spillFor(group: string): Promise<NdjsonSpill> {
    let spill = this.spills.get(group);
    if (!spill) {
      spill = await NdjsonSpill.create(this.deps.spillDir, NDJSON_PIECE_BYTES);
      this.spills.set(group, spill);
    }
    return spill;
  }

  private takeSpill(group: string): NdjsonSpill | undefined {
    const spill = this.spills.get(group);
    this.spills.delete(group);
    return spill;
  }

  /** Per-retailer backup metrics (the seed's "no backup in 24 h" and "abnormal size" alerts). */
  private recordBackups(changes: readonly PartitionChange[], at: number): void {
    const { metrics } = this.deps;
    const last = metrics.gauge(
      'parquetry_backup_last_timestamp_seconds',
      'time of the last products backup committed, per retailer',
      ['retailer'],
    );
    const size = metrics.histogram(
      'parquetry_backup_bytes',
      'size of each products backup file, per retailer',
      ['retailer'],
      BACKUP_BYTES_BUCKETS,
    );
    for (const c of changes) {
      const retailer = String(c.partition.retailer);
      last.set({ retailer }, at / 1000);
      for (const f of c.add) size.observe({ retailer }, f.bytes);
    }
  }

  private async writeGroup(
    dir: string,
    items: Item[],
    spill: NdjsonSpill | undefined,
    stamp: BackupStamp,
    conn: DuckDBConnection,
  ) {
    const inferrer = new ColumnInferrer();
    for (const i of items) inferrer.absorb(i.kinds);
    const free = productColumns(inferrer);
    const first = items[0]!.batch;
    const file = {
      store: this.deps.store,
      dir,
      fileName: (part: number, parts: number) =>
        backupFileName(first.category, stamp, parts > 1 ? part : undefined),
      compression: this.deps.compression,
      maxFileBytes: this.deps.maxFileBytes,
    };
    const { date } = batchPartition(first);
    const constants: Record<Exclude<ProductFixedColumn, 'batch_id'>, string | number> = {
      backup_timestamp: new Date(stamp.backupTime).toISOString(),
      backup_id: stamp.backupId,
      retailer: first.retailer,
      category: first.category,
      date,
    };
    const columns: JsonColumn[] = [
      ...PRODUCT_FIXED_COLUMNS.map(
        (name): JsonColumn =>
          name === 'batch_id'
            ? { name, type: PRODUCTS.columns[name]!, docField: 'batch_id' }
            : { name, type: PRODUCTS.columns[name]!, constant: constants[name] },
      ),
      ...free.map((c): JsonColumn => ({ name: c.name, type: c.type, json: c.json, field: c.field })),
    ];
    try {
      // Fast path: DuckDB parses the raw bodies; JS never touches a product value again.
      return await writeJsonLakeFiles({
        ...file,
        conn,
        documents: spill
          ? { ndjsonFiles: await spill.close(), largestDocument: spill.largestDocument }
          : await Promise.all(items.map((i) => i.msg.body())),
        recordsField: 'products',
        columns,
      });
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      // Field names DuckDB cannot tell apart, or a value its JSON reader converts differently:
      // the JS writer takes every value as JSON.parse gave it.
      this.deps.logger.debug({ err: err.message, dir }, 'products_js_path');

      return writeLakeFiles({
        ...file,
        conn,
        columns: [...PRODUCT_FIXED_PARQUET_COLUMNS, ...free],
        batches: await Promise.all(
          items.map(async (i) => {
            const body = Buffer.from(await i.msg.body()).toString('utf8');
            return productRowBatch(decodeProductBatch(i.msg.subject, JSON.parse(body)), stamp);
          }),
        ),
      });
    }
  }

  /**
   * `_metadata_<YYYYMMDD>.json`, the seed's per-day listing of backups. Written after the commit;
   * entries whose file is no longer live (retention, compaction) are dropped on each rewrite.
   */
  private async writeMetadata(
    dir: string,
    values: { retailer: string; date: string },
    entries: BackupMetadata[],
  ) {
    const { store, catalog, logger } = this.deps;
    const key = `products/${dir}/${metadataFileName(values.date)}`;
    try {
      let backups: BackupMetadata[] = [];
      const existing = await store.head(key);
      if (existing)
        backups =
          (JSON.parse((await store.getBytes(key)).toString('utf8')) as { backups?: BackupMetadata[] })
            .backups ?? [];
      const live = new Set((await catalog.partition(PRODUCTS.name, values)).files.map((f) => f.path));
      const merged = [...backups, ...entries].filter((b) => live.has(b.file_path));
      const unique = [...new Map(merged.map((b) => [b.file_path, b])).values()];
      // Retention dropped the partition between our commit and now: leave no listing behind.
      if (unique.length === 0) {
        if (existing) await store.delete(key);
        return;
      }
      const doc = {
        retailer: values.retailer,
        date: values.date,
        updated_at: new Date(this.now()).toISOString(),
        backups: unique,
      };
      await store.put(key, JSON.stringify(doc, null, 2));
    } catch (err) {
      logger.warn({ err, key }, 'backup_metadata_failed');
    }
  }
}
