import {
  type Bus,
  connectBus,
  ensureStreams,
  publishDeadLetter,
  STREAM_DEFS,
  STREAM_NAMES,
} from '@parquetry/bus';
import { silentLogger } from '@parquetry/service';
import { startNats } from '@parquetry/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from './helpers.js';

let server: Awaited<ReturnType<typeof startNats>>;
let bus: Bus;
let env: Record<string, string>;

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

async function deadLetter(service: string, subject: string, seq: number, data: Uint8Array, reason: string) {
  const ack = await publishDeadLetter(bus.js, {
    service,
    stream: STREAM_NAMES.products,
    consumer: `${service}-products`,
    subject,
    seq,
    deliveryCount: 1,
    data,
    headers: undefined,
    reason,
    code: reason,
    error: new Error(`rejected #${seq}`),
  });
  return ack.seq;
}

beforeAll(async () => {
  server = await startNats();
  bus = await connectBus({ url: server.url, name: 'cli-dlq-test', logger: silentLogger() });
  const wanted: string[] = [STREAM_NAMES.products, STREAM_NAMES.dlq];
  await ensureStreams(
    bus.jsm,
    STREAM_DEFS.filter((d) => wanted.includes(d.name)),
  );
  env = { NATS_URL: server.url, LAKE_URL: 'file:///nonexistent-lake' };
});
afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

it('lists, shows and replays dead letters to their original subject', async () => {
  const a = await deadLetter(
    'ingest-backup',
    'scraper.products.jumbo.arroz',
    11,
    enc({ batch_id: 'b1', products: [] }),
    'invalid_input',
  );
  const b = await deadLetter(
    'ingest-backup',
    'scraper.products.vea.lacteos',
    12,
    enc('not json ñ'),
    'invalid_input',
  );
  const c = await deadLetter(
    'pg-loader',
    'scraper.products.vea.lacteos',
    13,
    new Uint8Array([0xff, 0xfe, 0x00]),
    'too_large',
  );

  const list = await runCli(['dlq', 'list', '--json'], env);
  expect(list.code).toBe(0);
  const entries = list.json<{
    dead_letters: { seq: number; service: string; originalSubject: string; reason: string; error: string }[];
  }>().dead_letters;
  expect(entries.map((e) => [e.seq, e.service, e.originalSubject, e.reason])).toEqual([
    [a, 'ingest-backup', 'scraper.products.jumbo.arroz', 'invalid_input'],
    [b, 'ingest-backup', 'scraper.products.vea.lacteos', 'invalid_input'],
    [c, 'pg-loader', 'scraper.products.vea.lacteos', 'too_large'],
  ]);
  expect(entries[0]!.error).toBe('rejected #11');
  const only = await runCli(['dlq', 'list', '--service', 'pg-loader', '--json'], env);
  expect(only.json<{ dead_letters: { seq: number }[] }>().dead_letters.map((e) => e.seq)).toEqual([c]);

  const shown = await runCli(['dlq', 'show', String(a), '--json'], env);
  expect(shown.json()).toMatchObject({
    seq: a,
    body_encoding: 'json',
    body: { batch_id: 'b1', products: [] },
  });
  expect(shown.json<{ headers: Record<string, string> }>().headers['Parquetry-Original-Seq']).toBe('11');
  expect((await runCli(['dlq', 'show', String(b), '--json'], env)).json()).toMatchObject({
    body_encoding: 'utf8',
    body: 'not json ñ',
  });
  expect((await runCli(['dlq', 'show', String(c), '--json'], env)).json()).toMatchObject({
    body_encoding: 'base64',
    body: '//4A',
  });
  const human = await runCli(['dlq', 'show', String(a)], env);
  expect(human.stdout).toMatch(/originalSubject: scraper\.products\.jumbo\.arroz/);
  expect((await runCli(['dlq', 'show', '99999', '--json'], env)).code).toBe(1);

  const products = () => bus.jsm.streams.info(STREAM_NAMES.products).then((i) => i.state.messages);
  const before = await products();
  const dry = await runCli(
    ['dlq', 'replay', '--all', '--service', 'ingest-backup', '--dry-run', '--json'],
    env,
  );
  expect(dry.json<{ replayed: { seq: number }[] }>().replayed.map((r) => r.seq)).toEqual([a, b]);
  expect(await products()).toBe(before);

  const one = await runCli(['dlq', 'replay', String(a), '--json'], env);
  expect(one.code).toBe(0);
  expect(one.json()).toMatchObject({
    replayed: [{ seq: a, subject: 'scraper.products.jumbo.arroz', stream: 'PRODUCTS' }],
    failed: [],
  });
  expect(await products()).toBe(before + 1);
  const replayedMsg = await bus.jsm.streams.getMessage(STREAM_NAMES.products, {
    last_by_subj: 'scraper.products.jumbo.arroz',
  });
  expect(replayedMsg?.json()).toEqual({ batch_id: 'b1', products: [] });
  const left = await runCli(['dlq', 'list', '--json'], env);
  expect(left.json<{ dead_letters: { seq: number }[] }>().dead_letters.map((e) => e.seq)).toEqual([b, c]);
});

it('replay needs sequences or --all, not both', async () => {
  const none = await runCli(['dlq', 'replay', '--json'], env);
  expect(none.code).toBe(2);
  expect(none.json<{ error: { message: string } }>().error.message).toMatch(/--all/);
  expect((await runCli(['dlq', 'replay', '1', '--all'], env)).code).toBe(2);
  expect((await runCli(['dlq', 'replay', 'x1'], env)).code).toBe(2);
});
