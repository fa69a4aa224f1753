import type { CommitStep } from '@parquetry/lake';

/**
 * Instrumented crash points for kill -9 tests (COMPACTOR_CRASH_AT). Every operation passes
 * through them in this order; the `commit_*` points are the catalog's multi-partition protocol
 * (docs/adr/0002): `commit_reserve` and `commit_apply` fire before the SECOND partition's step,
 * so the crash lands with one partition reserved, or one applied and the next not.
 */
export const CRASH_POINTS = [
  'planned',
  'backed_up',
  'written',
  'validated',
  'commit_intent',
  'commit_reserve',
  'commit_apply',
  'commit_done',
  'committed',
  'published',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export type CrashHook = (point: CrashPoint) => void;

export const noCrash: CrashHook = () => {};

/** A hook that SIGKILLs this process at `at`: no finally blocks, no flushing, like a real kill -9. */
export function crashAt(at: CrashPoint | undefined): CrashHook {
  if (at === undefined) return noCrash;
  return (point) => {
    if (point !== at) return;
    process.stderr.write(`compactor: crash point ${point} reached, kill -9\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}

/** The catalog's `onStep` hook mapped onto crash points. */
export function catalogStepHook(hook: CrashHook): (step: CommitStep) => void {
  const seen = new Map<string, number>();
  return (step) => {
    const key = `${step.commitId}\u0000${step.phase}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (step.phase === 'intent') hook('commit_intent');
    else if (step.phase === 'done') hook('commit_done');
    else if (n === 2) hook(step.phase === 'reserve' ? 'commit_reserve' : 'commit_apply');
  };
}
