import { isRetryable, ParquetryError } from '@parquetry/service';
import { type JitterOptions, retryDelayMs } from './backoff.js';

/**
 * What a handler decides for one message. `pending` (or no outcome at all) leaves the message
 * with the handler, which settles it later through the message's own methods.
 */
export type Outcome =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly delayMs?: number; readonly error?: unknown }
  | { readonly kind: 'dead'; readonly reason: string; readonly error?: unknown }
  | { readonly kind: 'pending' };

export const Outcomes = {
  ack: (): Outcome => ({ kind: 'ack' }),
  retry: (error?: unknown, delayMs?: number): Outcome => ({ kind: 'retry', error, delayMs }),
  dead: (reason: string, error?: unknown): Outcome => ({ kind: 'dead', reason, error }),
  pending: (): Outcome => ({ kind: 'pending' }),
} as const;

/** Short, low-cardinality reasons the loop itself gives (handlers may add their own codes). */
export const DeadLetterReason = {
  tooLarge: 'too_large',
  maxDeliveries: 'max_deliveries_exceeded',
  invalidInput: 'invalid_input',
} as const;

/** What the loop does with the message on the wire. */
export type Settlement =
  | { readonly action: 'ack' }
  | { readonly action: 'nak'; readonly delayMs: number; readonly reason: string; readonly error?: unknown }
  | { readonly action: 'dead'; readonly reason: string; readonly code: string; readonly error?: unknown }
  | { readonly action: 'hold' };

export interface RetryPolicy extends JitterOptions {
  /** Deliveries allowed before a message that still fails is dead-lettered. */
  maxDeliver: number;
  /** Redelivery delays (ms) after the 1st, 2nd, … failure. */
  backoff: readonly number[];
}

const CODE_PATTERN = /[^a-z0-9_]+/g;

/** A metric- and header-safe code for an error: the ParquetryError code, else `unknown`. */
export function errorCode(err: unknown): string {
  if (err instanceof ParquetryError) {
    const code = err.code.toLowerCase().replace(CODE_PATTERN, '_').slice(0, 48);
    return code || 'unknown';
  }
  return 'unknown';
}

/**
 * The one mapping from a thrown error to an outcome: retryable errors (and anything we did not
 * classify) are retried with backoff; errors that can never succeed are dead-lettered under
 * their code.
 */
export function outcomeForError(err: unknown): Outcome {
  return isRetryable(err) ? Outcomes.retry(err) : Outcomes.dead(errorCode(err), err);
}

/**
 * Turn a handler's outcome into the action on the wire. A retry on the last allowed delivery
 * becomes a dead letter, so a message never silently stops being delivered.
 */
export function settlementFor(outcome: Outcome, deliveryCount: number, policy: RetryPolicy): Settlement {
  switch (outcome.kind) {
    case 'ack':
      return { action: 'ack' };
    case 'pending':
      return { action: 'hold' };
    case 'dead':
      return {
        action: 'dead',
        reason: outcome.reason,
        code: outcome.error === undefined ? outcome.reason : errorCode(outcome.error),
        error: outcome.error,
      };
    case 'retry': {
      const code = outcome.error === undefined ? 'nak' : errorCode(outcome.error);
      if (deliveryCount >= policy.maxDeliver) {
        return { action: 'dead', reason: DeadLetterReason.maxDeliveries, code, error: outcome.error };
      }
      const delayMs = outcome.delayMs ?? retryDelayMs(policy.backoff, deliveryCount, policy);
      return { action: 'nak', delayMs, reason: code, error: outcome.error };
    }
    default: {
      const never: never = outcome;
      throw new Error(`unknown outcome ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Checks made when a message arrives, before any parsing: too big to handle, or delivered more
 * often than allowed (the handler crashed the process or held it past ack_wait each time).
 */
export function admissionFor(
  msg: { size: number; deliveryCount: number },
  limits: { maxMessageBytes: number; maxDeliver: number },
): Settlement | undefined {
  if (msg.size > limits.maxMessageBytes) {
    return { action: 'dead', reason: DeadLetterReason.tooLarge, code: DeadLetterReason.tooLarge };
  }
  if (msg.deliveryCount > limits.maxDeliver) {
    return { action: 'dead', reason: DeadLetterReason.maxDeliveries, code: 'redelivered' };
  }
  return undefined;
}
