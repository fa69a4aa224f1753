import { type ProductBatch, productBatch, type Tick, tickMessage } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import type { z } from 'zod';

/** A short, readable summary of zod issues for the dead letter's reason header. */
function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`)
    .join('; ');
}

/**
 * Validate a product batch. Dead-letter reasons are low-cardinality codes: `invalid_name`
 * (retailer/category outside [a-z0-9_-], e.g. `..`, `/`, uppercase, dots), `empty_products`,
 * `subject_mismatch` (payload names differ from the subject's), `schema_violation`.
 */
export function decodeProductBatch(subject: string, body: unknown): ProductBatch {
  const parsed = productBatch.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const field = first?.path[0];
    const code =
      (field === 'retailer' || field === 'category') && first?.code === 'invalid_format'
        ? 'invalid_name'
        : field === 'products' && first?.code === 'too_small'
          ? 'empty_products'
          : 'schema_violation';
    throw new InvalidInputError(`invalid product batch: ${describe(parsed.error)}`, { code });
  }
  const batch = parsed.data;
  const [, , retailer, category] = subject.split('.');
  if (retailer !== batch.retailer || category !== batch.category) {
    throw new InvalidInputError(
      `subject ${subject} does not match retailer ${batch.retailer} / category ${batch.category}`,
      { code: 'subject_mismatch' },
    );
  }
  return batch;
}

/** Validate a tick message (one tick, or `{symbol, ticks:[…]}`) into ticks of the subject's symbol. */
export function decodeTicks(subject: string, body: unknown): Tick[] {
  const parsed = tickMessage.safeParse(body);
  if (!parsed.success) {
    const text = describe(parsed.error);
    const code = /symbol/.test(text)
      ? 'invalid_symbol'
      : /timestamp/.test(text)
        ? 'invalid_timestamp'
        : 'schema_violation';
    throw new InvalidInputError(`invalid tick message: ${text}`, { code });
  }
  const symbol = subject.split('.')[2];
  for (const t of parsed.data) {
    if (t.symbol !== symbol) {
      throw new InvalidInputError(`subject ${subject} does not match tick symbol ${t.symbol}`, {
        code: 'subject_mismatch',
      });
    }
  }
  return parsed.data;
}
