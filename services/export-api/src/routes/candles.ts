import { CANDLES, TIMEFRAMES, type Timeframe } from '@parquetry/lake';
import { InvalidInputError, NotFoundError } from '@parquetry/service';
import type { FastifyInstance } from 'fastify';
import type { ApiKey } from '../auth/keys.js';
import { requireKey } from '../auth/plugin.js';
import { assertSeriesAllowed, canReadTimeframe, seriesAccess } from '../candles/access.js';
import {
  candlesQuerySchema,
  INDICATOR_WINDOW_KEYS,
  indicatorResponseSchema,
  indicatorWindowSchema,
  latestQuerySchema,
  latestResponseSchema,
  summaryQuerySchema,
  summaryResponseSchema,
  timeframesQuerySchema,
  timeframesResponseSchema,
  warmRequestSchema,
  warmResponseSchema,
} from '../candles/schemas.js';
import type { CandleService } from '../candles/service.js';
import {
  type CandleRead,
  candleView,
  combineSources,
  renderCandle,
  type StoredCandle,
} from '../candles/types.js';
import { ForbiddenError } from '../errors.js';
import { indicatorDefinition } from '../indicators/index.js';
import { sendValid } from './reply.js';

export interface CandleRouteDeps {
  service: CandleService;
  /** Used when a request names no symbol. */
  defaultSymbol?: string | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The candle routes (DESIGN.md "export-api"): `GET /v1/candles`, `/latest`, `/summary`,
 * `/indicators`, `/timeframes` and `POST /v1/cache/warm`. Every one needs a key that may read
 * the candles of the timeframe asked (candles/access.ts). `GET /v1/candles` renders its answer
 * from kept per-candle JSON (types.ts renderCandle) rather than through the response schema,
 * the one hot path; its tests parse every answer with candlesResponseSchema.
 */
export function registerCandleRoutes(app: FastifyInstance, deps: CandleRouteDeps): void {
  const { service } = deps;

  /** The symbol of a request: given, the configured default, or the only one the lake has in this timeframe. */
  async function symbolOf(key: ApiKey, tf: Timeframe, given: string | undefined): Promise<string> {
    const symbol = given ?? deps.defaultSymbol ?? (await onlySymbol(key, tf));
    assertSeriesAllowed(key, tf, symbol);
    return symbol;
  }

  async function onlySymbol(key: ApiKey, tf: Timeframe): Promise<string> {
    if (!canReadTimeframe(key, tf)) {
      throw new ForbiddenError(`this key may not read dataset "${CANDLES.name}" (timeframe ${tf})`, {
        details: { dataset: CANDLES.name, timeframe: tf },
      });
    }
    const symbols = [
      ...new Set(
        (await service.series())
          .filter((s) => s.timeframe === tf && seriesAccess(key, tf, s.symbol).allowed)
          .map((s) => s.symbol),
      ),
    ].sort();
    if (symbols.length === 1) return symbols[0]!;
    throw new InvalidInputError(
      symbols.length === 0 ? `symbol is required (no ${tf} candles in the lake)` : 'symbol is required',
      { code: 'invalid_input', details: { symbols: symbols.slice(0, 100) } },
    );
  }

  app.get('/v1/candles', async (request, reply) => {
    const key = requireKey(request);
    const q = candlesQuerySchema.parse(request.query);
    const symbol = await symbolOf(key, q.timeframe, q.symbol);
    const read = await service.read({
      symbol,
      timeframe: q.timeframe,
      startMs: q.start,
      endMs: q.end,
      limit: q.limit,
    });
    let body = `{"symbol":${JSON.stringify(symbol)},"timeframe":"${q.timeframe}","data_source":"${read.source}","candles":[`;
    const { candles } = read;
    for (let i = 0; i < candles.length; i++) {
      if (i > 0) body += ',';
      body += renderCandle(candles[i]!);
    }
    body += ']}';
    return reply.header('content-type', 'application/json; charset=utf-8').send(body);
  });

  app.get('/v1/candles/latest', async (request, reply) => {
    const key = requireKey(request);
    const q = latestQuerySchema.parse(request.query);
    const symbol = await symbolOf(key, q.timeframe, q.symbol);
    const { candle, read } = await service.latest(q.timeframe, symbol);
    if (!candle) throw new NotFoundError(`no ${q.timeframe} candles of ${symbol}`);
    return sendValid(reply, latestResponseSchema, {
      symbol,
      timeframe: q.timeframe,
      data_source: read.source,
      candle: candleView(candle),
    });
  });

  app.get('/v1/candles/summary', async (request, reply) => {
    const key = requireKey(request);
    const q = summaryQuerySchema.parse(request.query);
    const symbol = await symbolOf(key, q.timeframe, q.symbol);
    const read = await service.read({
      symbol,
      timeframe: q.timeframe,
      startMs: q.start,
      endMs: q.end,
      limit: q.limit,
    });
    return sendValid(reply, summaryResponseSchema, {
      symbol,
      timeframe: q.timeframe,
      data_source: read.source,
      ...summarize(read.candles),
    });
  });

  app.get('/v1/candles/indicators', async (request, reply) => {
    const key = requireKey(request);
    const raw = (request.query ?? {}) as Record<string, unknown>;
    const windowPart: Record<string, unknown> = {};
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      if ((INDICATOR_WINDOW_KEYS as readonly string[]).includes(k)) windowPart[k] = v;
      else params[k] = v;
    }
    const w = indicatorWindowSchema.parse(windowPart);
    const definition = indicatorDefinition(w.indicator);
    const used = definition.params.parse(params) as Record<string, unknown>;
    const lookback = definition.lookback(used);
    const symbol = await symbolOf(key, w.timeframe, w.symbol);
    const series = { symbol, timeframe: w.timeframe };

    let all: StoredCandle[];
    let shown: number;
    let source: CandleRead['source'];
    if (w.start === undefined) {
      const read = await service.read({ ...series, endMs: w.end, limit: w.limit + lookback });
      all = read.candles;
      shown = Math.min(w.limit, all.length);
      source = read.source;
    } else {
      const main = await service.read({ ...series, startMs: w.start, endMs: w.end, limit: w.limit });
      const before =
        lookback > 0 ? await service.read({ ...series, endMs: w.start, limit: lookback }) : undefined;
      all = [...(before?.candles ?? []), ...main.candles];
      shown = main.candles.length;
      source = before ? combineSources(before.source, main.source) : main.source;
    }
    const computed = definition.compute(all, used);
    const names = definition.series;
    const values: Record<string, string | number | null>[] = [];
    for (let i = all.length - shown; i < all.length; i++) {
      const point: Record<string, string | number | null> = { ts: iso(all[i]!.start) };
      for (const name of names) {
        const v = computed[name]?.[i];
        point[name] = typeof v === 'number' && Number.isFinite(v) ? v : null;
      }
      values.push(point);
    }
    return sendValid(reply, indicatorResponseSchema, {
      ...series,
      data_source: source,
      indicator: w.indicator,
      params: used,
      lookback,
      series: [...names],
      values: values as never,
    });
  });

  app.get('/v1/candles/timeframes', async (request, reply) => {
    const key = requireKey(request);
    const q = timeframesQuerySchema.parse(request.query);
    const allowed = TIMEFRAMES.filter((tf) => seriesAccess(key, tf, q.symbol).allowed);
    if (allowed.length === 0) {
      throw new ForbiddenError(`this key may not read candles of symbol ${JSON.stringify(q.symbol)}`, {
        details: { dataset: CANDLES.name, symbol: q.symbol },
      });
    }
    const { ranges, source } = await service.ranges(q.symbol, allowed);
    return sendValid(reply, timeframesResponseSchema, {
      symbol: q.symbol,
      data_source: source === 'postgres' ? 'postgres' : 'lake',
      timeframes: ranges.map((r) => ({ timeframe: r.timeframe, first: iso(r.firstMs), last: iso(r.lastMs) })),
    });
  });

  app.post('/v1/cache/warm', async (request, reply) => {
    const key = requireKey(request);
    const body = warmRequestSchema.parse(request.body ?? {});
    const timeframes = body.timeframes ?? [...TIMEFRAMES];
    let series: { timeframe: Timeframe; symbol: string }[];
    if (body.symbols) {
      series = body.symbols.flatMap((symbol) => timeframes.map((timeframe) => ({ timeframe, symbol })));
      // Naming a series the key may not read is an error, not a silent skip.
      for (const s of series) assertSeriesAllowed(key, s.timeframe, s.symbol);
    } else {
      const wanted = new Set<string>(timeframes);
      series = (await service.series()).filter(
        (s) => wanted.has(s.timeframe) && seriesAccess(key, s.timeframe, s.symbol).allowed,
      );
      if (series.length === 0 && !timeframes.some((tf) => canReadTimeframe(key, tf))) {
        throw new ForbiddenError(`this key may not read dataset "${CANDLES.name}"`, {
          details: { dataset: CANDLES.name },
        });
      }
    }
    const result = await service.warm(series, body.partitions);
    const stats = service.stats();
    return sendValid(reply, warmResponseSchema, {
      ...result,
      cache: { bytes: stats.bytes, max_bytes: stats.max_bytes, partitions: stats.partitions },
    });
  });
}

/** count, range, first open, last close, extremes, averages and sums of a window (oldest first). */
export function summarize(candles: readonly StoredCandle[]) {
  let high = Number.NEGATIVE_INFINITY;
  let low = Number.POSITIVE_INFINITY;
  let closes = 0;
  let volume = 0;
  let trades = 0;
  let vwapWeighted = 0;
  for (const c of candles) {
    if (c.high > high) high = c.high;
    if (c.low < low) low = c.low;
    closes += c.close;
    volume += c.volume;
    trades += c.trades;
    vwapWeighted += c.vwap * c.volume;
  }
  const first = candles[0];
  const last = candles.at(-1);
  const n = candles.length;
  return {
    count: n,
    start: first ? iso(first.start) : null,
    end: last ? iso(last.start) : null,
    open: first ? first.open : null,
    close: last ? last.close : null,
    high: n > 0 ? high : null,
    low: n > 0 ? low : null,
    avg_close: n > 0 ? closes / n : null,
    volume,
    trades,
    vwap: volume > 0 && Number.isFinite(vwapWeighted) ? vwapWeighted / volume : null,
  };
}
