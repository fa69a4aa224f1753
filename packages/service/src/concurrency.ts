/**
 * `fn` over `items`, one worker per entry of `workers` (a DuckDB connection, or just a slot
 * number), results in item order. After a failure no worker takes another item, and the first
 * failure is thrown only once every running call has finished: the caller never returns while
 * work it started is still writing.
 */
export async function mapWorkers<T, R, W>(
  items: readonly T[],
  workers: readonly W[],
  fn: (item: T, index: number, worker: W) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const run = async (worker: W) => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i, worker);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(workers.slice(0, Math.max(1, items.length)).map(run));
  if (failed) throw failed.err;
  return out;
}

/** `fn` over `items`, at most `limit` calls at once; results in item order (see mapWorkers). */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const slots = Array.from({ length: Math.max(1, Math.floor(limit)) }, (_, i) => i);
  return mapWorkers(items, slots, (item, index) => fn(item, index));
}
