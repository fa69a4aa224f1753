/**
 * The trade ids one symbol has accepted in its non-final minutes: the dedupe set of the
 * aggregator (`has`, `add`), dropped a whole minute at a time once the minute is final
 * (`dropMinute`). It holds every id of the lateness window, so at a high trade rate it is the
 * service's largest structure: it must cost next to nothing per id.
 *
 * Exchange trade ids are digit strings that count up, mostly one by one. A digit string of up
 * to 15 digits is kept as a number in a class of its own width (0 for a canonical integer, the
 * string's length for a zero-padded one such as "000123", so the mapping stays one to one).
 * Each minute keeps its ids of a class as ascending runs: an id one above the last is a single
 * decrement, so a consecutive feed costs a few numbers per minute however many trades it has,
 * and an id above every id held is new without a lookup. An id that arrives below its
 * minute's last run (out of order) goes to that minute's Set. Other ids go to one Map.
 * The answers are exactly those of one Set of all ids held (trade-ids.unit.test.ts).
 */

/**
 * A minute's ids in a snapshot, ascending: an id as written, `[first, count]` for the canonical
 * integers first … first + count − 1, or `[first, count, width]` for those zero-padded to `width`.
 */
export type EncodedIds = (string | [number, number] | [number, number, number])[];

/** The largest integer a trade id of at most 15 digits can hold: every such id is exact. */
const MAX_DIGITS = 15;

/** Ascending, disjoint runs of one class's ids in one minute, plus those that came out of order. */
class MinuteRuns {
  /** Each run: its first id (≥ 0), followed by −(length − 1) when it is longer than one. */
  private readonly runs: number[] = [];
  /** Ids added below `hi` (out of order). */
  private extra: Set<number> | undefined;
  lo = Number.POSITIVE_INFINITY;
  hi = Number.NEGATIVE_INFINITY;
  count = 0;

  has(n: number): boolean {
    if (n < this.lo || n > this.hi) return false;
    if (this.extra?.has(n)) return true;
    const runs = this.runs;
    let a = 0;
    let b = runs.length - 1;
    while (a <= b) {
      let mid = (a + b) >>> 1;
      if (runs[mid]! < 0) mid--;
      const first = runs[mid]!;
      const next = runs[mid + 1];
      const hasTail = next !== undefined && next < 0;
      const last = hasTail ? first - next : first;
      if (n < first) b = mid - 1;
      else if (n > last) a = mid + (hasTail ? 2 : 1);
      else return true;
    }
    return false;
  }

  /** Adds `n` (not held yet). */
  add(n: number): void {
    this.count++;
    if (n < this.lo) this.lo = n;
    if (n <= this.hi) {
      this.extra ??= new Set();
      this.extra.add(n);
      return;
    }
    this.appendRun(n, 1);
  }

  /** Adds first … first + count − 1 (none held yet). */
  addRun(first: number, count: number): void {
    if (first > this.hi) {
      this.count += count;
      if (first < this.lo) this.lo = first;
      this.appendRun(first, count);
    } else {
      for (let i = 0; i < count; i++) this.add(first + i);
    }
  }

  /** The ids as ascending, disjoint, maximal [first, last] runs. */
  sortedRuns(): [number, number][] {
    const out: [number, number][] = [];
    const push = (first: number, last: number) => {
      const prev = out.at(-1);
      if (prev !== undefined && prev[1] + 1 >= first) prev[1] = Math.max(prev[1], last);
      else out.push([first, last]);
    };
    const extra = this.extra === undefined ? [] : [...this.extra].sort((x, y) => x - y);
    const runs = this.runs;
    let e = 0;
    for (let i = 0; i < runs.length; i++) {
      const first = runs[i]!;
      const next = runs[i + 1];
      const last = next !== undefined && next < 0 ? first - next : first;
      if (last !== first) i++;
      while (e < extra.length && extra[e]! < first) push(extra[e]!, extra[e++]!);
      push(first, last);
    }
    while (e < extra.length) push(extra[e]!, extra[e++]!);
    return out;
  }

  private appendRun(first: number, count: number): void {
    const runs = this.runs;
    const end = runs.length - 1;
    const last = runs[end];
    if (last !== undefined && first === this.hi + 1) {
      // Extend the last run: its tail holds −(length − 1).
      if (last < 0) runs[end] = last - count;
      else runs.push(-count);
    } else {
      runs.push(first);
      if (count > 1) runs.push(1 - count);
    }
    this.hi = first + count - 1;
  }
}

/** The ids of one width class, by minute. */
class NumericIds {
  readonly minutes = new Map<number, MinuteRuns>();
  /** ≥ every id held. */
  hi = Number.NEGATIVE_INFINITY;

  constructor(readonly width: number) {}

  has(n: number): boolean {
    if (n > this.hi) return false;
    for (const m of this.minutes.values()) if (m.has(n)) return true;
    return false;
  }

  /** The last minute handed out: ticks come in bursts of one minute. */
  private lastStart = Number.NaN;
  private lastMinute: MinuteRuns | undefined;

  minute(start: number): MinuteRuns {
    if (start === this.lastStart && this.lastMinute !== undefined) return this.lastMinute;
    let m = this.minutes.get(start);
    if (m === undefined) {
      m = new MinuteRuns();
      this.minutes.set(start, m);
    }
    this.lastStart = start;
    this.lastMinute = m;
    return m;
  }

  noteHi(n: number): void {
    if (n > this.hi) this.hi = n;
  }

  /** Drops `start`; the number of ids it held. */
  drop(start: number): number {
    const m = this.minutes.get(start);
    if (m === undefined) return 0;
    this.minutes.delete(start);
    if (start === this.lastStart) this.lastMinute = undefined;
    if (m.hi >= this.hi) {
      let hi = Number.NEGATIVE_INFINITY;
      for (const other of this.minutes.values()) if (other.hi > hi) hi = other.hi;
      this.hi = hi;
    }
    return m.count;
  }
}

export class TradeIdIndex {
  /** One per width seen, usually one. */
  private readonly classes: NumericIds[] = [];
  private readonly strings = new Map<string, number>();
  private readonly stringsByMinute = new Map<number, string[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The id `has` parsed last, its number and width: the aggregator asks `has` right before `add`. */
  private lastId: string | undefined;
  private lastN = -1;
  private lastWidth = 0;

  has(id: string): boolean {
    const n = parseDigits(id);
    this.lastId = id;
    this.lastN = n;
    this.lastWidth = parsedWidth;
    if (n < 0) return this.strings.has(id);
    const c = this.classOf(parsedWidth);
    return c?.has(n) === true;
  }

  /** Records `id` (not held yet) as accepted in `minute`. */
  add(id: string, minute: number): void {
    let n: number;
    let width: number;
    if (id === this.lastId) {
      n = this.lastN;
      width = this.lastWidth;
    } else {
      n = parseDigits(id);
      width = parsedWidth;
    }
    if (n < 0) this.addString(id, minute);
    else {
      const c = this.classFor(width);
      c.minute(minute).add(n);
      c.noteHi(n);
    }
    this.count++;
  }

  /** Records the ids of a snapshot entry list (none held yet) as accepted in `minute`. */
  addEncoded(minute: number, ids: EncodedIds): void {
    for (const e of ids) {
      if (typeof e === 'string') {
        this.add(e, minute);
        continue;
      }
      const [first, count, width = 0] = e;
      const c = this.classFor(width);
      c.minute(minute).addRun(first, count);
      c.noteHi(first + count - 1);
      this.count += count;
    }
  }

  /** Minutes holding ids, in no particular order. */
  minuteStarts(): number[] {
    const all = new Set<number>(this.stringsByMinute.keys());
    for (const c of this.classes) for (const m of c.minutes.keys()) all.add(m);
    return [...all];
  }

  /**
   * The ids of `minute` in one canonical form (the same set gives the same list): canonical
   * integers first, then zero-padded classes by width, each ascending in maximal runs (a lone
   * id as its string); then the other ids in code-unit order.
   */
  encodedIdsOf(minute: number): EncodedIds {
    const out: EncodedIds = [];
    const classes = [...this.classes].sort((a, b) => a.width - b.width);
    for (const c of classes) {
      const runs = c.minutes.get(minute)?.sortedRuns() ?? [];
      for (const [first, last] of runs) {
        if (first === last) out.push(formatDigits(first, c.width));
        else if (c.width === 0) out.push([first, last - first + 1]);
        else out.push([first, last - first + 1, c.width]);
      }
    }
    const strings = this.stringsByMinute.get(minute);
    if (strings !== undefined) out.push(...[...strings].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    return out;
  }

  dropMinute(minute: number): void {
    for (const c of this.classes) this.count -= c.drop(minute);
    const strings = this.stringsByMinute.get(minute);
    if (strings !== undefined) {
      this.stringsByMinute.delete(minute);
      for (const id of strings) this.strings.delete(id);
      this.count -= strings.length;
    }
  }

  private addString(id: string, minute: number): void {
    this.strings.set(id, minute);
    const list = this.stringsByMinute.get(minute);
    if (list === undefined) this.stringsByMinute.set(minute, [id]);
    else list.push(id);
  }

  private classOf(width: number): NumericIds | undefined {
    for (const c of this.classes) if (c.width === width) return c;
    return undefined;
  }

  private classFor(width: number): NumericIds {
    let c = this.classOf(width);
    if (c === undefined) {
      c = new NumericIds(width);
      this.classes.push(c);
    }
    return c;
  }
}

/** The id of `n` in a width class (see `parseDigits`). */
export function formatDigits(n: number, width: number): string {
  return width === 0 ? String(n) : String(n).padStart(width, '0');
}

/**
 * Set by `parseDigits`: the width class of the id it parsed — 0 for a canonical integer, the
 * length for a zero-padded one. A module variable rather than a returned pair: this runs once
 * or twice per tick, and an object per call would be the hot loop's only allocation.
 */
let parsedWidth = 0;

/**
 * `id` as a number when it is a string of 1 to 15 ASCII digits (so exact), else -1; its width
 * class in `parsedWidth`. (value, class) is one to one with the id.
 */
export function parseDigits(id: string): number {
  const len = id.length;
  if (len === 0 || len > MAX_DIGITS) return -1;
  let v = 0;
  for (let i = 0; i < len; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  parsedWidth = len > 1 && id.charCodeAt(0) === 0x30 ? len : 0;
  return v;
}

/** The width class `parseDigits` gave its last id. */
export function lastParsedWidth(): number {
  return parsedWidth;
}

/** Decodes a snapshot entry list back to ids (tests and tools; the index reads runs as runs). */
export function decodeIds(ids: EncodedIds): string[] {
  const out: string[] = [];
  for (const e of ids) {
    if (typeof e === 'string') out.push(e);
    else for (let i = 0; i < e[1]; i++) out.push(formatDigits(e[0] + i, e[2] ?? 0));
  }
  return out;
}
