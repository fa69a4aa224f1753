import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commonEnv, env } from '@parquetry/service';
import { z } from 'zod';
import { CRASH_POINTS } from './engine/crash.js';

/** All of the compactor's configuration, parsed once in main() (docs/DESIGN.md "Configuration"). */
export const compactorConfigSchema = z
  .object({
    ...commonEnv,
    HTTP_PORT: env.int(9103, 0, 65535),
    /** Names this instance in catalog intents; a restarted instance rolls its own intents forward. */
    INSTANCE_ID: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default('compactor'),
    /** DuckDB's memory budget; work beyond it spills to DUCKDB_TEMP_DIR instead of failing. */
    DUCKDB_MEMORY_LIMIT: z
      .string()
      .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'must look like 512MB or 2GB')
      .default('1GB'),
    DUCKDB_THREADS: env.int(2, 1, 64),
    /** Local scratch space: staged outputs, DuckDB spill files, S3 downloads. */
    WORK_DIR: z.string().min(1).default(join(tmpdir(), 'parquetry-compactor')),
    /** Compaction's default output size (the seed's target_file_size_mb). */
    TARGET_FILE_SIZE_MB: env.num(128, 1),
    /** How long replaced files stay readable before vacuum deletes them. */
    VACUUM_GRACE_MINUTES: env.num(60, 0),
    /** Scheduled compaction: on by default. */
    POLICY_ENABLED: env.bool(true),
    POLICY_INTERVAL_MS: env.int(15 * 60_000, 1000),
    /** A partition is compacted once it holds more than this many small files. */
    POLICY_MAX_SMALL_FILES: env.int(16, 1),
    /** Files below this size count as small. */
    POLICY_SMALL_FILE_MB: env.num(32, 0.001),
    POLICY_DATASETS: z
      .string()
      .default('products,ticks,candles')
      .transform((s) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      ),
    /** Also vacuum on the policy's schedule. */
    POLICY_VACUUM: env.bool(true),
    /** Job lease on the work queue; kept alive while a job runs. */
    JOB_ACK_WAIT_MS: env.int(60_000, 1000),
    MAX_DELIVER: env.int(5, 1),
    /** For crash tests only: kill -9 this process when the named step is reached. */
    COMPACTOR_CRASH_AT: z.enum(CRASH_POINTS).optional(),
  })
  .refine((c) => c.POLICY_SMALL_FILE_MB <= c.TARGET_FILE_SIZE_MB, {
    message: 'POLICY_SMALL_FILE_MB must not exceed TARGET_FILE_SIZE_MB',
    path: ['POLICY_SMALL_FILE_MB'],
  });

export type CompactorConfig = z.infer<typeof compactorConfigSchema>;
