import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBInstance } from '@duckdb/node-api';

/** An in-memory DuckDB for one test file: the independent oracle the candle tests compare against. */
export interface Duck {
  conn: DuckDBConnection;
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  close(): void;
}

export async function openDuck(): Promise<Duck> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await instance.connect();
  return {
    conn,
    async rows<T>(sql: string) {
      const reader = await conn.runAndReadAll(sql);
      return reader.getRowObjectsJS() as T[];
    },
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}
