import type { Bus } from '@parquetry/bus';
import { STREAM_NAMES } from '@parquetry/bus';
import type { CandleRecord } from '../src/domain/candle.js';

/** Every candle message on the CANDLES stream (at least `min`), as records, in stream order. */
export async function readCandleBus(bus: Bus, min = 0, filter = 'market.candles.>'): Promise<CandleRecord[]> {
  const out: CandleRecord[] = [];
  const deadline = Date.now() + 30_000;
  for (;;) {
    out.length = 0;
    const consumer = await bus.js.consumers.get(STREAM_NAMES.candles, { filter_subjects: filter });
    const info = await consumer.info();
    const pending = info.num_pending;
    if (pending > 0) {
      const iter = await consumer.fetch({ max_messages: pending, expires: 5000 });
      for await (const m of iter) {
        const c = m.json<Record<string, unknown>>();
        out.push({
          symbol: String(c.symbol),
          timeframe: c.timeframe as CandleRecord['timeframe'],
          start: Date.parse(String(c.start)),
          end: Date.parse(String(c.end)),
          open: c.open as number,
          high: c.high as number,
          low: c.low as number,
          close: c.close as number,
          volume: c.volume as number,
          trades: c.trades as number,
          vwap: c.vwap as number,
          revision: c.revision as number,
        });
        if (out.length >= pending) break;
      }
    }
    await consumer.delete().catch(() => {});
    if (out.length >= min || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
}
