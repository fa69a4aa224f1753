import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * Parse the environment with a service's zod schema, once, in main(). A bad value stops the
 * service with a message that names the variable, never a stack trace.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`, { details: parsed.error.issues });
}

/** Environment values are strings: these coerce and keep the variable's name in errors. */
export const env = {
  int: (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(def),
  num: (def: number, min = 0) => z.coerce.number().min(min).default(def),
  bool: (def: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  str: (def: string) => z.string().min(1).default(def),
  url: (def: string) => z.string().url().default(def),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** Variables every service reads (DESIGN.md "Configuration"). */
export const commonEnv = {
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  LAKE_URL: z
    .string()
    .regex(
      /^(file:\/\/.+|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/,
      'must be file://<dir> or s3://<bucket>/<prefix>',
    )
    .default('file://./data/lake'),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_FORCE_PATH_STYLE: env.bool(false),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  LOG_LEVEL: env.logLevel(),
  /**
   * Replicas of every JetStream stream and key-value bucket the service creates or checks at start
   * (1 on a single server, 3 on a 3-node cluster; infra/nats/cluster/README.md).
   */
  STREAM_REPLICAS: env.int(1, 1, 5),
};
