import { describe, expect, it } from 'vitest';
import { AckReply } from './message.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('AckReply', () => {
  it('speaks the JetStream ack protocol', () => {
    expect(text(AckReply.ack)).toBe('+ACK');
    expect(text(AckReply.working)).toBe('+WPI');
    expect(text(AckReply.nak())).toBe('-NAK');
    expect(text(AckReply.term())).toBe('+TERM');
    expect(text(AckReply.term('bad'))).toBe('+TERM bad');
  });

  it('gives a nak delay in nanoseconds', () => {
    expect(JSON.parse(text(AckReply.nak(1500)).slice('-NAK '.length))).toEqual({ delay: 1_500_000_000 });
  });
});
