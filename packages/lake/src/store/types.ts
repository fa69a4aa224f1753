import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Key relative to the store root, `/`-separated, never starting with `/`. */
  key: string;
  size: number;
  lastModified: Date;
}

/**
 * The lake's object store. Keys are relative to LAKE_URL. Both backends (filesystem and S3)
 * pass one conformance suite (store/conformance.ts).
 */
export interface PutFileOptions {
  /**
   * The caller no longer needs the local file: the filesystem backend may `rename` it into place
   * (same filesystem) instead of copying, and S3 deletes it after a successful upload.
   */
  move?: boolean;
}

export interface ObjectStore {
  /** The LAKE_URL this store was opened from. */
  readonly url: string;
  readonly kind: 'fs' | 's3';
  /** Atomic: readers see the whole object or nothing (temp + rename on disk, single PUT/multipart on S3). */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /** Atomic upload of a local file, streamed (never read whole into memory). */
  putFile(key: string, localPath: string, opts?: PutFileOptions): Promise<void>;
  /** Streamed read; throws NotFoundError when absent. */
  get(key: string): Promise<Readable>;
  getBytes(key: string): Promise<Buffer>;
  /** Size and mtime, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * A path DuckDB can read directly. The filesystem backend answers with the file itself;
   * S3 downloads to a local cache first (DuckDB's httpfs is not available everywhere).
   */
  localPath(key: string): Promise<string>;
  /** S3 presigned GET URL; undefined on backends without one (the API signs its own links). */
  presignGet?(key: string, expiresInSeconds: number): Promise<string>;
  close(): Promise<void>;
}
