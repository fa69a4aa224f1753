import type { DuckDBConnection } from '@duckdb/node-api';
import {
  type Catalog,
  type ObjectStore,
  partitionPath,
  TICKS,
  type Tick,
  writeLakeFiles,
} from '@parquetry/lake';

/**
 * Writes ticks into the raw tick archive the way ingest-backup's TicksSink does: the TICKS
 * dataset's columns, `ticks/symbol=<S>/date=<D>/`, one file per partition and call, one commit.
 * `firstSeq` numbers the ticks as stream sequences (a redelivered trade keeps its copy: the
 * archive holds what the stream held).
 */
export async function archiveTicks(
  deps: { catalog: Catalog; store: ObjectStore; conn: DuckDBConnection },
  ticks: readonly Tick[],
  firstSeq = 1,
  tag = 'a',
): Promise<void> {
  const groups = new Map<string, Record<string, unknown>[]>();
  ticks.forEach((t, i) => {
    const date = new Date(t.ts).toISOString().slice(0, 10);
    const key = `${t.symbol}/${date}`;
    const row = {
      symbol: t.symbol,
      date,
      ts: t.ts,
      price: t.price,
      size: t.size,
      side: t.side ?? null,
      trade_id: t.trade_id ?? null,
      stream_seq: firstSeq + i,
    };
    const list = groups.get(key);
    if (list) list.push(row);
    else groups.set(key, [row]);
  });
  const changes = [];
  for (const rows of groups.values()) {
    const values = { symbol: String(rows[0]!.symbol), date: String(rows[0]!.date) };
    const files = await writeLakeFiles({
      conn: deps.conn,
      store: deps.store,
      dir: `${TICKS.root}/${partitionPath(TICKS.partitionColumns, values)}`,
      fileName: () => `ticks_${tag}_${firstSeq}.parquet`,
      columns: Object.entries(TICKS.columns).map(([name, type]) => ({ name, type })),
      batches: [rows],
      timeField: 'ts',
    });
    changes.push({ partition: values, add: files });
  }
  await deps.catalog.commit({ dataset: TICKS.name, commitId: `archive-${tag}-${firstSeq}`, changes });
}
