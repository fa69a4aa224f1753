/**
 * The load of a set of files into one table inside the caller's transaction: plan (DuckDB
 * only), prepare the table (create, drift, staging), stream each file through COPY in batches,
 * bisect refused batches down to their bad rows, and finish (swap, persist the schema).
 * Transactions, the ledger and resource lifetimes belong to the callers (load.ts, ledger.ts).
 */
import { InvalidInputError } from '@parquetry/service';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { LoadConfig } from './config.js';
import {
  BinaryRowEncoder,
  decodeBinaryRow,
  type EncodedRows,
  encodeTextLines,
  isValidRow,
  type RawColumn,
  readText,
  rowRange,
} from './copy-binary.js';
import { type CopyFormat, CopyStatement, copyParts, describePgError, type PgError } from './copy-stream.js';
import { availableMemoryBytes, type PeakRss } from './memory.js';
import {
  addColumnsSql,
  alterColumnTypesSql,
  type ColumnPlan,
  chooseStrategy,
  columnPlan,
  createTableSql,
  DriftError,
  diffSchema,
  hasDrift,
  type MemoryEstimate,
  nullColumnPlan,
  PlanError,
  planColumns,
  quoteIdent,
  quoteLiteral,
  resolveDrift,
  type SchemaDiff,
  type StrategyChoice,
  selectSql,
  type TableColumn,
} from './plan.js';
import {
  FileRejectSink,
  type RejectedRow,
  type RejectSink,
  rejectsTableDdl,
  TableRejectSink,
} from './rejects.js';
import {
  type DescribedSource,
  type DuckSource,
  type ReadOptions,
  rawBatch,
  readerSql,
  type SourceFormat,
} from './source.js';
import {
  catalogColumns,
  lockTableForLoad,
  persistSchema,
  siblingName,
  swapStaging,
  type TableRef,
  tableExists,
  tableKey,
  tableSql,
} from './table.js';

export interface LoadProgress {
  file: string;
  rows: number;
  loaded: number;
  rejected: number;
  /** Rows expected over all files (estimated for CSV/NDJSON unless small). */
  totalRows: number;
  totalExact: boolean;
  elapsedSeconds: number;
  rowsPerSecond: number;
  rssMb: number;
}

export interface FileCounts {
  rows: number;
  loaded: number;
  rejected: number;
}

export interface SessionDeps {
  client: pg.ClientBase;
  duck: DuckSource;
  config: LoadConfig;
  logger: Logger;
  loadId: string;
  peak: PeakRss;
  onProgress?: ((p: LoadProgress) => void) | undefined;
  /** Level of the `load_plan` line for an eager plan (default info); other plans are always info. */
  planLog?: 'info' | 'debug' | undefined;
  /** Memory available to this load (default: measured now). */
  availableBytes?: number | undefined;
  /**
   * RSS of the process before the load, when the budget is the whole process's (a one-shot
   * `runLoad`): what it already holds is not available to the load. The service leaves it out:
   * there the budget is per load.
   */
  processBytes?: number | undefined;
  /** Checked between chunks: an abort stops the load (the caller rolls back). */
  signal?: AbortSignal | undefined;
  /**
   * A text column added to every row, naming the file the row came from (the service's
   * `_lake_file`): rows of a lake file can then be found again when the lake removes the file.
   */
  fileTag?: FileTag | undefined;
}

export interface FileTag {
  column: string;
  /** The value for the rows of `file` (a local path): e.g. the file's lake key. */
  valueOf: (file: string) => string;
}

export type TableMode = 'fail' | 'append' | 'replace';

interface BatchPart {
  enc: EncodedRows;
  /** 0-based position in the file of the part's first row. */
  firstRow: number;
}

const PROGRESS_EVERY_MS = 200;

/** Wrap pure planning errors as InvalidInputError naming the config key when there is one. */
function asInvalidInput(err: unknown): never {
  if (err instanceof PlanError) {
    throw new InvalidInputError(err.key ? `${err.key}: ${err.message}` : err.message, {
      cause: err,
      code: 'invalid_plan',
    });
  }
  if (err instanceof DriftError) {
    throw new InvalidInputError(err.message, { cause: err, details: err.diff, code: 'schema_drift' });
  }
  throw err;
}

export class LoadSession {
  readonly target: TableRef;
  readonly copyFormat: CopyFormat;
  /** Set by prepare(): the table was created or replaced, so its ledger starts empty. */
  tableIsNew = false;
  drift: SchemaDiff | undefined;
  rejectsTarget = '';
  private plans: ColumnPlan[];
  private copyInto: TableRef;
  private staging: TableRef | undefined;
  private rejects: RejectSink | undefined;
  private rejectedTotal = 0;
  private readonly started = performance.now();
  private lastProgress = 0;
  private readonly totals: FileCounts = { rows: 0, loaded: 0, rejected: 0 };
  private csvRejectTables = 0;

  private constructor(
    private readonly deps: SessionDeps,
    readonly files: string[],
    readonly format: SourceFormat,
    private readonly described: DescribedSource,
    plans: ColumnPlan[],
    readonly estimate: MemoryEstimate,
    readonly strategy: StrategyChoice,
    private readonly dateFormats: Record<string, string>,
  ) {
    const db = deps.config.database;
    this.target = { schema: db.schema, name: db.table_name };
    this.copyInto = this.target;
    this.plans = plans;
    this.copyFormat = db.copy_format === 'text' ? 'text' : 'binary';
  }

  private get readOptions(): ReadOptions {
    return { csv: this.deps.config.csv, sampleSize: this.deps.config.validation_data.sample_size };
  }

  get columnPlans(): readonly ColumnPlan[] {
    return this.plans;
  }

  /** Resolve the input, describe it, plan the columns, estimate memory and choose the strategy. */
  static async plan(deps: SessionDeps, inputs: readonly string[]): Promise<LoadSession> {
    const { duck, config } = deps;
    const { files, format } = await duck.resolveFiles(inputs, config.format);
    const readOpts: ReadOptions = { csv: config.csv, sampleSize: config.validation_data.sample_size };
    const described = await duck.describe(files, format, readOpts);
    const sc = config.schema_config;
    const planOpts = {
      naming: sc.column_naming,
      rename: sc.rename,
      dataTypes: sc.data_type,
      decimalPrecision: sc.decimal_precision,
    };
    let plans: ColumnPlan[];
    try {
      plans = planColumns(described.columns, planOpts);
    } catch (err) {
      asInvalidInput(err);
    }
    const reader = readerSql(files, format, { ...readOpts, columns: described.columns });
    const dateFormats = await detectDateFormats(duck, described, plans, reader, sc.date_format, config);
    try {
      plans = planColumns(described.columns, { ...planOpts, dateFormats });
    } catch (err) {
      asInvalidInput(err);
    }
    if (plans.length === 0) throw new InvalidInputError(`${files[0]} has no columns`);
    if (deps.fileTag !== undefined) plans = [...plans, tagPlan(deps.fileTag, plans)];
    const estimate = await duck.estimate(files, format, reader, plans, config.os_configuration.n_rows_sample);
    const os = config.os_configuration;
    const strategy = chooseStrategy({
      estimate,
      availableBytes: deps.availableBytes ?? availableMemoryBytes(),
      marginFraction: os.os_margin,
      limitBytes: os.memory_limit_mb === undefined ? undefined : os.memory_limit_mb * 1024 * 1024,
      batchRows: config.database.batch_rows,
      processBytes: deps.processBytes,
    });
    await duck.setMemoryLimit(strategy.duckdbMemoryBytes);
    const level = strategy.strategy === 'eager' ? (deps.planLog ?? 'info') : 'info';
    deps.logger[level](
      { strategy: strategy.strategy, reason: strategy.reason, files: files.length, format },
      'load_plan',
    );
    return new LoadSession(deps, files, format, described, plans, estimate, strategy, dateFormats);
  }

  /** Lock the table for this transaction and make it ready to COPY into, per `mode` and drift policy. */
  async prepare(mode: TableMode): Promise<void> {
    const { client, config, logger } = this.deps;
    const db = config.database;
    const target = this.target;
    await lockTableForLoad(client, target);
    const incoming: TableColumn[] = this.plans.map((p) => ({ name: p.name, pgType: p.pgType }));
    if (!(await tableExists(client, target))) {
      await client.query(createTableSql(tableSql(target), incoming));
      this.tableIsNew = true;
    } else if (mode === 'fail') {
      throw new InvalidInputError(
        `table ${tableKey(target)} already exists (database.if_table_exists = fail; use append or replace)`,
        { code: 'table_exists' },
      );
    } else if (mode === 'replace') {
      const existing = await catalogColumns(client, target);
      this.drift = diffSchema(
        existing.map((c) => ({ name: c.name, pgType: c.pgType ?? c.rawType })),
        incoming,
      );
      const staging = { schema: target.schema, name: siblingName(target.name, '__pq_new') };
      await client.query(`DROP TABLE IF EXISTS ${tableSql(staging)}`);
      if (hasDrift(this.drift) || this.drift.widened !== undefined) {
        // The new source reshapes the table (a replace takes the new types, widened ones too):
        // indexes and constraints of the old one can't carry over.
        await client.query(createTableSql(tableSql(staging), incoming));
        logger.warn({ table: tableKey(target) }, 'table_replaced_without_indexes');
      } else {
        await client.query(`CREATE TABLE ${tableSql(staging)} (LIKE ${tableSql(target)} INCLUDING ALL)`);
      }
      this.staging = staging;
      this.copyInto = staging;
      this.tableIsNew = true;
    } else {
      await this.applyDrift(await catalogColumns(client, target));
    }
    if (db.rejects.to === 'table') {
      const rejectsTable = { schema: target.schema, name: siblingName(target.name, '_rejects') };
      await client.query(rejectsTableDdl(rejectsTable));
      this.rejects = new TableRejectSink(client, rejectsTable, this.deps.loadId);
    } else {
      this.rejects = new FileRejectSink(db.rejects.path!, this.deps.loadId);
    }
    this.rejectsTarget = this.rejects.target;
  }

  private async applyDrift(catalog: Awaited<ReturnType<typeof catalogColumns>>): Promise<void> {
    const { client, config } = this.deps;
    const existing = catalog.map((c) => ({ name: c.name, pgType: c.pgType ?? c.rawType }));
    const incoming = this.plans.map((p) => ({ name: p.name, pgType: p.pgType }));
    let resolution: ReturnType<typeof resolveDrift>;
    try {
      resolution = resolveDrift(existing, incoming, config.database.schema_drift, tableKey(this.target));
    } catch (err) {
      asInvalidInput(err);
    }
    this.drift = diffSchema(existing, incoming);
    const unsupported = new Set(catalog.filter((c) => c.pgType === undefined).map((c) => c.name));
    if (resolution.addColumns.length > 0) {
      await client.query(addColumnsSql(tableSql(this.target), resolution.addColumns));
    }
    const alter = resolution.alterColumns ?? [];
    if (alter.length > 0) {
      const foreign = alter.find((c) => unsupported.has(c.name));
      if (foreign) {
        throw new InvalidInputError(
          `column ${foreign.name} of ${tableKey(this.target)} has type ${foreign.from}, which pg-loader can't load or evolve`,
          { code: 'schema_drift' },
        );
      }
      // Same transaction as the rows: a failed load leaves the column as it was.
      await client.query(alterColumnTypesSql(tableSql(this.target), alter));
      this.deps.logger.warn(
        { table: tableKey(this.target), columns: alter.map((c) => `${c.name}: ${c.from} -> ${c.to}`) },
        'columns_retyped',
      );
    }
    const plans: ColumnPlan[] = [];
    for (const p of this.plans) {
      const type = resolution.loadTypes.get(p.name);
      if (type === undefined) continue;
      if (unsupported.has(p.name)) {
        throw new InvalidInputError(
          `column ${p.name} of ${tableKey(this.target)} has type ${type}, which pg-loader can't load`,
        );
      }
      plans.push(type === p.pgType ? p : this.replan(p, type));
    }
    this.plans = plans;
  }

  private replan(p: ColumnPlan, pgType: string): ColumnPlan {
    const src = this.described.columns.find((c) => c.name === p.source);
    return src
      ? columnPlan(src, p.name, pgType, this.dateFormats[src.name])
      : nullColumnPlan({ name: p.name, pgType });
  }

  /** Plans for one file of several: its own column types, NULL for columns it lacks. */
  private async plansFor(file: string): Promise<ColumnPlan[]> {
    if (this.files.length === 1 || this.format === 'ndjson') return this.plans;
    const own = await this.deps.duck.describe([file], this.format, this.readOptions);
    const byName = new Map(own.columns.map((c) => [c.name, c]));
    return this.plans.map((p) => {
      const src = p.source === null ? undefined : byName.get(p.source);
      return src ? columnPlan(src, p.name, p.pgType, this.dateFormats[src.name]) : nullColumnPlan(p);
    });
  }

  /** The tag column's value for `file`, as a constant. */
  private tagged(plans: ColumnPlan[], file: string): ColumnPlan[] {
    const tag = this.deps.fileTag;
    if (tag === undefined) return plans;
    return plans.map((p) => (p.name === tag.column ? { ...p, expr: quoteLiteral(tag.valueOf(file)) } : p));
  }

  private copySql(plans: readonly ColumnPlan[]): string {
    const cols = plans.map((p) => quoteIdent(p.name)).join(', ');
    return `COPY ${tableSql(this.copyInto)} (${cols}) FROM STDIN WITH (FORMAT ${this.copyFormat})`;
  }

  /** Stream one file into the table. Row numbers in rejects are 1-based positions in this file. */
  async loadFile(file: string): Promise<FileCounts> {
    if (this.rejects === undefined) throw new Error('LoadSession.prepare() must run before loadFile()');
    const { client, duck } = this.deps;
    const plans = this.tagged(await this.plansFor(file), file);
    const csvRejects = this.format === 'csv' ? `pq_csv_rejects_${this.csvRejectTables++}` : undefined;
    const sourceCols = this.format === 'ndjson' ? this.described.columns : undefined;
    const reader = readerSql([file], this.format, {
      ...this.readOptions,
      columns: sourceCols,
      rejectsTable: csvRejects,
    });
    const sql = selectSql(plans, reader, this.copyFormat);
    const copySql = this.copySql(plans);
    const kinds = plans.map((p) => p.wire);
    const names = plans.map((p) => p.name);
    const withRejects = plans.some((p) => p.failsWhen !== null);
    const encoder = this.copyFormat === 'binary' ? new BinaryRowEncoder(kinds) : undefined;
    const counts: FileCounts = { rows: 0, loaded: 0, rejected: 0 };
    const pending: RejectedRow[] = [];
    let batch: BatchPart[] = [];
    let batchRows = 0;
    let stmt: CopyStatement | undefined;

    const flush = async () => {
      if (stmt !== undefined) {
        const s = stmt;
        stmt = undefined;
        const res = await s.end();
        if (res.ok) counts.loaded += batch.reduce((n, b) => n + b.enc.encodedRows, 0);
        else await this.bisect(batch, res.error, { file, copySql, kinds, names, counts, pending });
      }
      batch = [];
      batchRows = 0;
      await this.writeRejects(pending, counts);
    };

    try {
      for await (const chunk of duck.chunks(sql, this.strategy.strategy === 'eager')) {
        const raw = rawBatch(chunk, encoder ? kinds : ['text'], withRejects ? 2 : 0);
        const valueCols = encoder ? raw.columns.slice(0, kinds.length) : raw.columns.slice(0, 1);
        const skip = withRejects
          ? collectCastRejects(
              raw.columns[valueCols.length]!,
              raw.columns[valueCols.length + 1]!,
              raw.rows,
              file,
              counts.rows,
              pending,
            )
          : null;
        const enc = encoder
          ? encoder.encode({ rows: raw.rows, columns: valueCols }, skip)
          : encodeTextLines(valueCols[0]!, raw.rows, skip);
        batch.push({ enc, firstRow: counts.rows });
        counts.rows += raw.rows;
        batchRows += raw.rows;
        if (enc.encodedRows > 0) {
          stmt ??= await CopyStatement.start(client, copySql, this.copyFormat);
          await stmt.write(enc.buffer);
        }
        if (batchRows >= this.strategy.batchRows || stmt?.failed !== undefined) await flush();
        this.progress(file, counts, false);
        this.deps.signal?.throwIfAborted();
      }
      await flush();
      if (csvRejects !== undefined) await this.collectCsvRejects(csvRejects, file, counts, pending);
    } catch (err) {
      await stmt?.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    this.totals.rows += counts.rows;
    this.totals.loaded += counts.loaded;
    this.totals.rejected += counts.rejected;
    this.progress(file, { rows: 0, loaded: 0, rejected: 0 }, true);
    return counts;
  }

  /**
   * A COPY refused by PostgreSQL: retry halves of the batch, each in its own savepoint, down to
   * single rows; a row that fails alone is rejected with PostgreSQL's message. Costs about
   * 2·log2(batch) COPYs per bad row; only row-level errors (classes 22, 23) get here.
   */
  private async bisect(
    batch: readonly BatchPart[],
    firstError: PgError,
    ctx: {
      file: string;
      copySql: string;
      kinds: ColumnPlan['wire'][];
      names: string[];
      counts: FileCounts;
      pending: RejectedRow[];
    },
  ): Promise<void> {
    const { client } = this.deps;
    const starts: number[] = [];
    let total = 0;
    for (const b of batch) {
      starts.push(total);
      total += b.enc.rowEnds.length;
    }
    const locate = (i: number): [BatchPart, number] => {
      let k = starts.length - 1;
      while (starts[k]! > i) k--;
      return [batch[k]!, i - starts[k]!];
    };
    const rowBytes = (i: number): Buffer => {
      const [b, r] = locate(i);
      return rowRange(b.enc, r, r + 1);
    };
    const included = (from: number, to: number): number => {
      let n = 0;
      for (let i = from; i < to; i++) if (rowBytes(i).length > 0) n++;
      return n;
    };
    const parts = (from: number, to: number): Buffer[] => {
      const out: Buffer[] = [];
      batch.forEach((b, k) => {
        const lo = Math.max(from, starts[k]!);
        const hi = Math.min(to, starts[k]! + b.enc.rowEnds.length);
        if (lo < hi) out.push(rowRange(b.enc, lo - starts[k]!, hi - starts[k]!));
      });
      return out;
    };
    const reject = (from: number, to: number, error: PgError) => {
      for (let i = from; i < to; i++) {
        const bytes = rowBytes(i);
        if (bytes.length === 0) continue;
        const [b, r] = locate(i);
        ctx.pending.push({
          file: ctx.file,
          rowNumber: b.firstRow + r + 1,
          reason: describePgError(error),
          raw: this.rawRow(bytes, ctx.kinds, ctx.names),
        });
      }
    };
    const isolate = async (from: number, to: number, knownError?: PgError): Promise<void> => {
      const n = included(from, to);
      if (n === 0) return;
      let error = knownError;
      if (error === undefined) {
        const res = await copyParts(client, ctx.copySql, this.copyFormat, parts(from, to));
        if (res.ok) {
          ctx.counts.loaded += n;
          return;
        }
        error = res.error;
      }
      if (n === 1) return reject(from, to, error);
      const mid = (from + to) >>> 1;
      await isolate(from, mid);
      await isolate(mid, to);
    };
    await isolate(0, total, firstError);
  }

  private rawRow(
    bytes: Buffer,
    kinds: ColumnPlan['wire'][],
    names: readonly string[],
  ): Record<string, unknown> {
    if (this.copyFormat === 'binary') {
      const values = decodeBinaryRow(bytes, kinds);
      return Object.fromEntries(names.map((n, i) => [n, values[i]]));
    }
    const fields = bytes.toString('utf8').replace(/\n$/, '').split('\t');
    return Object.fromEntries(names.map((n, i) => [n, fields[i] === '\\N' ? null : fields[i]]));
  }

  private async collectCsvRejects(
    table: string,
    file: string,
    counts: FileCounts,
    pending: RejectedRow[],
  ): Promise<void> {
    const { duck } = this.deps;
    const rows = await duck.query<{
      line: bigint;
      error_type: string;
      csv_line: string;
      error_message: string;
    }>(`SELECT line, error_type, csv_line, error_message FROM ${quoteIdent(table)} ORDER BY line`);
    for (const r of rows) {
      pending.push({
        file,
        rowNumber: Number(r.line),
        reason: `CSV line ${r.line}: ${r.error_type}: ${r.error_message}`,
        raw: { csv_line: r.csv_line },
      });
    }
    counts.rows += rows.length;
    await duck.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
    await duck.query(`DROP TABLE IF EXISTS ${quoteIdent(`${table}_scan`)}`);
    await this.writeRejects(pending, counts);
  }

  private async writeRejects(pending: RejectedRow[], counts: FileCounts): Promise<void> {
    if (pending.length === 0) return;
    await this.rejects!.write(pending);
    counts.rejected += pending.length;
    this.rejectedTotal += pending.length;
    pending.length = 0;
    const max = this.deps.config.database.rejects.max_rows;
    if (max !== undefined && this.rejectedTotal > max) {
      throw new InvalidInputError(
        `more than ${max} rows rejected (database.rejects.max_rows); the load is rolled back`,
        { code: 'too_many_rejects' },
      );
    }
  }

  private progress(file: string, counts: FileCounts, force: boolean): void {
    const rss = this.deps.peak.sample();
    const onProgress = this.deps.onProgress;
    if (onProgress === undefined) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    const elapsedSeconds = (now - this.started) / 1000;
    const rows = this.totals.rows + counts.rows;
    onProgress({
      file,
      rows,
      loaded: this.totals.loaded + counts.loaded,
      rejected: this.totals.rejected + counts.rejected,
      totalRows: Math.max(this.estimate.rows, rows),
      totalExact: this.estimate.rowsExact,
      elapsedSeconds,
      rowsPerSecond: elapsedSeconds > 0 ? rows / elapsedSeconds : 0,
      rssMb: rss / 1024 / 1024,
    });
  }

  /** Swap the staging table in (replace) and record the table's schema. */
  async finish(): Promise<void> {
    const { client, loadId } = this.deps;
    if (this.staging !== undefined) await swapStaging(client, this.staging, this.target);
    const catalog = await catalogColumns(client, this.target);
    const byName = new Map(this.plans.map((p) => [p.name, p]));
    await persistSchema(
      client,
      this.target,
      catalog.map((c) => ({
        name: c.name,
        pgType: c.pgType ?? c.rawType,
        source: byName.get(c.name)?.source ?? null,
        sourceType: byName.get(c.name)?.sourceType ?? null,
      })),
      loadId,
    );
  }

  /** Called by the owner after COMMIT or ROLLBACK: finalizes a rejects file. */
  async close(committed: boolean): Promise<void> {
    await this.rejects?.finish(committed);
  }

  get counts(): FileCounts {
    return { ...this.totals };
  }
}

/** The plan of the tag column (its value is set per file); refused when a source column has its name. */
function tagPlan(tag: FileTag, plans: readonly ColumnPlan[]): ColumnPlan {
  if (plans.some((p) => p.name === tag.column)) {
    throw new InvalidInputError(`the input has a column named ${tag.column}, which pg-loader reserves`, {
      code: 'reserved_column',
    });
  }
  return { ...nullColumnPlan({ name: tag.column, pgType: 'text' }), expr: quoteLiteral('') };
}

/** Mark rows whose casts failed; queue them as rejects with the reason DuckDB built. */
function collectCastRejects(
  reason: RawColumn,
  raw: RawColumn,
  rows: number,
  file: string,
  firstRow: number,
  pending: RejectedRow[],
): Uint8Array | null {
  if (reason.validity === null) {
    // No NULL in the reason column means every row failed a cast.
    return markAll(reason, raw, rows, file, firstRow, pending);
  }
  let skip: Uint8Array | null = null;
  for (let r = 0; r < rows; r++) {
    if (!isValidRow(reason, r)) continue;
    skip ??= new Uint8Array(rows);
    skip[r] = 1;
    pending.push({ file, rowNumber: firstRow + r + 1, reason: readText(reason, r), raw: readText(raw, r) });
  }
  return skip;
}

function markAll(
  reason: RawColumn,
  raw: RawColumn,
  rows: number,
  file: string,
  firstRow: number,
  pending: RejectedRow[],
): Uint8Array {
  for (let r = 0; r < rows; r++) {
    pending.push({ file, rowNumber: firstRow + r + 1, reason: readText(reason, r), raw: readText(raw, r) });
  }
  return new Uint8Array(rows).fill(1);
}

/**
 * strptime formats per source column: the config's when it names one; otherwise the CSV
 * sniffer's for columns it typed as dates or timestamps, and a format found on a sample for
 * text columns the config casts to a date or a timestamp.
 */
async function detectDateFormats(
  duck: DuckSource,
  described: DescribedSource,
  plans: readonly ColumnPlan[],
  reader: string,
  dateFormat: string,
  config: LoadConfig,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const temporal = new Set(['date', 'timestamp', 'timestamptz']);
  for (const p of plans) {
    const src = described.columns.find((c) => c.name === p.source);
    if (src?.duckType !== 'VARCHAR' || !temporal.has(p.pgType)) continue;
    if (dateFormat !== 'auto') {
      out[src.name] = dateFormat;
      continue;
    }
    const inferred = src.inferredType?.toUpperCase() ?? 'VARCHAR';
    const sniffed =
      inferred === 'DATE'
        ? described.dateFormat
        : inferred.startsWith('TIMESTAMP')
          ? described.timestampFormat
          : undefined;
    if (sniffed !== undefined && sniffed !== '%Y-%m-%d') {
      out[src.name] = sniffed;
      continue;
    }
    if (inferred === 'VARCHAR') {
      const found = await duck.detectDateFormat(
        reader,
        src.name,
        p.pgType !== 'date',
        config.validation_data.sample_size,
      );
      if (found !== undefined) out[src.name] = found;
    }
  }
  return out;
}
