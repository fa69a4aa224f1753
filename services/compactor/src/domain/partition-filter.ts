import {
  type ColumnType,
  compileQuery,
  type DatasetDef,
  type Filter,
  filtersSchema,
  type PartitionValues,
} from '@parquetry/lake';

export type PartitionPredicate = (values: PartitionValues) => boolean;

/** The partition columns and their types: the only columns a partition filter may name. */
export function partitionSchema(def: DatasetDef): Record<string, ColumnType> {
  return Object.fromEntries(def.partitionColumns.map((c) => [c, def.columns[c] ?? 'VARCHAR']));
}

function likeToRegExp(pattern: string): RegExp {
  let out = '';
  for (const ch of pattern) {
    if (ch === '%') out += '[\\s\\S]*';
    else if (ch === '_') out += '[\\s\\S]';
    else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 'u');
}

/** Orders a partition value against a filter value by the column's type. */
function compare(type: ColumnType, a: string, b: string | number | boolean): number {
  if (type === 'INTEGER' || type === 'BIGINT' || type === 'DOUBLE') {
    const x = Number(a);
    const y = Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === 'BOOLEAN') {
    const x = a === 'true' ? 1 : 0;
    const y = b === true || b === 'true' ? 1 : 0;
    return x - y;
  }
  // VARCHAR, and DATE as canonical YYYY-MM-DD text, order as strings.
  const y = String(b);
  return a < y ? -1 : a > y ? 1 : 0;
}

function matches(f: Filter, type: ColumnType, value: string | undefined): boolean {
  // Partition values are never NULL (an empty value has its own directory token).
  if (f.op === 'is_null') return value === undefined ? f.value : !f.value;
  if (value === undefined) return false;
  switch (f.op) {
    case '=':
      return compare(type, value, f.value) === 0;
    case '!=':
      return compare(type, value, f.value) !== 0;
    case '<':
      return compare(type, value, f.value) < 0;
    case '<=':
      return compare(type, value, f.value) <= 0;
    case '>':
      return compare(type, value, f.value) > 0;
    case '>=':
      return compare(type, value, f.value) >= 0;
    case 'in':
      return f.value.some((v) => compare(type, value, v) === 0);
    case 'between':
      return compare(type, value, f.value[0]) >= 0 && compare(type, value, f.value[1]) <= 0;
    case 'like':
      return likeToRegExp(f.value).test(value);
    default: {
      const never: never = f;
      throw new Error(`unknown filter ${JSON.stringify(never)}`);
    }
  }
}

/**
 * A partition filter for pruning: the export filter language restricted to the dataset's
 * partition columns. It is validated by the same compiler the exports use (unknown columns,
 * wrong types and hostile input are rejected with a 400 that names the path), then evaluated
 * on the partition values the catalog holds, so pruning needs no file reads.
 */
export function compilePartitionFilter(def: DatasetDef, raw: unknown): PartitionPredicate {
  if (raw === undefined) return () => true;
  const schema = partitionSchema(def);
  compileQuery({ schema, filters: raw });
  const filters = filtersSchema.parse(raw);
  return (values) => filters.every((f) => matches(f, schema[f.column] ?? 'VARCHAR', values[f.column]));
}

/** `retailer=x` pairs (the CLI's `--partition`) as equality filters. */
export function equalityFilters(where: Record<string, string> | undefined): Filter[] | undefined {
  if (!where) return undefined;
  return Object.entries(where).map(([column, value]) => ({ column, op: '=' as const, value }));
}
