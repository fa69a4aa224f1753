import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS, deadLetterHeaders } from './dead-letter.js';

describe('deadLetterHeaders', () => {
  const original = headers();
  original.set('Nats-Msg-Id', 'batch-1');
  original.set('Trace-Id', 'abc');
  original.set('Parquetry-Reason', 'stale');

  const h = deadLetterHeaders({
    service: 'ingest-backup',
    stream: 'PRODUCTS',
    consumer: 'ingest',
    subject: 'scraper.products.a.b',
    seq: 42,
    deliveryCount: 3,
    data: new Uint8Array(),
    headers: original,
    reason: 'invalid_input',
    code: 'schema_violation',
    error: new Error('line one\r\nline two'),
  });

  it('records where the message came from and why', () => {
    expect(h.get(DLQ_HEADERS.reason)).toBe('invalid_input');
    expect(h.get(DLQ_HEADERS.originalSubject)).toBe('scraper.products.a.b');
    expect(h.get(DLQ_HEADERS.originalStream)).toBe('PRODUCTS');
    expect(h.get(DLQ_HEADERS.originalSeq)).toBe('42');
    expect(h.get(DLQ_HEADERS.errorCode)).toBe('schema_violation');
    expect(h.get(DLQ_HEADERS.deliveryCount)).toBe('3');
    expect(h.get(DLQ_HEADERS.consumer)).toBe('ingest');
    expect(h.get(DLQ_HEADERS.originalMsgId)).toBe('batch-1');
  });

  it('keeps the error on one line', () => {
    expect(h.get(DLQ_HEADERS.error)).toBe('line one line two');
  });

  it('keeps application headers but not NATS ones', () => {
    expect(h.get('Trace-Id')).toBe('abc');
    expect(h.has('Nats-Msg-Id')).toBe(false);
  });
});
