import type { PartitionManifest } from '@parquetry/lake';
import { describe, expect, it } from 'vitest';
import { externalPath } from '../src/commands/lake/paths.js';
import { isBrandColumn, isPriceColumn } from '../src/commands/lake/price.js';
import { formatBytes, productFileCategory, totals, totalsBy } from '../src/commands/lake/summary.js';
import { commaList, isoDate, parseWhere } from '../src/commands/options.js';

function manifest(
  partition: Record<string, string>,
  files: { rows: number; bytes: number; minTime?: string; maxTime?: string }[],
): PartitionManifest {
  return {
    dataset: 'x',
    partition,
    files: files.map((f, i) => ({
      path: `p/${i}.parquet`,
      sha256: 'x',
      committedAt: '2025-09-03T00:00:00Z',
      commitId: 'c',
      ...f,
    })),
    removed: [],
    commits: [],
    sources: [],
    pending: [],
    linked: [],
    updatedAt: '2025-09-03T00:00:00Z',
    revision: 1,
  };
}

describe('externalPath', () => {
  it('gives absolute paths for file:// lakes, relative URLs resolved against cwd', () => {
    expect(
      externalPath('file://./data/lake', 'products/retailer=a/date=2025-09-03/x.parquet', '/srv/app'),
    ).toBe('/srv/app/data/lake/products/retailer=a/date=2025-09-03/x.parquet');
    expect(externalPath('file://data/lake', 'k.parquet', '/srv')).toBe('/srv/data/lake/k.parquet');
    expect(externalPath('file:///var/lake/', 'a/b.parquet', '/srv')).toBe('/var/lake/a/b.parquet');
  });

  it('gives s3:// URLs with the prefix for S3 lakes, and refuses keys that escape', () => {
    expect(externalPath('s3://my-bucket/lake/v1', 'ticks/x.parquet')).toBe(
      's3://my-bucket/lake/v1/ticks/x.parquet',
    );
    expect(externalPath('s3://my-bucket', 'ticks/x.parquet')).toBe('s3://my-bucket/ticks/x.parquet');
    expect(() => externalPath('file:///lake', '../etc/passwd')).toThrow(/invalid object key/);
  });
});

describe('summaries', () => {
  it('totals skip emptied partitions and take dates from the partition, else from file times', () => {
    const ms = [
      manifest({ retailer: 'b', date: '2025-09-03' }, [{ rows: 5, bytes: 50 }]),
      manifest({ retailer: 'a', date: '2025-08-01' }, [
        { rows: 1, bytes: 10 },
        { rows: 2, bytes: 20 },
      ]),
      manifest({ retailer: 'a', date: '2025-01-01' }, []),
    ];
    expect(totals(ms)).toEqual({
      partitions: 2,
      files: 3,
      rows: 8,
      bytes: 80,
      oldest_date: '2025-08-01',
      newest_date: '2025-09-03',
    });
    expect(totalsBy(ms, 'retailer').map((t) => [t.retailer, t.files, t.oldest_date])).toEqual([
      ['a', 2, '2025-08-01'],
      ['b', 1, '2025-09-03'],
    ]);
    const candles = [
      manifest({ timeframe: '1m', symbol: 'ES', period: '2025-09' }, [
        { rows: 3, bytes: 1, minTime: '2025-09-01T00:00:00Z', maxTime: '2025-09-02T10:00:00Z' },
      ]),
    ];
    expect(totals(candles)).toMatchObject({ oldest_date: '2025-09-01', newest_date: '2025-09-02' });
    expect(totals([])).toMatchObject({ files: 0, oldest_date: null });
  });

  it('reads the category from product file names, underscores included', () => {
    expect(
      productFileCategory('products/retailer=a/date=2025-09-03/smartphones_20250903_143022_ab12cd34.parquet'),
    ).toBe('smartphones');
    expect(productFileCategory('x/frutas_y_verduras_20250903_143022_ab12cd34_2.parquet')).toBe(
      'frutas_y_verduras',
    );
    expect(productFileCategory('x/compacted-1.parquet')).toBeNull();
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MB');
  });

  it('recognises brand and price columns by name and type', () => {
    expect(isPriceColumn('precio_oferta', 'VARCHAR')).toBe(true);
    expect(isPriceColumn('Price', 'DECIMAL(18,2)')).toBe(true);
    expect(isPriceColumn('precio', 'BOOLEAN')).toBe(false);
    expect(isPriceColumn('sin_precio', 'DOUBLE')).toBe(false);
    expect(isBrandColumn('marca', 'VARCHAR')).toBe(true);
    expect(isBrandColumn('brand_name', 'BIGINT')).toBe(false);
  });
});

describe('option parsing', () => {
  it('parses --where pairs and rejects malformed ones', () => {
    expect(parseWhere(['retailer=a', 'date=2025-09-03'])).toEqual({ retailer: 'a', date: '2025-09-03' });
    expect(parseWhere(['q=a=b'])).toEqual({ q: 'a=b' });
    expect(parseWhere([])).toBeUndefined();
    expect(() => parseWhere(['retailer'])).toThrow(/column=value/);
    expect(() => parseWhere(['a=1', 'a=2'])).toThrow(/twice/);
  });

  it('accepts real calendar dates only, and comma lists', () => {
    expect(isoDate('2024-02-29')).toBe('2024-02-29');
    expect(() => isoDate('2025-02-30')).toThrow(/YYYY-MM-DD/);
    expect(() => isoDate('20250903')).toThrow(/YYYY-MM-DD/);
    expect(commaList('products, ticks,')).toEqual(['products', 'ticks']);
  });
});
