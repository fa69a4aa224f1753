import { natsAvailable } from './nats.js';
import { postgresAvailable } from './postgres.js';

/**
 * Whether an integration test may run. Under CI=true a missing server is a failure, never a
 * silent skip; on a developer machine the test is skipped with the reason.
 */
export async function requireServers(need: {
  nats?: boolean;
  postgres?: boolean;
}): Promise<string | undefined> {
  const missing: string[] = [];
  if (need.nats && !natsAvailable()) missing.push('nats-server (PATH or NATS_SERVER_BIN)');
  if (need.postgres && !(await postgresAvailable()))
    missing.push('PostgreSQL (DATABASE_URL or 127.0.0.1:5432)');
  if (missing.length === 0) return undefined;
  const reason = `missing test servers: ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: refusing to skip)`);
  return reason;
}
