import { randomUUID } from 'node:crypto';
import { compileQuery } from '@parquetry/lake';
import { InvalidInputError, NotFoundError, ParquetryError } from '@parquetry/service';
import type { Logger } from 'pino';
import {
  defaultCompression,
  type ExportEstimateView,
  type ExportRequest,
  type ExportView,
  exportRequestSchema,
} from '../api/schemas.js';
import type { AuditLog } from '../audit.js';
import type { ApiKey } from '../auth/keys.js';
import { type DatasetCatalog, resolveDataset, rowScopesFor } from '../datasets.js';
import { ForbiddenError, issues, ServiceUnavailableError, toErrorResponse } from '../errors.js';
import { PRODUCT_PRICES_DAILY } from '../lake/product-prices.js';
import { EXPORTS_PREFIX, isExportId, isExportObjectKey } from '../signing.js';
import type { ExportEngine, ExportJob, ExportOutcome } from './engine.js';
import type { DownloadLinks } from './links.js';
import type { ExportRecord, ExportRecordStore } from './records.js';

export interface ExportServiceDeps {
  datasets: DatasetCatalog;
  /** Absent until the lake engine is wired: exports then answer 503. */
  engine?: ExportEngine | undefined;
  records: ExportRecordStore;
  links: DownloadLinks;
  audit: AuditLog;
  logger: Logger;
  clock: () => number;
  ttl: { defaultS: number; maxS: number };
  /** How long `create` waits for the engine before answering 202 with a running export. */
  syncWaitMs: number;
  newId?: () => string;
}

interface Settled {
  record: ExportRecord;
  error?: unknown;
}

/**
 * Export use cases, HTTP-free: validate → resolve the dataset within the key's scope → compile
 * with the key's row scope → run on the engine → record, audit, sign links. Every check that
 * can refuse a request runs before the engine is touched.
 */
export class ExportService {
  private readonly newId: () => string;

  constructor(private readonly deps: ExportServiceDeps) {
    this.newId = deps.newId ?? randomUUID;
  }

  async create(key: ApiKey, body: unknown): Promise<{ status: 200 | 202; view: ExportView }> {
    const parsed = exportRequestSchema.safeParse(body);
    if (!parsed.success)
      throw new InvalidInputError('invalid export request', { details: issues(parsed.error) });
    const req = parsed.data;

    const dataset = await this.resolve(key, req.dataset);
    const ttlS = req.expires_in ?? this.deps.ttl.defaultS;
    if (ttlS > this.deps.ttl.maxS) {
      throw new InvalidInputError(`expires_in must be at most ${this.deps.ttl.maxS} seconds`, {
        details: { path: 'expires_in', max: this.deps.ttl.maxS },
      });
    }
    const rowScopes = rowScopesFor(key, dataset);
    const query = compileQuery({
      schema: dataset.schema,
      timeColumn: dataset.time_column,
      columns: req.columns,
      filters: req.filters,
      dateRange: req.date_range,
      limit: req.limit,
      partitionBy: req.partition_by,
      rowScopes,
    });
    const engine = this.deps.engine;
    if (!engine) throw new ServiceUnavailableError('the export engine is not available');

    const exportId = this.newId();
    const compression = req.compression ?? defaultCompression(req.format);
    const record: ExportRecord = {
      export_id: exportId,
      owner: key.name,
      dataset: dataset.name,
      format: req.format,
      compression,
      partition_by: query.partitionBy,
      schema: query.schema,
      status: 'running',
      created_at: new Date(this.deps.clock()).toISOString(),
      url_ttl_s: ttlS,
      files: [],
    };
    await this.deps.records.put(record);
    const job: ExportJob = {
      export_id: exportId,
      owner: key.name,
      dataset,
      format: req.format,
      compression,
      partition_by: query.partitionBy,
      query,
      output_prefix: `${EXPORTS_PREFIX}${exportId}/`,
      created_at: record.created_at,
    };
    const settled = this.run(engine, job, record, req, rowScopes !== undefined);
    const done = await within(settled, this.deps.syncWaitMs);
    if (!done) return { status: 202, view: await this.view(record) };
    // Failed while the caller waited: answer with the error itself (a 4xx stays a 4xx).
    if (done.error !== undefined) throw done.error;
    return { status: 200, view: await this.view(done.record) };
  }

  /**
   * What an export request would read, from the catalog alone: checked exactly like `create`
   * (schema, scope, row scope, columns, filters), nothing run or written.
   */
  async estimate(key: ApiKey, body: unknown): Promise<ExportEstimateView> {
    const parsed = exportRequestSchema.safeParse(body);
    if (!parsed.success)
      throw new InvalidInputError('invalid export request', { details: issues(parsed.error) });
    const req = parsed.data;
    const dataset = await this.resolve(key, req.dataset);
    const query = compileQuery({
      schema: dataset.schema,
      timeColumn: dataset.time_column,
      columns: req.columns,
      filters: req.filters,
      dateRange: req.date_range,
      limit: req.limit,
      partitionBy: req.partition_by,
      rowScopes: rowScopesFor(key, dataset),
    });
    const engine = this.deps.engine;
    if (!engine?.estimate) throw new ServiceUnavailableError('the export engine is not available');
    const e = await engine.estimate({ dataset, query });
    const derived = dataset.name === PRODUCT_PRICES_DAILY; // aggregated: fewer rows than it reads
    return {
      dataset: dataset.name,
      source_files: e.files,
      source_rows: e.rows,
      source_bytes: e.bytes,
      max_rows: derived ? null : req.limit !== undefined ? Math.min(req.limit, e.rows) : e.rows,
    };
  }

  /** The export, for its owner only: any other key gets the same 404 as a missing id. */
  async get(key: ApiKey, exportId: string): Promise<ExportView> {
    const record = isExportId(exportId) ? await this.deps.records.get(exportId) : undefined;
    if (!record || record.owner !== key.name) throw new NotFoundError('no export with this id');
    return this.view(record);
  }

  private async resolve(key: ApiKey, name: string) {
    try {
      return resolveDataset(await this.deps.datasets.list(), name, key);
    } catch (err) {
      if (err instanceof ForbiddenError)
        this.deps.audit.denied({ key_name: key.name, dataset: name, reason: 'scope' });
      throw err;
    }
  }

  /** Runs the job and records the outcome; never rejects (the error travels in the result). */
  private async run(
    engine: ExportEngine,
    job: ExportJob,
    running: ExportRecord,
    req: ExportRequest,
    rowScoped: boolean,
  ): Promise<Settled> {
    const started = this.deps.clock();
    let settled: Settled;
    try {
      const outcome = checkOutcome(await engine.run(job), job.export_id);
      settled = {
        record: {
          ...running,
          status: 'succeeded',
          finished_at: new Date(this.deps.clock()).toISOString(),
          files: outcome.files,
          row_count: outcome.row_count,
        },
      };
    } catch (err) {
      const { body, status } = toErrorResponse(err);
      if (status >= 500) this.deps.logger.error({ err, export_id: job.export_id }, 'export_failed');
      settled = {
        error: err,
        record: {
          ...running,
          status: 'failed',
          finished_at: new Date(this.deps.clock()).toISOString(),
          error: { code: body.error.code, message: body.error.message },
        },
      };
    }
    try {
      await this.deps.records.put(settled.record);
    } catch (err) {
      this.deps.logger.error({ err, export_id: job.export_id }, 'export_record_store_failed');
    }
    const r = settled.record;
    this.deps.audit.export({
      key_name: job.owner,
      export_id: job.export_id,
      dataset: job.dataset.name,
      format: job.format,
      compression: job.compression,
      columns: req.columns ?? null,
      filters: req.filters ?? [],
      row_scoped: rowScoped,
      date_range: req.date_range ?? null,
      limit: req.limit ?? null,
      partition_by: job.partition_by,
      status: r.status === 'succeeded' ? 'succeeded' : 'failed',
      rows: r.row_count ?? null,
      bytes: r.status === 'succeeded' ? r.files.reduce((n, f) => n + f.size, 0) : null,
      duration_ms: this.deps.clock() - started,
      ...(r.error ? { error_code: r.error.code } : {}),
    });
    return settled;
  }

  private async view(r: ExportRecord): Promise<ExportView> {
    const files = await Promise.all(
      r.files.map(async (f) => ({ f, link: await this.deps.links.sign(f.key, r.export_id, r.url_ttl_s) })),
    );
    const done = r.status === 'succeeded';
    const single = files.length === 1 ? files[0] : undefined;
    const expiresAt = files[0] ? new Date(files[0].link.expiresAtMs).toISOString() : null;
    return {
      export_id: r.export_id,
      status: r.status,
      dataset: r.dataset,
      format: r.format,
      compression: r.compression,
      partition_by: r.partition_by,
      file_path: !done ? null : single ? single.f.key : `${EXPORTS_PREFIX}${r.export_id}/`,
      file_size: done ? r.files.reduce((n, f) => n + f.size, 0) : null,
      row_count: r.row_count ?? null,
      schema: r.schema,
      created_at: r.created_at,
      finished_at: r.finished_at ?? null,
      expires_at: expiresAt,
      signed_url: single ? single.link.url : null,
      files: files.map(({ f, link }) => ({ file_path: f.key, file_size: f.size, signed_url: link.url })),
      ...(r.error ? { error: r.error } : {}),
    };
  }
}

/** The engine is trusted to run queries, not to name objects: links only ever point inside the export. */
function checkOutcome(outcome: ExportOutcome, exportId: string): ExportOutcome {
  const ok =
    Number.isSafeInteger(outcome.row_count) &&
    outcome.row_count >= 0 &&
    outcome.files.every(
      (f) => isExportObjectKey(f.key, exportId) && Number.isSafeInteger(f.size) && f.size >= 0,
    );
  if (!ok)
    throw new ParquetryError('engine_contract', 'the engine returned files outside the export or bad counts');
  return { files: outcome.files.map((f) => ({ key: f.key, size: f.size })), row_count: outcome.row_count };
}

async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
