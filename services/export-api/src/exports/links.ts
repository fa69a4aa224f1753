import type { ObjectStore } from '@parquetry/lake';
import { signDownloadToken } from '../signing.js';

/**
 * Signed download URLs for export files: S3 presigned URLs when the store can make them,
 * otherwise `<PUBLIC_BASE_URL>/v1/downloads/<token>` served by this API.
 */
export interface DownloadLinks {
  sign(objectKey: string, exportId: string, ttlS: number): Promise<{ url: string; expiresAtMs: number }>;
}

export function createDownloadLinks(opts: {
  store: Pick<ObjectStore, 'presignGet'>;
  secret: string | Buffer;
  publicBaseUrl: string;
  clock: () => number;
}): DownloadLinks {
  const base = opts.publicBaseUrl.replace(/\/+$/, '');
  return {
    async sign(objectKey, exportId, ttlS) {
      const now = opts.clock();
      const expiresAtMs = now + ttlS * 1000;
      if (opts.store.presignGet) return { url: await opts.store.presignGet(objectKey, ttlS), expiresAtMs };
      const token = signDownloadToken(
        { v: 1, key: objectKey, export_id: exportId, exp: Math.floor(expiresAtMs / 1000) },
        opts.secret,
      );
      return { url: `${base}/v1/downloads/${token}`, expiresAtMs };
    },
  };
}
