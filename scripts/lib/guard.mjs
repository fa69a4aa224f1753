// `node --import parent-watch.mjs guard.mjs <command> [args…]`: runs a non-Node program (the local
// nats-server) under the parent watch, so it too stops when start.mjs dies. Forwards SIGINT and
// SIGTERM once, and exits with the program's status.
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let forwarded = false;
const forward = (signal) => {
  if (forwarded) return;
  forwarded = true;
  child.kill(signal);
};
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.once('error', (err) => {
  process.stderr.write(`${command}: ${err.message}\n`);
  process.exit(127);
});
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
