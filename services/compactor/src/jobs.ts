import { LAKE_OPS, type LakeOp } from '@parquetry/bus';
import { datasetNameSchema, filtersSchema } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { z } from 'zod';

/**
 * The payload of each `lake.ops.<op>` job (and of the matching CLI command): JSON, snake_case,
 * validated here. Filters and expressions are checked again against the dataset's schema when
 * the operation plans (they are `unknown` until then).
 */

/** The ops of the `lake.ops.<op>` subjects (one list, in the bus package). */
export const COMPACTOR_OPS = LAKE_OPS;
export type CompactorOp = LakeOp;
/** Operations that rewrite files through one catalog commit. */
export type RewriteOp = Exclude<CompactorOp, 'vacuum' | 'cleanup'>;

/** Op ids name backups (`_backups/<op-id>/`), commits and result subjects. */
export const opIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}')
  .describe('Idempotency key of the operation: running it again with the same id never applies it twice');

const sizeMb = z.number().positive().max(1_000_000);

const base = {
  op_id: opIdSchema.optional(),
  dataset: datasetNameSchema,
  /** Partition filter (export filter language over partition columns): only matching partitions are touched. */
  partitions: filtersSchema.optional(),
  /** Report exactly what would change (partitions, files, rows) and change nothing. */
  dry_run: z.boolean().default(false),
  /** Copy every replaced file to `_backups/<op-id>/<its path>` before the commit. */
  backup: z.boolean().default(false),
};

export const compactJobSchema = z
  .object({
    ...base,
    /** Size of the merged files (default: the compactor's TARGET_FILE_SIZE_MB, 128). */
    target_file_size_mb: sizeMb.optional(),
    /** A partition is compacted only when it has at least this many small files. */
    min_file_count: z.number().int().min(2).max(1_000_000).default(2),
    /** Files of this size or more are left alone (default: the target size). */
    max_file_size_mb: sizeMb.optional(),
  })
  .strict();

export const repartitionJobSchema = z
  .object({
    ...base,
    /**
     * New value of each partition column, as an expression over the row (expressions.ts), e.g.
     * `{"date": {"fn": "date", "args": [{"column": "ts"}]}}`. Columns left out keep their value.
     */
    partition_by: z
      .record(z.string(), z.unknown())
      .refine((r) => Object.keys(r).length > 0, 'name at least one column'),
    target_file_size_mb: sizeMb.optional(),
  })
  .strict();

export const deleteJobSchema = z
  .object({
    ...base,
    /** Rows matching ALL filters are deleted; `[]` deletes every row of the selected partitions. */
    filters: z.array(z.unknown()).max(64),
    target_file_size_mb: sizeMb.optional(),
  })
  .strict();

export const updateJobSchema = z
  .object({
    ...base,
    /** Rows matching ALL filters are updated; `[]` updates every row of the selected partitions. */
    filters: z.array(z.unknown()).max(64),
    /** Column → expression (or a plain JSON literal). */
    set: z
      .record(z.string(), z.unknown())
      .refine((r) => Object.keys(r).length > 0, 'set at least one column'),
    target_file_size_mb: sizeMb.optional(),
  })
  .strict();

export const upsertSourceSchema = z.union([
  z
    .object({ key: z.string().min(1).max(1024) })
    .strict()
    .describe('An object in the lake store, e.g. _incoming/x.parquet'),
  z
    .object({ path: z.string().min(1).max(4096) })
    .strict()
    .describe('A local file (CLI only)'),
]);

export const upsertJobSchema = z
  .object({
    ...base,
    source: upsertSourceSchema,
    /** Default: from the file name's extension. */
    format: z.enum(['parquet', 'csv', 'ndjson']).optional(),
    /** Identify a row within its partition (the partition columns are always part of the key). */
    key_columns: z.array(z.string().min(1).max(128)).min(1).max(16),
    /** Columns updated on a match (default: every column of the file except keys and partition columns). */
    update_columns: z.array(z.string().min(1).max(128)).min(1).max(512).optional(),
    target_file_size_mb: sizeMb.optional(),
  })
  .strict();

export const vacuumJobSchema = z
  .object({
    op_id: opIdSchema.optional(),
    /** One dataset, or all. */
    dataset: datasetNameSchema.optional(),
    /** Default: VACUUM_GRACE_MINUTES. */
    grace_minutes: z.number().min(0).max(525_600).optional(),
    dry_run: z.boolean().default(false),
  })
  .strict();

export const cleanupJobSchema = z
  .object({
    op_id: opIdSchema.optional(),
    /** Partitions dated more than this many days ago are dropped (retention). */
    days: z.number().int().min(0).max(36_500),
    grace_minutes: z.number().min(0).max(525_600).optional(),
    dry_run: z.boolean().default(false),
  })
  .strict();

export type CompactJob = z.infer<typeof compactJobSchema>;
export type RepartitionJob = z.infer<typeof repartitionJobSchema>;
export type DeleteJob = z.infer<typeof deleteJobSchema>;
export type UpdateJob = z.infer<typeof updateJobSchema>;
export type UpsertJob = z.infer<typeof upsertJobSchema>;
export type VacuumJob = z.infer<typeof vacuumJobSchema>;
export type CleanupJob = z.infer<typeof cleanupJobSchema>;

export const JOB_SCHEMAS = {
  compact: compactJobSchema,
  repartition: repartitionJobSchema,
  delete: deleteJobSchema,
  update: updateJobSchema,
  upsert: upsertJobSchema,
  vacuum: vacuumJobSchema,
  cleanup: cleanupJobSchema,
} as const;

export type JobOf<O extends CompactorOp> = z.infer<(typeof JOB_SCHEMAS)[O]>;
export type JobInput<O extends CompactorOp> = z.input<(typeof JOB_SCHEMAS)[O]>;

export function isCompactorOp(op: string): op is CompactorOp {
  return (COMPACTOR_OPS as readonly string[]).includes(op);
}

/** Validates a job payload; InvalidInputError (dead-lettered on the queue, exit 2 in the CLI) names the field. */
export function parseJob<O extends CompactorOp>(op: O, raw: unknown): JobOf<O> {
  const parsed = JOB_SCHEMAS[op].safeParse(raw);
  if (parsed.success) return parsed.data as JobOf<O>;
  const issues = parsed.error.issues
    .slice(0, 10)
    .map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const first = issues[0];
  throw new InvalidInputError(
    `${op} job: ${first ? `${first.path || '(job)'}: ${first.message}` : 'invalid'}`,
    {
      code: 'invalid_job',
      details: { issues },
    },
  );
}
