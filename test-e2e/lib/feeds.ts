/**
 * The inputs: real scraped products (testkit's fixture batches of shared/data/products) and
 * real Binance trades (shared/data/market), published the way a scraper and a market feed
 * would, with a plain NATS client and `Nats-Msg-Id` set (DESIGN.md "Bus").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type FixtureBatch, productFixtureBatches, sharedDataDir } from '@parquetry/testkit';
import { sleep } from './procs.js';

export const BINANCE_CAPTURES = ['btcusdt_20240808.gz', 'btcusdt_20240809.gz'].map((f) =>
  join(sharedDataDir(), 'market', f),
);

export interface Tick {
  symbol: string;
  ts: number;
  price: number;
  size: number;
  side: 'buy' | 'sell';
  trade_id: string;
}

/** The sentinel tick of a symbol: far after the data, so every candle of the data closes. */
export const SENTINEL_AFTER_MS = 2 * 86_400_000;

/**
 * Every trade of the Binance captures, once per symbol of `symbols` (the first keeps the
 * capture's values; the others are the same trades under another name, so candle partitions
 * and instances have work), interleaved in time order, then one sentinel per symbol.
 */
export function binanceTicks(symbols: readonly string[]): { ticks: Tick[]; sentinels: Tick[] } {
  const trades: Omit<Tick, 'symbol'>[] = [];
  for (const file of BINANCE_CAPTURES) {
    for (const line of gunzipSync(readFileSync(file)).toString('utf8').split('\n')) {
      const space = line.indexOf(' ');
      if (space < 0) continue;
      const msg = JSON.parse(line.slice(space + 1)) as { data?: Record<string, unknown> } & Record<
        string,
        unknown
      >;
      const d = (msg.data ?? msg) as Record<string, unknown>;
      if (d.e !== 'trade') continue;
      trades.push({
        ts: Number(d.T),
        price: Number(d.p),
        size: Number(d.q),
        side: d.m ? 'sell' : 'buy',
        trade_id: String(d.t),
      });
    }
  }
  trades.sort((a, b) => a.ts - b.ts || Number(a.trade_id) - Number(b.trade_id));
  const ticks: Tick[] = [];
  for (const t of trades) for (const symbol of symbols) ticks.push({ symbol, ...t });
  const last = trades.at(-1)!.ts;
  const sentinels = symbols.map((symbol) => ({
    symbol,
    ts: last + SENTINEL_AFTER_MS,
    price: 1,
    size: 0,
    side: 'buy' as const,
    trade_id: 'sentinel',
  }));
  return { ticks, sentinels };
}

export function productBatches(): FixtureBatch[] {
  return productFixtureBatches(300);
}

export const productCount = (batches: readonly FixtureBatch[]) =>
  batches.reduce((n, b) => n + b.products.length, 0);

/** A plain NATS + JetStream client, as a scraper or feed outside this repository would use. */
export class Publisher {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
  ) {}

  static async connect(url: string): Promise<Publisher> {
    const nc = await connect({
      servers: url.split(','),
      name: 'e2e-feed',
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    return new Publisher(nc, jetstream(nc, { timeout: 10_000 }));
  }

  /**
   * Publishes and waits for every PubAck; a publish that fails (a server restarting, a leader
   * election) is sent again with the same Nats-Msg-Id, as a real feed retries.
   */
  async publish(
    msgs: readonly { subject: string; payload: unknown; msgId: string }[],
    concurrency = 256,
  ): Promise<{ retries: number }> {
    let retries = 0;
    for (let i = 0; i < msgs.length; i += concurrency) {
      await Promise.all(
        msgs.slice(i, i + concurrency).map(async (m) => {
          const body = JSON.stringify(m.payload);
          for (let attempt = 0; ; attempt++) {
            try {
              await this.js.publish(m.subject, body, { msgID: m.msgId });
              return;
            } catch (err) {
              if (attempt >= 120) throw err;
              retries++;
              await sleep(250);
            }
          }
        }),
      );
    }
    return { retries };
  }

  /**
   * Publishes a `lake.ops.<op>` job (work queue: one compactor takes it) and resolves with its
   * result from `lake.results.<op>.<op_id>` (subscribed before the publish), or undefined after
   * `timeoutMs`.
   */
  async lakeOp(
    op: string,
    job: Record<string, unknown> & { op_id: string },
    timeoutMs = 60_000,
  ): Promise<{ status: string; [k: string]: unknown } | undefined> {
    const sub = this.nc.subscribe(`lake.results.${op}.${job.op_id}`, { max: 1 });
    const result = (async () => {
      for await (const m of sub) return m.json<{ status: string }>();
      return undefined;
    })();
    const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
    try {
      await this.publish([{ subject: `lake.ops.${op}`, payload: job, msgId: job.op_id }]);
      return await result;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

export const productMessages = (batches: readonly FixtureBatch[]) =>
  batches.map((b) => ({
    subject: `scraper.products.${b.retailer}.${b.category}`,
    payload: b,
    msgId: b.batch_id,
  }));

export const tickMessages = (ticks: readonly Tick[]) =>
  ticks.map((t) => ({ subject: `market.ticks.${t.symbol}`, payload: t, msgId: `${t.symbol}-${t.trade_id}` }));
