import { InvalidInputError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../datasets.js';
import { TICKS } from '../datasets.js';
import {
  compileAssignment,
  compileExpression,
  compileRowPredicate,
  type Expression,
  parseExpression,
} from './expressions.js';

const schema: Record<string, ColumnType> = { ...TICKS.columns, qty: 'INTEGER', meta: 'JSON' };

function invalid(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as InvalidInputError;
  }
  throw new Error('expected InvalidInputError');
}

describe('compileExpression', () => {
  it('quotes columns and binds every literal with its type', () => {
    const c = compileExpression({
      schema,
      expr: { op: '*', args: [{ column: 'price' }, { value: 1.5 }] },
    });
    expect(c.sql).toBe('(CAST("price" AS DOUBLE) * CAST(CAST($1 AS DOUBLE) AS DOUBLE))');
    expect(c.type).toBe('DOUBLE');
    expect(c.params).toEqual({ params: [1.5], types: ['DOUBLE'] });
  });

  it('continues parameter numbering after earlier parameters', () => {
    const params = { params: ['x'], types: ['VARCHAR' as const] };
    const c = compileExpression({ schema, expr: { fn: 'upper', args: [{ value: 'abc' }] }, params });
    expect(c.sql).toBe('upper(CAST($2 AS VARCHAR))');
    expect(params.params).toEqual(['x', 'abc']);
  });

  it('types transforms and integer arithmetic', () => {
    expect(compileExpression({ schema, expr: { fn: 'year', args: [{ column: 'ts' }] } }).type).toBe('BIGINT');
    expect(compileExpression({ schema, expr: { fn: 'date', args: [{ column: 'ts' }] } }).type).toBe('DATE');
    expect(
      compileExpression({ schema, expr: { op: '+', args: [{ column: 'qty' }, { value: 2 }] } }).type,
    ).toBe('BIGINT');
    expect(
      compileExpression({ schema, expr: { op: '/', args: [{ column: 'qty' }, { value: 2 }] } }).type,
    ).toBe('DOUBLE');
    expect(
      compileExpression({ schema, expr: { fn: 'cast', type: 'VARCHAR', args: [{ column: 'price' }] } }).sql,
    ).toBe('CAST("price" AS VARCHAR)');
  });

  it('rejects unknown columns, bad types and unknown node kinds with the path', () => {
    expect(invalid(() => compileExpression({ schema, expr: { column: 'nope' } })).message).toContain(
      'unknown column "nope"',
    );
    expect(
      invalid(() =>
        compileExpression({ schema, expr: { op: '+', args: [{ column: 'side' }, { value: 1 }] } }),
      ).message,
    ).toContain('expression.args.0: + needs numbers, got VARCHAR');
    expect(
      invalid(() => compileExpression({ schema, expr: { fn: 'hour', args: [{ column: 'date' }] } })).message,
    ).toContain('hour needs a TIMESTAMPTZ');
    expect(invalid(() => compileExpression({ schema, expr: { sql: '1; DROP TABLE x' } })).code).toBe(
      'invalid_expression',
    );
    expect(
      invalid(() => compileExpression({ schema, expr: { fn: 'exec', args: [{ value: 1 }] } })).code,
    ).toBe('invalid_expression');
    expect(
      invalid(() =>
        compileExpression({ schema, expr: { fn: 'cast', type: 'INT; DROP', args: [{ value: 1 }] } }),
      ).code,
    ).toBe('invalid_expression');
  });

  it('never lets a hostile name or value reach the SQL text', () => {
    const hostile = `x" || (SELECT 1) || "`;
    const c = compileExpression({
      schema: { ...schema, [hostile]: 'VARCHAR' },
      expr: { fn: 'lower', args: [{ column: hostile }] },
    });
    expect(c.sql).toBe(`lower("x"" || (SELECT 1) || """)`);
    const v = compileExpression({ schema, expr: { value: "'; DROP TABLE t; --" } });
    expect(v.sql).toBe('CAST($1 AS VARCHAR)');
    expect(v.params.params).toEqual(["'; DROP TABLE t; --"]);
  });

  it('bounds size and depth', () => {
    let deep: Expression = { column: 'price' };
    for (let i = 0; i < 20; i++) deep = { op: '+', args: [deep, { value: 1 }] };
    expect(invalid(() => compileExpression({ schema, expr: deep })).message).toMatch(/deeper|nodes/);
  });
});

describe('compileAssignment', () => {
  it('casts to the column type and allows widening only', () => {
    const a = compileAssignment({ schema, column: 'price', expr: { column: 'qty' } });
    expect(a.sql).toBe('CAST("qty" AS DOUBLE)');
    expect(
      invalid(() => compileAssignment({ schema, column: 'qty', expr: { column: 'price' } })).message,
    ).toContain('cannot be stored in INTEGER');
    expect(
      compileAssignment({
        schema,
        column: 'qty',
        expr: { fn: 'cast', type: 'INTEGER', args: [{ column: 'price' }] },
      }).sql,
    ).toBe('CAST(CAST("price" AS INTEGER) AS INTEGER)');
    expect(compileAssignment({ schema, column: 'side', expr: { value: null } }).sql).toBe(
      'CAST(NULL AS VARCHAR)',
    );
    expect(invalid(() => compileAssignment({ schema, column: 'nope', expr: { value: 1 } })).code).toBe(
      'invalid_expression',
    );
    expect(
      invalid(() => compileAssignment({ schema, column: 'meta', expr: { value: '{}' } })).message,
    ).toContain('JSON');
  });
});

describe('compileRowPredicate', () => {
  it('returns the filters as one boolean expression with their parameters', () => {
    const p = compileRowPredicate({
      schema,
      filters: [
        { column: 'symbol', op: '=', value: 'ES' },
        { column: 'price', op: '>', value: 10 },
      ],
    });
    expect(p.sql).toBe('("symbol" = CAST($1 AS VARCHAR)) AND ("price" > CAST($2 AS DOUBLE))');
    expect(p.params).toEqual({ params: ['ES', 10], types: ['VARCHAR', 'DOUBLE'] });
    expect(compileRowPredicate({ schema, filters: [] }).sql).toBe('TRUE');
  });

  it('rejects injection attempts in filters', () => {
    expect(
      invalid(() =>
        compileRowPredicate({ schema, filters: [{ column: 'price) OR (1=1', op: '=', value: 1 }] }),
      ).message,
    ).toContain('unknown column');
    expect(
      invalid(() =>
        compileRowPredicate({ schema, filters: [{ column: 'price', op: 'OR 1=1 --', value: 1 }] }),
      ).code,
    ).toBe('invalid_query');
  });
});

describe('parseExpression', () => {
  it('parses arithmetic with precedence, functions, casts and literals', () => {
    expect(parseExpression('price * 1.1 + 2')).toEqual({
      op: '+',
      args: [{ op: '*', args: [{ column: 'price' }, { value: 1.1 }] }, { value: 2 }],
    });
    expect(parseExpression('upper(side)')).toEqual({ fn: 'upper', args: [{ column: 'side' }] });
    expect(parseExpression('cast(size as bigint)')).toEqual({
      fn: 'cast',
      type: 'BIGINT',
      args: [{ column: 'size' }],
    });
    expect(parseExpression("'it''s'")).toEqual({ value: "it's" });
    expect(parseExpression('"odd name" - -3')).toEqual({
      op: '-',
      args: [{ column: 'odd name' }, { value: -3 }],
    });
    expect(parseExpression('null')).toEqual({ value: null });
    expect(parseExpression('(price)')).toEqual({ column: 'price' });
  });

  it('rejects what is not in the language', () => {
    for (const text of [
      'price; DROP TABLE t',
      'exec(1)',
      "price || 'x'",
      '1 +',
      'cast(price as TEXT)',
      "'open",
    ]) {
      expect(invalid(() => parseExpression(text)).code, text).toBe('invalid_expression');
    }
  });
});
