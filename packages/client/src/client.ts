import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  apiErrorFor,
  ExportFailedError,
  ExportWaitTimeoutError,
  NetworkError,
  ParquetryClientError,
  RequestTimeoutError,
} from './errors.js';
import type {
  CandleSummary,
  CandlesResult,
  CandleWindow,
  DatasetInfo,
  ExportEstimate,
  ExportFile,
  ExportRequest,
  ExportResult,
  Health,
  IndicatorRequest,
  IndicatorResult,
  LatestCandleResult,
  StatsResult,
  Timeframe,
  TimeframesResult,
  TimeInput,
  WarmRequest,
  WarmResult,
} from './types.js';

export interface ClientOptions {
  /** e.g. `http://localhost:8080` */
  baseUrl: string;
  /** `pq_…`; sent as `Authorization: Bearer` to the API, never to download links. */
  apiKey: string;
  /** Per request (default 30 s); downloads time out only while no bytes arrive. */
  timeoutMs?: number;
  /** For tests and instrumentation (default: the global fetch). */
  fetch?: typeof fetch;
}

export interface WaitOptions {
  /** Between polls (default 500 ms, growing to 5 s). */
  intervalMs?: number;
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  path: string;
  bytes: number;
}

export interface BulkExportResult {
  request: ExportRequest;
  result?: ExportResult;
  error?: ParquetryClientError;
}

export type ExportApiClient = ReturnType<typeof createClient>;

/** A typed client for every export-api route. Node 20+ (global fetch and web streams). */
export function createClient(opts: ClientOptions) {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const doFetch = opts.fetch ?? fetch;

  async function send(url: string, init: RequestInit, what: string, withKey: boolean): Promise<Response> {
    const signal = init.signal
      ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs);
    const headers = new Headers(init.headers);
    if (withKey) headers.set('authorization', `Bearer ${opts.apiKey}`);
    try {
      return await doFetch(url, { ...init, headers, signal });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError')
        throw new RequestTimeoutError(`${what}: no answer within ${timeoutMs} ms`, err);
      if ((err as Error).name === 'AbortError') throw err;
      throw new NetworkError(`${what}: ${(err as Error).message}`, err);
    }
  }

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    query?: URLSearchParams,
  ): Promise<T> {
    const url = `${base}${path}${query && [...query.keys()].length > 0 ? `?${query}` : ''}`;
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await send(url, init, `${method} ${path}`, true);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) throw apiErrorFor(res.status, json, res.headers.get('retry-after'));
    if (json === undefined) throw new ParquetryClientError('bad_response', `${method} ${path}: not JSON`);
    return json as T;
  }

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((res, rej) => {
      const t = setTimeout(res, ms);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          rej(signal.reason);
        },
        { once: true },
      );
    });

  const client = {
    /** `GET /health` (no key needed). */
    checkHealth: () => call<Health>('GET', '/health'),

    /** `GET /v1/datasets`: the datasets this key may read. */
    listDatasets: async () => (await call<{ datasets: DatasetInfo[] }>('GET', '/v1/datasets')).datasets,

    /** `POST /v1/exports`: finished (status `succeeded`) or, for large ones, still `running`. */
    requestExport: (req: ExportRequest) => call<ExportResult>('POST', '/v1/exports', req),

    /** `GET /v1/exports/:id` (with freshly signed URLs). */
    getExport: (exportId: string) => call<ExportResult>('GET', `/v1/exports/${encodeURIComponent(exportId)}`),

    /** `POST /v1/exports/estimate`: files, rows and bytes the export would read, nothing run. */
    estimateExportSize: (req: ExportRequest) => call<ExportEstimate>('POST', '/v1/exports/estimate', req),

    /** Polls until the export is finished; throws ExportFailedError or ExportWaitTimeoutError. */
    async waitForExport(exportOrId: string | ExportResult, wait: WaitOptions = {}): Promise<ExportResult> {
      let current = typeof exportOrId === 'string' ? await client.getExport(exportOrId) : exportOrId;
      const started = Date.now();
      const limit = wait.timeoutMs ?? 600_000;
      let interval = wait.intervalMs ?? 500;
      while (current.status === 'running') {
        if (Date.now() - started >= limit)
          throw new ExportWaitTimeoutError(current.export_id, Date.now() - started);
        await sleep(Math.min(interval, Math.max(0, limit - (Date.now() - started))), wait.signal);
        if (wait.intervalMs === undefined) interval = Math.min(5000, Math.round(interval * 1.5));
        current = await client.getExport(current.export_id);
      }
      if (current.status === 'failed') {
        throw new ExportFailedError(
          current.export_id,
          current.error?.code ?? 'failed',
          current.error?.message ?? 'failed',
        );
      }
      return current;
    },

    /**
     * Streams one file (a signed URL, an export file, or a single-file export) to `destPath`:
     * written to `<dest>.part` and renamed when complete, so a failed download leaves nothing.
     * The API key is never sent: the link is the credential (and S3 would refuse it).
     */
    async downloadFile(
      source: string | ExportFile | ExportResult,
      destPath: string,
    ): Promise<DownloadResult> {
      const url = typeof source === 'string' ? source : source.signed_url;
      if (!url) {
        throw new ParquetryClientError(
          'no_signed_url',
          'this export has no single signed URL (still running, failed, or several files: use downloadExport)',
        );
      }
      const res = await send(url, { method: 'GET' }, 'download', false);
      if (!res.ok || !res.body) {
        let json: unknown;
        try {
          json = await res.json();
        } catch {
          json = undefined;
        }
        throw apiErrorFor(res.status, json, res.headers.get('retry-after'));
      }
      const tmp = `${destPath}.part`;
      await mkdir(dirname(resolve(destPath)), { recursive: true });
      let bytes = 0;
      const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
      body.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      try {
        await pipeline(body, createWriteStream(tmp));
        await rename(tmp, destPath);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err instanceof ParquetryClientError
          ? err
          : new NetworkError(`download: ${(err as Error).message}`, err);
      }
      return { path: destPath, bytes };
    },

    /**
     * Every file of a finished export into `dir`, keeping the paths below the export's directory
     * (`retailer=x/data_0.parquet` for partitioned exports). Paths that would leave `dir` are refused.
     */
    async downloadExport(result: ExportResult, dir: string): Promise<DownloadResult[]> {
      const prefix = `exports/${result.export_id}/`;
      const root = resolve(dir);
      const out: DownloadResult[] = [];
      for (const f of result.files) {
        const rel = f.file_path.startsWith(prefix) ? f.file_path.slice(prefix.length) : f.file_path;
        const dest = resolve(root, ...rel.split('/'));
        if (!dest.startsWith(root + sep) || rel.split('/').some((s) => s === '..' || s === '')) {
          throw new ParquetryClientError('bad_file_path', `refusing to write ${f.file_path} outside ${root}`);
        }
        out.push(await client.downloadFile(f, dest));
      }
      return out;
    },

    /**
     * Runs several exports, at most `concurrency` at once, each to the end (waiting for
     * background ones). One failing does not stop the others: each result says which.
     */
    async bulkExport(
      requests: readonly ExportRequest[],
      options: { concurrency?: number; wait?: WaitOptions } = {},
    ): Promise<BulkExportResult[]> {
      const results: BulkExportResult[] = new Array(requests.length);
      let next = 0;
      const worker = async () => {
        while (next < requests.length) {
          const i = next++;
          const request = requests[i]!;
          try {
            const first = await client.requestExport(request);
            results[i] = { request, result: await client.waitForExport(first, options.wait) };
          } catch (err) {
            if (!(err instanceof ParquetryClientError)) throw err;
            results[i] = { request, error: err };
          }
        }
      };
      const n = Math.max(1, Math.min(options.concurrency ?? 2, requests.length));
      await Promise.all(Array.from({ length: n }, worker));
      return results;
    },

    // ---- candles -----------------------------------------------------------------------

    getCandles: (w: CandleWindow) => call<CandlesResult>('GET', '/v1/candles', undefined, windowQuery(w)),
    getLatestCandle: (w: { symbol?: string; timeframe: Timeframe }) =>
      call<LatestCandleResult>('GET', '/v1/candles/latest', undefined, windowQuery(w)),
    getCandleSummary: (w: CandleWindow) =>
      call<CandleSummary>('GET', '/v1/candles/summary', undefined, windowQuery(w)),
    getIndicators: (r: IndicatorRequest) => {
      const q = windowQuery(r);
      q.set('indicator', r.indicator);
      for (const [k, v] of Object.entries(r.params ?? {})) q.set(k, String(v));
      return call<IndicatorResult>('GET', '/v1/candles/indicators', undefined, q);
    },
    getTimeframes: (symbol: string) =>
      call<TimeframesResult>('GET', '/v1/candles/timeframes', undefined, new URLSearchParams({ symbol })),
    warmCache: (req: WarmRequest = {}) => call<WarmResult>('POST', '/v1/cache/warm', req),
    getStats: () => call<StatsResult>('GET', '/v1/stats'),
  };
  return client;
}

function timeText(t: TimeInput): string {
  return t instanceof Date ? t.toISOString() : String(t);
}

function windowQuery(w: Partial<CandleWindow>): URLSearchParams {
  const q = new URLSearchParams();
  if (w.symbol !== undefined) q.set('symbol', w.symbol);
  if (w.timeframe !== undefined) q.set('timeframe', w.timeframe);
  if (w.start !== undefined) q.set('start', timeText(w.start));
  if (w.end !== undefined) q.set('end', timeText(w.end));
  if (w.limit !== undefined) q.set('limit', String(w.limit));
  return q;
}
