import { commonEnv, type Logger, loadConfig, silentLogger } from '@parquetry/service';
import { z } from 'zod';

export const cliConfigSchema = z.object({
  ...commonEnv,
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/parquetry'),
  API_KEYS_FILE: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('silent'),
});
export type CliConfig = z.infer<typeof cliConfigSchema>;

/**
 * What commands need, opened lazily and closed once at exit: a command that reads a local file
 * never connects to NATS.
 */
export class CliContext {
  readonly config: CliConfig;
  readonly logger: Logger;
  private readonly closers: (() => Promise<void>)[] = [];
  private readonly cache = new Map<string, Promise<unknown>>();

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.config = loadConfig(cliConfigSchema, env);
    this.logger = silentLogger();
  }

  /** Open a resource once; `close` runs at exit. */
  once<T>(name: string, open: () => Promise<{ value: T; close: () => Promise<void> }>): Promise<T> {
    let p = this.cache.get(name) as Promise<T> | undefined;
    if (!p) {
      p = open().then(({ value, close }) => {
        this.closers.push(close);
        return value;
      });
      this.cache.set(name, p);
    }
    return p;
  }

  async close(): Promise<void> {
    for (const c of this.closers.reverse()) await c().catch(() => {});
  }
}
