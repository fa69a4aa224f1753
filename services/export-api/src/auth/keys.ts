import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { datasetNameSchema, type Filter, filterSchema, QUERY_LIMITS } from '@parquetry/lake';
import { ConfigError, ConflictError, InvalidInputError, NotFoundError } from '@parquetry/service';
import { z } from 'zod';
import { UnauthorizedError } from '../errors.js';

/**
 * API keys (DESIGN.md "Security"). The keys file holds each key's SHA-256 hash, never the key:
 * `{keys:[{name, sha256, datasets, admin, revoked?, row_scopes?, created_at}]}`. A key is
 * `pq_` + 32 random bytes (base64url), so a plain hash is enough (no guessable preimage).
 * Authentication hashes the presented key and compares it with every stored hash in constant
 * time; unknown and revoked keys get the same UnauthorizedError.
 */

export const API_KEY_PREFIX = 'pq_';
const KEY_BYTES = 32;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

export const keyNameSchema = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must match [A-Za-z0-9_.@-]{1,64}');

const datasetsSchema = z
  .array(z.union([z.literal('*'), datasetNameSchema]))
  .min(1)
  .refine((d) => !d.includes('*') || d.length === 1, '"*" (every dataset) stands alone')
  .refine((d) => new Set(d).size === d.length, 'datasets must not repeat');

/** Strict: a misspelt field (say `row_scope`) must stop the service, not silently widen a key. */
export const keyRecordSchema = z
  .object({
    name: keyNameSchema,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
    datasets: datasetsSchema,
    admin: z.boolean().default(false),
    revoked: z.boolean().default(false),
    revoked_at: z.string().optional(),
    /** Per dataset, filters ANDed into every read of that dataset by this key. */
    row_scopes: z
      .record(datasetNameSchema, z.array(filterSchema).min(1).max(QUERY_LIMITS.maxFilters))
      .optional(),
    created_at: z.string(),
  })
  .strict();
export type KeyRecord = z.infer<typeof keyRecordSchema>;
export type KeyRecordInput = z.input<typeof keyRecordSchema>;

export const keysFileSchema = z
  .object({ keys: z.array(keyRecordSchema) })
  .strict()
  .superRefine((file, ctx) => {
    const names = new Set<string>();
    const hashes = new Set<string>();
    file.keys.forEach((k, i) => {
      if (names.has(k.name))
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'name'], message: 'duplicate name' });
      if (hashes.has(k.sha256))
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'sha256'], message: 'duplicate key' });
      names.add(k.name);
      hashes.add(k.sha256);
    });
  });
export type KeysFile = z.infer<typeof keysFileSchema>;

/** The authenticated caller, as routes see it. */
export interface ApiKey {
  readonly name: string;
  readonly admin: boolean;
  /** `'*'`: every dataset. */
  readonly datasets: '*' | ReadonlySet<string>;
  readonly rowScopes: Readonly<Record<string, readonly Filter[]>>;
}

/** What an admin may see of a key: never its hash. */
export interface KeyInfo {
  name: string;
  datasets: string[];
  admin: boolean;
  revoked: boolean;
  row_scoped_datasets: string[];
  created_at: string;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function canReadDataset(key: ApiKey, dataset: string): boolean {
  return key.datasets === '*' || key.datasets.has(dataset);
}

/** A new random key and its stored record. The clear key exists only in the return value. */
export function createKey(opts: {
  name: string;
  datasets: readonly string[];
  admin?: boolean;
  rowScopes?: Record<string, Filter[]>;
  now?: Date;
}): { key: string; record: KeyRecord } {
  const key = API_KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url');
  const parsed = keyRecordSchema.safeParse({
    name: opts.name,
    sha256: hashApiKey(key),
    datasets: [...opts.datasets],
    admin: opts.admin ?? false,
    ...(opts.rowScopes ? { row_scopes: opts.rowScopes } : {}),
    created_at: (opts.now ?? new Date()).toISOString(),
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new InvalidInputError(`invalid key: ${i?.path.join('.')}: ${i?.message}`, {
      details: parsed.error.issues,
    });
  }
  return { key, record: parsed.data };
}

export function parseKeysFile(json: unknown, source = 'keys file'): KeysFile {
  const parsed = keysFileSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues
    .slice(0, 10)
    .map((i) => `  ${i.path.join('.') || '(file)'}: ${i.message}`);
  throw new ConfigError(`invalid ${source}:\n${lines.join('\n')}`, { details: parsed.error.issues });
}

export async function readKeysFile(file: string, opts: { missingIsEmpty?: boolean } = {}): Promise<KeysFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (opts.missingIsEmpty && (err as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [] };
    throw new ConfigError(`cannot read API_KEYS_FILE ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`API_KEYS_FILE ${file} is not valid JSON`, { cause: err });
  }
  return parseKeysFile(json, `API_KEYS_FILE ${file}`);
}

/** Writes the whole file atomically (temp file in the same directory, fsync, rename), mode 0600. */
export async function writeKeysFile(file: string, keys: KeysFile): Promise<void> {
  const valid = parseKeysFile(keys);
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(valid, null, 2)}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export interface CreateKeyInFileOptions {
  file: string;
  name: string;
  datasets: readonly string[];
  admin?: boolean;
  rowScopes?: Record<string, Filter[]>;
  /** When given, every dataset (other than `*`) must be one of these. */
  knownDatasets?: readonly string[];
  now?: Date;
}

/**
 * `pnpm parquetry keys create`: adds a key to the file (created when missing) and returns the
 * clear key, which is shown once and stored nowhere. One writer at a time is assumed (an
 * operator command); the write itself is atomic, so readers never see a half-written file.
 */
export async function createKeyInFile(
  opts: CreateKeyInFileOptions,
): Promise<{ key: string; record: KeyRecord }> {
  const unknown = opts.knownDatasets
    ? opts.datasets.filter((d) => d !== '*' && !opts.knownDatasets!.includes(d))
    : [];
  if (unknown.length > 0) {
    throw new InvalidInputError(
      `unknown dataset(s) ${unknown.join(', ')}; valid: ${opts.knownDatasets!.join(', ')}`,
      {
        code: 'unknown_dataset',
        details: { valid: opts.knownDatasets },
      },
    );
  }
  const created = createKey(opts);
  const current = await readKeysFile(opts.file, { missingIsEmpty: true });
  if (current.keys.some((k) => k.name === created.record.name)) {
    throw new ConflictError(`a key named ${created.record.name} already exists`);
  }
  await writeKeysFile(opts.file, { keys: [...current.keys, created.record] });
  return created;
}

/** Marks a key revoked (kept in the file, so its name is not silently reused). */
export async function revokeKeyInFile(opts: { file: string; name: string; now?: Date }): Promise<KeyRecord> {
  const current = await readKeysFile(opts.file);
  const record = current.keys.find((k) => k.name === opts.name);
  if (!record) throw new NotFoundError(`no key named ${opts.name}`);
  const revoked: KeyRecord = { ...record, revoked: true, revoked_at: (opts.now ?? new Date()).toISOString() };
  await writeKeysFile(opts.file, { keys: current.keys.map((k) => (k === record ? revoked : k)) });
  return revoked;
}

interface Entry {
  hash: Buffer;
  revoked: boolean;
  principal: ApiKey;
  info: KeyInfo;
}

function toEntry(r: KeyRecord): Entry {
  return {
    hash: Buffer.from(r.sha256, 'hex'),
    revoked: r.revoked,
    principal: Object.freeze({
      name: r.name,
      admin: r.admin,
      datasets: r.datasets.includes('*') ? '*' : new Set(r.datasets),
      rowScopes: Object.freeze({ ...(r.row_scopes ?? {}) }),
    }),
    info: {
      name: r.name,
      datasets: [...r.datasets],
      admin: r.admin,
      revoked: r.revoked,
      row_scoped_datasets: Object.keys(r.row_scopes ?? {}),
      created_at: r.created_at,
    },
  };
}

/** The keys in force. `authenticate` is synchronous and never touches the disk. */
export class KeyStore {
  private entries: Entry[];
  private fileStamp: string | undefined;

  private constructor(
    records: readonly KeyRecord[],
    private readonly file?: string,
  ) {
    this.entries = records.map(toEntry);
  }

  static fromRecords(records: readonly KeyRecordInput[]): KeyStore {
    return new KeyStore(parseKeysFile({ keys: records }).keys);
  }

  static async fromFile(file: string): Promise<KeyStore> {
    const stamp = await fileStamp(file);
    const store = new KeyStore((await readKeysFile(file)).keys, file);
    store.fileStamp = stamp;
    return store;
  }

  /**
   * Re-reads the file when it changed (revocations take effect without a restart). An invalid
   * new file throws and leaves the keys in force unchanged. Returns whether keys were replaced.
   */
  async refresh(): Promise<boolean> {
    if (!this.file) return false;
    const stamp = await fileStamp(this.file);
    if (stamp === this.fileStamp) return false;
    const { keys } = await readKeysFile(this.file);
    this.entries = keys.map(toEntry);
    this.fileStamp = stamp;
    return true;
  }

  /** Calls refresh() every `intervalMs`; returns a function that stops it. */
  autoRefresh(intervalMs: number, onError: (err: unknown) => void): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.refresh()
        .catch(onError)
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The caller behind an `Authorization` header, or UnauthorizedError (the same for every failure). */
  authenticate(authorization: string | undefined): ApiKey {
    const m = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
    if (!m) throw new UnauthorizedError();
    const presented = createHash('sha256').update(m[1]!, 'utf8').digest();
    // Compare with every entry, no early exit: the time taken does not depend on which one matched.
    let found: Entry | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(presented, e.hash)) found = e;
    }
    if (!found || found.revoked) throw new UnauthorizedError();
    return found.principal;
  }

  list(): KeyInfo[] {
    return this.entries.map((e) => ({ ...e.info, datasets: [...e.info.datasets] }));
  }
}

async function fileStamp(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (err) {
    throw new ConfigError(`cannot read API_KEYS_FILE ${file}: ${(err as Error).message}`, { cause: err });
  }
}
