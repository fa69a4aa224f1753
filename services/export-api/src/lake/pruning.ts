import type { ColumnType, FileEntry, Filter, PartitionValues } from '@parquetry/lake';

/**
 * Which partitions and files an export can skip, decided from catalog metadata alone. Pure and
 * conservative: a partition or file is dropped only when it provably holds no matching row;
 * anything this module does not understand (LIKE, text ranges, a value it cannot compare)
 * keeps it, and the SQL filters the rows anyway.
 */

const DAY_MS = 86_400_000;

/** Whether a partition's values can satisfy every predicate that names a partition column. */
export function partitionMayMatch(
  values: PartitionValues,
  predicates: readonly Filter[],
  types: Readonly<Record<string, ColumnType>>,
): boolean {
  return predicates.every((p) => {
    if (!Object.hasOwn(values, p.column)) return true;
    const value = values[p.column]!;
    // The empty string and NULL share the default partition directory: no conclusion.
    if (value === '') return true;
    return valueMayMatch(value, p, types[p.column]);
  });
}

function valueMayMatch(value: string, p: Filter, type: ColumnType | undefined): boolean {
  switch (p.op) {
    case 'is_null':
      return !p.value; // a non-empty partition value is not NULL
    case '=':
      return typeof p.value === 'string' ? comparable(value, p.value, type) === 0 : true;
    case 'in':
      return p.value.some((v) => typeof v !== 'string' || comparable(value, v, type) !== 1);
    case '!=':
      return typeof p.value === 'string' ? comparable(value, p.value, type) !== 0 : true;
    case '<':
    case '<=':
    case '>':
    case '>=':
    case 'between':
      return rangeMayMatch(value, p, type);
    default:
      return true;
  }
}

/** 0 when equal, 1 when not, undefined when this type is not compared here. */
function comparable(value: string, other: string, type: ColumnType | undefined): 0 | 1 | undefined {
  if (type === 'VARCHAR' || type === 'DATE') return value === other ? 0 : 1;
  return undefined;
}

/** Only DATE partition values are ordered here ('YYYY-MM-DD' sorts as text); text order is DuckDB's, not JS's. */
function rangeMayMatch(value: string, p: Filter, type: ColumnType | undefined): boolean {
  if (type !== 'DATE' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return true;
  const cmp = (bound: unknown, ok: (c: number) => boolean) =>
    typeof bound !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(bound)
      ? true
      : ok(value < bound ? -1 : value > bound ? 1 : 0);
  switch (p.op) {
    case '<':
      return cmp(p.value, (c) => c < 0);
    case '<=':
      return cmp(p.value, (c) => c <= 0);
    case '>':
      return cmp(p.value, (c) => c > 0);
    case '>=':
      return cmp(p.value, (c) => c >= 0);
    case 'between':
      return cmp(p.value[0], (c) => c >= 0) && cmp(p.value[1], (c) => c <= 0);
    default:
      return true;
  }
}

/** A file whose recorded [minTime, maxTime] misses [startMs, endMs) holds no row of the range. */
export function fileMayMatchTime(file: Pick<FileEntry, 'minTime' | 'maxTime'>, range?: TimeRange): boolean {
  if (!range) return true;
  const min = file.minTime ? Date.parse(file.minTime) : Number.NaN;
  const max = file.maxTime ? Date.parse(file.maxTime) : Number.NaN;
  if (Number.isFinite(max) && max < range.startMs) return false;
  if (Number.isFinite(min) && min >= range.endMs) return false;
  return true;
}

/** A `date=YYYY-MM-DD` partition covers that whole UTC day. */
export function dayMayMatchTime(day: string | undefined, range?: TimeRange): boolean {
  if (!range || day === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return true;
  const start = Date.parse(`${day}T00:00:00Z`);
  if (!Number.isFinite(start)) return true;
  return start + DAY_MS > range.startMs && start < range.endMs;
}

export interface TimeRange {
  startMs: number;
  endMs: number;
}
