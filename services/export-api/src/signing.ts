import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@parquetry/service';
import { z } from 'zod';
import { ForbiddenError } from './errors.js';

/**
 * Download links for a filesystem lake: `/v1/downloads/<token>` where the token is
 * `base64url(payload).base64url(HMAC-SHA256(secret, domain + payload))`. A token names exactly
 * one object under `exports/<export_id>/` and an expiry; anything else — a bad signature, a
 * non-canonical encoding, an expired or malformed token, a key outside the export — is the same
 * kind of 403. S3 lakes use S3 presigned URLs instead.
 */

export const EXPORTS_PREFIX = 'exports/';
export const MIN_SECRET_BYTES = 32;
const DOMAIN = 'parquetry-download-v1.';
const MAX_TOKEN_CHARS = 2048;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,2000}\.[A-Za-z0-9_-]{43}$/;
const EXPORT_ID = /^[A-Za-z0-9_-]{8,64}$/;
const KEY_SEGMENT = /^[A-Za-z0-9._=%-]{1,255}$/;

export const downloadTokenPayloadSchema = z
  .object({
    v: z.literal(1),
    /** Object key in the lake, under `exports/<export_id>/`. */
    key: z.string().max(1024),
    /** Expiry, epoch seconds. */
    exp: z.number().int().positive(),
    export_id: z.string().regex(EXPORT_ID),
  })
  .strict();
export type DownloadTokenPayload = z.infer<typeof downloadTokenPayloadSchema>;

export function isExportId(id: string): boolean {
  return EXPORT_ID.test(id);
}

/** True when `key` is a plain object key inside `exports/<exportId>/` (no traversal, no odd bytes). */
export function isExportObjectKey(key: string, exportId: string): boolean {
  if (key.length > 1024 || !key.startsWith(`${EXPORTS_PREFIX}${exportId}/`)) return false;
  const segments = key.split('/');
  return segments.length >= 3 && segments.every((s) => KEY_SEGMENT.test(s) && s !== '.' && s !== '..');
}

function secretBytes(secret: string | Buffer): Buffer {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new ConfigError(`download signing secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return bytes;
}

function mac(secret: Buffer, payloadPart: string): Buffer {
  return createHmac('sha256', secret).update(DOMAIN).update(payloadPart).digest();
}

export function signDownloadToken(payload: DownloadTokenPayload, secret: string | Buffer): string {
  const p = downloadTokenPayloadSchema.parse(payload);
  if (!isExportObjectKey(p.key, p.export_id)) throw new Error(`not an export object key: ${p.key}`);
  const payloadPart = Buffer.from(JSON.stringify(p), 'utf8').toString('base64url');
  return `${payloadPart}.${mac(secretBytes(secret), payloadPart).toString('base64url')}`;
}

const invalidToken = () => new ForbiddenError('invalid download token');

/** The token's payload, or ForbiddenError (403). `nowMs` is passed in: the clock is a dependency. */
export function verifyDownloadToken(
  token: unknown,
  secret: string | Buffer,
  nowMs: number,
): DownloadTokenPayload {
  const key = secretBytes(secret);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !TOKEN_SHAPE.test(token))
    throw invalidToken();
  const [payloadPart = '', sigPart = ''] = token.split('.');
  const sig = Buffer.from(sigPart, 'base64url');
  // Node decodes leniently: insist on the canonical spelling so one signature has one text.
  if (sig.length !== 32 || sig.toString('base64url') !== sigPart) throw invalidToken();
  if (!timingSafeEqual(sig, mac(key, payloadPart))) throw invalidToken();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch (err) {
    throw new ForbiddenError('invalid download token', { cause: err });
  }
  const parsed = downloadTokenPayloadSchema.safeParse(json);
  if (!parsed.success || !isExportObjectKey(parsed.data.key, parsed.data.export_id)) throw invalidToken();
  if (parsed.data.exp * 1000 <= nowMs) throw new ForbiddenError('download link expired');
  return parsed.data;
}
