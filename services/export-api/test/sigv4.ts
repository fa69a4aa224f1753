import { createHash, createHmac } from 'node:crypto';

/**
 * TEST HELPER: recomputes the AWS Signature V4 of a presigned GET URL from scratch (node:crypto,
 * not the AWS SDK), so a test can show the URL is signed for exactly its object and expiry.
 * s3rver checks expiry but not V4 signatures, so this is how the S3 tests see a tampered URL fail.
 */
const enc = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

export function expectedPresignSignature(url: URL, secretAccessKey: string): string {
  const q = [...url.searchParams.entries()].filter(([k]) => k !== 'X-Amz-Signature');
  const canonicalQuery = q
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalPath = url.pathname
    .split('/')
    .map((s) => enc(decodeURIComponent(s)))
    .join('/');
  const signedHeaders = url.searchParams.get('X-Amz-SignedHeaders') ?? 'host';
  if (signedHeaders !== 'host') throw new Error(`unexpected signed headers ${signedHeaders}`);
  const canonicalRequest = [
    'GET',
    canonicalPath,
    canonicalQuery,
    `host:${url.host}`,
    '',
    'host',
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const amzDate = url.searchParams.get('X-Amz-Date')!;
  const [, date, region, service] = url.searchParams.get('X-Amz-Credential')!.split('/') as [
    string,
    string,
    string,
    string,
  ];
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${secretAccessKey}`, date);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, 'aws4_request');
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}
