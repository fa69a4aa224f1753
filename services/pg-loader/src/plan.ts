/**
 * Pure planning for a load: target column names, PostgreSQL types, the DuckDB expressions
 * that produce each value in its wire form, reject detection, DDL, schema drift and the
 * memory strategy. No I/O here: every decision is a function of data, unit-tested.
 */
import type { WireKind } from './copy-binary.js';

export type ColumnNaming = 'lower' | 'upper' | 'capitalize' | 'snake' | 'preserve';

/** A column as DuckDB describes the source (`DESCRIBE SELECT * FROM read_…`). */
export interface SourceColumn {
  name: string;
  /** The type the reader yields. */
  duckType: string;
  /** The type DuckDB's sniffer inferred when the reader yields text (CSV, NDJSON). */
  inferredType?: string | undefined;
}

/** A column of the PostgreSQL table, type in canonical form (see normalizePgType). */
export interface TableColumn {
  name: string;
  pgType: string;
}

export interface ColumnPlan extends TableColumn {
  /** Source column name, or null when the source lacks it (loaded as NULL). */
  source: string | null;
  sourceType: string | null;
  wire: WireKind;
  /** DuckDB SQL yielding the value in its wire form, reading the source row alias `s`. */
  expr: string;
  /** DuckDB SQL that is true when a non-NULL source value failed to cast; null when a cast can't fail. */
  failsWhen: string | null;
}

// ---------------------------------------------------------------------------------------------
// Identifiers and literals

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** PostgreSQL keeps at most 63 bytes of an identifier (NAMEDATALEN - 1). */
export const PG_IDENT_MAX_BYTES = 63;

// ---------------------------------------------------------------------------------------------
// Types

const PG_ALIASES: Record<string, string> = {
  bool: 'boolean',
  boolean: 'boolean',
  int2: 'smallint',
  smallint: 'smallint',
  tinyint: 'smallint',
  int: 'integer',
  int4: 'integer',
  integer: 'integer',
  int8: 'bigint',
  bigint: 'bigint',
  long: 'bigint',
  float4: 'real',
  real: 'real',
  float: 'double precision',
  float8: 'double precision',
  double: 'double precision',
  'double precision': 'double precision',
  numeric: 'numeric',
  decimal: 'numeric',
  text: 'text',
  string: 'text',
  str: 'text',
  varchar: 'text',
  'character varying': 'text',
  json: 'json',
  jsonb: 'jsonb',
  bytea: 'bytea',
  blob: 'bytea',
  binary: 'bytea',
  uuid: 'uuid',
  date: 'date',
  timestamp: 'timestamp',
  datetime: 'timestamp',
  'timestamp without time zone': 'timestamp',
  timestamptz: 'timestamptz',
  'timestamp with time zone': 'timestamptz',
  time: 'time',
  'time without time zone': 'time',
  interval: 'interval',
};

/**
 * Canonical PostgreSQL type for a config value or a `format_type()` result:
 * `int` → `integer`, `decimal(10,2)` → `numeric(10,2)`, `character varying(20)` → `text`.
 * Returns undefined for a type pg-loader cannot load.
 */
export function normalizePgType(input: string): string | undefined {
  const t = input.trim().toLowerCase().replace(/\s+/g, ' ');
  const num = /^(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$/.exec(t);
  if (num) {
    const p = Number(num[1]);
    const s = Number(num[2] ?? 0);
    if (p < 1 || p > 1000 || s > p) return undefined;
    return `numeric(${p},${s})`;
  }
  // Length and precision modifiers change nothing on the wire: varchar(20) is text, timestamp(3) is timestamp.
  const base = t
    .replace(/^(character varying|varchar|character|char|bpchar)\s*\(\s*\d+\s*\)$/, 'text')
    .replace(/^(character|char|bpchar|citext|name)$/, 'text')
    .replace(/^(timestamp|time)\s*\(\s*\d\s*\)(.*)$/, '$1$2');
  return PG_ALIASES[base];
}

/** `numeric(p,s)` → [p, s]; anything else → undefined. */
export function numericParams(pgType: string): [number, number] | undefined {
  const m = /^numeric\((\d+),(\d+)\)$/.exec(pgType);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The wire kind that carries a canonical PostgreSQL type. */
export function wireKindOf(pgType: string): WireKind {
  if (pgType.startsWith('numeric')) return 'numeric';
  const kinds: Record<string, WireKind> = {
    boolean: 'bool',
    smallint: 'int2',
    integer: 'int4',
    bigint: 'int8',
    real: 'float4',
    'double precision': 'float8',
    text: 'text',
    json: 'json',
    jsonb: 'jsonb',
    bytea: 'bytea',
    uuid: 'uuid',
    date: 'date',
    timestamp: 'timestamp',
    timestamptz: 'timestamptz',
    time: 'time',
    interval: 'interval',
  };
  const k = kinds[pgType];
  if (k === undefined) throw new Error(`no wire kind for PostgreSQL type ${pgType}`);
  return k;
}

/** DuckDB base type name of a `DESCRIBE` type: `DECIMAL(18,3)` → `DECIMAL`, `INTEGER[]` → `LIST`. */
export function duckBaseType(duckType: string): string {
  const t = duckType.trim().toUpperCase();
  if (t.endsWith(']')) return 'LIST';
  const m = /^([A-Z_ ]+?)\s*(\(|$)/.exec(t);
  const base = m ? m[1]! : t;
  if (base === 'TIMESTAMP WITH TIME ZONE') return 'TIMESTAMPTZ';
  if (base === 'TIME WITH TIME ZONE') return 'TIMETZ';
  return base;
}

const NESTED = new Set(['LIST', 'STRUCT', 'MAP', 'UNION', 'ARRAY']);

/** The PostgreSQL type a DuckDB column becomes when the config doesn't say otherwise. */
export function defaultPgType(duckType: string): string {
  const base = duckBaseType(duckType);
  switch (base) {
    case 'BOOLEAN':
      return 'boolean';
    case 'TINYINT':
    case 'UTINYINT':
    case 'SMALLINT':
      return 'smallint';
    case 'USMALLINT':
    case 'INTEGER':
      return 'integer';
    case 'UINTEGER':
    case 'BIGINT':
      return 'bigint';
    case 'UBIGINT':
    case 'HUGEINT':
    case 'UHUGEINT':
    case 'VARINT':
    case 'BIGNUM':
      return 'numeric';
    case 'DECIMAL': {
      const m = /\((\d+)\s*,\s*(\d+)\)/.exec(duckType);
      return m ? `numeric(${m[1]},${m[2]})` : 'numeric';
    }
    case 'FLOAT':
      return 'real';
    case 'DOUBLE':
      return 'double precision';
    case 'JSON':
      return 'jsonb';
    case 'BLOB':
      return 'bytea';
    case 'UUID':
      return 'uuid';
    case 'DATE':
      return 'date';
    case 'TIMESTAMP':
    case 'TIMESTAMP_S':
    case 'TIMESTAMP_MS':
    case 'TIMESTAMP_NS':
      return 'timestamp';
    case 'TIMESTAMPTZ':
      return 'timestamptz';
    case 'TIME':
    case 'TIME_NS':
      return 'time';
    case 'INTERVAL':
      return 'interval';
    default:
      return NESTED.has(base) ? 'jsonb' : 'text';
  }
}

const NUMERIC_TEXT_RE = String.raw`^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$`;

/** Value expressions by target type: the `ref`'s DuckDB type decides passthrough, cast or try-cast. */
function castExpression(
  ref: string,
  duckType: string,
  pgType: string,
  dateFormat: string | undefined,
): { expr: string; fallible: boolean } {
  const base = duckBaseType(duckType);
  const same = (duck: string) => base === duck;
  const isText = base === 'VARCHAR';
  const nested = NESTED.has(base);
  const tryCast = (duck: string) => ({ expr: `TRY_CAST(${ref} AS ${duck})`, fallible: true });
  const exact = (duck: string) => ({ expr: `CAST(${ref} AS ${duck})`, fallible: false });
  const parsed = (duck: string) =>
    dateFormat && isText
      ? { expr: `TRY_CAST(try_strptime(${ref}, ${quoteLiteral(dateFormat)}) AS ${duck})`, fallible: true }
      : tryCast(duck);
  const ints: Record<string, string[]> = {
    smallint: ['SMALLINT', 'TINYINT', 'UTINYINT'],
    integer: ['INTEGER', 'SMALLINT', 'TINYINT', 'UTINYINT', 'USMALLINT'],
    bigint: ['BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT', 'UTINYINT', 'USMALLINT', 'UINTEGER'],
  };
  switch (pgType) {
    case 'boolean':
      return same('BOOLEAN') ? { expr: ref, fallible: false } : tryCast('BOOLEAN');
    case 'smallint':
    case 'integer':
    case 'bigint': {
      const duck = pgType === 'smallint' ? 'SMALLINT' : pgType === 'integer' ? 'INTEGER' : 'BIGINT';
      if (same(duck)) return { expr: ref, fallible: false };
      return ints[pgType]!.includes(base) ? exact(duck) : tryCast(duck);
    }
    case 'real':
      if (same('FLOAT')) return { expr: ref, fallible: false };
      return isText ? tryCast('FLOAT') : { ...tryCast('FLOAT'), fallible: !isNumericDuck(base) };
    case 'double precision':
      if (same('DOUBLE')) return { expr: ref, fallible: false };
      return isNumericDuck(base) ? exact('DOUBLE') : tryCast('DOUBLE');
    case 'text':
      if (isText) return { expr: ref, fallible: false };
      return nested ? { expr: `CAST(to_json(${ref}) AS VARCHAR)`, fallible: false } : exact('VARCHAR');
    case 'json':
    case 'jsonb':
      if (same('JSON')) return exact('VARCHAR');
      if (isText) return { expr: `CASE WHEN json_valid(${ref}) THEN ${ref} END`, fallible: true };
      return { expr: `CAST(to_json(${ref}) AS VARCHAR)`, fallible: false };
    case 'bytea':
      return same('BLOB') ? { expr: ref, fallible: false } : tryCast('BLOB');
    case 'uuid':
      return same('UUID')
        ? exact('VARCHAR')
        : { expr: `CAST(TRY_CAST(${ref} AS UUID) AS VARCHAR)`, fallible: true };
    case 'date':
      if (same('DATE')) return { expr: ref, fallible: false };
      if (['TIMESTAMP', 'TIMESTAMPTZ', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS'].includes(base)) {
        return exact('DATE');
      }
      return parsed('DATE');
    case 'timestamp':
      if (same('TIMESTAMP')) return { expr: ref, fallible: false };
      if (['TIMESTAMPTZ', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS', 'DATE'].includes(base)) {
        return exact('TIMESTAMP');
      }
      return parsed('TIMESTAMP');
    case 'timestamptz':
      if (same('TIMESTAMPTZ')) return { expr: ref, fallible: false };
      if (['TIMESTAMP', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS', 'DATE'].includes(base)) {
        return exact('TIMESTAMPTZ');
      }
      return parsed('TIMESTAMPTZ');
    case 'time':
      if (same('TIME')) return { expr: ref, fallible: false };
      return same('TIME_NS') ? exact('TIME') : tryCast('TIME');
    case 'interval':
      return same('INTERVAL') ? { expr: ref, fallible: false } : tryCast('INTERVAL');
    case 'numeric':
      // Any DuckDB number renders as decimal text (or nan/inf/1e-05, which the encoder reads).
      if (isNumericDuck(base)) return exact('VARCHAR');
      if (isText) {
        return {
          expr: `CASE WHEN regexp_matches(${ref}, ${quoteLiteral(NUMERIC_TEXT_RE)}) THEN trim(${ref}) END`,
          fallible: true,
        };
      }
      return { expr: `CAST(TRY_CAST(${ref} AS DOUBLE) AS VARCHAR)`, fallible: true };
    default: {
      const np = numericParams(pgType);
      if (!np) throw new Error(`cannot cast to PostgreSQL type ${pgType}`);
      const [p, s] = np;
      if (p > 38) {
        // DuckDB decimals stop at 38 digits: check the text shape, PostgreSQL enforces the typmod.
        return castExpression(ref, duckType, 'numeric', dateFormat);
      }
      if (same('DECIMAL') && duckType.replace(/\s/g, '').toUpperCase() === `DECIMAL(${p},${s})`) {
        return exact('VARCHAR');
      }
      const inner = isText
        ? `TRY_CAST(trim(${ref}) AS DECIMAL(${p},${s}))`
        : `TRY_CAST(${ref} AS DECIMAL(${p},${s}))`;
      return { expr: `CAST(${inner} AS VARCHAR)`, fallible: true };
    }
  }
}

function isNumericDuck(base: string): boolean {
  return [
    'TINYINT',
    'SMALLINT',
    'INTEGER',
    'BIGINT',
    'HUGEINT',
    'UTINYINT',
    'USMALLINT',
    'UINTEGER',
    'UBIGINT',
    'UHUGEINT',
    'FLOAT',
    'DOUBLE',
    'DECIMAL',
    'VARINT',
    'BIGNUM',
  ].includes(base);
}

// ---------------------------------------------------------------------------------------------
// Naming

/** Apply a naming style to one source column name. */
export function applyNaming(name: string, style: ColumnNaming): string {
  switch (style) {
    case 'preserve':
      return name;
    case 'lower':
      return name.toLowerCase();
    case 'upper':
      return name.toUpperCase();
    case 'capitalize':
      return name.length === 0 ? name : name[0]!.toUpperCase() + name.slice(1).toLowerCase();
    case 'snake': {
      const ascii = name.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
      const s = ascii
        .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
        .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
        .replace(/[^A-Za-z0-9]+/g, '_')
        .replace(/^_+|_+$/g, '')
        .toLowerCase();
      return /^[0-9]/.test(s) ? `_${s}` : s;
    }
  }
}

export interface NamingOptions {
  naming: ColumnNaming;
  /** Explicit renames, keyed by source name (or by the name after `naming`); win over the style. */
  rename: Record<string, string>;
}

/** Thrown by pure planning when the config or the data can't make a valid table. */
export class PlanError extends Error {
  readonly key: string | undefined;
  constructor(message: string, key?: string) {
    super(message);
    this.name = 'PlanError';
    this.key = key;
  }
}

/** Target names for the source columns, refusing empty, over-long and colliding names. */
export function targetNames(sources: readonly string[], opts: NamingOptions): string[] {
  const styled = sources.map((s) => applyNaming(s, opts.naming));
  const used = new Set<string>();
  for (const key of Object.keys(opts.rename)) {
    if (!sources.includes(key) && !styled.includes(key)) {
      throw new PlanError(
        `no source column "${key}" (columns: ${sources.join(', ')})`,
        `schema_config.rename.${key}`,
      );
    }
  }
  const out = sources.map((s, i) => {
    const name = opts.rename[s] ?? opts.rename[styled[i]!] ?? styled[i]!;
    return name === '' ? `column_${i}` : name;
  });
  out.forEach((name, i) => {
    if (Buffer.byteLength(name) > PG_IDENT_MAX_BYTES) {
      throw new PlanError(
        `column name "${name}" (from "${sources[i]}") is longer than ${PG_IDENT_MAX_BYTES} bytes`,
      );
    }
    if (used.has(name)) {
      const from = sources.filter((_, j) => out[j] === name).map((s) => `"${s}"`);
      throw new PlanError(
        `columns ${from.join(' and ')} both become "${name}"; rename one with schema_config.rename`,
      );
    }
    used.add(name);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Column plans

export interface PlanOptions extends NamingOptions {
  /** Target type per column, keyed by source or target name (config `schema_config.data_type`). */
  dataTypes: Record<string, string>;
  /** Default precision and scale for a bare `numeric` cast (config `decimal_precision`). */
  decimalPrecision?: { precision: number; scale: number } | undefined;
  /** strptime format per source column for text → date/timestamp casts (explicit or detected). */
  dateFormats?: Record<string, string>;
}

/**
 * One plan per source column. `dataTypes` keys must name a column (source or target name);
 * types are canonical (config validation normalizes them).
 */
export function planColumns(sources: readonly SourceColumn[], opts: PlanOptions): ColumnPlan[] {
  const names = targetNames(
    sources.map((s) => s.name),
    opts,
  );
  for (const key of Object.keys(opts.dataTypes)) {
    if (!sources.some((s) => s.name === key) && !names.includes(key)) {
      throw new PlanError(
        `no column "${key}" to cast (columns: ${names.join(', ')})`,
        `schema_config.data_type.${key}`,
      );
    }
  }
  return sources.map((src, i) => {
    const target = names[i]!;
    const configured = opts.dataTypes[src.name] ?? opts.dataTypes[target];
    let pgType =
      configured === undefined
        ? defaultPgType(src.inferredType ?? src.duckType)
        : (normalizePgType(configured) ?? configured);
    if (pgType === 'numeric' && opts.decimalPrecision && configured !== undefined) {
      pgType = `numeric(${opts.decimalPrecision.precision},${opts.decimalPrecision.scale})`;
    }
    return columnPlan(src, target, pgType, opts.dateFormats?.[src.name]);
  });
}

/** The plan loading source column `src` into `target` of type `pgType`. */
export function columnPlan(
  src: SourceColumn,
  target: string,
  pgType: string,
  dateFormat?: string,
): ColumnPlan {
  const ref = `s.${quoteIdent(src.name)}`;
  const { expr, fallible } = castExpression(ref, src.duckType, pgType, dateFormat);
  return {
    name: target,
    pgType,
    source: src.name,
    sourceType: src.duckType,
    wire: wireKindOf(pgType),
    expr,
    failsWhen: fallible ? `(${ref} IS NOT NULL AND (${expr}) IS NULL)` : null,
  };
}

/** A table column the source doesn't have: loaded as NULL. */
export function nullColumnPlan(col: TableColumn): ColumnPlan {
  return {
    ...col,
    source: null,
    sourceType: null,
    wire: wireKindOf(col.pgType),
    expr: 'NULL',
    failsWhen: null,
  };
}

/** Column names that carry the reject reason and raw row through the query. */
export const REJECT_REASON = '__pq_reason';
export const REJECT_RAW = '__pq_raw';

/**
 * The DuckDB query over `reader` (a `read_…(…)` call) yielding each plan's wire value, or one
 * text-COPY line per row when `format` is text; then, when any cast can fail, the reject
 * reason and the raw source row as JSON.
 */
export function selectSql(plans: readonly ColumnPlan[], reader: string, format: 'binary' | 'text'): string {
  const values =
    format === 'binary'
      ? plans.map((p, i) => `${p.expr} AS c${i}`)
      : [`${textLineExpression(plans)} AS line`];
  const fallible = plans.filter((p) => p.failsWhen !== null);
  if (fallible.length === 0) return `SELECT ${values.join(', ')} FROM ${reader} AS s`;
  const reasons = fallible.map(
    (p) =>
      `CASE WHEN ${p.failsWhen} THEN ${quoteLiteral(`${p.name}: cannot cast `)} || left(CAST(s.${quoteIdent(p.source!)} AS VARCHAR), 80) || ${quoteLiteral(` to ${p.pgType}`)} END`,
  );
  const reason = `NULLIF(concat_ws('; ', ${reasons.join(', ')}), '')`;
  return (
    `SELECT ${values.join(', ')}, ${reason} AS ${REJECT_REASON}, ` +
    `CASE WHEN ${REJECT_REASON} IS NOT NULL THEN CAST(to_json(s) AS VARCHAR) END AS ${REJECT_RAW} FROM ${reader} AS s`
  );
}

/** One PostgreSQL text-COPY line per row, built in DuckDB: tab-separated, escaped, `\N` for NULL. */
export function textLineExpression(plans: readonly ColumnPlan[]): string {
  const fields = plans.map((p) => {
    const v = p.expr;
    let text: string;
    switch (p.wire) {
      case 'bool':
        text = `CASE WHEN ${v} THEN 't' ELSE 'f' END`;
        break;
      case 'bytea':
        text = `'\\\\x' || lower(hex(${v}))`;
        break;
      case 'int2':
      case 'int4':
      case 'int8':
      case 'float4':
      case 'float8':
      case 'numeric':
      case 'date':
      case 'timestamp':
      case 'timestamptz':
      case 'time':
      case 'interval':
      case 'uuid':
        // These renderings never contain a tab, newline or backslash: no escaping needed.
        text = `CAST(${v} AS VARCHAR)`;
        break;
      default:
        text = `replace(replace(replace(replace(CAST(${v} AS VARCHAR), '\\', '\\\\'), chr(9), '\\t'), chr(10), '\\n'), chr(13), '\\r')`;
    }
    return `COALESCE(${text}, '\\N')`;
  });
  return `concat(${fields.join(`, chr(9), `)}, chr(10))`;
}

// ---------------------------------------------------------------------------------------------
// DDL

export function createTableSql(table: string, columns: readonly TableColumn[]): string {
  const cols = columns.map((c) => `${quoteIdent(c.name)} ${c.pgType}`);
  return `CREATE TABLE ${table} (${cols.join(', ')})`;
}

export function addColumnsSql(table: string, columns: readonly TableColumn[]): string {
  return `ALTER TABLE ${table} ${columns.map((c) => `ADD COLUMN ${quoteIdent(c.name)} ${c.pgType}`).join(', ')}`;
}

/** One ALTER TABLE changing these columns' types, each value converted by its cast to the new type. */
export function alterColumnTypesSql(table: string, columns: readonly { name: string; to: string }[]): string {
  return `ALTER TABLE ${table} ${columns
    .map((c) => `ALTER COLUMN ${quoteIdent(c.name)} TYPE ${c.to} USING ${quoteIdent(c.name)}::${c.to}`)
    .join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// Schema drift

export interface SchemaDiff {
  added: TableColumn[];
  removed: TableColumn[];
  /** Columns whose new type the table's type can't take: real drift. */
  retyped: { name: string; from: string; to: string }[];
  /**
   * Columns whose new type the table's type absorbs (see `absorbsType`): not drift, the values
   * load as the table's type. Present only when there are some.
   */
  widened?: { name: string; from: string; to: string }[];
}

const INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3 };
/** Decimal digits of the largest value of an integer type. */
const INT_DIGITS: Record<string, number> = { smallint: 5, integer: 10, bigint: 19 };

/**
 * True when a table column of type `table` can hold the values of a source now typed `incoming`
 * without changing any of them: a narrower integer, `real` into `double precision`, an integer
 * a float holds exactly (smallint/integer into double, smallint into real), an integer into a
 * numeric with room for its digits, or a numeric whose scale the table's numeric keeps.
 * The last case is what DuckDB arithmetic produces all the time (`price + 1` turns DECIMAL(23,2)
 * into DECIMAL(24,2)): the scale is the same, so no value is rounded, and a value beyond the
 * table's precision fails its cast and goes to the rejects with the reason.
 */
export function absorbsType(table: string, incoming: string): boolean {
  if (table === incoming) return true;
  const ti = INT_RANK[table];
  const ii = INT_RANK[incoming];
  if (ti !== undefined && ii !== undefined) return ii <= ti;
  // Floats hold every integer up to 2^53 (double) and 2^24 (real) exactly.
  if (table === 'double precision')
    return incoming === 'real' || incoming === 'smallint' || incoming === 'integer';
  if (table === 'real') return incoming === 'smallint';
  if (table === 'numeric') return ii !== undefined || incoming.startsWith('numeric');
  const tn = numericParams(table);
  if (tn === undefined) return false;
  if (ii !== undefined) return tn[0] - tn[1] >= INT_DIGITS[incoming]!;
  const inN = numericParams(incoming);
  return inN !== undefined && inN[1] <= tn[1];
}

export function diffSchema(existing: readonly TableColumn[], incoming: readonly TableColumn[]): SchemaDiff {
  const old = new Map(existing.map((c) => [c.name, c.pgType]));
  const next = new Map(incoming.map((c) => [c.name, c.pgType]));
  const changed = incoming
    .filter((c) => old.has(c.name) && old.get(c.name) !== c.pgType)
    .map((c) => ({ name: c.name, from: old.get(c.name)!, to: c.pgType }));
  const widened = changed.filter((c) => absorbsType(c.from, c.to));
  const diff: SchemaDiff = {
    added: incoming.filter((c) => !old.has(c.name)),
    removed: existing.filter((c) => !next.has(c.name)),
    retyped: changed.filter((c) => !absorbsType(c.from, c.to)),
  };
  if (widened.length > 0) diff.widened = widened;
  return diff;
}

/** Added, removed or retyped columns (widened ones are not drift). */
export function hasDrift(d: SchemaDiff): boolean {
  return d.added.length + d.removed.length + d.retyped.length > 0;
}

/** A readable diff: `+ col type`, `- col type`, `~ col from -> to`. */
export function formatDiff(d: SchemaDiff): string {
  return [
    ...d.added.map((c) => `+ ${c.name} ${c.pgType}`),
    ...d.removed.map((c) => `- ${c.name} ${c.pgType}`),
    ...d.retyped.map((c) => `~ ${c.name} ${c.from} -> ${c.to}`),
  ].join('\n');
}

export type DriftPolicy = 'fail' | 'evolve' | 'ignore';

export interface DriftResolution {
  /** Columns to add to the table first (evolve). */
  addColumns: TableColumn[];
  /**
   * Columns whose type the table changes first (evolve, a retyped column): `ALTER COLUMN … TYPE
   * to USING col::to`. Present only when there are some.
   */
  alterColumns?: { name: string; from: string; to: string }[];
  /** Target type for each incoming column that is loaded, by target name; missing = not loaded. */
  loadTypes: Map<string, string>;
  /** Table columns the source lacks: left NULL. */
  nullColumns: TableColumn[];
}

export class DriftError extends Error {
  readonly diff: SchemaDiff;
  constructor(message: string, diff: SchemaDiff) {
    super(message);
    this.name = 'DriftError';
    this.diff = diff;
  }
}

/**
 * The type a column takes under `evolve` when the table's type `table` can't absorb the incoming
 * type: the narrowest type that holds the table's values and the incoming ones without changing
 * the text of any of them —
 * - two integers: the wider integer;
 * - integers and numerics: `numeric` without a typmod (each value keeps its own scale, so
 *   `1.50` stays `1.50`);
 * - anything else (text and numbers, floats and numerics, dates and timestamps, …): `text`,
 *   the values as PostgreSQL (table) and DuckDB (incoming) write them. A table column already
 *   `text` stays `text`: the incoming values load as their text.
 */
export function evolvedType(table: string, incoming: string): string {
  if (absorbsType(table, incoming)) return table;
  const ti = INT_RANK[table];
  const ii = INT_RANK[incoming];
  if (ti !== undefined && ii !== undefined) return ii > ti ? incoming : table;
  const numericLike = (t: string) =>
    INT_RANK[t] !== undefined || t === 'numeric' || numericParams(t) !== undefined;
  if (numericLike(table) && numericLike(incoming)) return 'numeric';
  return 'text';
}

/**
 * What to do with a drifted schema:
 * - fail: any difference stops the load (the diff is in the message);
 * - evolve: added columns are added to the table, removed ones load as NULL; a retyped column
 *   becomes `evolvedType` (a wider integer, `numeric`, or `text`), altered in the load's
 *   transaction, so no row is lost and no value changes its text;
 * - ignore: added columns are not loaded, removed ones load as NULL, retyped ones are cast to the
 *   table's type (values that don't fit go to the rejects).
 */
export function resolveDrift(
  existing: readonly TableColumn[],
  incoming: readonly TableColumn[],
  policy: DriftPolicy,
  table: string,
): DriftResolution {
  const diff = diffSchema(existing, incoming);
  const loadTypes = new Map(incoming.map((c) => [c.name, c.pgType]));
  // Under every policy a widened column loads as the table's type.
  for (const w of diff.widened ?? []) loadTypes.set(w.name, w.from);
  if (!hasDrift(diff)) return { addColumns: [], loadTypes, nullColumns: [] };
  if (policy === 'fail') {
    throw new DriftError(
      `schema drift on ${table} (database.schema_drift = fail):\n${formatDiff(diff)}`,
      diff,
    );
  }
  if (policy === 'evolve') {
    const alterColumns: { name: string; from: string; to: string }[] = [];
    for (const r of diff.retyped) {
      const to = evolvedType(r.from, r.to);
      loadTypes.set(r.name, to);
      if (to !== r.from) alterColumns.push({ name: r.name, from: r.from, to });
    }
    return {
      addColumns: diff.added,
      loadTypes,
      nullColumns: diff.removed,
      ...(alterColumns.length > 0 ? { alterColumns } : {}),
    };
  }
  for (const c of diff.added) loadTypes.delete(c.name);
  for (const r of diff.retyped) loadTypes.set(r.name, r.from);
  return { addColumns: [], loadTypes, nullColumns: diff.removed };
}

// ---------------------------------------------------------------------------------------------
// Memory strategy

export type Strategy = 'eager' | 'batched' | 'streaming';

export interface MemoryEstimate {
  /** Rows in the input: exact (Parquet metadata) or estimated (CSV/NDJSON bytes / sampled line size). */
  rows: number;
  rowsExact: boolean;
  /** In-memory bytes of one row in DuckDB (fixed widths + string payloads), from a sample. */
  rowBytes: number;
  /** Bytes of one row in the COPY stream. */
  encodedRowBytes: number;
}

export interface StrategyChoice {
  strategy: Strategy;
  reason: string;
  /** Bytes this load may use: available memory minus the margin, or the explicit limit. */
  budgetBytes: number;
  /** Rows per COPY statement (the unit a failed batch is bisected in). */
  batchRows: number;
  /** DuckDB `memory_limit` in bytes. */
  duckdbMemoryBytes: number;
  /** Estimated bytes to hold the whole input materialized. */
  eagerBytes: number;
}

/** Rows DuckDB hands over per chunk (its vector size). */
export const CHUNK_ROWS = 2048;
const MB = 1024 * 1024;
const MIN_BATCH_ROWS = 16 * CHUNK_ROWS;
const MAX_BATCH_ROWS = 512 * CHUNK_ROWS;
/**
 * Above this, eager buys nothing: measured at 20M rows × 5 columns, materializing the input
 * loaded no faster than COPY batches (PostgreSQL's COPY is the bottleneck) with 10× the RSS.
 */
export const EAGER_MAX_BYTES = 512 * MB;
/** Memory outside our buffers: Node, V8, DuckDB's own structures, pg's socket buffers. */
export const BASE_OVERHEAD_BYTES = 96 * MB;
/**
 * Growth beyond the RSS a process has when it plans a load (DuckDB structures outside its
 * memory_limit, pg socket buffers, V8 garbage between collections). 32 MB let a 10M-row load
 * under a 256 MB limit peak at 260 MB (bench/pg-loader, 2026-11-22).
 */
export const LOAD_HEADROOM_BYTES = 48 * MB;

/**
 * The memory the budget can't hand to buffers: BASE_OVERHEAD_BYTES, or, in a process that holds
 * more before the load starts (the CLI loads every command's modules), that RSS plus headroom.
 */
export function overheadBytes(processBytes?: number): number {
  return Math.max(BASE_OVERHEAD_BYTES, (processBytes ?? 0) + LOAD_HEADROOM_BYTES);
}

export function formatBytes(n: number): string {
  if (n >= 1024 * MB) return `${(n / (1024 * MB)).toFixed(1)} GB`;
  return `${Math.round(n / MB)} MB`;
}

/**
 * eager when the whole input, materialized by DuckDB and encoded, takes at most half the budget
 * (and at most EAGER_MAX_BYTES); otherwise batched when a COPY batch of ≥ 32k rows fits in an
 * eighth of the budget; otherwise streaming: small batches, DuckDB squeezed to a quarter. Outside
 * eager, the bytes in flight are bounded by batchRows × row size, never by the input size.
 */
export function chooseStrategy(input: {
  estimate: MemoryEstimate;
  availableBytes: number;
  marginFraction: number;
  limitBytes?: number | undefined;
  batchRows?: number | undefined;
  /**
   * RSS of the process when the load is planned, counted against an explicit limit (see
   * overheadBytes). Measured available memory already leaves out what the process holds.
   */
  processBytes?: number | undefined;
}): StrategyChoice {
  const { estimate } = input;
  const budgetBytes =
    input.limitBytes !== undefined
      ? input.limitBytes
      : Math.max(0, Math.floor(input.availableBytes * (1 - input.marginFraction)));
  const usable = Math.max(
    0,
    budgetBytes - overheadBytes(input.limitBytes !== undefined ? input.processBytes : undefined),
  );
  const perRow = estimate.rowBytes + estimate.encodedRowBytes;
  const eagerBytes = Math.ceil(estimate.rows * perRow);
  const budgetText =
    input.limitBytes !== undefined
      ? `the configured limit ${formatBytes(budgetBytes)}`
      : `${formatBytes(budgetBytes)} available after the ${Math.round(input.marginFraction * 100)}% OS margin`;
  const need = `${estimate.rowsExact ? '' : '~'}${estimate.rows.toLocaleString('en-US')} rows × ${Math.round(perRow)} B = ${formatBytes(eagerBytes)}`;
  // A configured batch size wins; otherwise whole chunks, between one chunk and MAX_BATCH_ROWS.
  const clampBatch = (rows: number) =>
    input.batchRows ??
    Math.min(MAX_BATCH_ROWS, Math.max(CHUNK_ROWS, Math.floor(rows / CHUNK_ROWS) * CHUNK_ROWS));
  if (eagerBytes <= Math.min(usable / 2, EAGER_MAX_BYTES)) {
    return {
      strategy: 'eager',
      reason: `${need} fits in half of ${budgetText}: DuckDB materializes the input, one COPY per file`,
      budgetBytes,
      batchRows: Math.max(CHUNK_ROWS, input.batchRows ?? Math.ceil(estimate.rows / CHUNK_ROWS) * CHUNK_ROWS),
      duckdbMemoryBytes: Math.max(64 * MB, Math.floor(usable * 0.75)),
      eagerBytes,
    };
  }
  const batchFit = Math.floor(usable / 8 / Math.max(1, perRow));
  if (batchFit >= MIN_BATCH_ROWS) {
    const batchRows = clampBatch(batchFit);
    return {
      strategy: 'batched',
      reason: `${need} ${eagerBytes > usable / 2 ? `exceeds half of ${budgetText}` : `is over ${formatBytes(EAGER_MAX_BYTES)}, where materializing stops paying`}: streamed in COPY batches of ${batchRows.toLocaleString('en-US')} rows`,
      budgetBytes,
      batchRows,
      duckdbMemoryBytes: Math.max(64 * MB, Math.floor(usable / 2)),
      eagerBytes,
    };
  }
  const batchRows = clampBatch(Math.min(batchFit, MIN_BATCH_ROWS));
  return {
    strategy: 'streaming',
    reason: `${need} against ${budgetText}: too tight for large batches, streamed chunk by chunk in batches of ${batchRows.toLocaleString('en-US')} rows`,
    budgetBytes,
    batchRows,
    duckdbMemoryBytes: Math.max(32 * MB, Math.floor(usable / 4)),
    eagerBytes,
  };
}

/** Bytes of one row in DuckDB's vectors, given each column's wire kind and average string bytes. */
export function estimateRowBytes(columns: readonly { wire: WireKind; avgBytes: number }[]): {
  rowBytes: number;
  encodedRowBytes: number;
} {
  const fixed: Partial<Record<WireKind, number>> = {
    bool: 1,
    int2: 2,
    int4: 4,
    int8: 8,
    float4: 4,
    float8: 8,
    date: 4,
    timestamp: 8,
    timestamptz: 8,
    time: 8,
    interval: 16,
    uuid: 16,
  };
  let rowBytes = 0;
  let encodedRowBytes = 2;
  for (const c of columns) {
    const f = fixed[c.wire];
    if (f !== undefined) {
      rowBytes += f;
      encodedRowBytes += 4 + f;
    } else {
      // string_t header, plus the payload when it doesn't fit inline.
      rowBytes += 16 + (c.avgBytes > 12 ? c.avgBytes : 0);
      encodedRowBytes += 4 + c.avgBytes + (c.wire === 'jsonb' ? 1 : 0);
    }
  }
  return { rowBytes, encodedRowBytes };
}
