import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NdjsonSpill, sweepSpills } from './ndjson-spill.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('NdjsonSpill', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pq-spill-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes documents as NDJSON pieces in order and reads each one back', async () => {
    const spill = await NdjsonSpill.create(root, 40);
    const docs = ['{"a":1}', '{"b":"x\\ny"}', '{"c":\r\n3}', `{"d":"${'z'.repeat(50)}"}`, '{"e":5}'];
    const at = docs.map((d) => spill.append(enc(d)));
    expect(dec(await spill.read(at[1]!))).toBe(docs[1]);
    const files = await spill.close();
    expect(files.length).toBeGreaterThan(1);
    const lines = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('').split('\n');
    // Raw CR/LF between tokens become spaces: one document per line, same JSON.
    expect(lines.slice(0, -1).map((l) => JSON.parse(l))).toEqual(docs.map((d) => JSON.parse(d)));
    for (const [i, d] of docs.entries())
      expect(JSON.parse(dec(await spill.read(at[i]!)))).toEqual(JSON.parse(d));
    expect(spill.largestDocument).toBe(docs[3]!.length);
    await spill.remove();
    for (const f of files) await expect(readFile(f)).rejects.toThrow();
  });

  it('refuses appends once closed', async () => {
    const spill = await NdjsonSpill.create(root, 1024);
    spill.append(enc('{}'));
    await spill.close();
    expect(() => spill.append(enc('{}'))).toThrow(/closed/);
    await spill.remove();
  });

  it('sweeps the spill directories of processes that are gone, not of live ones', async () => {
    const dead = 2 ** 22 + 12345; // above Linux's pid_max default
    await mkdir(join(root, `parquetry-spill-${dead}`));
    await mkdir(join(root, `parquetry-spill-${process.ppid}`));
    const own = await NdjsonSpill.create(root, 1024);
    own.append(enc('{}'));
    await own.close();
    expect(await sweepSpills(root)).toBe(1);
    expect((await readdir(root)).sort()).toEqual(
      [`parquetry-spill-${process.pid}`, `parquetry-spill-${process.ppid}`].sort(),
    );
    await own.remove();
  });
});
