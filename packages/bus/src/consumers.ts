import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ConfigError, TransientError } from '@parquetry/service';
import type { EnsureAction } from './streams.js';

export interface ConsumerOptions {
  /** Subjects this consumer reads; one subject works on every server, several need nats-server 2.10. */
  filterSubjects?: readonly string[];
  /** Redelivery when a message is neither acked nor kept alive with inProgress() (default 30 s). */
  ackWaitMs?: number;
  /**
   * Server-side delivery limit (default unlimited). runConsumer enforces its own `maxDeliver` and
   * dead-letters, so keep this unlimited or above it: a message that hits the server's limit is
   * dropped without a dead letter.
   */
  maxDeliver?: number;
  /** Unacked messages the server hands out to all instances together (default 1000). */
  maxAckPending?: number;
  /** Where a new consumer starts (default all). */
  deliverPolicy?: 'all' | 'new' | 'last';
  description?: string;
}

export interface EnsureConsumerResult {
  stream: string;
  durable: string;
  action: EnsureAction;
  changed: string[];
}

function consumerConfig(durable: string, opts: ConsumerOptions): Partial<ConsumerConfig> {
  const filters = opts.filterSubjects ?? [];
  const config: Partial<ConsumerConfig> = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(opts.ackWaitMs ?? 30_000),
    max_deliver: opts.maxDeliver ?? -1,
    max_ack_pending: opts.maxAckPending ?? 1000,
    description: opts.description ?? '',
  };
  // Older servers reject `filter_subjects`, so a single filter uses the classic field.
  if (filters.length > 1) config.filter_subjects = [...filters];
  else if (filters.length === 1) config.filter_subject = filters[0];
  return config;
}

const DELIVER: Record<NonNullable<ConsumerOptions['deliverPolicy']>, DeliverPolicy> = {
  all: DeliverPolicy.All,
  new: DeliverPolicy.New,
  last: DeliverPolicy.Last,
};

const UPDATABLE = [
  'ack_wait',
  'max_deliver',
  'max_ack_pending',
  'description',
  'filter_subject',
  'filter_subjects',
] as const;

function same(a: unknown, b: unknown): boolean {
  const norm = (v: unknown) => (Array.isArray(v) ? [...v].sort().join('\n') : (v ?? ''));
  return norm(a) === norm(b);
}

async function currentInfo(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, durable);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      throw new ConfigError(`stream ${stream} does not exist: run ensureStreams first`, { cause: err });
    }
    throw new TransientError(`cannot read consumer ${stream}/${durable}`, { cause: err });
  }
}

/**
 * Idempotent durable pull consumer with explicit acks: created when missing, updated when a
 * setting differs, left alone otherwise.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  opts: ConsumerOptions = {},
): Promise<EnsureConsumerResult> {
  const wanted = consumerConfig(durable, opts);
  for (let attempt = 0; ; attempt++) {
    const info = await currentInfo(jsm, stream, durable);
    if (!info) {
      try {
        await jsm.consumers.add(stream, { ...wanted, deliver_policy: DELIVER[opts.deliverPolicy ?? 'all'] });
        return { stream, durable, action: 'created', changed: [] };
      } catch (err) {
        if (attempt === 0) continue; // created concurrently by another instance
        throw new ConfigError(`cannot create consumer ${stream}/${durable}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    if (info.config.ack_policy !== AckPolicy.Explicit) {
      throw new ConfigError(`consumer ${stream}/${durable} exists without explicit acks; delete it first`);
    }
    const changed = UPDATABLE.filter((k) => !same(info.config[k], wanted[k]));
    if (changed.length === 0) return { stream, durable, action: 'unchanged', changed };
    try {
      const { durable_name: _d, ack_policy: _a, ...update } = wanted;
      // An update merges into the current config: clear a filter explicitly.
      if (info.config.filter_subject && update.filter_subject === undefined) update.filter_subject = '';
      await jsm.consumers.update(stream, durable, update);
    } catch (err) {
      throw new ConfigError(`cannot update consumer ${stream}/${durable}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return { stream, durable, action: 'updated', changed: [...changed] };
  }
}
