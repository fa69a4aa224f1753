import type { JetStreamClient, JetStreamManager, MsgRequest, StoredMsg } from '@nats-io/jetstream';
import { headers as createHeaders, type MsgHdrs, nuid } from '@nats-io/transport-node';
import { InvalidInputError, type Metrics, NotFoundError, TransientError } from '@parquetry/service';
import { DLQ_HEADERS, PARQUETRY_HEADER_PREFIX } from './dead-letter.js';
import { publishBytes } from './publish.js';
import { STREAM_NAMES } from './streams.js';
import { deadLetterFilter } from './subjects.js';

/**
 * Operator tools over the DLQ stream (the CLI's `dlq list | show | replay`). Dead letters are
 * read by sequence with `next_by_subj`, so listing needs no consumer and changes nothing.
 */

export interface DeadLetterEntry {
  /** Sequence in the DLQ stream. */
  seq: number;
  /** `dlq.<service>.<original subject>` */
  subject: string;
  service: string;
  originalSubject: string;
  originalStream: string;
  originalSeq: number | undefined;
  reason: string;
  code: string;
  error: string | undefined;
  deliveryCount: number | undefined;
  consumer: string | undefined;
  /** When it was dead-lettered. */
  time: Date;
  size: number;
}

export interface DeadLetter extends DeadLetterEntry {
  headers: Record<string, string>;
  data: Uint8Array;
}

export interface DeadLetterFilter {
  service?: string;
  reason?: string;
}

export interface ListDeadLettersOptions extends DeadLetterFilter {
  /** Most entries returned (default 100). */
  limit?: number;
  /** Start at this DLQ sequence (default the first), for paging. */
  fromSeq?: number;
  /** The DLQ stream name (default DLQ). */
  stream?: string;
}

type ManagerOnly = { jsm: JetStreamManager };
type Clients = { js: JetStreamClient; jsm: JetStreamManager };

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h) for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

function optionalInt(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function toEntry(m: StoredMsg): DeadLetter {
  const headers = headerRecord(m.header);
  const [, service = '', ...rest] = m.subject.split('.');
  return {
    seq: m.seq,
    subject: m.subject,
    service,
    originalSubject: headers[DLQ_HEADERS.originalSubject] ?? rest.join('.'),
    originalStream: headers[DLQ_HEADERS.originalStream] ?? '',
    originalSeq: optionalInt(headers[DLQ_HEADERS.originalSeq]),
    reason: headers[DLQ_HEADERS.reason] ?? '',
    code: headers[DLQ_HEADERS.errorCode] ?? '',
    error: headers[DLQ_HEADERS.error],
    deliveryCount: optionalInt(headers[DLQ_HEADERS.deliveryCount]),
    consumer: headers[DLQ_HEADERS.consumer],
    time: m.time,
    size: m.data.length,
    headers,
    data: m.data,
  };
}

function withoutBody({ headers: _h, data: _d, ...entry }: DeadLetter): DeadLetterEntry {
  return entry;
}

async function nextDeadLetter(jsm: JetStreamManager, stream: string, seq: number, filter: string) {
  try {
    // STREAM.MSG.GET takes next_by_subj (nats-server ≥ 2.9) though the client's type omits it.
    const query = { seq, next_by_subj: filter } as unknown as MsgRequest;
    return await jsm.streams.getMessage(stream, query);
  } catch (err) {
    throw new TransientError(`cannot read the ${stream} stream`, { cause: err });
  }
}

async function* scanDeadLetters(
  jsm: JetStreamManager,
  opts: ListDeadLettersOptions,
): AsyncGenerator<DeadLetter, void, undefined> {
  const stream = opts.stream ?? STREAM_NAMES.dlq;
  const filter = deadLetterFilter(opts.service);
  let seq = Math.max(1, opts.fromSeq ?? 1);
  for (;;) {
    const m = await nextDeadLetter(jsm, stream, seq, filter);
    if (!m) return;
    seq = m.seq + 1;
    const entry = toEntry(m);
    if (opts.reason === undefined || entry.reason === opts.reason) yield entry;
  }
}

/** Dead letters, oldest first, optionally of one service and/or reason. */
export async function listDeadLetters(
  { jsm }: ManagerOnly,
  opts: ListDeadLettersOptions = {},
): Promise<DeadLetterEntry[]> {
  const limit = opts.limit ?? 100;
  const out: DeadLetterEntry[] = [];
  if (limit <= 0) return out;
  for await (const entry of scanDeadLetters(jsm, opts)) {
    out.push(withoutBody(entry));
    if (out.length >= limit) break;
  }
  return out;
}

/** One dead letter with its headers and original body. */
export async function showDeadLetter(
  { jsm }: ManagerOnly,
  seq: number,
  opts: { stream?: string } = {},
): Promise<DeadLetter> {
  const stream = opts.stream ?? STREAM_NAMES.dlq;
  let m: StoredMsg | null;
  try {
    m = await jsm.streams.getMessage(stream, { seq });
  } catch (err) {
    throw new TransientError(`cannot read ${stream} #${seq}`, { cause: err });
  }
  if (!m?.subject.startsWith('dlq.')) throw new NotFoundError(`no dead letter #${seq} in ${stream}`);
  return toEntry(m);
}

export interface ReplayOptions extends DeadLetterFilter {
  /** Replay these DLQ sequences … */
  seq?: number | readonly number[];
  /** … or every dead letter matching the filter (required without `seq`, so nothing replays by accident). */
  all?: boolean;
  /** Most messages replayed (default unlimited). */
  limit?: number;
  /** Report what would be replayed without publishing or deleting. */
  dryRun?: boolean;
  stream?: string;
}

export interface ReplayResult {
  replayed: { seq: number; subject: string; stream: string; streamSeq: number }[];
  failed: { seq: number; error: string }[];
  dryRun: boolean;
}

/** The original headers, without the DLQ's and without NATS' own (a fresh msg id is set). */
function replayHeaders(h: Record<string, string>): MsgHdrs | undefined {
  const out = createHeaders();
  let any = false;
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(PARQUETRY_HEADER_PREFIX) || k.startsWith('Nats-')) continue;
    out.set(k, v);
    any = true;
  }
  return any ? out : undefined;
}

async function selectForReplay(jsm: JetStreamManager, opts: ReplayOptions): Promise<DeadLetter[]> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const selected: DeadLetter[] = [];
  if (opts.seq !== undefined) {
    const seqs = typeof opts.seq === 'number' ? [opts.seq] : opts.seq;
    for (const seq of seqs.slice(0, Number.isFinite(limit) ? limit : undefined)) {
      const entry = await showDeadLetter({ jsm }, seq, opts);
      if (opts.service !== undefined && entry.service !== opts.service) continue;
      if (opts.reason !== undefined && entry.reason !== opts.reason) continue;
      selected.push(entry);
    }
    return selected;
  }
  if (!opts.all)
    throw new InvalidInputError('replay needs a sequence or `all`', { code: 'replay_selection' });
  for await (const entry of scanDeadLetters(jsm, opts)) {
    selected.push(entry);
    if (selected.length >= limit) break;
  }
  return selected;
}

/**
 * Publish dead letters again to their original subjects (a fresh Nats-Msg-Id, so the
 * duplicate window does not drop them) and delete each from the DLQ once its publish is
 * acknowledged. A message that fails stays in the DLQ and is reported.
 */
export async function replayDeadLetters({ js, jsm }: Clients, opts: ReplayOptions): Promise<ReplayResult> {
  const stream = opts.stream ?? STREAM_NAMES.dlq;
  const selected = await selectForReplay(jsm, opts);
  const result: ReplayResult = { replayed: [], failed: [], dryRun: opts.dryRun ?? false };
  for (const entry of selected) {
    if (!entry.originalSubject) {
      result.failed.push({ seq: entry.seq, error: 'no original subject' });
      continue;
    }
    if (opts.dryRun) {
      result.replayed.push({
        seq: entry.seq,
        subject: entry.originalSubject,
        stream: entry.originalStream,
        streamSeq: 0,
      });
      continue;
    }
    try {
      const ack = await publishBytes(js, entry.originalSubject, entry.data, {
        msgId: `replay:${entry.seq}:${nuid.next()}`,
        headers: replayHeaders(entry.headers),
      });
      await jsm.streams.deleteMessage(stream, entry.seq, false);
      result.replayed.push({
        seq: entry.seq,
        subject: entry.originalSubject,
        stream: ack.stream,
        streamSeq: ack.seq,
      });
    } catch (err) {
      result.failed.push({ seq: entry.seq, error: (err as Error)?.message ?? String(err) });
    }
  }
  return result;
}

/**
 * `parquetry_dlq_messages`: the messages held in the DLQ stream, read from the stream's info on
 * every scrape ("a growing dead-letter stream"). One service registers it (the compactor), so
 * the series is not repeated per service. A scrape while NATS cannot answer keeps the last value.
 */
export function registerDeadLetterGauge(
  metrics: Metrics,
  jsm: JetStreamManager,
  stream: string = STREAM_NAMES.dlq,
): void {
  metrics.gauge('parquetry_dlq_messages', 'Messages in the DLQ stream', [], async (gauge) => {
    try {
      const info = await jsm.streams.info(stream);
      gauge.set(info.state.messages);
    } catch {
      // NATS unreachable or the stream not created yet: keep the last reading
    }
  });
}
