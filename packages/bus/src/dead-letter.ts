import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as createHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { publishBytes } from './publish.js';
import { subjects } from './subjects.js';

/** Headers of a message in the DLQ stream (DESIGN.md "Bus"): where it came from and why it is here. */
export const DLQ_HEADERS = {
  reason: 'Parquetry-Reason',
  originalSubject: 'Parquetry-Original-Subject',
  originalStream: 'Parquetry-Original-Stream',
  originalSeq: 'Parquetry-Original-Seq',
  originalMsgId: 'Parquetry-Original-Msg-Id',
  errorCode: 'Parquetry-Error-Code',
  error: 'Parquetry-Error',
  deliveryCount: 'Parquetry-Delivery-Count',
  consumer: 'Parquetry-Consumer',
} as const;

export const PARQUETRY_HEADER_PREFIX = 'Parquetry-';
const NATS_HEADER_PREFIX = 'Nats-';
const MSG_ID_HEADER = 'Nats-Msg-Id';
const MAX_ERROR_TEXT = 512;

export interface DeadLetterInput {
  service: string;
  stream: string;
  consumer: string;
  subject: string;
  seq: number;
  deliveryCount: number;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  reason: string;
  code: string;
  error?: unknown;
}

/** Header values are single lines. */
function headerText(value: string, max = MAX_ERROR_TEXT): string {
  const line = value.replace(/[\r\n]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * The original headers (minus NATS' own and earlier Parquetry ones) plus where the message
 * came from and why it was rejected.
 */
export function deadLetterHeaders(input: DeadLetterInput): MsgHdrs {
  const h = createHeaders();
  if (input.headers) {
    for (const key of input.headers.keys()) {
      if (key.startsWith(NATS_HEADER_PREFIX) || key.startsWith(PARQUETRY_HEADER_PREFIX)) continue;
      for (const v of input.headers.values(key)) h.append(key, v);
    }
  }
  h.set(DLQ_HEADERS.reason, input.reason);
  h.set(DLQ_HEADERS.originalSubject, input.subject);
  h.set(DLQ_HEADERS.originalStream, input.stream);
  h.set(DLQ_HEADERS.originalSeq, String(input.seq));
  h.set(DLQ_HEADERS.errorCode, input.code);
  h.set(DLQ_HEADERS.deliveryCount, String(input.deliveryCount));
  h.set(DLQ_HEADERS.consumer, input.consumer);
  const msgId = input.headers?.get(MSG_ID_HEADER);
  if (msgId) h.set(DLQ_HEADERS.originalMsgId, headerText(msgId, 256));
  if (input.error !== undefined) {
    const text = input.error instanceof Error ? input.error.message : String(input.error);
    if (text) h.set(DLQ_HEADERS.error, headerText(text));
  }
  return h;
}

/**
 * Copy a rejected message to `dlq.<service>.<original subject>`. The msg id makes a repeat
 * (the term was lost and the message came back) a no-op inside the duplicate window.
 */
export function publishDeadLetter(js: JetStreamClient, input: DeadLetterInput): Promise<PubAck> {
  return publishBytes(js, subjects.deadLetter(input.service, input.subject), input.data, {
    msgId: `dlq:${input.service}:${input.stream}:${input.seq}`,
    headers: deadLetterHeaders(input),
  });
}
