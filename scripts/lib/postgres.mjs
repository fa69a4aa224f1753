// Does PostgreSQL answer at DATABASE_URL? With the `pg` driver of pg-loader (a runtime
// dependency there), creating the database when the server answers but the database is missing.
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** `{ok: true, created}` or `{ok: false, reason}`; never throws. */
export async function probePostgres(root, url, timeoutMs = 3000) {
  let pg;
  try {
    pg = createRequire(join(root, 'services', 'pg-loader', 'package.json'))('pg');
  } catch (err) {
    return { ok: false, reason: `the pg driver is not installed (${err.message})` };
  }
  const tryConnect = async (connectionString) => {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs });
    client.on('error', () => {});
    try {
      await client.connect();
      return { client };
    } catch (err) {
      await client.end().catch(() => {});
      return { err };
    }
  };
  const first = await tryConnect(url);
  if (first.client) {
    await first.client.end().catch(() => {});
    return { ok: true, created: false };
  }
  if (first.err?.code !== '3D000') return { ok: false, reason: first.err?.message ?? String(first.err) };
  // The server answers; the database does not exist yet: create it from the maintenance database.
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.slice(1));
  u.pathname = '/postgres';
  const admin = await tryConnect(u.toString());
  if (!admin.client) return { ok: false, reason: admin.err?.message ?? String(admin.err) };
  try {
    await admin.client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
    return { ok: true, created: true };
  } catch (err) {
    // Created meanwhile by someone else is fine.
    if (err.code === '42P04') return { ok: true, created: false };
    return { ok: false, reason: `cannot create database ${database}: ${err.message}` };
  } finally {
    await admin.client.end().catch(() => {});
  }
}
