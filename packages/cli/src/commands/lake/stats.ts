import type { CliContext } from '../../context.js';
import { printTable } from '../../output.js';
import { openLakeCatalog } from '../resources.js';
import { formatBytes, formatCount, type Totals, totals, totalsBy } from './summary.js';

export interface LakeStats {
  products: Totals & { retailers: ({ retailer: string } & Totals)[] };
  ticks: Totals & { symbols: number };
  candles: Totals & { symbols: number; timeframes: string[] };
}

/** `lake stats`: totals of the current snapshot, products per retailer, one line each for ticks and candles. */
export async function lakeStats(ctx: CliContext): Promise<LakeStats> {
  const catalog = await openLakeCatalog(ctx);
  const [products, ticks, candles] = await Promise.all([
    catalog.partitions('products'),
    catalog.partitions('ticks'),
    catalog.partitions('candles'),
  ]);
  const live = (ms: typeof products) => ms.filter((m) => m.files.length > 0);
  return {
    products: { ...totals(products), retailers: totalsBy(products, 'retailer') },
    ticks: { ...totals(ticks), symbols: new Set(live(ticks).map((m) => m.partition.symbol)).size },
    candles: {
      ...totals(candles),
      symbols: new Set(live(candles).map((m) => m.partition.symbol)).size,
      timeframes: [...new Set(live(candles).map((m) => m.partition.timeframe ?? ''))].sort(),
    },
  };
}

function line(name: string, t: Totals, extra = ''): string {
  const range = t.oldest_date ? `, ${t.oldest_date} … ${t.newest_date}` : '';
  return (
    `${name}: ${formatCount(t.files)} files in ${formatCount(t.partitions)} partitions, ` +
    `${formatCount(t.rows)} rows, ${formatBytes(t.bytes)}${range}${extra}\n`
  );
}

export function printLakeStats(s: LakeStats): void {
  process.stdout.write(line('products', s.products, `, ${s.products.retailers.length} retailers`));
  if (s.products.retailers.length > 0) {
    printTable(
      s.products.retailers.map((r) => ({
        retailer: r.retailer,
        files: formatCount(r.files),
        rows: formatCount(r.rows),
        size: formatBytes(r.bytes),
        oldest: r.oldest_date,
        newest: r.newest_date,
      })),
    );
  }
  process.stdout.write(line('ticks', s.ticks, `, ${s.ticks.symbols} symbols`));
  process.stdout.write(
    line(
      'candles',
      s.candles,
      `, ${s.candles.symbols} symbols, timeframes ${s.candles.timeframes.join(' ') || '-'}`,
    ),
  );
}
