import { InvalidInputError } from '@parquetry/service';
import { z } from 'zod';
import type { ColumnType } from '../datasets.js';
import { sqlIdent } from '../parquet/duckdb.js';
import {
  type BoundType,
  type BoundValue,
  columnNameSchema,
  compileQuery,
  QUERY_LIMITS,
  SOURCE_PLACEHOLDER,
} from './filters.js';

/**
 * Structured expressions for row-level updates and partition transforms, compiled to DuckDB
 * SQL under the same rules as the filter compiler (filters.ts): identifiers must be columns of
 * the schema and are emitted double-quoted; every literal is a bound parameter cast to its type;
 * operators and functions come from a closed set and are type-checked here, so a bad expression
 * fails with a 400 naming its path instead of reaching DuckDB.
 *
 *   { column: 'price' }                          a column
 *   { value: 1.1 } / { value: 'x' } / { value: null }
 *   { op: '*', args: [a, b] }                    + - * / % on numbers
 *   { fn: 'lower', args: [a] }                   year month day hour minute date lower upper
 *   { fn: 'cast', args: [a], type: 'DOUBLE' }    cast to a column type
 *
 * `parseExpression` reads the same language as text (`price * 1.1`, `upper(name)`,
 * `cast(size as BIGINT)`) for the CLI; its output goes through the same validation.
 */

export const EXPRESSION_FUNCTIONS = [
  'year',
  'month',
  'day',
  'hour',
  'minute',
  'date',
  'lower',
  'upper',
  'cast',
] as const;
export type ExpressionFunction = (typeof EXPRESSION_FUNCTIONS)[number];
export const ARITHMETIC_OPS = ['+', '-', '*', '/', '%'] as const;
export type ArithmeticOp = (typeof ARITHMETIC_OPS)[number];
export const CAST_TYPES = [
  'VARCHAR',
  'BIGINT',
  'INTEGER',
  'DOUBLE',
  'BOOLEAN',
  'DATE',
  'TIMESTAMPTZ',
] as const;
export type CastType = (typeof CAST_TYPES)[number];

export const EXPRESSION_LIMITS = { maxDepth: 12, maxNodes: 128, maxTextChars: 2000 } as const;

export type Expression =
  | { column: string }
  | { value: string | number | boolean | null }
  | { op: ArithmeticOp; args: [Expression, Expression] }
  | { fn: Exclude<ExpressionFunction, 'cast'>; args: [Expression] }
  | { fn: 'cast'; args: [Expression]; type: CastType };

const literalSchema = z.union([
  z.string().max(QUERY_LIMITS.maxStringChars),
  z.number().refine(Number.isFinite, 'must be a finite number'),
  z.boolean(),
  z.null(),
]);

export const expressionSchema: z.ZodType<Expression> = z.lazy(() =>
  z.union([
    z.object({ column: columnNameSchema }).strict(),
    z.object({ value: literalSchema }).strict(),
    z.object({ op: z.enum(ARITHMETIC_OPS), args: z.tuple([expressionSchema, expressionSchema]) }).strict(),
    z
      .object({
        fn: z.enum(['year', 'month', 'day', 'hour', 'minute', 'date', 'lower', 'upper']),
        args: z.tuple([expressionSchema]),
      })
      .strict(),
    z.object({ fn: z.literal('cast'), args: z.tuple([expressionSchema]), type: z.enum(CAST_TYPES) }).strict(),
  ]),
) as z.ZodType<Expression>;

/** Parameters collected so far; compiling appends, so numbering continues after a filter's `$n`. */
export interface ParamList {
  params: BoundValue[];
  types: BoundType[];
}

/** The type an expression yields; `NULL` for a bare null literal (assignable to anything). */
export type ExpressionType = ColumnType | 'NULL';

export interface CompiledExpression {
  sql: string;
  type: ExpressionType;
}

const NUMERIC: ReadonlySet<ExpressionType> = new Set(['INTEGER', 'BIGINT', 'DOUBLE']);
const TEMPORAL: ReadonlySet<ExpressionType> = new Set(['DATE', 'TIMESTAMPTZ']);

function fail(path: string, message: string, details?: Record<string, unknown>): never {
  throw new InvalidInputError(`${path}: ${message}`, {
    code: 'invalid_expression',
    details: { path, ...details },
  });
}

function show(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function countNodes(e: unknown, depth: number, path: string, budget: { left: number }): void {
  if (depth > EXPRESSION_LIMITS.maxDepth)
    fail(path, `nested deeper than ${EXPRESSION_LIMITS.maxDepth} levels`);
  if (--budget.left < 0) fail(path, `more than ${EXPRESSION_LIMITS.maxNodes} nodes`);
  const args = (e as { args?: unknown } | null)?.args;
  if (Array.isArray(args))
    for (const [i, a] of args.entries()) countNodes(a, depth + 1, `${path}.args.${i}`, budget);
}

/** Validates the shape (closed set of node kinds, bounded size) before any type checking. */
export function parseExpressionInput(raw: unknown, path = 'expression'): Expression {
  countNodes(raw, 0, path, { left: EXPRESSION_LIMITS.maxNodes });
  const parsed = expressionSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  const where = [path, ...(first?.path ?? []).map(String)].join('.');
  return fail(where, first?.message ?? 'not a valid expression', {
    hint: 'an expression is {column}, {value}, {op, args:[a, b]}, {fn, args:[a]} or {fn:"cast", args:[a], type}',
  });
}

/** Every column an expression reads. */
export function expressionColumns(e: Expression, out: Set<string> = new Set()): Set<string> {
  if ('column' in e) out.add(e.column);
  else if ('args' in e) for (const a of e.args) expressionColumns(a, out);
  return out;
}

function pushParam(list: ParamList, value: BoundValue, type: BoundType): string {
  list.params.push(value);
  list.types.push(type);
  return `$${list.params.length}`;
}

class ExpressionCompiler {
  private readonly columns: Map<string, ColumnType>;

  constructor(
    schema: Readonly<Record<string, ColumnType>>,
    readonly params: ParamList,
  ) {
    // A Map, not `schema[name]`: names like `__proto__` must not resolve.
    this.columns = new Map(Object.entries(schema));
  }

  compile(e: Expression, path: string): CompiledExpression {
    if ('column' in e) {
      const type = this.columns.get(e.column);
      if (type === undefined) {
        fail(path, `unknown column ${show(e.column)}`, { valid: [...this.columns.keys()].slice(0, 200) });
      }
      // JSON columns hold JSON text: expressions see them as that text.
      if (type === 'JSON') return { sql: `CAST(${sqlIdent(e.column)} AS VARCHAR)`, type: 'VARCHAR' };
      return { sql: sqlIdent(e.column), type };
    }
    if ('value' in e) return this.literal(e.value, path);
    if ('op' in e) {
      const a = this.compile(e.args[0], `${path}.args.0`);
      const b = this.compile(e.args[1], `${path}.args.1`);
      for (const [i, x] of [a, b].entries()) {
        if (!NUMERIC.has(x.type) && x.type !== 'NULL') {
          fail(`${path}.args.${i}`, `${e.op} needs numbers, got ${x.type}`);
        }
      }
      const type: ExpressionType =
        e.op === '/' || a.type === 'DOUBLE' || b.type === 'DOUBLE'
          ? 'DOUBLE'
          : a.type === 'NULL' && b.type === 'NULL'
            ? 'NULL'
            : 'BIGINT';
      // Integer operands are widened so BIGINT arithmetic never overflows an INTEGER column's width.
      const widen = (x: CompiledExpression) =>
        type === 'DOUBLE'
          ? `CAST(${x.sql} AS DOUBLE)`
          : type === 'BIGINT'
            ? `CAST(${x.sql} AS BIGINT)`
            : x.sql;
      return { sql: `(${widen(a)} ${e.op} ${widen(b)})`, type };
    }
    const arg = this.compile(e.args[0], `${path}.args.0`);
    const needs = (allowed: ReadonlySet<ExpressionType> | ExpressionType[], what: string) => {
      const ok = Array.isArray(allowed) ? allowed.includes(arg.type) : allowed.has(arg.type);
      if (!ok && arg.type !== 'NULL') fail(`${path}.args.0`, `${e.fn} needs ${what}, got ${arg.type}`);
    };
    switch (e.fn) {
      case 'year':
      case 'month':
      case 'day':
        needs(TEMPORAL, 'a DATE or TIMESTAMPTZ');
        return { sql: `CAST(${e.fn}(${arg.sql}) AS BIGINT)`, type: 'BIGINT' };
      case 'hour':
      case 'minute':
        needs(['TIMESTAMPTZ'], 'a TIMESTAMPTZ');
        return { sql: `CAST(${e.fn}(${arg.sql}) AS BIGINT)`, type: 'BIGINT' };
      case 'date':
        needs(TEMPORAL, 'a DATE or TIMESTAMPTZ');
        // Sessions run in UTC (openDuckDB), so the day of a TIMESTAMPTZ is its UTC day.
        return { sql: `CAST(${arg.sql} AS DATE)`, type: 'DATE' };
      case 'lower':
      case 'upper':
        needs(['VARCHAR'], 'a string');
        return { sql: `${e.fn}(${arg.sql})`, type: 'VARCHAR' };
      case 'cast':
        return { sql: `CAST(${arg.sql} AS ${e.type})`, type: e.type };
      default: {
        const never: never = e;
        return fail(path, `unknown function ${JSON.stringify(never)}`);
      }
    }
  }

  private literal(value: string | number | boolean | null, path: string): CompiledExpression {
    if (value === null) return { sql: 'NULL', type: 'NULL' };
    if (typeof value === 'string') {
      return { sql: `CAST(${pushParam(this.params, value, 'VARCHAR')} AS VARCHAR)`, type: 'VARCHAR' };
    }
    if (typeof value === 'boolean') {
      return { sql: `CAST(${pushParam(this.params, value, 'BOOLEAN')} AS BOOLEAN)`, type: 'BOOLEAN' };
    }
    if (!Number.isFinite(value)) fail(path, 'numbers must be finite');
    if (Number.isSafeInteger(value)) {
      return { sql: `CAST(${pushParam(this.params, BigInt(value), 'BIGINT')} AS BIGINT)`, type: 'BIGINT' };
    }
    return { sql: `CAST(${pushParam(this.params, value, 'DOUBLE')} AS DOUBLE)`, type: 'DOUBLE' };
  }
}

export interface CompileExpressionInput {
  /** Column → type: the only source of identifiers. */
  schema: Readonly<Record<string, ColumnType>>;
  /** Untrusted: validated here. */
  expr: unknown;
  /** Parameters bound so far (appended to, in place). */
  params?: ParamList;
  /** Where the expression sits in the request, for error messages. */
  path?: string;
}

/** Validates and type-checks an expression and compiles it to SQL with bound literals. */
export function compileExpression(input: CompileExpressionInput): CompiledExpression & { params: ParamList } {
  const path = input.path ?? 'expression';
  const params = input.params ?? { params: [], types: [] };
  const expr = parseExpressionInput(input.expr, path);
  const compiled = new ExpressionCompiler(input.schema, params).compile(expr, path);
  return { ...compiled, params };
}

/**
 * Whether a value of type `from` may be stored in a column of type `to` without an explicit cast:
 * same type, null, or widening between numbers. Narrowing (DOUBLE → BIGINT) needs `cast`.
 */
export function isAssignable(from: ExpressionType, to: ColumnType): boolean {
  if (from === 'NULL' || from === to) return true;
  if (to === 'DOUBLE') return from === 'INTEGER' || from === 'BIGINT';
  if (to === 'BIGINT') return from === 'INTEGER';
  return false;
}

/** DuckDB type text a column type is stored as (JSON columns are VARCHAR holding JSON). */
export function storageType(type: ColumnType): string {
  return type === 'JSON' ? 'VARCHAR' : type;
}

export interface CompiledAssignment {
  column: string;
  /** SQL of the new value, cast to the column's storage type. */
  sql: string;
}

/** `column = expression` for an update: the column must exist and the value's type must fit it. */
export function compileAssignment(input: {
  schema: Readonly<Record<string, ColumnType>>;
  column: string;
  expr: unknown;
  params?: ParamList;
  path?: string;
}): CompiledAssignment & { params: ParamList } {
  const path = input.path ?? `set.${input.column}`;
  const target = new Map(Object.entries(input.schema)).get(input.column);
  if (target === undefined) {
    fail(path, `unknown column ${show(input.column)}`, { valid: Object.keys(input.schema).slice(0, 200) });
  }
  if (target === 'JSON') fail(path, `column ${show(input.column)} holds JSON text and cannot be assigned`);
  const compiled = compileExpression({ schema: input.schema, expr: input.expr, params: input.params, path });
  if (!isAssignable(compiled.type, target)) {
    fail(path, `a ${compiled.type} value cannot be stored in ${target} column ${show(input.column)}`, {
      hint: `wrap it in {"fn":"cast","type":"${target}","args":[…]} to convert explicitly`,
    });
  }
  return {
    column: input.column,
    sql: `CAST(${compiled.sql} AS ${storageType(target)})`,
    params: compiled.params,
  };
}

export interface CompiledPredicate {
  /** A boolean SQL expression over the schema's columns (`$n` placeholders), or `TRUE` with no filters. */
  sql: string;
  params: ParamList;
}

/**
 * Row filters (the export filter language, filters.ts) as one boolean expression, for callers
 * that need it inside their own statement (`WHERE (pred) IS NOT TRUE`, `CASE WHEN pred …`).
 */
export function compileRowPredicate(input: {
  schema: Readonly<Record<string, ColumnType>>;
  filters: unknown;
}): CompiledPredicate {
  const first = Object.keys(input.schema)[0];
  if (first === undefined) throw new InvalidInputError('dataset has no known columns');
  const q = compileQuery({ schema: input.schema, filters: input.filters, columns: [first] });
  // compileQuery builds `SELECT … FROM <placeholder>[ WHERE …]` from validated parts only.
  const marker = `${SOURCE_PLACEHOLDER} WHERE `;
  const at = q.sql.indexOf(marker);
  const sql = at < 0 ? 'TRUE' : q.sql.slice(at + marker.length);
  return { sql, params: { params: [...q.params], types: [...q.paramTypes] } };
}

// ---- text form -------------------------------------------------------------------------------

type Token =
  | { kind: 'num'; text: string; at: number }
  | { kind: 'str'; value: string; at: number }
  | { kind: 'ident'; value: string; quoted: boolean; at: number }
  | { kind: 'punct'; value: string; at: number }
  | { kind: 'end'; at: number };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const bad = (msg: string): never => fail(`expression@${i}`, msg);
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const at = i;
    if (/[0-9.]/.test(ch)) {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) bad('bad number');
      out.push({ kind: 'num', text: m![0], at });
      i += m![0].length;
      continue;
    }
    if (ch === "'" || ch === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) bad(`unterminated ${ch === "'" ? 'string' : 'quoted name'}`);
        if (text[i] === ch) {
          if (text[i + 1] === ch) {
            value += ch;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      out.push(ch === "'" ? { kind: 'str', value, at } : { kind: 'ident', value, quoted: true, at });
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      out.push({ kind: 'ident', value: m[0], quoted: false, at });
      i += m[0].length;
      continue;
    }
    if ('+-*/%(),'.includes(ch)) {
      out.push({ kind: 'punct', value: ch, at });
      i++;
      continue;
    }
    bad(`unexpected character ${JSON.stringify(ch)}`);
  }
  out.push({ kind: 'end', at: text.length });
  return out;
}

/**
 * Parses the text form: numbers, 'strings' (doubled '' escapes), column names (bare, or
 * "quoted" for any other name), true/false/null, + - * / % with the usual precedence,
 * parentheses, unary minus, `fn(x)` for the fixed functions and `cast(x as TYPE)`.
 */
export function parseExpression(text: string): Expression {
  if (text.length > EXPRESSION_LIMITS.maxTextChars) {
    fail('expression', `longer than ${EXPRESSION_LIMITS.maxTextChars} characters`);
  }
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos]!;
  const next = () => tokens[pos++]!;
  const bad = (t: Token, msg: string): never => fail(`expression@${t.at}`, msg);
  const expectPunct = (p: string) => {
    const t = next();
    if (t.kind !== 'punct' || t.value !== p) bad(t, `expected ${JSON.stringify(p)}`);
  };
  let depth = 0;

  const primary = (): Expression => {
    const t = next();
    if (t.kind === 'num') return { value: Number(t.text) };
    if (t.kind === 'str') return { value: t.value };
    if (t.kind === 'punct' && t.value === '(') {
      if (++depth > EXPRESSION_LIMITS.maxDepth) bad(t, 'nested too deeply');
      const e = additive();
      expectPunct(')');
      depth--;
      return e;
    }
    if (t.kind === 'punct' && t.value === '-') {
      const operand = primary();
      if ('value' in operand && typeof operand.value === 'number') return { value: -operand.value };
      return { op: '-', args: [{ value: 0 }, operand] };
    }
    if (t.kind === 'ident') {
      const name = t.value;
      const lower = name.toLowerCase();
      if (!t.quoted && (lower === 'true' || lower === 'false')) return { value: lower === 'true' };
      if (!t.quoted && lower === 'null') return { value: null };
      const call = peek();
      if (!t.quoted && call.kind === 'punct' && call.value === '(') {
        next();
        if (!(EXPRESSION_FUNCTIONS as readonly string[]).includes(lower)) {
          bad(t, `unknown function ${show(name)}; allowed: ${EXPRESSION_FUNCTIONS.join(', ')}`);
        }
        if (++depth > EXPRESSION_LIMITS.maxDepth) bad(t, 'nested too deeply');
        const arg = additive();
        depth--;
        if (lower === 'cast') {
          const as = next();
          if (as.kind !== 'ident' || as.quoted || as.value.toLowerCase() !== 'as')
            bad(as, 'expected AS in cast(x AS TYPE)');
          const ty = next();
          const type = ty.kind === 'ident' ? ty.value.toUpperCase() : '';
          if (!(CAST_TYPES as readonly string[]).includes(type))
            bad(ty, `cast type must be one of ${CAST_TYPES.join(', ')}`);
          expectPunct(')');
          return { fn: 'cast', args: [arg], type: type as CastType };
        }
        expectPunct(')');
        return { fn: lower as Exclude<ExpressionFunction, 'cast'>, args: [arg] };
      }
      return { column: name };
    }
    return bad(t, t.kind === 'end' ? 'unexpected end of expression' : 'unexpected token');
  };
  const multiplicative = (): Expression => {
    let left = primary();
    for (;;) {
      const t = peek();
      if (t.kind !== 'punct' || !'*/%'.includes(t.value)) return left;
      next();
      left = { op: t.value as ArithmeticOp, args: [left, primary()] };
    }
  };
  const additive = (): Expression => {
    let left = multiplicative();
    for (;;) {
      const t = peek();
      if (t.kind !== 'punct' || (t.value !== '+' && t.value !== '-')) return left;
      next();
      left = { op: t.value as ArithmeticOp, args: [left, multiplicative()] };
    }
  };
  const e = additive();
  const rest = peek();
  if (rest.kind !== 'end') bad(rest, 'unexpected text after the expression');
  return e;
}
