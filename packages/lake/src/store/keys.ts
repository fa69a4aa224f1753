import { InvalidInputError } from '@parquetry/service';

/**
 * Object keys are `/`-separated relative paths. Both backends share these rules so a key that
 * works on S3 also works on disk, and a key can never name anything outside the store root:
 * no absolute paths, no `.`/`..` or empty segments, no backslashes (a separator on Windows and
 * in some S3 tools), no NUL or other control characters. The first segment `_tmp` is reserved
 * for the filesystem backend's in-flight writes.
 */
export const RESERVED_TOP_SEGMENT = '_tmp';
const MAX_KEY_BYTES = 1024; // S3's limit; also keeps file names sane.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function reject(what: 'key' | 'prefix', value: string, why: string): never {
  throw new InvalidInputError(
    `invalid object ${what} ${JSON.stringify(String(value).slice(0, 200))}: ${why}`,
    {
      code: 'invalid_object_key',
    },
  );
}

function checkSegments(what: 'key' | 'prefix', value: string, segments: readonly string[]): void {
  for (const s of segments)
    if (s === '' || s === '.' || s === '..') reject(what, value, 'empty, . or .. segment');
}

function split(what: 'key' | 'prefix', value: string): string[] {
  if (typeof value !== 'string') reject(what, value, 'not a string');
  if (Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES)
    reject(what, value, `longer than ${MAX_KEY_BYTES} bytes`);
  if (value.startsWith('/')) reject(what, value, 'absolute path');
  if (value.includes('\\')) reject(what, value, 'backslash');
  if (CONTROL.test(value)) reject(what, value, 'control character');
  const segments = value.split('/');
  if (segments[0] === RESERVED_TOP_SEGMENT) reject(what, value, `"${RESERVED_TOP_SEGMENT}/" is reserved`);
  return segments;
}

/** Throws InvalidInputError (code `invalid_object_key`) unless `key` is a safe object key. */
export function assertValidKey(key: string): string[] {
  const segments = split('key', key);
  checkSegments('key', key, segments);
  return segments;
}

/**
 * A list prefix may be empty, end with `/`, or stop in the middle of a segment
 * (`products/reta`); its complete segments follow the key rules. The last, partial segment
 * only filters names and is never used as a path.
 */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  const segments = split('prefix', prefix);
  checkSegments('prefix', prefix, segments.slice(0, -1));
}
