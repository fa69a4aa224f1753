import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { InvalidInputError } from '@parquetry/service';

export interface DuckDBOptions {
  /** Database file; default in-memory. */
  path?: string;
  /** Worker threads (default: DuckDB's choice, one per core). */
  threads?: number;
  /** e.g. `'1GB'`; beyond it DuckDB spills to `tempDirectory`. */
  memoryLimit?: string;
  /** Where DuckDB spills larger-than-memory work. */
  tempDirectory?: string;
}

export interface DuckDB {
  readonly instance: DuckDBInstance;
  /** A connection opened with the instance, for callers that need just one. */
  readonly conn: DuckDBConnection;
  /** Another connection on the same instance (one per concurrent query or writer). */
  connect(): Promise<DuckDBConnection>;
  close(): void;
}

/**
 * A DuckDB instance with Parquetry's settings. Sessions run in UTC so timestamps cast from text
 * and dates derived from TIMESTAMPTZ never depend on the host's time zone, and extensions are
 * never downloaded (everything Parquetry uses is built in; the machines may be offline).
 */
export async function openDuckDB(opts: DuckDBOptions = {}): Promise<DuckDB> {
  const config: Record<string, string> = {
    autoinstall_known_extensions: 'false',
  };
  if (opts.threads !== undefined) config.threads = String(opts.threads);
  if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
  if (opts.tempDirectory !== undefined) config.temp_directory = opts.tempDirectory;
  const instance = await DuckDBInstance.create(opts.path ?? ':memory:', config);
  const connections: DuckDBConnection[] = [];
  const connect = async () => {
    const c = await instance.connect();
    // TimeZone needs the (built-in) ICU extension, loaded only after start: set per session.
    await c.run(`SET TimeZone = 'UTC'`);
    connections.push(c);
    return c;
  };
  const conn = await connect();
  return {
    instance,
    conn,
    connect,
    close() {
      for (const c of connections.splice(0)) c.closeSync();
      instance.closeSync();
    },
  };
}

/** A SQL string literal (file paths, values that cannot be bound as parameters). */
export function sqlString(value: string): string {
  if (value.includes('\u0000')) throw new InvalidInputError('SQL string contains a NUL character');
  return `'${value.replaceAll("'", "''")}'`;
}

/** A quoted SQL identifier; DuckDB compares identifiers case-insensitively even when quoted. */
export function sqlIdent(name: string): string {
  if (name === '') throw new InvalidInputError('empty SQL identifier');
  if (name.includes('\u0000')) throw new InvalidInputError('SQL identifier contains a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}
