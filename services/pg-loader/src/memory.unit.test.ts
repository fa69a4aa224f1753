import { describe, expect, it } from 'vitest';
import { availableMemoryBytes, parseCgroupBytes, parseMemAvailable } from './memory.js';
import { formatProgressLine } from './progress.js';

describe('memory', () => {
  it('parses cgroup limits, treating max and the v1 sentinel as unlimited', () => {
    expect(parseCgroupBytes('268435456\n')).toBe(268_435_456);
    expect(parseCgroupBytes('max\n')).toBeUndefined();
    expect(parseCgroupBytes('9223372036854771712')).toBeUndefined();
    expect(parseCgroupBytes(undefined)).toBeUndefined();
  });

  it('reads MemAvailable in bytes', () => {
    expect(parseMemAvailable('MemTotal: 100 kB\nMemFree: 10 kB\nMemAvailable:    2048 kB\n')).toBe(
      2048 * 1024,
    );
    expect(parseMemAvailable('MemTotal: 100 kB\n')).toBeUndefined();
  });

  it('measures something positive on this machine', () => {
    expect(availableMemoryBytes()).toBeGreaterThan(0);
  });
});

describe('progress line', () => {
  it('shows the bar, rows, rate, ETA and rejects', () => {
    const line = formatProgressLine(
      {
        file: 'f',
        rows: 5_000_000,
        loaded: 4_999_990,
        rejected: 10,
        totalRows: 20_000_000,
        totalExact: false,
        elapsedSeconds: 5,
        rowsPerSecond: 1_000_000,
        rssMb: 210.4,
      },
      20,
    );
    expect(line).toBe(
      '[#####---------------]  25% 5.0M/~20M rows  1.0M rows/s  0:05 ETA 0:15  rejected 10  210 MB',
    );
  });
});
