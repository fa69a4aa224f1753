/**
 * Symbols → partitions → instances (docs/adr/0003-candle-layout.md, "Scale-out").
 *
 * A symbol's partition is FNV-1a (32 bit) of its UTF-8 bytes modulo the partition count: a
 * pure function of the name, the same in every process and every release, so no coordination
 * is needed to agree on it. An instance owns the partitions p with p % count === index.
 * The partition count is fixed for a deployment; instances can be added or removed (up to
 * the partition count) because state and ownership live per partition, not per instance.
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function fnv1a32(text: string): number {
  let h = FNV_OFFSET;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h >>> 0;
}

export function symbolPartition(symbol: string, partitions: number): number {
  return partitions === 1 ? 0 : fnv1a32(symbol) % partitions;
}

export function ownedPartitions(partitions: number, index: number, count: number): number[] {
  const out: number[] = [];
  for (let p = index; p < partitions; p += count) out.push(p);
  return out;
}

/** A stable name for partition `p` of `partitions` (KV keys, state object keys, commit ids). */
export function partitionName(p: number, partitions: number): string {
  return `p${partitions}_${p}`;
}

/** `market.ticks.<symbol>` → `<symbol>` (whatever the last tokens are; validated later). */
export function subjectSymbol(subject: string): string {
  return subject.startsWith('market.ticks.') ? subject.slice('market.ticks.'.length) : subject;
}

/**
 * Caches symbol → partition for the hot path (one Map lookup instead of hashing every tick).
 * Bounded: a flood of distinct bad subjects cannot grow it without limit.
 */
export class PartitionMap {
  private readonly cache = new Map<string, number>();

  constructor(readonly partitions: number) {}

  of(symbol: string): number {
    if (this.partitions === 1) return 0;
    let p = this.cache.get(symbol);
    if (p === undefined) {
      p = symbolPartition(symbol, this.partitions);
      if (this.cache.size >= 100_000) this.cache.clear();
      this.cache.set(symbol, p);
    }
    return p;
  }
}
