import {
  type DeadLetter,
  type DeadLetterEntry,
  listDeadLetters,
  type ReplayResult,
  replayDeadLetters,
  showDeadLetter,
} from '@parquetry/bus';
import { InvalidInputError } from '@parquetry/service';
import { type Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { emit, printJson, printTable } from '../output.js';
import type { GetContext } from './index.js';
import { nonNegativeInt, positiveInt } from './options.js';
import { openBus } from './resources.js';

export interface DlqListOptions {
  service?: string;
  reason?: string;
  limit?: number;
  fromSeq?: number;
}

export async function dlqList(
  ctx: CliContext,
  opts: DlqListOptions = {},
): Promise<{ dead_letters: DeadLetterEntry[] }> {
  const bus = await openBus(ctx);
  return { dead_letters: await listDeadLetters(bus, opts) };
}

export type ShownDeadLetter = Omit<DeadLetter, 'data'> & {
  /** The original message: parsed JSON, else UTF-8 text, else base64. */
  body: unknown;
  body_encoding: 'json' | 'utf8' | 'base64';
};

function decodeBody(data: Uint8Array): Pick<ShownDeadLetter, 'body' | 'body_encoding'> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return { body: Buffer.from(data).toString('base64'), body_encoding: 'base64' };
  }
  try {
    return { body: JSON.parse(text), body_encoding: 'json' };
  } catch {
    return { body: text, body_encoding: 'utf8' };
  }
}

export async function dlqShow(ctx: CliContext, seq: number): Promise<ShownDeadLetter> {
  const bus = await openBus(ctx);
  const { data, ...entry } = await showDeadLetter(bus, seq);
  return { ...entry, ...decodeBody(data) };
}

export interface DlqReplayOptions {
  seqs?: number[];
  all?: boolean;
  service?: string;
  reason?: string;
  limit?: number;
  dryRun?: boolean;
}

export async function dlqReplay(ctx: CliContext, opts: DlqReplayOptions): Promise<ReplayResult> {
  const seqs = opts.seqs ?? [];
  if (seqs.length > 0 && opts.all) throw new InvalidInputError('give sequences or --all, not both');
  if (seqs.length === 0 && !opts.all) throw new InvalidInputError('dlq replay needs <seq>… or --all');
  const bus = await openBus(ctx);
  return await replayDeadLetters(bus, {
    ...(seqs.length > 0 ? { seq: seqs } : { all: true }),
    service: opts.service,
    reason: opts.reason,
    limit: opts.limit,
    dryRun: opts.dryRun,
  });
}

function printList(r: { dead_letters: DeadLetterEntry[] }): void {
  printTable(
    r.dead_letters.map((e) => ({
      seq: e.seq,
      time: e.time.toISOString(),
      service: e.service,
      subject: e.originalSubject,
      reason: e.reason,
      code: e.code,
      error: e.error ?? '',
    })),
  );
}

function printShown(d: ShownDeadLetter): void {
  const { body, body_encoding, headers, ...entry } = d;
  for (const [k, v] of Object.entries(entry)) {
    process.stdout.write(`${k}: ${v instanceof Date ? v.toISOString() : (v ?? '')}\n`);
  }
  process.stdout.write('headers:\n');
  for (const [k, v] of Object.entries(headers)) process.stdout.write(`  ${k}: ${v}\n`);
  process.stdout.write(`body (${body_encoding}):\n`);
  if (body_encoding === 'json') printJson(body);
  else process.stdout.write(`${String(body)}\n`);
}

function printReplay(r: ReplayResult): void {
  const verb = r.dryRun ? 'would replay' : 'replayed';
  for (const x of r.replayed) {
    process.stdout.write(
      `${verb} #${x.seq} → ${x.subject}${r.dryRun ? '' : ` (${x.stream} #${x.streamSeq})`}\n`,
    );
  }
  for (const f of r.failed) process.stdout.write(`failed #${f.seq}: ${f.error}\n`);
  process.stdout.write(`${r.replayed.length} ${verb}, ${r.failed.length} failed\n`);
}

/** `parquetry dlq list | show <seq> | replay [<seq>…|--all]` over the bus package's DLQ tools. */
export function registerDlqCommands(program: Command, ctx: GetContext): void {
  const dlq = program
    .command('dlq')
    .description('Dead letters: list, show, replay to their original subject');
  const json = () => new Option('--json', 'print JSON');

  dlq
    .command('list')
    .description('Dead letters, oldest first')
    .option('--service <service>', 'only those dead-lettered by this service')
    .option('--reason <reason>', 'only this reason')
    .option('--limit <n>', 'at most this many', nonNegativeInt, 100)
    .option('--from-seq <seq>', 'start at this DLQ sequence', positiveInt)
    .addOption(json())
    .action(async (o: DlqListOptions & { json?: boolean }) => {
      const { json: asJson, ...opts } = o;
      emit(!!asJson, await dlqList(ctx(), opts), printList);
    });

  dlq
    .command('show')
    .description('One dead letter with its headers and original body')
    .argument('<seq>', 'DLQ sequence', positiveInt)
    .addOption(json())
    .action(async (seq: number, o: { json?: boolean }) => {
      emit(!!o.json, await dlqShow(ctx(), seq), printShown);
    });

  dlq
    .command('replay')
    .description('Publish dead letters again to their original subject, then remove them from the DLQ')
    .argument('[seq...]', 'DLQ sequences')
    .option('--all', 'every dead letter matching --service/--reason')
    .option('--service <service>', 'only those dead-lettered by this service')
    .option('--reason <reason>', 'only this reason')
    .option('--limit <n>', 'at most this many', positiveInt)
    .option('--dry-run', 'show what would be replayed')
    .addOption(json())
    .action(async (seqArgs: string[], o: Omit<DlqReplayOptions, 'seqs'> & { json?: boolean }) => {
      const seqs = seqArgs.map((s) => {
        if (!/^\d+$/.test(s) || Number(s) < 1) throw new InvalidInputError(`not a DLQ sequence: ${s}`);
        return Number(s);
      });
      const { json: asJson, ...opts } = o;
      emit(!!asJson, await dlqReplay(ctx(), { ...opts, seqs }), printReplay);
    });
}
