/**
 * The load config (YAML or TOML), shaped like the seed's: `path`, `schema_config`,
 * `validation_data`, `os_configuration`, `database`, plus pg-loader's own keys (format, csv,
 * drift policy, COPY format, rejects). Validated with zod; every error names its key path.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError, commonEnv } from '@parquetry/service';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { normalizePgType } from './plan.js';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/parquetry';

/** Environment of pg-loader (DESIGN.md "Configuration"). */
export const pgLoaderEnvSchema = z.object({
  ...commonEnv,
  DATABASE_URL: z.string().min(1).default(DEFAULT_DATABASE_URL),
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(9104),
});
export type PgLoaderEnv = z.infer<typeof pgLoaderEnvSchema>;

const identifier = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,62}$/,
    'must be a plain identifier: letters, digits, _ (max 63), not starting with a digit',
  );

const pgType = z.string().transform((v, ctx) => {
  const t = normalizePgType(v);
  if (t === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `unknown or unsupported type "${v}" (use boolean, smallint, integer, bigint, real, double precision, numeric[(p,s)], text, json, jsonb, bytea, uuid, date, timestamp, timestamptz, time, interval)`,
    });
    return z.NEVER;
  }
  const p = /^numeric\((\d+),/.exec(t);
  if (p && Number(p[1]) > 38) {
    ctx.addIssue({ code: 'custom', message: `numeric precision ${p[1]} is above 38, DuckDB's limit` });
    return z.NEVER;
  }
  return t;
});

const decimalPrecision = z
  .union([
    z.strictObject({ precision: z.number().int().min(1).max(38), scale: z.number().int().min(0).max(38) }),
    z.tuple([z.number().int().min(1).max(38), z.number().int().min(0).max(38)]),
  ])
  .transform((v) => (Array.isArray(v) ? { precision: v[0], scale: v[1] } : v))
  .refine((v) => v.scale <= v.precision, 'scale must not exceed precision');

const schemaConfig = z.strictObject({
  /** Naming style applied to every source column name. */
  column_naming: z.enum(['lower', 'upper', 'capitalize', 'snake', 'preserve']).default('snake'),
  /** `auto`, or a strptime format (e.g. `%d/%m/%Y`) for text → date/timestamp. */
  date_format: z.string().min(1).default('auto'),
  /** Target PostgreSQL type per column (source or target name). */
  data_type: z.record(z.string().min(1), pgType).default({}),
  /** Precision and scale for a bare `numeric` in data_type: `{precision, scale}` or `[p, s]`. */
  decimal_precision: decimalPrecision.optional(),
  /** Explicit renames, source (or styled) name → target name; win over column_naming. */
  rename: z.record(z.string().min(1), z.string().min(1).max(63)).default({}),
});

const validationData = z.strictObject({
  /** Rows DuckDB's sniffer reads to detect CSV/JSON types and date formats. */
  sample_size: z.number().int().positive().default(20_480),
});

const osConfiguration = z.strictObject({
  /** Fraction of available memory left to the OS and everything else (0 – 0.95). */
  os_margin: z.number().min(0).max(0.95).default(0.2),
  /** Rows sampled to estimate the in-memory size of a row. */
  n_rows_sample: z.number().int().positive().default(10_000),
  /** Explicit memory budget in MB; replaces "available minus margin". */
  memory_limit_mb: z.number().int().min(64).optional(),
  /** DuckDB threads (default: DuckDB's own, the core count). */
  threads: z.number().int().min(1).max(256).optional(),
});

const rejects = z
  .strictObject({
    /** `table`: `<table>_rejects` in PostgreSQL; `file`: NDJSON at `path`. */
    to: z.enum(['table', 'file']).default('table'),
    path: z.string().min(1).optional(),
    /** Stop (and roll back) when more rows than this are rejected. */
    max_rows: z.number().int().min(0).optional(),
  })
  .refine((r) => r.to !== 'file' || r.path !== undefined, {
    message: 'rejects.to = file needs rejects.path',
    path: ['path'],
  });

const database = z.strictObject({
  table_name: identifier,
  schema: identifier.default('public'),
  if_table_exists: z.enum(['fail', 'append', 'replace']).default('fail'),
  /** What a schema change of the input does to an existing table: fail, evolve (add columns), ignore. */
  schema_drift: z.enum(['fail', 'evolve', 'ignore']).default('fail'),
  /** COPY wire format; auto = binary (measured 2.5× faster than text here). */
  copy_format: z.enum(['auto', 'binary', 'text']).default('auto'),
  /** Rows per COPY statement (the unit a failed batch is bisected in); default from the strategy. */
  batch_rows: z.number().int().min(1).optional(),
  rejects: rejects.prefault({}),
  /** Record each loaded file in parquetry_load_ledger and skip files already loaded. */
  ledger: z.boolean().default(true),
});

const csvOptions = z.strictObject({
  delimiter: z.string().min(1).max(4).optional(),
  header: z.boolean().optional(),
  quote: z.string().length(1).optional(),
  null_string: z.string().optional(),
});

export const loadConfigSchema = z.strictObject({
  /** Input: a file, a directory, a glob, or a list of them (the CLI argument wins). */
  path: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  format: z.enum(['parquet', 'csv', 'ndjson']).optional(),
  csv: csvOptions.prefault({}),
  schema_config: schemaConfig.prefault({}),
  validation_data: validationData.prefault({}),
  os_configuration: osConfiguration.prefault({}),
  database,
});

export type LoadConfig = z.infer<typeof loadConfigSchema>;
export type LoadConfigInput = z.input<typeof loadConfigSchema>;

/** `a.b.c: message` lines, one per zod issue, unknown keys named one by one. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((i) => {
    const at = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${at ? `${at}.` : ''}${k}: unknown key`);
    }
    return [`${at || '(root)'}: ${i.message}`];
  });
}

/** Validate a parsed config object; a ConfigError lists every bad key. */
export function parseLoadConfig(raw: unknown, source = 'load config'): LoadConfig {
  const r = loadConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = formatIssues(r.error.issues);
  throw new ConfigError(`invalid ${source}:\n${lines.map((l) => `  ${l}`).join('\n')}`, {
    details: lines,
    cause: r.error,
  });
}

/** Parse YAML or TOML text and validate it; parse errors carry the line and column. */
export function parseConfigText(text: string, format: 'yaml' | 'toml', source = 'load config'): LoadConfig {
  let raw: unknown;
  try {
    raw = format === 'toml' ? parseToml(text) : parseYaml(text);
  } catch (err) {
    const where =
      err instanceof TomlError
        ? ` (line ${err.line}, column ${err.column})`
        : err instanceof YAMLParseError && err.linePos
          ? ` (line ${err.linePos[0].line}, column ${err.linePos[0].col})`
          : '';
    throw new ConfigError(
      `cannot parse ${source} as ${format.toUpperCase()}${where}: ${(err as Error).message.split('\n')[0]}`,
      {
        cause: err,
      },
    );
  }
  return parseLoadConfig(raw ?? {}, source);
}

/** Read a `.yaml`/`.yml`/`.toml` config file. */
export async function readLoadConfig(path: string): Promise<LoadConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read load config ${path}: ${(err as Error).message}`, { cause: err });
  }
  const ext = extname(path).toLowerCase();
  const format = ext === '.toml' ? 'toml' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  if (format === undefined) {
    throw new ConfigError(`load config ${path}: unknown extension "${ext}" (use .yaml, .yml or .toml)`);
  }
  return parseConfigText(text, format, path);
}
