// Preloaded into every child of scripts/start.mjs (`node --import`): the children run in their
// own process group (so one Ctrl-C reaches them once, through start.mjs), which also means they
// would outlive a start.mjs killed with SIGKILL. start.mjs holds the write end of each child's
// stdin and never writes: the pipe closing is the sign the parent is gone, and the child drains
// (SIGTERM to itself). (process.ppid is fixed at start on Node 20, so it cannot tell.)
let fired = false;
const fire = () => {
  if (fired) return;
  fired = true;
  process.kill(process.pid, 'SIGTERM');
};
if (!process.stdin.isTTY) {
  process.stdin.on('end', fire);
  process.stdin.on('close', fire);
  process.stdin.on('error', fire);
  process.stdin.on('data', () => {});
  // Watching must not keep a service alive that would otherwise exit.
  process.stdin.unref?.();
}
