import type { Catalog, ColumnType, FileEntry, ObjectStore } from '@parquetry/lake';
import { PRODUCTS } from '@parquetry/lake';
import type { Logger } from 'pino';
import type { ConnectionPool } from '../duck/sandboxed-duckdb.js';
import { columnTypeOf, widenType } from './column-types.js';
import { describeFiles } from './source-sql.js';

export interface ProductSchemaDeps {
  catalog: Pick<Catalog, 'partitions'>;
  store: Pick<ObjectStore, 'localPath'>;
  duck: ConnectionPool;
  logger: Logger;
  clock?: () => number;
  /** Files per DESCRIBE statement (newest first). */
  sampleFiles?: number;
  /**
   * New files described per refresh, in statements of `sampleFiles`. A column found only in a
   * file not yet described is missing from exports until then, so this is generous (default 2048).
   */
  maxFilesPerRefresh?: number;
  /** How long a discovered schema is served before the next refresh. */
  ttlMs?: number;
}

const MAX_REMEMBERED_FILES = 100_000;

/**
 * The free-form columns of `products`, discovered from live files: each refresh describes up
 * to `maxFilesPerRefresh` files not seen before, `sampleFiles` per statement (newest first;
 * footers only on a filesystem lake), and
 * adds their columns to what is known. Columns are never forgotten while the process runs, so
 * the schema only grows; two files that disagree on a type make it wider (see widenType).
 * Refreshes are single-flight; a failed refresh keeps serving the last schema.
 */
export class ProductSchemaDiscovery {
  private readonly known = new Map<string, ColumnType>();
  private readonly described = new Set<string>();
  private refreshedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly clock: () => number;
  private readonly sampleFiles: number;
  private readonly maxFilesPerRefresh: number;
  private readonly ttlMs: number;

  constructor(private readonly deps: ProductSchemaDeps) {
    this.clock = deps.clock ?? Date.now;
    this.sampleFiles = deps.sampleFiles ?? 32;
    this.maxFilesPerRefresh = Math.max(this.sampleFiles, deps.maxFilesPerRefresh ?? 2048);
    this.ttlMs = deps.ttlMs ?? 60_000;
  }

  /** Discovered columns beyond the fixed ones, name → type. */
  async columns(): Promise<Record<string, ColumnType>> {
    if (this.clock() - this.refreshedAt >= this.ttlMs) {
      this.inflight ??= this.refresh().finally(() => {
        this.inflight = undefined;
      });
      await this.inflight;
    }
    const out: Record<string, ColumnType> = {};
    for (const [name, type] of this.known) if (!Object.hasOwn(PRODUCTS.columns, name)) out[name] = type;
    return out;
  }

  /** Marks the cache stale (a commit of products was announced). */
  invalidate(): void {
    this.refreshedAt = Number.NEGATIVE_INFINITY;
  }

  private async refresh(): Promise<void> {
    try {
      const partitions = await this.deps.catalog.partitions(PRODUCTS.name);
      const fresh: FileEntry[] = partitions
        .flatMap((p) => p.files)
        .filter((f) => !this.described.has(f.path))
        .sort((a, b) => (a.committedAt < b.committedAt ? 1 : a.committedAt > b.committedAt ? -1 : 0))
        .slice(0, this.maxFilesPerRefresh);
      for (let i = 0; i < fresh.length; i += this.sampleFiles) {
        const chunk = fresh.slice(i, i + this.sampleFiles);
        const paths = await Promise.all(chunk.map((f) => this.deps.store.localPath(f.path)));
        const columns = await this.deps.duck.use((conn) => describeFiles(conn, paths));
        this.merge(columns);
        if (this.described.size > MAX_REMEMBERED_FILES) this.described.clear();
        for (const f of chunk) this.described.add(f.path);
      }
      this.refreshedAt = this.clock();
    } catch (err) {
      // Serve what is known; try again on the next call after a short pause.
      this.deps.logger.warn({ err, dataset: PRODUCTS.name }, 'product_schema_discovery_failed');
      this.refreshedAt = this.clock() - this.ttlMs + Math.min(this.ttlMs, 5000);
    }
  }

  private merge(columns: Record<string, string>): void {
    const byLower = new Map([...this.known.keys()].map((k) => [k.toLowerCase(), k]));
    for (const [name, duckType] of Object.entries(columns)) {
      const type = columnTypeOf(duckType);
      // DuckDB compares names ignoring case: `Precio` and `precio` are one column.
      const existing = byLower.get(name.toLowerCase());
      if (existing === undefined) {
        this.known.set(name, type);
        byLower.set(name.toLowerCase(), name);
      } else {
        this.known.set(existing, widenType(this.known.get(existing)!, type));
      }
    }
  }
}
