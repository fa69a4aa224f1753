/**
 * The trade ids one symbol has accepted in its non-final minutes: the dedupe set of the
 * aggregator (`has`, `add`), dropped a whole minute at a time once the minute is final
 * (`dropMinute`).
 *
 * Exchange trade ids are mostly increasing integers, so numeric ids (canonical non-negative
 * integers of up to 15 digits) are kept per minute in plain arrays with their range: an id
 * above every id held — the common case — is new without any hashing, and an id inside a
 * minute's range is looked up in that minute (a Set built on the first such lookup). Other
 * ids go to one Map. A Map entry per tick was the largest cost of the service's hot loop
 * (hashing a fresh string, cache misses over ~1,000 ids per symbol, deleting each id again).
 * The answers are exactly those of one Set of all ids held (trade-ids.unit.test.ts).
 */
interface MinuteIds {
  numbers: number[];
  /** Range of `numbers` (empty: lo = +∞, hi = -∞). */
  lo: number;
  hi: number;
  /** `numbers` as a Set, once a lookup fell inside the range; kept up to date from then on. */
  set: Set<number> | undefined;
  strings: string[];
}

/** Small minutes are searched linearly rather than given a Set. */
const LINEAR_MAX = 16;

export class TradeIdIndex {
  private readonly minutes = new Map<number, MinuteIds>();
  private readonly strings = new Map<string, number>();
  /** ≥ every numeric id held. */
  private hi = Number.NEGATIVE_INFINITY;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    const n = numericId(id);
    if (n < 0) return this.strings.has(id);
    if (n > this.hi) return false;
    for (const m of this.minutes.values()) {
      if (n < m.lo || n > m.hi) continue;
      if (m.set !== undefined) {
        if (m.set.has(n)) return true;
      } else if (m.numbers.length <= LINEAR_MAX) {
        if (m.numbers.includes(n)) return true;
      } else {
        m.set = new Set(m.numbers);
        if (m.set.has(n)) return true;
      }
    }
    return false;
  }

  /** Records `id` (not held yet) as accepted in `minute`. */
  add(id: string, minute: number): void {
    let m = this.minutes.get(minute);
    if (m === undefined) {
      m = {
        numbers: [],
        lo: Number.POSITIVE_INFINITY,
        hi: Number.NEGATIVE_INFINITY,
        set: undefined,
        strings: [],
      };
      this.minutes.set(minute, m);
    }
    const n = numericId(id);
    if (n < 0) {
      m.strings.push(id);
      this.strings.set(id, minute);
    } else {
      m.numbers.push(n);
      m.set?.add(n);
      if (n < m.lo) m.lo = n;
      if (n > m.hi) m.hi = n;
      if (n > this.hi) this.hi = n;
    }
    this.count++;
  }

  /** Minutes holding ids, in no particular order. */
  minuteStarts(): IterableIterator<number> {
    return this.minutes.keys();
  }

  /** The ids of `minute` as given to `add` (unsorted). */
  idsOf(minute: number): string[] {
    const m = this.minutes.get(minute);
    return m === undefined ? [] : [...m.numbers.map(String), ...m.strings];
  }

  dropMinute(minute: number): void {
    const m = this.minutes.get(minute);
    if (m === undefined) return;
    this.minutes.delete(minute);
    for (const id of m.strings) this.strings.delete(id);
    this.count -= m.numbers.length + m.strings.length;
    if (m.hi >= this.hi) {
      let hi = Number.NEGATIVE_INFINITY;
      for (const other of this.minutes.values()) if (other.hi > hi) hi = other.hi;
      this.hi = hi;
    }
  }
}

/**
 * `id` as a number when it is a canonical non-negative integer of at most 15 digits (so
 * exact, and `String(n) === id`), else -1. One to one: no two ids share a number.
 */
export function numericId(id: string): number {
  const len = id.length;
  if (len === 0 || len > 15 || (len > 1 && id.charCodeAt(0) === 0x30)) return -1;
  let v = 0;
  for (let i = 0; i < len; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
