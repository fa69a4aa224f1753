import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  type DuckDBType,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import {
  type BoundType,
  type Catalog,
  type FileEntry,
  type ObjectStore,
  PRODUCTS,
  sqlString,
  withSource,
} from '@parquetry/lake';
import { InvalidInputError, mapLimit, NotFoundError } from '@parquetry/service';
import type { Logger } from 'pino';
import type { DatasetInfo } from '../datasets.js';
import type { ConnectionPool } from '../duck/sandboxed-duckdb.js';
import type { DatasetSource, LakeDatasets } from '../lake/lake-datasets.js';
import { productPricesDailySql } from '../lake/product-prices.js';
import { dayMayMatchTime, fileMayMatchTime, partitionMayMatch } from '../lake/pruning.js';
import {
  describeFiles,
  emptyRelationSql,
  latestRevisionSql,
  projectedSql,
  readParquetSql,
} from '../lake/source-sql.js';
import {
  copyOptions,
  exportPartitionDir,
  fileExtension,
  partitionValuesOf,
  withPartitionKeysSql,
} from './copy-sql.js';
import type {
  EngineInfo,
  ExportEngine,
  ExportEstimate,
  ExportedFile,
  ExportJob,
  ExportOutcome,
} from './engine.js';

export interface DuckDbExportEngineDeps {
  catalog: Pick<Catalog, 'partitions'>;
  store: Pick<ObjectStore, 'localPath' | 'putFile' | 'delete'>;
  datasets: Pick<LakeDatasets, 'get'>;
  /** Connections for export queries (a pool of their own: exports are long). */
  duck: ConnectionPool;
  duckdbVersion: string;
  /** Staging directory for COPY output; must be inside the sandbox's allowed directories. */
  workDir: string;
  logger: Logger;
  /** More files than this (partition_by) fail the export with 400. */
  maxFiles?: number;
  /** Concurrent downloads (S3) and uploads per export. */
  ioConcurrency?: number;
}

const BIND_TYPES: Record<BoundType, DuckDBType> = { VARCHAR, DOUBLE, BIGINT, INTEGER, BOOLEAN };
const MAX_KEY_SEGMENT = 255;

interface Written {
  /** Absolute path of the local file. */
  local: string;
  /** Object key under the export's prefix. */
  key: string;
}

/**
 * ExportEngine on DuckDB (exports/engine.ts has the contract). For a job it takes the live
 * files of the dataset from the catalog, skips partitions and files that cannot match
 * (lake/pruning.ts), makes them local (`store.localPath`: the file itself on disk, a cached
 * download on S3), runs the compiled query inside `COPY (…) TO '<staging>'` on the sandboxed
 * DuckDB with the parameters bound, and uploads what it wrote under `exports/<id>/`. Memory
 * stays bounded by DuckDB's memory_limit (it spills to its temp directory and streams COPY
 * output to disk); nothing of the result passes through JS.
 */
export class DuckDbExportEngine implements ExportEngine {
  private readonly maxFiles: number;
  private readonly io: number;

  constructor(private readonly deps: DuckDbExportEngineDeps) {
    this.maxFiles = deps.maxFiles ?? 1000;
    this.io = deps.ioConcurrency ?? 4;
  }

  info(): EngineInfo {
    return { parquet_support: true, duckdb_version: this.deps.duckdbVersion };
  }

  async run(job: ExportJob): Promise<ExportOutcome> {
    const entry = await this.deps.datasets.get(job.dataset.name);
    if (!entry) throw new NotFoundError(`dataset ${job.dataset.name} is not in the lake`);
    const files = await this.selectFiles(entry.source, job);
    const paths = await mapLimit(files, this.io, (f) => this.deps.store.localPath(f.path));
    const stage = join(this.deps.workDir, `${job.export_id}-${randomBytes(4).toString('hex')}`);
    await mkdir(stage, { recursive: true });
    const uploaded: string[] = [];
    try {
      const { written, rows } = await this.deps.duck.use(async (conn) => {
        const source = await this.sourceSql(conn, entry.source, job.dataset, paths);
        return this.copy(conn, job, withSource(job.query, source), stage);
      });
      if (written.length > this.maxFiles) {
        throw new InvalidInputError(
          `the export would write ${written.length} files; at most ${this.maxFiles} (use fewer partition_by values)`,
          { code: 'too_many_files', details: { files: written.length, max: this.maxFiles } },
        );
      }
      const out = await mapLimit(written, this.io, async (w): Promise<ExportedFile> => {
        const size = (await stat(w.local)).size;
        await this.deps.store.putFile(w.key, w.local, { move: true });
        uploaded.push(w.key);
        return { key: w.key, size };
      });
      this.deps.logger.debug(
        { export_id: job.export_id, source_files: files.length, files: out.length, rows },
        'export_written',
      );
      return { files: out.sort((a, b) => (a.key < b.key ? -1 : 1)), row_count: rows };
    } catch (err) {
      await Promise.all(uploaded.map((k) => this.deps.store.delete(k).catch(() => {})));
      throw err;
    } finally {
      await rm(stage, { recursive: true, force: true }).catch(() => {});
    }
  }

  async estimate(job: Pick<ExportJob, 'dataset' | 'query'>): Promise<ExportEstimate> {
    const entry = await this.deps.datasets.get(job.dataset.name);
    if (!entry) throw new NotFoundError(`dataset ${job.dataset.name} is not in the lake`);
    const files = await this.selectFiles(entry.source, job);
    return {
      files: files.length,
      rows: files.reduce((n, f) => n + f.rows, 0),
      bytes: files.reduce((n, f) => n + f.bytes, 0),
    };
  }

  /** Live files that may hold matching rows: partitions by their values, files by their time range. */
  private async selectFiles(
    source: DatasetSource,
    job: Pick<ExportJob, 'dataset' | 'query'>,
  ): Promise<FileEntry[]> {
    const { predicates, timeRange } = job.query;
    if (source.kind === 'product_prices_daily') {
      const types = { retailer: 'VARCHAR', date: 'DATE' } as const;
      const partitions = await this.deps.catalog.partitions(
        PRODUCTS.name,
        (values) => partitionMayMatch(values, predicates, types) && dayMayMatchTime(values.date, timeRange),
      );
      return partitions.flatMap((p) => p.files);
    }
    const fixed = source.fixed ?? {};
    const partitions = await this.deps.catalog.partitions(
      source.dataset,
      (values) =>
        Object.entries(fixed).every(([k, v]) => values[k] === v) &&
        partitionMayMatch(values, predicates, job.dataset.schema),
    );
    return partitions.flatMap((p) => p.files).filter((f) => fileMayMatchTime(f, timeRange));
  }

  /** The relation the compiled query reads, with exactly the dataset's columns. */
  private async sourceSql(
    conn: DuckDBConnection,
    source: DatasetSource,
    dataset: DatasetInfo,
    paths: readonly string[],
  ): Promise<string> {
    if (paths.length === 0) return emptyRelationSql(dataset.schema);
    const columns = await describeFiles(conn, paths);
    if (source.kind === 'product_prices_daily') return productPricesDailySql(readParquetSql(paths), columns);
    const projected = projectedSql(readParquetSql(paths), columns, dataset.schema);
    return source.latestRevision ? latestRevisionSql(projected) : projected;
  }

  private async copy(
    conn: DuckDBConnection,
    job: ExportJob,
    querySql: string,
    stage: string,
  ): Promise<{ written: Written[]; rows: number }> {
    const { params, paramTypes } = job.query;
    const types = paramTypes.map((t) => BIND_TYPES[t]);
    const ext = fileExtension(job.format, job.compression);
    const run = async (sql: string) => {
      const r = await conn.runAndReadAll(sql, params, types);
      return Number(r.getRowObjectsJS()[0]?.Count ?? 0);
    };

    if (job.partition_by.length === 0) {
      const local = join(stage, `data.${ext}`);
      const rows = await run(
        `COPY (${querySql}) TO ${sqlString(local)} (${copyOptions(job.format, job.compression)})`,
      );
      return { written: [{ local, key: `${job.output_prefix}data.${ext}` }], rows };
    }

    // DuckDB's JSON writer cannot partition: stage partitioned Parquet, then convert each file.
    const direct = job.format !== 'json';
    const dir = join(stage, 'parts');
    const keyed = withPartitionKeysSql(querySql, job.partition_by);
    const options = direct
      ? copyOptions(job.format, job.compression, { partitionKeys: job.partition_by.length })
      : copyOptions('parquet', 'snappy', { partitionKeys: job.partition_by.length });
    const rows = await run(`COPY (${keyed}) TO ${sqlString(dir)} (${options})`);
    const parts = rows === 0 ? [] : await listFiles(dir);
    const written: Written[] = [];
    for (const [n, local] of parts.entries()) {
      const rel = relative(dir, local).split(sep).join('/');
      const values = partitionValuesOf(rel, job.partition_by);
      if (!values) throw new Error(`unexpected file in partitioned COPY output: ${rel}`);
      const partDir = exportPartitionDir(job.partition_by, values);
      if (partDir.split('/').some((s) => s.length > MAX_KEY_SEGMENT)) {
        throw new InvalidInputError('a partition value is too long to name a file', {
          code: 'partition_value_too_long',
        });
      }
      let file = local;
      if (!direct) {
        file = join(stage, `part-${n}.${ext}`);
        await conn.run(
          `COPY (SELECT * FROM read_parquet(${sqlString(local)})) TO ${sqlString(file)} ` +
            `(${copyOptions('json', job.compression)})`,
        );
        await rm(local, { force: true });
      }
      const base = rel.split('/').at(-1)!.replace(/\..*$/, '');
      written.push({ local: file, key: `${job.output_prefix}${partDir}/${base}.${ext}` });
    }
    return { written, rows };
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  return out.sort();
}
