import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Bus } from '@parquetry/bus';
import { type Catalog, FsObjectStore, type ObjectStore, PRODUCTS } from '@parquetry/lake';
import type { Metrics } from '@parquetry/service';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type RouteModule } from './app.js';
import { KeyStore } from './auth/keys.js';
import type { ExportApiConfig } from './config.js';
import { SandboxedDuckDB } from './duck/sandboxed-duckdb.js';
import { DuckDbExportEngine } from './exports/duckdb-engine.js';
import type { EngineInfo, ExportEngine, ExportEstimate, ExportJob, ExportOutcome } from './exports/engine.js';
import { LakeDatasets } from './lake/lake-datasets.js';
import { ProductSchemaDiscovery } from './lake/product-schema.js';

/**
 * The wiring of export-api, without a port or signals (main.ts does those): keys from
 * API_KEYS_FILE, the sandboxed DuckDB, the lake datasets, the export engine and the HTTP app.
 * Tests build exactly this and listen on port 0.
 */

type NatsConnection = Bus['nc'];

/** Directories under EXPORT_WORK_DIR; DuckDB may touch these and the lake root, nothing else. */
export function exportApiPaths(config: Pick<ExportApiConfig, 'EXPORT_WORK_DIR'>) {
  const work = config.EXPORT_WORK_DIR;
  return {
    work,
    /** COPY output before upload, one directory per export. */
    stage: join(work, 'stage'),
    /** DuckDB's spill directory, per instance (several may share EXPORT_WORK_DIR). */
    spill: join(work, `spill-${process.pid}-${randomBytes(4).toString('hex')}`),
    /** Local copies of S3 objects for DuckDB (`store.localPath`). */
    s3Cache: join(work, 's3-cache'),
  };
}

/** What route modules (candles, cache, stats) get to build themselves from. */
export interface ExportApiContext {
  config: ExportApiConfig;
  logger: Logger;
  metrics?: Metrics | undefined;
  nc: NatsConnection;
  catalog: Catalog;
  store: ObjectStore;
  duck: SandboxedDuckDB;
}

export interface ExportApiDeps {
  config: ExportApiConfig;
  logger: Logger;
  metrics?: Metrics;
  nc: NatsConnection;
  catalog: Catalog;
  /** Opened with `cacheDir: exportApiPaths(config).s3Cache` when on S3 (main does that). */
  store: ObjectStore;
  /** Whether the bus is connected, for /ready (default: the connection is not closed). */
  isConnected?: () => boolean;
  routeModules?: (ctx: ExportApiContext) => readonly RouteModule[] | Promise<readonly RouteModule[]>;
  version?: string;
}

export interface ExportApi {
  app: FastifyInstance;
  duck: SandboxedDuckDB;
  engine: DrainingEngine;
  /** Stops taking requests, waits (up to `drainMs`) for running exports, then frees everything it opened. */
  stop(opts?: { drainMs?: number }): Promise<void>;
}

export async function createExportApi(deps: ExportApiDeps): Promise<ExportApi> {
  const { config, logger, store, catalog, nc } = deps;
  const paths = exportApiPaths(config);
  mkdirSync(paths.stage, { recursive: true });
  const lakeDirs = store instanceof FsObjectStore ? [store.root] : [paths.s3Cache];
  const duck = await SandboxedDuckDB.open({
    allowedDirectories: [...lakeDirs, paths.work],
    tempDirectory: paths.spill,
    memoryLimitMb: config.DUCKDB_MEMORY_MB,
    ...(config.DUCKDB_THREADS > 0 ? { threads: config.DUCKDB_THREADS } : {}),
    preserveInsertionOrder: false,
  });
  const cleanups: (() => void | Promise<void>)[] = [
    () => duck.close(),
    () => rmSync(paths.spill, { recursive: true, force: true }),
  ];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err }, 'cleanup_step_failed');
      }
    }
  };
  try {
    const keys = await KeyStore.fromFile(config.API_KEYS_FILE);
    if (config.API_KEYS_RELOAD_S > 0) {
      cleanups.push(
        keys.autoRefresh(config.API_KEYS_RELOAD_S * 1000, (err) =>
          logger.warn({ err }, 'api_keys_reload_failed'),
        ),
      );
    }

    const discovery = new ProductSchemaDiscovery({ catalog, store, duck: duck.pool(1), logger });
    const sub = nc.subscribe(`lake.committed.${PRODUCTS.name}`, {
      callback: (err) => {
        if (!err) discovery.invalidate();
      },
    });
    cleanups.push(() => sub.unsubscribe());
    const datasets = new LakeDatasets({ productColumns: () => discovery.columns() });

    const engine = new DrainingEngine(
      new DuckDbExportEngine({
        catalog,
        store,
        datasets,
        duck: duck.pool(config.EXPORT_CONCURRENCY),
        duckdbVersion: duck.version,
        workDir: paths.stage,
        logger,
        maxFiles: config.EXPORT_MAX_FILES,
      }),
    );
    const ctx: ExportApiContext = { config, logger, metrics: deps.metrics, nc, catalog, store, duck };
    const modules = deps.routeModules ? await deps.routeModules(ctx) : [];
    const isConnected = deps.isConnected ?? (() => !nc.isClosed());
    const app = await buildApp({
      config,
      logger,
      keys,
      datasets,
      store,
      engine,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
      ready: isConnected,
      routeModules: modules,
      ...(deps.version ? { version: deps.version } : {}),
    });
    let stopped = false;
    return {
      app,
      duck,
      engine,
      async stop(opts = {}) {
        if (stopped) return;
        stopped = true;
        await app.close();
        const left = await engine.drain(opts.drainMs ?? 30_000);
        if (left > 0) logger.warn({ running: left }, 'stopping_with_exports_running');
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The engine, counting running exports so a shutdown can wait for them. */
export class DrainingEngine implements ExportEngine {
  private readonly running = new Set<Promise<unknown>>();
  constructor(private readonly inner: ExportEngine) {}

  info(): EngineInfo | Promise<EngineInfo> {
    return this.inner.info();
  }

  estimate(job: Pick<ExportJob, 'dataset' | 'query'>): Promise<ExportEstimate> {
    if (!this.inner.estimate) return Promise.reject(new Error('this engine cannot estimate'));
    return this.inner.estimate(job);
  }

  get inFlight(): number {
    return this.running.size;
  }

  run(job: ExportJob): Promise<ExportOutcome> {
    const p = this.inner.run(job);
    const tracked = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return p;
  }

  /** Waits until no export runs or `ms` passed; returns how many still run. */
  async drain(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.running.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.running]),
        new Promise((r) => {
          timer = setTimeout(r, Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
    }
    return this.running.size;
  }
}
