import { commonEnv, env } from '@parquetry/service';
import { z } from 'zod';

/**
 * All of candle-aggregator's configuration, parsed once in main() (docs/DESIGN.md
 * "Configuration"; the choices behind each knob are in docs/adr/0003-candle-layout.md).
 */
export const candleConfigSchema = z
  .object({
    ...commonEnv,
    HTTP_PORT: env.int(9102, 0, 65535),
    /** Names this process as owner of its partitions and as catalog writer: unique per instance. */
    INSTANCE_ID: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default('candle-aggregator'),
    /** Symbols are hashed into this many partitions; fixed for the life of a deployment. */
    CANDLE_PARTITIONS: env.int(1, 1, 1024),
    /** This instance owns the partitions p with p % INSTANCE_COUNT === INSTANCE_INDEX. */
    INSTANCE_INDEX: env.int(0, 0, 1023),
    INSTANCE_COUNT: env.int(1, 1, 1024),
    /** A candle closes once its symbol's event time passes its end plus this. */
    CANDLE_GRACE_MS: env.int(2_000, 0),
    /** After closing, late ticks still correct a candle (revision + 1) for this long. */
    CANDLE_LATENESS_MS: env.int(15 * 60_000, 0),
    /** Ticks further than this after the time the stream stored them are dead-lettered `future`. */
    MAX_FUTURE_MS: env.int(60_000, 0),
    /** A symbol without ticks for this long (stream time) has its event time follow the stream clock. */
    IDLE_CLOSE_MS: env.int(10_000, 0),
    /** Wall-clock quiet time (consumer caught up, no message) after which the stream clock follows the wall clock; 0 = never. */
    QUIET_CLOSE_MS: env.int(10_000, 0),
    /** Write closed candles to the lake at least this often … */
    LAKE_FLUSH_MS: env.int(5_000, 10),
    /** … or once this many candles wait. */
    LAKE_FLUSH_CANDLES: env.int(100_000, 1),
    /** Persist each partition's state this often: bounds the replay after a crash. */
    SNAPSHOT_INTERVAL_MS: env.int(30_000, 10),
    /** A candle partition with more live files than this is rewritten into one or two. */
    COMPACT_MAX_FILES: env.int(4, 2, 1000),
    /** Ownership of a partition lapses this long after its owner's last renewal (kill -9). */
    OWNERSHIP_TTL_MS: env.int(15_000, 1000),
    /** Messages per pull from JetStream. */
    FETCH_BATCH: env.int(2_000, 1, 10_000),
    /** Larger messages are dead-lettered `too_large` unparsed. */
    MAX_MESSAGE_BYTES: env.int(1024 * 1024, 1024),
    PARQUET_COMPRESSION: z.enum(['snappy', 'zstd', 'gzip', 'brotli', 'lz4', 'none']).default('snappy'),
    DUCKDB_THREADS: env.int(1, 1, 64),
  })
  .superRefine((c, ctx) => {
    if (c.INSTANCE_INDEX >= c.INSTANCE_COUNT) {
      ctx.addIssue({
        code: 'custom',
        path: ['INSTANCE_INDEX'],
        message: `must be below INSTANCE_COUNT (${c.INSTANCE_COUNT})`,
      });
    }
    if (c.INSTANCE_COUNT > c.CANDLE_PARTITIONS) {
      ctx.addIssue({
        code: 'custom',
        path: ['INSTANCE_COUNT'],
        message: `must not exceed CANDLE_PARTITIONS (${c.CANDLE_PARTITIONS}): an instance would own nothing`,
      });
    }
  });

export type CandleConfig = z.infer<typeof candleConfigSchema>;
