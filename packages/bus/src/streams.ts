import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ConfigError, TransientError } from '@parquetry/service';
import { exponentialDelayMs } from './backoff.js';

/** A stream of DESIGN.md "Bus: streams and subjects", as data (times in ms, sizes in bytes). */
export interface StreamDef {
  name: string;
  subjects: readonly string[];
  description: string;
  retention: 'limits' | 'workqueue';
  /** Oldest message kept. */
  maxAgeMs: number;
  /** Size cap; with discard `old` the oldest messages go first, with `new` publishes fail. */
  maxBytes: number;
  discard: 'old' | 'new';
}

const DAY = 24 * 3600 * 1000;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const STREAM_NAMES = {
  products: 'PRODUCTS',
  ticks: 'TICKS',
  candles: 'CANDLES',
  lake: 'LAKE',
  lakeOps: 'LAKE_OPS',
  dlq: 'DLQ',
} as const;

/**
 * Limits are sized for one node: the lake is the long-term record, the streams only need to
 * outlive a consumer outage (days), and a full work queue must refuse new work, not drop it.
 */
export const STREAM_DEFS: readonly StreamDef[] = [
  {
    name: STREAM_NAMES.products,
    subjects: ['scraper.products.>'],
    description: 'Product batches from scrapers (scraper.products.<retailer>.<category>)',
    retention: 'limits',
    maxAgeMs: 7 * DAY,
    maxBytes: 10 * GiB,
    discard: 'old',
  },
  {
    name: STREAM_NAMES.ticks,
    subjects: ['market.ticks.>'],
    description: 'Trade ticks from the market feed (market.ticks.<symbol>)',
    retention: 'limits',
    maxAgeMs: 3 * DAY,
    maxBytes: 10 * GiB,
    discard: 'old',
  },
  {
    name: STREAM_NAMES.candles,
    subjects: ['market.candles.>'],
    description: 'Closed candles (market.candles.<timeframe>.<symbol>)',
    retention: 'limits',
    maxAgeMs: 7 * DAY,
    maxBytes: 2 * GiB,
    discard: 'old',
  },
  {
    name: STREAM_NAMES.lake,
    subjects: ['lake.committed.>'],
    description: 'Lake commit notices (lake.committed.<dataset>)',
    retention: 'limits',
    maxAgeMs: 7 * DAY,
    maxBytes: 1 * GiB,
    discard: 'old',
  },
  {
    name: STREAM_NAMES.lakeOps,
    subjects: ['lake.ops.>'],
    description: 'Lake operations for the compactor (work queue)',
    retention: 'workqueue',
    maxAgeMs: 30 * DAY,
    maxBytes: 256 * MiB,
    discard: 'new',
  },
  {
    name: STREAM_NAMES.dlq,
    subjects: ['dlq.>'],
    description: 'Dead letters (dlq.<service>.<original subject>), reason in Parquetry-* headers',
    retention: 'limits',
    maxAgeMs: 30 * DAY,
    maxBytes: 1 * GiB,
    discard: 'old',
  },
];

export interface EnsureStreamsOptions {
  /** JetStream drops a repeated Nats-Msg-Id inside this window (default 2 minutes). */
  duplicateWindowMs?: number;
  replicas?: number;
}

export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/** The JetStream configuration of a stream definition. */
export function streamConfig(def: StreamDef, opts: EnsureStreamsOptions = {}): StreamConfig {
  // A duplicate window longer than max_age is rejected by the server.
  const duplicateWindowMs = Math.min(opts.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS, def.maxAgeMs);
  return {
    name: def.name,
    subjects: [...def.subjects],
    description: def.description,
    retention: def.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: def.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
    max_age: nanos(def.maxAgeMs),
    max_bytes: def.maxBytes,
    duplicate_window: nanos(duplicateWindowMs),
    num_replicas: opts.replicas ?? 1,
  } as StreamConfig;
}

export type EnsureAction = 'created' | 'updated' | 'unchanged';

export interface EnsureStreamResult {
  name: string;
  action: EnsureAction;
  /** Fields that differed before an update. */
  changed: string[];
}

const UPDATABLE = [
  'subjects',
  'description',
  'discard',
  'max_age',
  'max_bytes',
  'duplicate_window',
  'num_replicas',
] as const;
const IMMUTABLE = ['retention', 'storage'] as const;

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return [...a].sort().join('\n') === [...b].sort().join('\n');
  return (a ?? '') === (b ?? '');
}

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** How long a service start keeps asking for a stream's info while a cluster elects its leader. */
const INFO_RETRY_MS = 30_000;

async function currentInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  const deadline = Date.now() + INFO_RETRY_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await jsm.streams.info(name);
    } catch (err) {
      if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return undefined;
      // A timeout or no responders: the stream's leader is being elected (a node died). Ask again.
      if (Date.now() >= deadline) throw new TransientError(`cannot read stream ${name}`, { cause: err });
      await new Promise((r) => setTimeout(r, exponentialDelayMs(attempt, { initialMs: 250, maxMs: 2_000 })));
    }
  }
}

/** Create the stream, or bring an existing one to `def`; unchanged streams are not touched. */
export async function ensureStream(
  jsm: JetStreamManager,
  def: StreamDef,
  opts: EnsureStreamsOptions = {},
): Promise<EnsureStreamResult> {
  const wanted = streamConfig(def, opts);
  for (let attempt = 0; ; attempt++) {
    const info = await currentInfo(jsm, def.name);
    if (!info) {
      try {
        await jsm.streams.add(wanted);
        return { name: def.name, action: 'created', changed: [] };
      } catch (err) {
        // Another instance may have created it at the same moment: look again, once.
        if (attempt === 0) continue;
        throw new ConfigError(`cannot create stream ${def.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    const immutable = IMMUTABLE.filter((k) => !same(info.config[k], wanted[k]));
    if (immutable.length > 0) {
      throw new ConfigError(
        `stream ${def.name} exists with a different ${immutable.join(', ')}; it cannot be changed in place ` +
          '(delete the stream or migrate it by hand)',
      );
    }
    const changed = UPDATABLE.filter((k) => !same(info.config[k], wanted[k]));
    if (changed.length === 0) return { name: def.name, action: 'unchanged', changed };
    try {
      const { name: _name, retention: _r, storage: _s, ...update } = wanted;
      await jsm.streams.update(def.name, update);
    } catch (err) {
      throw new ConfigError(
        `cannot update stream ${def.name} (${changed.join(', ')}): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return { name: def.name, action: 'updated', changed: [...changed] };
  }
}

/** Idempotent create-or-update of every stream, at service start. */
export async function ensureStreams(
  jsm: JetStreamManager,
  defs: readonly StreamDef[] = STREAM_DEFS,
  opts: EnsureStreamsOptions = {},
): Promise<EnsureStreamResult[]> {
  const results: EnsureStreamResult[] = [];
  for (const def of defs) results.push(await ensureStream(jsm, def, opts));
  return results;
}

/**
 * Brings an existing stream (e.g. a key-value bucket's `KV_<bucket>`, which `Kvm.create` leaves
 * as it is) to `replicas`, in place; returns whether it changed.
 */
export async function ensureStreamReplicas(
  jsm: JetStreamManager,
  name: string,
  replicas: number,
): Promise<boolean> {
  const info = await jsm.streams.info(name);
  if (info.config.num_replicas === replicas) return false;
  try {
    await jsm.streams.update(name, { ...info.config, num_replicas: replicas });
  } catch (err) {
    throw new ConfigError(`cannot set ${name} to ${replicas} replicas: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return true;
}
