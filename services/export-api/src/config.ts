import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { commonEnv, env } from '@parquetry/service';
import { z } from 'zod';

/** S3 SigV4 presigned URLs live at most 7 days; the same ceiling holds for our own links. */
export const MAX_PRESIGN_TTL_S = 604_800;

const DEV_ENVIRONMENTS = new Set(['development', 'test']);

/**
 * All of export-api's configuration, parsed once in main() (docs/DESIGN.md "Configuration").
 *
 * EXPORT_SIGNING_SECRET signs `/v1/downloads/<token>` links on a filesystem lake. It is required
 * there unless NODE_ENV is `development` or `test`, where a random per-process secret is made up
 * (`signingSecretEphemeral: true`; main() warns, and links die with the process). Any other
 * NODE_ENV, or none, counts as production. On an S3 lake links are S3 presigned URLs, so the
 * secret is optional (a random one keeps the download route closed).
 */
export const exportApiConfigSchema = z
  .object({
    ...commonEnv,
    NODE_ENV: z.string().default('production'),
    HTTP_PORT: env.int(8080, 0, 65535),
    HTTP_HOST: z.string().min(1).default('0.0.0.0'),
    /** The keys file (DESIGN.md "Security"); required: without it no /v1 route can ever answer. */
    API_KEYS_FILE: z.string().min(1, 'is required (path to the API keys file)'),
    /** How often the keys file is re-read for changes (revocations), in seconds; 0 = never. */
    API_KEYS_RELOAD_S: env.int(10, 0),
    EXPORT_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    DOWNLOAD_URL_TTL_S: env.int(3600, 1, MAX_PRESIGN_TTL_S),
    /** Ceiling for a request's `expires_in`. */
    DOWNLOAD_URL_MAX_TTL_S: env.int(86_400, 1, MAX_PRESIGN_TTL_S),
    RATE_LIMIT_PER_MIN: env.int(120, 1),
    BODY_LIMIT_BYTES: env.int(256 * 1024, 1024, 64 * 1024 * 1024),
    /** POST /v1/exports answers with the finished export if it completes within this time, else 202. */
    EXPORT_SYNC_WAIT_MS: env.int(30_000, 0),
    /** Candle cache size. */
    CACHE_MB: env.int(256, 0),
    /** Base of download links; default http://localhost:<HTTP_PORT>. */
    PUBLIC_BASE_URL: z.string().url().optional(),
    /**
     * Staging for export files, DuckDB's spill directory and (S3 lakes) the download cache; with
     * the lake root, the only directories DuckDB may touch. Default `<os tmp>/parquetry-export-api`.
     */
    EXPORT_WORK_DIR: z.string().min(1).optional(),
    /** DuckDB memory_limit; larger exports spill to EXPORT_WORK_DIR, so RSS stays near this. */
    DUCKDB_MEMORY_MB: env.int(512, 64),
    /** DuckDB worker threads (0 = one per core). */
    DUCKDB_THREADS: env.int(0, 0, 256),
    /** Exports that run at once; more wait for a connection. */
    EXPORT_CONCURRENCY: env.int(2, 1, 64),
    /** An export (partition_by) that would write more files than this fails with 400. */
    EXPORT_MAX_FILES: env.int(1000, 1, 100_000),
  })
  .superRefine((c, ctx) => {
    if (c.DOWNLOAD_URL_TTL_S > c.DOWNLOAD_URL_MAX_TTL_S) {
      ctx.addIssue({
        code: 'custom',
        path: ['DOWNLOAD_URL_TTL_S'],
        message: `must not exceed DOWNLOAD_URL_MAX_TTL_S (${c.DOWNLOAD_URL_MAX_TTL_S})`,
      });
    }
    if (c.LAKE_URL.startsWith('file://') && !c.EXPORT_SIGNING_SECRET && !DEV_ENVIRONMENTS.has(c.NODE_ENV)) {
      ctx.addIssue({
        code: 'custom',
        path: ['EXPORT_SIGNING_SECRET'],
        message:
          'is required on a filesystem lake (at least 32 characters; only NODE_ENV=development or test may omit it)',
      });
    }
  })
  .transform((c) => ({
    ...c,
    EXPORT_SIGNING_SECRET: c.EXPORT_SIGNING_SECRET ?? randomBytes(32).toString('hex'),
    signingSecretEphemeral: c.EXPORT_SIGNING_SECRET === undefined,
    PUBLIC_BASE_URL: (c.PUBLIC_BASE_URL ?? `http://localhost:${c.HTTP_PORT}`).replace(/\/+$/, ''),
    EXPORT_WORK_DIR: resolve(c.EXPORT_WORK_DIR ?? join(tmpdir(), 'parquetry-export-api')),
  }));

export type ExportApiConfig = z.infer<typeof exportApiConfigSchema>;
