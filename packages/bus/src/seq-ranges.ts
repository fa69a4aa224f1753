/**
 * A set of JetStream stream sequences kept as sorted, merged, inclusive ranges. The ingest
 * checkpoint stores the sequences whose data is committed; because a consumer sees the stream
 * mostly in order, the set stays a handful of ranges however many messages it covers.
 */
export type Range = [first: number, last: number];

export class SeqRanges {
  private ranges: Range[];

  constructor(ranges: readonly Range[] = []) {
    this.ranges = [];
    for (const [a, b] of ranges) this.addRange(a, b);
  }

  static fromSeqs(seqs: Iterable<number>): SeqRanges {
    const sorted = [...seqs].sort((a, b) => a - b);
    const out = new SeqRanges();
    for (const s of sorted) out.addRange(s, s);
    return out;
  }

  has(seq: number): boolean {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.ranges[mid]!;
      if (seq < a) hi = mid - 1;
      else if (seq > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  addRange(first: number, last: number): void {
    if (last < first) return;
    const out: Range[] = [];
    let placed = false;
    let [a, b] = [first, last];
    for (const r of this.ranges) {
      if (r[1] + 1 < a) out.push(r);
      else if (b + 1 < r[0]) {
        if (!placed) {
          out.push([a, b]);
          placed = true;
        }
        out.push(r);
      } else {
        a = Math.min(a, r[0]);
        b = Math.max(b, r[1]);
      }
    }
    if (!placed) out.push([a, b]);
    this.ranges = out;
  }

  addAll(other: SeqRanges): void {
    for (const [a, b] of other.ranges) this.addRange(a, b);
  }

  toJSON(): Range[] {
    return this.ranges.map((r) => [r[0], r[1]]);
  }

  get size(): number {
    return this.ranges.length;
  }
}
