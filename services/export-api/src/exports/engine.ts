import type { CompiledQuery } from '@parquetry/lake';
import type { Compression, ExportFormat } from '../api/schemas.js';
import type { DatasetInfo } from '../datasets.js';

/**
 * The seam between the HTTP layer and the code that reads the lake. The API has already
 * authenticated, authorised, validated and compiled everything in a job: the engine picks the
 * catalog's live files (pruning with `query.predicates` / `query.timeRange` if it likes), fills
 * the FROM clause with `withSource(query, read_parquet([...]))`, runs it on a sandboxed DuckDB
 * (query/sandbox.ts) with `query.params` bound, and writes the result under `output_prefix`.
 */
export interface ExportJob {
  export_id: string;
  /** Name of the key that asked; for logs only, the scope is already in `query`. */
  owner: string;
  dataset: DatasetInfo;
  format: ExportFormat;
  compression: Compression;
  /** Validated columns (also in `query.partitionBy`); values must be written with the lake's hive encoding. */
  partition_by: string[];
  query: CompiledQuery;
  /** `exports/<export_id>/`: every object of this export goes under it, nothing elsewhere. */
  output_prefix: string;
  created_at: string;
}

export interface ExportedFile {
  /** Object key, under `output_prefix`. */
  key: string;
  size: number;
}

export interface ExportOutcome {
  files: ExportedFile[];
  row_count: number;
}

export interface EngineInfo {
  parquet_support: boolean;
  duckdb_version: string | null;
}

export interface ExportEngine {
  /**
   * Runs the job to the end. Throw a ParquetryError 4xx (InvalidInputError…) for what the
   * caller can fix (too many partitions, result too large), anything else for failures.
   */
  run(job: ExportJob): Promise<ExportOutcome>;
  info(): EngineInfo | Promise<EngineInfo>;
  /** What the job would read, from catalog metadata alone (no file is opened). */
  estimate?(job: Pick<ExportJob, 'dataset' | 'query'>): Promise<ExportEstimate>;
}

/** Live files that may hold matching rows after pruning, and their totals (upper bounds). */
export interface ExportEstimate {
  files: number;
  rows: number;
  bytes: number;
}
