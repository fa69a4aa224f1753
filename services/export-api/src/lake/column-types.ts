import type { ColumnType } from '@parquetry/lake';

/**
 * DuckDB types as DESCRIBE prints them → the dataset schema's types, and how two files that
 * disagree about a column are reconciled. Pure.
 */

const INTEGER = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT']);
const BIGINT = new Set(['BIGINT', 'UINTEGER', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);
const DOUBLE = new Set(['FLOAT', 'DOUBLE', 'REAL']);

export function columnTypeOf(duckdbType: string): ColumnType {
  const t = duckdbType.toUpperCase();
  if (t === 'BOOLEAN') return 'BOOLEAN';
  if (INTEGER.has(t)) return 'INTEGER';
  if (BIGINT.has(t)) return 'BIGINT';
  if (DOUBLE.has(t) || t.startsWith('DECIMAL')) return 'DOUBLE';
  if (t === 'DATE') return 'DATE';
  if (t.startsWith('TIMESTAMP')) return 'TIMESTAMPTZ';
  // VARCHAR, JSON text, and anything nested or binary: exported and filtered as text.
  return 'VARCHAR';
}

/** The type both can be read as: integers widen to BIGINT then DOUBLE, any other mix is text. */
export function widenType(a: ColumnType, b: ColumnType): ColumnType {
  if (a === b) return a;
  const rank: Partial<Record<ColumnType, number>> = { INTEGER: 1, BIGINT: 2, DOUBLE: 3 };
  const ra = rank[a];
  const rb = rank[b];
  if (ra !== undefined && rb !== undefined) return ra > rb ? a : b;
  return 'VARCHAR';
}

/** How DESCRIBE spells each schema type: a file column already of this type needs no cast. */
export const DESCRIBED_AS: Readonly<Record<ColumnType, string>> = {
  VARCHAR: 'VARCHAR',
  BIGINT: 'BIGINT',
  INTEGER: 'INTEGER',
  DOUBLE: 'DOUBLE',
  BOOLEAN: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMPTZ: 'TIMESTAMP WITH TIME ZONE',
  JSON: 'JSON',
};
