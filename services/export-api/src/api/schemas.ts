import {
  columnsSchema,
  datasetNameSchema,
  dateRangeSchema,
  filtersSchema,
  limitSchema,
  partitionBySchema,
} from '@parquetry/lake';
import { z } from 'zod';

/**
 * Request and response bodies of export-api: the one source for validation (routes parse
 * requests and responses with them) and for the OpenAPI document (openapi.ts).
 */

export const EXPORT_FORMATS = ['parquet', 'csv', 'json'] as const;
export const PARQUET_COMPRESSIONS = ['snappy', 'zstd', 'gzip', 'brotli', 'lz4', 'none'] as const;
/** CSV and NDJSON are gzip-compressed or not at all. */
export const TEXT_COMPRESSIONS = ['gzip', 'none'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export type Compression = (typeof PARQUET_COMPRESSIONS)[number];

export const exportRequestSchema = z
  .object({
    dataset: datasetNameSchema,
    format: z.enum(EXPORT_FORMATS).describe('`json` is NDJSON, one object per line'),
    compression: z
      .enum(PARQUET_COMPRESSIONS)
      .optional()
      .describe('parquet: any (default snappy); csv and json: gzip or none (default none)'),
    partition_by: partitionBySchema.optional().describe('write one file per value of these columns'),
    date_range: dateRangeSchema.optional().describe("on the dataset's time column"),
    filters: filtersSchema.optional(),
    columns: columnsSchema.optional().describe('default: every column'),
    limit: limitSchema.optional().describe('at most this many rows, oldest first'),
    expires_in: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('lifetime of the signed URL in seconds (default 3600; at most the configured maximum)'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (
      r.format !== 'parquet' &&
      r.compression &&
      !(TEXT_COMPRESSIONS as readonly string[]).includes(r.compression)
    ) {
      ctx.addIssue({ code: 'custom', path: ['compression'], message: `${r.format} supports gzip or none` });
    }
  });
export type ExportRequest = z.infer<typeof exportRequestSchema>;

export function defaultCompression(format: ExportFormat): Compression {
  return format === 'parquet' ? 'snappy' : 'none';
}

export const EXPORT_STATUSES = ['running', 'succeeded', 'failed'] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

export const exportFileSchema = z.object({
  file_path: z.string().describe('object key under the lake root'),
  file_size: z.number().int().nonnegative(),
  signed_url: z.string(),
});

export const exportSchema = z.object({
  export_id: z.string(),
  status: z.enum(EXPORT_STATUSES),
  dataset: z.string(),
  format: z.enum(EXPORT_FORMATS),
  compression: z.enum(PARQUET_COMPRESSIONS),
  partition_by: z.array(z.string()),
  file_path: z.string().nullable().describe('the file, or the export directory when it has several'),
  file_size: z.number().int().nonnegative().nullable().describe('bytes, all files together'),
  row_count: z.number().int().nonnegative().nullable(),
  schema: z.record(z.string(), z.string()).nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
  expires_at: z.string().nullable().describe('when the signed URLs stop working'),
  signed_url: z
    .string()
    .nullable()
    .describe('the single file; null while running, on failure, or with several files'),
  files: z.array(exportFileSchema),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type ExportView = z.infer<typeof exportSchema>;

export const exportEstimateSchema = z.object({
  dataset: z.string(),
  source_files: z.number().int().nonnegative().describe('live files the export would read, after pruning'),
  source_rows: z.number().int().nonnegative().describe('rows in those files (an upper bound before filters)'),
  source_bytes: z.number().int().nonnegative().describe('Parquet bytes of those files'),
  max_rows: z
    .number()
    .int()
    .nonnegative()
    .nullable()
    .describe('at most this many rows: the smaller of source_rows and limit; null for derived datasets'),
});
export type ExportEstimateView = z.infer<typeof exportEstimateSchema>;

export const datasetsResponseSchema = z.object({
  datasets: z.array(
    z.object({
      name: z.string(),
      description: z.string().optional(),
      partition_columns: z.array(z.string()),
      schema: z.record(z.string(), z.string()).describe('column → DuckDB type'),
      columns: z.array(z.string()),
      time_column: z.string().optional(),
      derived_from: z
        .string()
        .optional()
        .describe('built from this dataset: readable with its scope, and its row scopes apply'),
    }),
  ),
});

export const healthResponseSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  parquet_support: z.boolean(),
  duckdb_version: z.string().nullable(),
  available_datasets: z.array(z.string()),
  timestamp: z.string(),
});

export const keysResponseSchema = z.object({
  keys: z.array(
    z.object({
      name: z.string(),
      datasets: z.array(z.string()),
      admin: z.boolean(),
      revoked: z.boolean(),
      row_scoped_datasets: z.array(z.string()),
      created_at: z.string(),
    }),
  ),
});

export const errorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
