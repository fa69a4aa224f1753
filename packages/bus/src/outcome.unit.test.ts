import { ConflictError, InvalidInputError, NotFoundError, TransientError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { admissionFor, errorCode, Outcomes, outcomeForError, settlementFor } from './outcome.js';

const policy = { maxDeliver: 3, backoff: [100, 1000] };

describe('outcomeForError', () => {
  it('retries retryable and unclassified errors', () => {
    for (const err of [
      new TransientError('s3 down'),
      new ConflictError('lost race'),
      new Error('boom'),
      'text',
    ]) {
      expect(outcomeForError(err).kind).toBe('retry');
    }
  });

  it('dead-letters permanent errors under their code', () => {
    expect(outcomeForError(new InvalidInputError('bad'))).toMatchObject({
      kind: 'dead',
      reason: 'invalid_input',
    });
    expect(outcomeForError(new InvalidInputError('bad', { code: 'schema_violation' }))).toMatchObject({
      kind: 'dead',
      reason: 'schema_violation',
    });
    expect(outcomeForError(new NotFoundError('gone'))).toMatchObject({ kind: 'dead', reason: 'not_found' });
  });
});

describe('errorCode', () => {
  it('keeps codes short and label-safe', () => {
    expect(errorCode(new InvalidInputError('x', { code: 'Bad Thing!' }))).toBe('bad_thing_');
    expect(errorCode(new Error('x'))).toBe('unknown');
  });
});

describe('settlementFor', () => {
  it('acks and holds', () => {
    expect(settlementFor(Outcomes.ack(), 1, policy)).toEqual({ action: 'ack' });
    expect(settlementFor(Outcomes.pending(), 1, policy)).toEqual({ action: 'hold' });
  });

  it('naks with the backoff delay of the failed delivery', () => {
    const err = new TransientError('x');
    expect(settlementFor(Outcomes.retry(err), 1, policy)).toMatchObject({
      action: 'nak',
      delayMs: 100,
      reason: 'transient',
    });
    expect(settlementFor(Outcomes.retry(err), 2, policy)).toMatchObject({ action: 'nak', delayMs: 1000 });
  });

  it('honours an explicit delay', () => {
    expect(settlementFor(Outcomes.retry(undefined, 42), 1, policy)).toMatchObject({
      action: 'nak',
      delayMs: 42,
      reason: 'nak',
    });
  });

  it('dead-letters a retry on the last allowed delivery, keeping the error code', () => {
    expect(settlementFor(Outcomes.retry(new TransientError('x')), 3, policy)).toMatchObject({
      action: 'dead',
      reason: 'max_deliveries_exceeded',
      code: 'transient',
    });
  });

  it('dead-letters with the given reason and the error code', () => {
    expect(settlementFor(Outcomes.dead('schema'), 1, policy)).toMatchObject({
      action: 'dead',
      reason: 'schema',
      code: 'schema',
    });
    expect(settlementFor(Outcomes.dead('schema', new InvalidInputError('x')), 1, policy)).toMatchObject({
      reason: 'schema',
      code: 'invalid_input',
    });
  });
});

describe('admissionFor', () => {
  const limits = { maxMessageBytes: 10, maxDeliver: 3 };

  it('admits messages within limits', () => {
    expect(admissionFor({ size: 10, deliveryCount: 3 }, limits)).toBeUndefined();
  });

  it('rejects oversized messages before anything else', () => {
    expect(admissionFor({ size: 11, deliveryCount: 9 }, limits)).toMatchObject({
      action: 'dead',
      reason: 'too_large',
    });
  });

  it('rejects messages delivered more often than allowed', () => {
    expect(admissionFor({ size: 1, deliveryCount: 4 }, limits)).toMatchObject({
      action: 'dead',
      reason: 'max_deliveries_exceeded',
    });
  });
});
