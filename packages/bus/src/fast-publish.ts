import {
  headers as createHeaders,
  createInbox,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import { TransientError } from '@parquetry/service';
import { type BulkMessage, type BulkPublishResult, forEachMessage, toHeaders } from './publish.js';

export interface FastPublishOptions {
  /** Publishes awaiting their PubAck at most (default 10,000). */
  window?: number;
  /** A publish without a PubAck after this long is sent again, with the same msg id (default 5 s). */
  ackTimeoutMs?: number;
  /** Sends of one message before giving up on it (default 3). */
  maxAttempts?: number;
  onProgress?: (acked: number) => void;
}

interface Outstanding {
  subject: string;
  data: Uint8Array;
  headers: ReturnType<typeof createHeaders> | undefined;
  sentAt: number;
  attempts: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Bulk load at core-NATS speed (≈5× publishBatch, MEASURED.md): every message is a plain
 * publish whose reply goes to one shared inbox, and the PubAcks are counted as they come back
 * instead of one request per message. A message without an ack in time is sent again with the
 * same Nats-Msg-Id, so set `msgId` on every message to keep retries from duplicating it.
 * Resolves when every message is acknowledged; rejects (after all acks or timeouts are in) if
 * any was refused or never acknowledged.
 */
export async function publishFast(
  nc: NatsConnection,
  messages: Iterable<BulkMessage> | AsyncIterable<BulkMessage>,
  opts: FastPublishOptions = {},
): Promise<BulkPublishResult> {
  const window = Math.max(1, opts.window ?? 10_000);
  const ackTimeoutMs = opts.ackTimeoutMs ?? 5000;
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
  const inbox = createInbox();
  const outstanding = new Map<number, Outstanding>();
  const result: BulkPublishResult = { published: 0, duplicates: 0, lastSeq: 0 };
  const failures: string[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let sinceProgress = 0;

  const onAck = (id: number, m: Msg) => {
    const entry = outstanding.get(id);
    if (!entry) return; // a late ack of a message already re-sent and acknowledged
    outstanding.delete(id);
    if (m.headers?.hasError) {
      failures.push(
        `${entry.subject}: ${m.headers.code} ${m.headers.description || 'no stream for subject'}`,
      );
    } else {
      const text = decoder.decode(m.data);
      if (text.includes('"error"')) {
        failures.push(`${entry.subject}: ${text}`);
      } else {
        result.published++;
        if (/"duplicate"\s*:\s*true/.test(text)) result.duplicates++;
        else {
          const seq = /"seq"\s*:\s*(\d+)/.exec(text);
          if (seq) result.lastSeq = Math.max(result.lastSeq, Number(seq[1]));
        }
        if (opts.onProgress && ++sinceProgress >= 1000) {
          sinceProgress = 0;
          opts.onProgress(result.published);
        }
      }
    }
    if (outstanding.size <= window / 2 || outstanding.size === 0) notify();
  };

  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (err) return;
      onAck(Number(m.subject.slice(inbox.length + 1)), m);
    },
  });

  const send = (id: number, e: Outstanding) => {
    e.sentAt = Date.now();
    e.attempts++;
    nc.publish(e.subject, e.data, { reply: `${inbox}.${id}`, headers: e.headers });
  };

  /** Re-send or give up on what has waited longer than ackTimeoutMs. */
  const sweep = () => {
    const now = Date.now();
    for (const [id, e] of outstanding) {
      if (now - e.sentAt < ackTimeoutMs) continue;
      if (e.attempts >= maxAttempts) {
        outstanding.delete(id);
        failures.push(`${e.subject}: no PubAck after ${e.attempts} attempts`);
      } else send(id, e);
    }
    if (outstanding.size === 0) notify();
  };
  const timer = setInterval(sweep, Math.max(50, Math.floor(ackTimeoutMs / 4)));

  const waitBelow = async (limit: number) => {
    while (outstanding.size > limit) await new Promise<void>((resolve) => (wake = resolve));
  };

  try {
    let id = 0;
    await forEachMessage(messages, (m) => {
      let headers = toHeaders(m.headers);
      if (m.msgId !== undefined) {
        headers ??= createHeaders();
        headers.set('Nats-Msg-Id', m.msgId);
      }
      const entry: Outstanding = {
        subject: m.subject,
        data: m.data ?? encoder.encode(JSON.stringify(m.payload)),
        headers,
        sentAt: 0,
        attempts: 0,
      };
      outstanding.set(++id, entry);
      send(id, entry);
      return outstanding.size >= window ? waitBelow(window / 2) : undefined;
    });
    await nc.flush();
    await waitBelow(0);
  } finally {
    clearInterval(timer);
    sub.unsubscribe();
  }
  opts.onProgress?.(result.published);
  if (failures.length > 0) {
    throw new TransientError(`${failures.length} of the messages were not stored; first: ${failures[0]}`, {
      code: 'publish_failed',
      details: { failures: failures.slice(0, 20), published: result.published },
    });
  }
  return result;
}
