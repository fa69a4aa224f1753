import { Metrics, silentLogger } from '@parquetry/service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumerLoop, runConsumer } from '../src/consumer-loop.js';
import { listDeadLetters, registerDeadLetterGauge, replayDeadLetters, showDeadLetter } from '../src/dlq.js';
import { Outcomes } from '../src/outcome.js';
import { publishJson } from '../src/publish.js';
import { type NatsFixture, natsFixture, sleep, testStream, waitFor } from './helpers.js';

let f: NatsFixture;
const loops: ConsumerLoop[] = [];
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  await f?.close();
});

interface Body {
  id: number;
  kind: 'good' | 'bad' | 'huge';
}

describe('DLQ tools', () => {
  it('parquetry_dlq_messages reads the DLQ stream on every scrape', async () => {
    const metrics = new Metrics('probe', { defaults: false });
    registerDeadLetterGauge(metrics, f.bus.jsm);
    const reading = async () =>
      Number((await metrics.text()).match(/^parquetry_dlq_messages\{[^}]*\} (\d+)$/m)?.[1]);
    const before = (await f.bus.jsm.streams.info('DLQ')).state.messages;
    expect(await reading()).toBe(before);
    await f.bus.js.publish('dlq.probe.t.x', 'one');
    await f.bus.js.publish('dlq.probe.t.y', 'two');
    expect(await reading()).toBe(before + 2);
    // A scrape that cannot read the stream keeps the last reading instead of failing.
    const unreadable = new Metrics('probe', { defaults: false });
    registerDeadLetterGauge(unreadable, f.bus.jsm, 'NO_SUCH_STREAM');
    expect(await unreadable.text()).toMatch(/^parquetry_dlq_messages\{[^}]*\} 0$/m);
  });

  it('list, show and replay: a replayed message reaches the original consumer again', async () => {
    const s = await testStream(f.bus);
    let acceptBad = false;
    const accepted: number[] = [];
    const loop = await runConsumer({
      js: f.bus.js,
      nc: f.bus.nc,
      stream: s.name,
      durable: s.durable,
      dlqService: 'replayer',
      logger: silentLogger(),
      maxWaitMs: 1000,
      handler: (batch) =>
        batch.map((m) => {
          const body = m.json<Body>();
          if (body.kind === 'bad' && !acceptBad) return Outcomes.dead('invalid_input');
          if (body.kind === 'huge') return Outcomes.dead('too_large');
          accepted.push(body.id);
          return Outcomes.ack();
        }),
    });
    loops.push(loop);
    // The same msg id as the first publish: a replay must not be dropped as a duplicate.
    await publishJson(
      f.bus.js,
      s.subject('a'),
      { id: 1, kind: 'bad' },
      { msgId: 'one', headers: { 'Trace-Id': 'tr-1' } },
    );
    await publishJson(f.bus.js, s.subject('b'), { id: 2, kind: 'huge' }, { msgId: 'two' });
    await publishJson(f.bus.js, s.subject('b'), { id: 3, kind: 'bad' }, { msgId: 'three' });
    await publishJson(f.bus.js, s.subject('a'), { id: 4, kind: 'good' }, { msgId: 'four' });
    await waitFor(
      'three dead letters and one good',
      () => loop.stats().deadLettered === 3 && accepted.length === 1,
    );
    expect(accepted).toEqual([4]);

    const all = await listDeadLetters(f.bus, { service: 'replayer' });
    expect(all.map((e) => [e.originalSubject, e.reason])).toEqual([
      [s.subject('a'), 'invalid_input'],
      [s.subject('b'), 'too_large'],
      [s.subject('b'), 'invalid_input'],
    ]);
    expect(await listDeadLetters(f.bus, { service: 'replayer', reason: 'too_large' })).toHaveLength(1);
    expect(await listDeadLetters(f.bus, { service: 'replayer', limit: 2 })).toHaveLength(2);
    expect(await listDeadLetters(f.bus, { service: 'nobody' })).toEqual([]);
    expect(all[0]).toMatchObject({
      service: 'replayer',
      originalStream: s.name,
      originalSeq: 1,
      code: 'invalid_input',
    });
    expect(all[0]!.time).toBeInstanceOf(Date);
    expect(all[0]!.size).toBe(JSON.stringify({ id: 1, kind: 'bad' }).length);

    const shown = await showDeadLetter(f.bus, all[0]!.seq);
    expect(JSON.parse(new TextDecoder().decode(shown.data))).toEqual({ id: 1, kind: 'bad' });
    expect(shown.headers['Trace-Id']).toBe('tr-1');
    await expect(showDeadLetter(f.bus, 9999)).rejects.toMatchObject({ code: 'not_found' });

    // A dry run changes nothing; replay needs a selection.
    const dry = await replayDeadLetters(f.bus, {
      all: true,
      service: 'replayer',
      reason: 'invalid_input',
      dryRun: true,
    });
    expect(dry.replayed.map((r) => r.seq)).toEqual([all[0]!.seq, all[2]!.seq]);
    expect(await listDeadLetters(f.bus, { service: 'replayer' })).toHaveLength(3);
    await expect(replayDeadLetters(f.bus, { service: 'replayer' })).rejects.toMatchObject({
      code: 'replay_selection',
    });

    // The handler is fixed: replaying the invalid_input ones delivers them again.
    acceptBad = true;
    const replay = await replayDeadLetters(f.bus, {
      all: true,
      service: 'replayer',
      reason: 'invalid_input',
    });
    expect(replay.failed).toEqual([]);
    expect(replay.replayed.map((r) => [r.seq, r.subject, r.stream])).toEqual([
      [all[0]!.seq, s.subject('a'), s.name],
      [all[2]!.seq, s.subject('b'), s.name],
    ]);
    await waitFor('replayed messages processed', () => accepted.length === 3);
    expect(accepted.sort()).toEqual([1, 3, 4]);
    const replayedMsg = await f.bus.jsm.streams.getMessage(s.name, { seq: replay.replayed[0]!.streamSeq });
    expect(replayedMsg?.header.get('Trace-Id')).toBe('tr-1');
    expect(replayedMsg?.header.has('Parquetry-Reason')).toBe(false);

    // Replayed dead letters are gone from the DLQ; the other one stays, and replays by sequence.
    const left = await listDeadLetters(f.bus, { service: 'replayer' });
    expect(left.map((e) => e.reason)).toEqual(['too_large']);
    const bySeq = await replayDeadLetters(f.bus, { seq: left[0]!.seq });
    expect(bySeq.replayed).toHaveLength(1);
    await waitFor('dead-lettered again', () => loop.stats().deadLettered === 4);
    await sleep(50);
    expect(await listDeadLetters(f.bus, { service: 'replayer' })).toHaveLength(1);
  });
});
