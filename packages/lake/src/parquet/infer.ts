/**
 * Column schema inference for free-form records (scraped products). Pure.
 *
 * Per field, over every record: only booleans → BOOLEAN; only safe integers → BIGINT; only
 * finite numbers → DOUBLE; only strings → VARCHAR; anything else (types mixed between records,
 * objects, arrays, NaN/±Infinity, unsafe integers next to non-numbers) → VARCHAR holding JSON
 * text (`json: true`: every value, strings included, is written as `jsonText(value)` so the
 * column reads back uniformly as JSON). null/undefined and missing fields are NULL and don't
 * vote. A field that is NULL everywhere is VARCHAR.
 *
 * Column names keep the field name exactly (accents, spaces, quotes, upper case). DuckDB folds
 * ASCII letters when comparing identifiers, even quoted ones, so `Precio` and `precio` cannot
 * both be columns: the first one seen keeps its name, later ones get `__2`, `__3`, … (the first
 * free suffix), and `reserved` names (the dataset's fixed columns) always win. The empty field
 * name becomes `__empty`; NUL characters in names become U+FFFD. Columns are in order of first
 * appearance.
 */

export type InferredType = 'BOOLEAN' | 'BIGINT' | 'DOUBLE' | 'VARCHAR';

export interface InferredColumn {
  /** Column name in the Parquet file (unique under DuckDB's identifier comparison). */
  name: string;
  /** Key of the field in the records. */
  field: string;
  type: InferredType;
  /** VARCHAR holding JSON text of every value. */
  json: boolean;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// Bit flags of what a field has held so far.
const BOOL = 1;
const INT = 2; // safe integer number, or bigint within int64
const FLOAT = 4; // finite number that is not a safe integer
const STRING = 8;
const OTHER = 16; // objects, arrays, NaN, Infinity, bigint out of range, symbols, …
const BIG = 32; // a bigint was seen (cannot mix with FLOAT without loss)

function kindOf(value: unknown): number {
  switch (typeof value) {
    case 'boolean':
      return BOOL;
    case 'string':
      return STRING;
    case 'number':
      if (Number.isSafeInteger(value)) return INT;
      return Number.isFinite(value) ? FLOAT : OTHER;
    case 'bigint':
      return value >= INT64_MIN && value <= INT64_MAX ? INT | BIG : OTHER;
    default:
      return OTHER;
  }
}

function typeFromKinds(kinds: number): { type: InferredType; json: boolean } {
  switch (kinds) {
    case 0:
      return { type: 'VARCHAR', json: false };
    case BOOL:
      return { type: 'BOOLEAN', json: false };
    case STRING:
      return { type: 'VARCHAR', json: false };
    case INT:
    case INT | BIG:
      return { type: 'BIGINT', json: false };
    case FLOAT:
    case INT | FLOAT:
      return { type: 'DOUBLE', json: false };
    default:
      return { type: 'VARCHAR', json: true };
  }
}

/** DuckDB's identifier comparison: ASCII case folding only (`É` and `é` are different names). */
export function identifierKey(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Incremental inference, so a caller can feed records batch by batch without holding them. */
export class ColumnInferrer {
  /** Fields in order of first appearance, with what each has held. */
  private readonly fields: string[] = [];
  private readonly kinds: number[] = [];
  private readonly index = new Map<string, number>();

  observe(record: Record<string, unknown>): void {
    const fields = this.fields;
    let i = 0;
    for (const field of Object.keys(record)) {
      // Records of one batch mostly share their keys in one order: a key at the place it had
      // first is found without hashing (parsed JSON keys are interned, so === is a pointer test).
      const at = fields[i] === field ? i : this.slot(field);
      const value = record[field];
      if (value !== null && value !== undefined) this.kinds[at]! |= kindOf(value);
      i++;
    }
  }

  /** Adds what another inferrer has seen (per-message inference merged per file), in its order. */
  absorb(other: ColumnInferrer): void {
    other.fields.forEach((field, i) => {
      const at = this.slot(field);
      this.kinds[at]! |= other.kinds[i]!;
    });
  }

  columns(reserved: readonly string[] = []): InferredColumn[] {
    const taken = new Set(reserved.map(identifierKey));
    const out: InferredColumn[] = [];
    this.fields.forEach((field, i) => {
      const name = uniqueName(safeName(field), taken);
      taken.add(identifierKey(name));
      out.push({ name, field, ...typeFromKinds(this.kinds[i]!) });
    });
    return out;
  }

  private slot(field: string): number {
    let at = this.index.get(field);
    if (at === undefined) {
      at = this.fields.length;
      this.fields.push(field);
      this.kinds.push(0);
      this.index.set(field, at);
    }
    return at;
  }
}

function safeName(field: string): string {
  if (field === '') return '__empty';
  return field.replaceAll('\u0000', '\uFFFD');
}

function uniqueName(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(identifierKey(name))) return name;
  for (let n = 2; ; n++) {
    const candidate = `${name}__${n}`;
    if (!taken.has(identifierKey(candidate))) return candidate;
  }
}

/**
 * Columns for `records`. `reserved` are names already used by the dataset's fixed columns
 * (e.g. `retailer`, `date`): a record field with such a name is kept under a suffixed name.
 */
export function inferColumns(
  records: Iterable<Record<string, unknown>>,
  reserved: readonly string[] = [],
): InferredColumn[] {
  const inferrer = new ColumnInferrer();
  for (const r of records) inferrer.observe(r);
  return inferrer.columns(reserved);
}

/**
 * JSON text of a value for JSON-encoded columns. Unlike plain JSON.stringify it never loses a
 * value silently: NaN/±Infinity become the strings "NaN"/"Infinity"/"-Infinity" and bigints
 * their decimal string, at top level and nested; `undefined` inside arrays is `null` as usual.
 * Beware that the Parquet files hold exactly this text, so `"abc"` (quoted) in a JSON column is
 * the string abc.
 */
export function jsonText(value: unknown): string {
  // Fast path: plain JSON.stringify, unless it threw (bigint) or may have hidden a non-finite
  // number as `null` (only then is the slower replacer pass needed).
  try {
    const fast: string | undefined = JSON.stringify(value);
    if (fast !== undefined && !fast.includes('null')) return fast;
  } catch {
    // bigint somewhere: take the replacer path
  }
  const text: string | undefined = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
  return text ?? 'null'; // undefined, functions and symbols have no JSON form
}
