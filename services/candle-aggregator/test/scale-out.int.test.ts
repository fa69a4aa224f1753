import { STREAM_NAMES } from '@parquetry/bus';
import { CANDLES, openCatalog } from '@parquetry/lake';
import { requireServers, startNats, tempDir } from '@parquetry/testkit';
import { describe, expect, it } from 'vitest';
import { referenceCandles } from '../src/domain/reference.js';
import { symbolPartition } from '../src/partitioning.js';
import { expectSameCandles } from './candle-expect.js';
import { binanceSymbols, sentinels, shuffledArrivals } from './feeds.js';
import { type Harness, lakeCandles, publishTicks, startCandles, waitFor } from './harness.js';

const skip = await requireServers({ nats: true });

/** Sum of a counter over its label sets, from the Prometheus text. */
function counterTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * Scale-out (docs/adr/0003-candle-layout.md, "Scale-out"): two instances share one stream, one
 * lake and one catalog. Symbols hash into CANDLE_PARTITIONS = 4 partitions; instance 0 owns
 * partitions 0 and 2, instance 1 owns 1 and 3. Together they must build every candle (the lake
 * equals the reference model) and no candle twice: the candles each instance closed add up to
 * exactly the number of candles, and every lake file was committed by the owner of its symbol.
 */
describe.skipIf(skip)('two candle-aggregator instances', () => {
  it('share the symbols: every candle built, none twice', async () => {
    const nats = await startNats();
    const tmp = tempDir('pq-candles-scale-');
    const lakeUrl = `file://${tmp.path}/lake`;
    const env = { NATS_URL: nats.url, LAKE_URL: lakeUrl, CANDLE_PARTITIONS: '4', INSTANCE_COUNT: '2' };
    const instances: Harness[] = [];
    try {
      instances.push(await startCandles({ ...env, INSTANCE_INDEX: '0', INSTANCE_ID: 'inst-a' }));
      instances.push(await startCandles({ ...env, INSTANCE_INDEX: '1', INSTANCE_ID: 'inst-b' }));
      const [a, b] = instances as [Harness, Harness];
      expect(a.app.partitions).toEqual([0, 2]);
      expect(b.app.partitions).toEqual([1, 3]);

      const ticks = binanceSymbols(5);
      const symbols = [...new Set(ticks.map((t) => t.symbol))];
      const ownerOf = (symbol: string) => (symbolPartition(symbol, 4) % 2 === 0 ? 'inst-a' : 'inst-b');
      // The feed gives both instances work.
      expect(new Set(symbols.map(ownerOf))).toEqual(new Set(['inst-a', 'inst-b']));

      await publishTicks(a.bus, [...shuffledArrivals(ticks, 11), ...sentinels(ticks)]);
      const stored = (await a.bus.jsm.streams.info(STREAM_NAMES.ticks)).state.last_seq;
      await waitFor('both instances to drain the stream and flush', async () => {
        const done = instances.every((h) => {
          const s = h.app.stats();
          return s.lastSeq === stored && s.pendingCandles === 0 && s.pendingPublishes === 0;
        });
        return done ? true : undefined;
      });

      const expected = referenceCandles(ticks);
      const lake = await lakeCandles(nats.url, lakeUrl);
      expectSameCandles(lake, expected, 'two instances vs reference model');

      // None built twice: each candle was closed (revision 0 published) by exactly one instance.
      const closed = await Promise.all(
        instances.map(async (h) => counterTotal(await h.metrics.text(), 'parquetry_candles_closed_total')),
      );
      expect(closed.every((n) => n > 0)).toBe(true);
      expect(closed[0]! + closed[1]!).toBe(expected.length);

      // And each lake file was committed by the owner of its symbol.
      const catalog = await openCatalog({ nc: a.bus.nc });
      const manifests = await catalog.partitions(CANDLES.name);
      expect(manifests.length).toBeGreaterThan(0);
      for (const m of manifests) {
        for (const f of m.files)
          expect(f.commitId.startsWith(`${ownerOf(m.partition.symbol!)}-`), f.path).toBe(true);
      }
    } finally {
      for (const h of instances) await h.close().catch(() => {});
      await nats.stop();
      tmp.remove();
    }
  });
});
