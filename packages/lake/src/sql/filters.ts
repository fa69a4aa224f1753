import { ConfigError, InvalidInputError } from '@parquetry/service';
import { z } from 'zod';
import type { ColumnType } from '../datasets.js';
import { sqlIdent } from '../parquet/duckdb.js';

/**
 * The export query language and its compiler to DuckDB SQL. This is where user input meets
 * SQL, so the rules are strict and checked here, in one pure module:
 * - identifiers must be columns of the dataset's schema and are emitted double-quoted;
 * - every value is a bound parameter (`$1`, `$2`, …) wrapped in a cast to the column's type,
 *   after being type-checked against that type; no value text ever enters the SQL;
 * - operators come from a closed set; `in` lists, filter counts and string sizes are bounded;
 * - the key's row scopes are ANDed in, so a request can only narrow what a key may read.
 * The FROM clause is SOURCE_PLACEHOLDER: the engine fills it with the file list it took from
 * the catalog (`withSource`); file paths are never user input.
 */

export const FILTER_OPS = ['=', '!=', '<', '<=', '>', '>=', 'in', 'between', 'like', 'is_null'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export const QUERY_LIMITS = {
  maxFilters: 32,
  maxInValues: 1000,
  maxColumns: 512,
  maxPartitionBy: 4,
  maxStringChars: 1024,
  maxLikeChars: 256,
  maxLimit: 1_000_000_000,
} as const;

/** Dataset names are the lake's directory names (DESIGN.md "Bus" names). */
export const datasetNameSchema = z
  .string()
  .regex(/^[a-z0-9_-]{1,64}$/, 'must match [a-z0-9_-]{1,64}')
  .describe('A dataset name, as listed by GET /v1/datasets');

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Shape only: whether the column exists is decided against the dataset's schema. */
export const columnNameSchema = z
  .string()
  .min(1)
  .max(128)
  .refine((s) => !CONTROL.test(s), 'must not contain control characters');

const scalarSchema = z.union([z.string().max(QUERY_LIMITS.maxStringChars), z.number(), z.boolean()]);
export type ScalarValue = z.infer<typeof scalarSchema>;

const comparison = z
  .object({ column: columnNameSchema, op: z.enum(['=', '!=', '<', '<=', '>', '>=']), value: scalarSchema })
  .strict();
const inList = z
  .object({
    column: columnNameSchema,
    op: z.literal('in'),
    value: z.array(scalarSchema).min(1).max(QUERY_LIMITS.maxInValues),
  })
  .strict();
const between = z
  .object({
    column: columnNameSchema,
    op: z.literal('between'),
    value: z.tuple([scalarSchema, scalarSchema]),
  })
  .strict();
const like = z
  .object({
    column: columnNameSchema,
    op: z.literal('like'),
    value: z.string().max(QUERY_LIMITS.maxLikeChars),
  })
  .strict();
const isNull = z.object({ column: columnNameSchema, op: z.literal('is_null'), value: z.boolean() }).strict();

export const filterSchema = z
  .discriminatedUnion('op', [comparison, inList, between, like, isNull])
  .describe(
    '`{column, op, value}`: `in` takes a list, `between` two values (inclusive), `like` a SQL LIKE pattern, `is_null` a boolean',
  );
export type Filter = z.infer<typeof filterSchema>;

export const filtersSchema = z.array(filterSchema).max(QUERY_LIMITS.maxFilters);
export const columnsSchema = z
  .array(columnNameSchema)
  .min(1)
  .max(QUERY_LIMITS.maxColumns)
  .refine((cols) => new Set(cols).size === cols.length, 'columns must not repeat');
export const partitionBySchema = z
  .array(columnNameSchema)
  .min(1)
  .max(QUERY_LIMITS.maxPartitionBy)
  .refine((cols) => new Set(cols).size === cols.length, 'partition_by columns must not repeat');
export const limitSchema = z.number().int().min(1).max(QUERY_LIMITS.maxLimit);

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

export const dateRangeSchema = z
  .object({
    start: z.string().max(40).regex(ISO_TIME, 'must be an ISO-8601 date or date-time').describe('inclusive'),
    end: z
      .string()
      .max(40)
      .regex(ISO_TIME, 'must be an ISO-8601 date or date-time')
      .describe('exclusive; a date without a time includes that whole day'),
  })
  .strict();
export type DateRange = z.infer<typeof dateRangeSchema>;

export type BoundValue = string | number | boolean | bigint;
/**
 * How each parameter must be bound. Drivers guess a type from the JS value (an integral double
 * like 2^63 becomes an out-of-range BIGINT), so the engine binds with these. DATE and
 * TIMESTAMPTZ values travel as canonical text and are cast in the SQL.
 */
export type BoundType = 'VARCHAR' | 'DOUBLE' | 'BIGINT' | 'INTEGER' | 'BOOLEAN';

export interface CompileQueryInput {
  /** Column → DuckDB type: the dataset's schema, the only source of identifiers. */
  schema: Readonly<Record<string, ColumnType>>;
  /** Column for `date_range`. */
  timeColumn?: string | undefined;
  /** The request's parts, still untrusted: they are validated again here. */
  columns?: unknown;
  filters?: unknown;
  dateRange?: unknown;
  limit?: unknown;
  partitionBy?: unknown;
  /** The key's row scope for this dataset (from the keys file). */
  rowScopes?: readonly Filter[] | undefined;
}

export interface CompiledQuery {
  /** `SELECT … FROM SOURCE_PLACEHOLDER [WHERE …] [ORDER BY …] [LIMIT $n]` with `$n` placeholders. */
  sql: string;
  /** Values for `$1…$n`, in order. */
  params: BoundValue[];
  /** Binding type of each value in `params`. */
  paramTypes: BoundType[];
  selectedColumns: string[];
  /** Types of the selected columns, in order. */
  schema: Record<string, ColumnType>;
  partitionBy: string[];
  /**
   * For file pruning only (the SQL already applies them): the validated predicates, row scopes
   * first, and the date range as epoch ms [start, end).
   */
  predicates: Filter[];
  timeRange?: { startMs: number; endMs: number };
}

/** Replaced by the engine with `read_parquet([...])` over the catalog's live files. */
export const SOURCE_PLACEHOLDER = '__PARQUETRY_SOURCE__';

export function withSource(query: Pick<CompiledQuery, 'sql'>, sourceSql: string): string {
  const parts = query.sql.split(SOURCE_PLACEHOLDER);
  if (parts.length !== 2) throw new Error('compiled query must hold exactly one source placeholder');
  return parts[0] + sourceSql + parts[1];
}

function invalid(path: string, message: string, details?: Record<string, unknown>): never {
  throw new InvalidInputError(message, { code: 'invalid_query', details: { path, ...details } });
}

function show(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function parsePart<T>(schema: z.ZodType<T>, raw: unknown, path: string): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  const where = [path, ...(first?.path ?? []).map(String)].join('.');
  invalid(where, `${where}: ${first?.message ?? 'invalid'}`, {
    issues: parsed.error.issues.slice(0, 10).map((i) => ({
      path: [path, ...i.path.map(String)].join('.'),
      message: i.message,
    })),
  });
}

/** Builds SQL text and its parameter list side by side; only this class appends to either. */
class SqlBuilder {
  readonly params: BoundValue[] = [];
  readonly types: BoundType[] = [];

  /** Adds a parameter and returns its placeholder, cast to the column's type. */
  bind(value: BoundValue, type: ColumnType): string {
    return `CAST(${this.placeholder(value, bindingType(type))} AS ${type === 'JSON' ? 'VARCHAR' : type})`;
  }

  placeholder(value: BoundValue, type: BoundType): string {
    this.params.push(value);
    this.types.push(type);
    return `$${this.params.length}`;
  }
}

function bindingType(type: ColumnType): BoundType {
  switch (type) {
    case 'DOUBLE':
    case 'BIGINT':
    case 'INTEGER':
    case 'BOOLEAN':
      return type;
    default:
      return 'VARCHAR';
  }
}

const TEXT: ReadonlySet<ColumnType> = new Set(['VARCHAR', 'JSON']);
const PARTITIONABLE: ReadonlySet<ColumnType> = new Set(['VARCHAR', 'DATE', 'BOOLEAN', 'INTEGER', 'BIGINT']);
const INT32 = 2 ** 31;
const INT64 = 2n ** 63n;

const MIN_MS = Date.parse('0001-01-01T00:00:00Z');
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');

function isCalendarDate(y: number, m: number, d: number): boolean {
  if (y < 1) return false;
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d); // Date.UTC would read years below 100 as 19xx
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** ISO date or date-time → epoch ms; a time without a zone is UTC (never the server's zone). */
export function parseIsoTime(s: string): number | undefined {
  const m = ISO_TIME.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, hh, mm, ss, zone] = m;
  if (!isCalendarDate(Number(y), Number(mo), Number(d))) return undefined;
  if (hh !== undefined && (Number(hh) > 23 || Number(mm) > 59 || Number(ss ?? 0) > 59)) return undefined;
  let text = s.replace(' ', 'T');
  if (hh !== undefined && zone === undefined) text += 'Z';
  if (zone !== undefined && /^[+-]\d{2}$/.test(zone)) text += ':00';
  const ms = Date.parse(text);
  return Number.isFinite(ms) && ms >= MIN_MS && ms <= MAX_MS ? ms : undefined;
}

/** Type-checks one value against its column's type and returns what gets bound. */
function coerce(value: ScalarValue, type: ColumnType, path: string, column: string): BoundValue {
  const bad = (expected: string): never =>
    invalid(path, `${path}: column ${show(column)} expects ${expected}`);
  switch (type) {
    case 'VARCHAR':
    case 'JSON':
      return typeof value === 'string' ? value : bad('a string');
    case 'BOOLEAN':
      return typeof value === 'boolean' ? value : bad('a boolean');
    case 'DOUBLE':
      return typeof value === 'number' && Number.isFinite(value) ? value : bad('a number');
    case 'INTEGER':
      return typeof value === 'number' && Number.isInteger(value) && value >= -INT32 && value < INT32
        ? value
        : bad('a 32-bit integer');
    case 'BIGINT': {
      if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
      if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) {
        const n = BigInt(value);
        if (n >= -INT64 && n < INT64) return n;
      }
      return bad('an integer (a number, or a string of digits beyond 2^53)');
    }
    case 'DATE': {
      if (typeof value !== 'string' || !DATE_ONLY.test(value) || parseIsoTime(value) === undefined) {
        return bad('a date YYYY-MM-DD');
      }
      return value;
    }
    case 'TIMESTAMPTZ': {
      const ms =
        typeof value === 'number'
          ? Number.isInteger(value) && value >= MIN_MS && value <= MAX_MS
            ? value
            : undefined
          : typeof value === 'string'
            ? parseIsoTime(value)
            : undefined;
      if (ms === undefined) return bad('an ISO-8601 date-time or epoch milliseconds (years 1 to 9999)');
      // Canonical UTC text: what reaches DuckDB never depends on how the caller spelled it.
      return new Date(ms).toISOString();
    }
    default: {
      const never: never = type;
      return invalid(path, `${path}: unsupported column type ${String(never)}`);
    }
  }
}

function allowedOps(type: ColumnType): readonly FilterOp[] {
  if (type === 'BOOLEAN') return ['=', '!=', 'in', 'is_null'];
  if (type === 'JSON') return ['=', '!=', 'in', 'like', 'is_null'];
  if (TEXT.has(type)) return FILTER_OPS;
  return FILTER_OPS.filter((op) => op !== 'like');
}

const SQL_OP: Record<'=' | '!=' | '<' | '<=' | '>' | '>=', string> = {
  '=': '=',
  '!=': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

class Compiler {
  private readonly columns: Map<string, ColumnType>;
  readonly sql = new SqlBuilder();

  constructor(schema: Readonly<Record<string, ColumnType>>) {
    // A Map, not `schema[name]`: names like `__proto__` or `constructor` must not resolve.
    this.columns = new Map(Object.entries(schema));
  }

  get names(): string[] {
    return [...this.columns.keys()];
  }

  /** The column and its type, or a 400 that lists valid columns. */
  column(name: string, path: string): { name: string; type: ColumnType } {
    const type = this.columns.get(name);
    if (type === undefined) {
      invalid(path, `${path}: unknown column ${show(name)}`, { valid: this.names.slice(0, 200) });
    }
    return { name, type };
  }

  /** Column reference as SQL: quoted; JSON compared as its text. */
  private ref(name: string, type: ColumnType): string {
    return type === 'JSON' ? `CAST(${sqlIdent(name)} AS VARCHAR)` : sqlIdent(name);
  }

  filter(f: Filter, path: string): string {
    const { name, type } = this.column(f.column, `${path}.column`);
    if (!allowedOps(type).includes(f.op)) {
      invalid(`${path}.op`, `${path}.op: ${f.op} is not allowed on ${type} column ${show(name)}`, {
        allowed: allowedOps(type),
      });
    }
    const col = this.ref(name, type);
    switch (f.op) {
      case 'is_null':
        return `${sqlIdent(name)} IS ${f.value ? '' : 'NOT '}NULL`;
      case 'like':
        return `${col} LIKE ${this.sql.bind(f.value, 'VARCHAR')}`;
      case 'in': {
        const values = f.value.map((v, i) =>
          this.sql.bind(coerce(v, type, `${path}.value.${i}`, name), type),
        );
        return `${col} IN (${values.join(', ')})`;
      }
      case 'between': {
        const lo = this.sql.bind(coerce(f.value[0], type, `${path}.value.0`, name), type);
        const hi = this.sql.bind(coerce(f.value[1], type, `${path}.value.1`, name), type);
        return `${col} BETWEEN ${lo} AND ${hi}`;
      }
      default:
        return `${col} ${SQL_OP[f.op]} ${this.sql.bind(coerce(f.value, type, `${path}.value`, name), type)}`;
    }
  }

  dateRange(
    range: DateRange,
    timeColumn: string | undefined,
  ): { sql: string; startMs: number; endMs: number } {
    if (timeColumn === undefined) invalid('date_range', 'date_range: this dataset has no time column');
    const { name, type } = this.column(timeColumn, 'date_range');
    const start = parseIsoTime(range.start);
    const endMs = parseIsoTime(range.end);
    if (start === undefined) invalid('date_range.start', 'date_range.start: not a valid date or date-time');
    if (endMs === undefined) invalid('date_range.end', 'date_range.end: not a valid date or date-time');
    // A bare date as the end means "through that day": the exclusive bound is the next midnight.
    const end = DATE_ONLY.test(range.end) ? endMs + 86_400_000 : endMs;
    if (end <= start) invalid('date_range', 'date_range: end must be after start');
    const col = sqlIdent(name);
    if (type === 'DATE') {
      const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
      // Dates compare by whole days: [start's day, end's day) with the same "through" rule.
      const lastExclusive = DATE_ONLY.test(range.end) ? end : Math.ceil(end / 86_400_000) * 86_400_000;
      const sql = `${col} >= ${this.sql.bind(day(start), 'DATE')} AND ${col} < ${this.sql.bind(day(lastExclusive), 'DATE')}`;
      return { sql, startMs: start, endMs: end };
    }
    if (type !== 'TIMESTAMPTZ') invalid('date_range', `date_range: time column has unsupported type ${type}`);
    const iso = (ms: number) => new Date(ms).toISOString();
    const sql = `${col} >= ${this.sql.bind(iso(start), 'TIMESTAMPTZ')} AND ${col} < ${this.sql.bind(iso(end), 'TIMESTAMPTZ')}`;
    return { sql, startMs: start, endMs: end };
  }
}

/**
 * Validates an export query against a dataset's schema and compiles it to parameterised SQL.
 * Throws InvalidInputError (400, code `invalid_query`) for anything the caller got wrong; a row
 * scope that does not fit the schema is a server-side misconfiguration and fails closed.
 */
export function compileQuery(input: CompileQueryInput): CompiledQuery {
  const c = new Compiler(input.schema);
  if (c.names.length === 0) invalid('dataset', 'dataset has no known columns');

  const requested =
    input.columns === undefined ? undefined : parsePart(columnsSchema, input.columns, 'columns');
  const filters = input.filters === undefined ? [] : parsePart(filtersSchema, input.filters, 'filters');
  const dateRange =
    input.dateRange === undefined ? undefined : parsePart(dateRangeSchema, input.dateRange, 'date_range');
  const limit = input.limit === undefined ? undefined : parsePart(limitSchema, input.limit, 'limit');
  const partitionRaw =
    input.partitionBy === undefined ? [] : parsePart(partitionBySchema, input.partitionBy, 'partition_by');

  const selected = requested
    ? requested.map((n, i) => c.column(n, `columns.${i}`))
    : c.names.map((n) => c.column(n, 'schema'));
  const partitionBy = partitionRaw.map((n, i) => {
    const col = c.column(n, `partition_by.${i}`);
    if (!PARTITIONABLE.has(col.type)) {
      invalid(`partition_by.${i}`, `partition_by.${i}: cannot partition by ${col.type} column ${show(n)}`);
    }
    if (!selected.some((s) => s.name === col.name)) {
      invalid(`partition_by.${i}`, `partition_by.${i}: column ${show(n)} must also be selected in columns`);
    }
    return col.name;
  });

  // Row scopes first: they are the key's boundary, whatever the request adds.
  const where: string[] = [];
  const scopes = input.rowScopes ?? [];
  for (const [i, scope] of scopes.entries()) {
    try {
      where.push(`(${c.filter(filterSchema.parse(scope), `row_scope.${i}`)})`);
    } catch (err) {
      // A scope that cannot compile must never mean "no scope": fail closed (500, logged).
      throw new ConfigError(`row scope ${i} does not fit the dataset schema; refusing to run unscoped`, {
        cause: err,
      });
    }
  }
  for (const [i, f] of filters.entries()) where.push(`(${c.filter(f, `filters.${i}`)})`);
  const range = dateRange ? c.dateRange(dateRange, input.timeColumn) : undefined;
  if (range) where.push(`(${range.sql})`);

  let sql = `SELECT ${selected.map((s) => sqlIdent(s.name)).join(', ')} FROM ${SOURCE_PLACEHOLDER}`;
  if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
  if (limit !== undefined) {
    // With a limit, "the first N rows" must mean the same rows every time: oldest first.
    const time = input.timeColumn !== undefined ? c.names.find((n) => n === input.timeColumn) : undefined;
    if (time !== undefined) sql += ` ORDER BY ${sqlIdent(time)}`;
    sql += ` LIMIT ${c.sql.placeholder(BigInt(limit), 'BIGINT')}`;
  }
  return {
    sql,
    params: c.sql.params,
    paramTypes: c.sql.types,
    selectedColumns: selected.map((s) => s.name),
    schema: Object.fromEntries(selected.map((s) => [s.name, s.type])),
    partitionBy,
    predicates: [...scopes, ...filters],
    ...(range ? { timeRange: { startMs: range.startMs, endMs: range.endMs } } : {}),
  };
}
