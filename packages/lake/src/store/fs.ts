import { randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync } from 'node:fs';
import {
  copyFile,
  type FileHandle,
  mkdir,
  open,
  opendir,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { NotFoundError, TransientError } from '@parquetry/service';
import { assertValidKey, assertValidPrefix, RESERVED_TOP_SEGMENT } from './keys.js';
import type { ObjectInfo, ObjectStore, PutFileOptions } from './types.js';

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Disk full, too many open files, I/O errors, permissions: none is the object's fault, so retry later. */
function transient(op: string, key: string, err: unknown): TransientError {
  return new TransientError(`filesystem ${op} ${key} failed: ${errnoCode(err) ?? String(err)}`, {
    cause: err,
    code: 'store_unavailable',
  });
}

async function fsyncPath(path: string, flags: 'r' | 'r+' = 'r'): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, flags);
    await fh.sync();
  } finally {
    await fh?.close();
  }
}

/**
 * The lake on a local (or mounted) filesystem. Writes go to `<root>/_tmp/` first, are fsynced and
 * then renamed into place, so a reader sees the whole file or nothing and a crash leaves at most
 * an orphan under `_tmp/` (never listed; safe to delete when older than any write).
 */
export class FsObjectStore implements ObjectStore {
  readonly kind = 'fs' as const;
  readonly url: string;
  /** Real (symlink-resolved) absolute root directory. */
  readonly root: string;
  private readonly tmpDir: string;

  constructor(root: string, url?: string) {
    mkdirSync(root, { recursive: true });
    this.root = realpathSync(root);
    this.tmpDir = join(this.root, RESERVED_TOP_SEGMENT);
    this.url = url ?? pathToFileURL(this.root).href;
  }

  /** Absolute path of a validated key; validation guarantees it stays under the root. */
  private pathOf(key: string): string {
    return join(this.root, ...assertValidKey(key));
  }

  private tempPath(): string {
    return join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    const tmp = this.tempPath();
    try {
      await this.ensureTmpDir();
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw transient('put', key, err);
    }
  }

  async putFile(key: string, localPath: string, opts: PutFileOptions = {}): Promise<void> {
    const target = this.pathOf(key);
    try {
      await stat(localPath);
    } catch (err) {
      if (isMissing(err))
        throw new NotFoundError(`local file to upload not found: ${localPath}`, { cause: err });
      throw transient('putFile', key, err);
    }
    if (opts.move) {
      try {
        await fsyncPath(localPath, 'r+');
        await this.publish(localPath, target);
        return;
      } catch (err) {
        // Another filesystem: fall back to copy + rename, then drop the source as promised.
        if (errnoCode(err) !== 'EXDEV') throw transient('putFile', key, err);
      }
    }
    const tmp = this.tempPath();
    try {
      await this.ensureTmpDir();
      // copyFile streams in the kernel (copy_file_range / sendfile): never whole in memory.
      await copyFile(localPath, tmp);
      await fsyncPath(tmp, 'r+');
      await this.publish(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw transient('putFile', key, err);
    }
    if (opts.move) await unlink(localPath).catch(() => {});
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      // Open first so a missing key fails here, not later on the stream.
      fh = await open(path, 'r');
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new NotFoundError(`object not found: ${key}`);
      throw transient('get', key, err);
    }
    const isFile = await fh.stat().then(
      (st) => st.isFile(),
      () => false,
    );
    if (!isFile) {
      await fh.close();
      throw new NotFoundError(`object not found: ${key}`); // a directory opens fine on Linux
    }
    return fh.createReadStream({ autoClose: true });
  }

  async getBytes(key: string): Promise<Buffer> {
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new NotFoundError(`object not found: ${key}`);
      throw transient('get', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw transient('head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    // Walk only the deepest directory the prefix fully names; the partial tail just filters.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(dirKey, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    const dirPath = dirKey === '' ? this.root : join(this.root, ...dirKey.split('/'));
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(dirPath);
    } catch (err) {
      if (isMissing(err)) return; // deleted concurrently, or never existed
      throw transient('list', prefix, err);
    }
    for await (const entry of dir) {
      if (dirKey === '' && entry.name === RESERVED_TOP_SEGMENT) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where the prefix can still match.
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          const st = await stat(join(dirPath, entry.name));
          yield { key, size: st.size, lastModified: st.mtime };
        } catch (err) {
          if (!isMissing(err)) throw transient('list', prefix, err);
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR' || errnoCode(err) === 'EPERM') {
        const st = await stat(path).catch(() => undefined);
        if (st === undefined || st.isDirectory()) return; // absent, or a "directory", which is no object
      }
      throw transient('delete', key, err);
    }
    await this.pruneEmptyParents(dirname(path));
  }

  async localPath(key: string): Promise<string> {
    const path = this.pathOf(key);
    const info = await this.head(key);
    if (!info) throw new NotFoundError(`object not found: ${key}`);
    return path;
  }

  async close(): Promise<void> {}

  private async ensureTmpDir(): Promise<void> {
    await mkdirp(this.tmpDir);
  }

  /**
   * Rename into place after fsyncing; a concurrent delete may prune the freshly made parent
   * directory between mkdir and rename, so retry that window a few times.
   */
  private async publish(from: string, target: string): Promise<void> {
    const parent = dirname(target);
    for (let attempt = 0; ; attempt++) {
      await mkdirp(parent);
      try {
        await rename(from, target);
        break;
      } catch (err) {
        if (!isMissing(err) || attempt >= 4) throw err;
      }
    }
    // Make the rename itself durable.
    await fsyncPath(parent).catch(() => {});
  }

  /** Empty directories are no objects: remove them up to the root so partitions vanish like on S3. */
  private async pruneEmptyParents(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep) && dir !== this.tmpDir) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone, or raced with a put): stop here
      }
      dir = dirname(dir);
    }
  }
}

async function mkdirp(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
