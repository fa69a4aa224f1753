import { unlink } from 'node:fs/promises';
import type { FileEntry, ObjectStore } from '@parquetry/lake';

/**
 * Local paths DuckDB can read for catalog files. On the filesystem lake that is the file itself;
 * on S3 the store downloads to its cache, and `release()` drops those copies once the op is
 * done (the files were just replaced, no one needs them cached).
 */
export class LocalFiles {
  private readonly paths = new Map<string, string>();
  private readonly keys = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly concurrency = 8,
  ) {}

  async resolve(files: readonly Pick<FileEntry, 'path'>[]): Promise<string[]> {
    const todo = files.map((f) => f.path).filter((p) => !this.paths.has(p));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const key = todo[next++]!;
        const local = await this.store.localPath(key);
        this.paths.set(key, local);
        this.keys.set(local, key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, worker));
    return files.map((f) => this.paths.get(f.path)!);
  }

  /** The catalog path of a local path handed out earlier. */
  keyOf(local: string): string | undefined {
    return this.keys.get(local);
  }

  async release(): Promise<void> {
    if (this.store.kind !== 's3') return;
    await Promise.all([...this.paths.values()].map((p) => unlink(p).catch(() => {})));
    this.paths.clear();
    this.keys.clear();
  }
}
