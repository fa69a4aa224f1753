import { commonEnv, env } from '@parquetry/service';
import { z } from 'zod';

/** All of ingest-backup's configuration, parsed once in main() (docs/DESIGN.md "Configuration"). */
export const ingestConfigSchema = z.object({
  ...commonEnv,
  HTTP_PORT: env.int(9101, 0, 65535),
  /** Distinguishes instances in the catalog's intent log and the consumer checkpoint. */
  INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .default('ingest-backup'),
  PARQUET_COMPRESSION: z.enum(['snappy', 'zstd', 'gzip', 'brotli', 'lz4', 'none']).default('snappy'),
  /** Split a backup into several files above this size (the seed's max_file_size_mb). */
  MAX_FILE_SIZE_MB: env.num(100, 0.01),
  /** Retention: files older than this many days are removed (the seed's max_age_days). */
  PARQUET_MAX_AGE_DAYS: env.int(30, 1),
  RETENTION_INTERVAL_MS: env.int(3_600_000, 1000),
  /** Flush a buffered partition after this long … */
  FLUSH_MAX_AGE_MS: env.int(5000, 10),
  /** … or once it holds this much (estimated heap of the parsed messages) … */
  FLUSH_GROUP_MB: env.num(32, 0.01),
  /** … and never hold more than this across all partitions: memory stays bounded. */
  BUFFER_MAX_MB: env.num(64, 0.01),
  /** Messages above this are dead-lettered unparsed. */
  MAX_MESSAGE_BYTES: env.int(8 * 1024 * 1024, 1024),
  FETCH_BATCH: env.int(500, 1, 10_000),
  /** JetStream ack_wait: a message a dead instance held is redelivered after this long. */
  ACK_WAIT_MS: env.int(60_000, 1000),
  /** Deliveries of a message whose flush keeps failing (store or bus down) before it is dead-lettered. */
  MAX_DELIVER: env.int(100, 1),
  /** Archive raw ticks too (market.ticks.>). */
  ARCHIVE_TICKS: env.bool(true),
  /**
   * Threads per DuckDB query. Two product groups are written at once, each on its own
   * connection, so one thread each keeps both cores busy: 157–161k products/s at 8.4–8.9 CPU s
   * against 147–152k at 9.2–9.5 with 2 (bench/ingest).
   */
  DUCKDB_THREADS: env.int(1, 1, 64),
  /** DuckDB's memory_limit: a flush that needs more spills to its temp directory. */
  DUCKDB_MEMORY_MB: env.int(256, 64),
});

export type IngestConfig = z.infer<typeof ingestConfigSchema>;
