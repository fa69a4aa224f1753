/**
 * How much memory a load may use, and how much it did use. Reads the cgroup limit (v2, then
 * v1) and /proc/meminfo's MemAvailable, falling back to os.freemem(); the smallest wins.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/** A cgroup memory limit file's value in bytes; undefined for `max` or an "unlimited" sentinel. */
export function parseCgroupBytes(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '' || t === 'max') return undefined;
  const n = Number(t);
  // cgroup v1 reports "no limit" as a page-rounded INT64_MAX.
  if (!Number.isFinite(n) || n <= 0 || n >= 2 ** 62) return undefined;
  return n;
}

/** MemAvailable from /proc/meminfo text, in bytes. */
export function parseMemAvailable(meminfo: string | undefined): number | undefined {
  const m = meminfo ? /^MemAvailable:\s+(\d+)\s+kB/m.exec(meminfo) : null;
  return m ? Number(m[1]) * 1024 : undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Memory this process can still use: min(cgroup limit − usage, MemAvailable or os.freemem()). */
export function availableMemoryBytes(): number {
  const candidates: number[] = [];
  const host = parseMemAvailable(read('/proc/meminfo')) ?? freemem();
  candidates.push(host);
  const v2 = parseCgroupBytes(read('/sys/fs/cgroup/memory.max'));
  if (v2 !== undefined) candidates.push(v2 - (parseCgroupBytes(read('/sys/fs/cgroup/memory.current')) ?? 0));
  const v1 = parseCgroupBytes(read('/sys/fs/cgroup/memory/memory.limit_in_bytes'));
  if (v1 !== undefined) {
    candidates.push(v1 - (parseCgroupBytes(read('/sys/fs/cgroup/memory/memory.usage_in_bytes')) ?? 0));
  }
  return Math.max(0, Math.min(...candidates));
}

/** Tracks the process's peak RSS: sampled on a timer and whenever `sample()` is called. */
export class PeakRss {
  private peak = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 100) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    return rss;
  }

  get peakBytes(): number {
    return this.peak;
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}
