import { describe, expect, it } from 'vitest';
import { jsonRecordsSelect, ndjsonPieces } from './json-lake-files.js';

const doc = (bytes: number) => new Uint8Array(bytes);

describe('ndjsonPieces', () => {
  it('cuts documents into runs of about the given size, in order, each document once', () => {
    const docs = [doc(3), doc(3), doc(3), doc(10), doc(1), doc(1)];
    const pieces = ndjsonPieces(docs, 8);
    expect(pieces.map((p) => p.map((d) => d.byteLength))).toEqual([[3, 3], [3], [10], [1, 1]]);
    expect(pieces.flat()).toEqual(docs);
  });

  it('gives no piece for no documents', () => {
    expect(ndjsonPieces([], 8)).toEqual([]);
  });
});

describe('jsonRecordsSelect', () => {
  it('reads every piece in one read_json call', () => {
    const sql = jsonRecordsSelect(
      ['/t/a.ndjson', "/t/b'.ndjson"],
      'products',
      [{ name: 'sku', type: 'VARCHAR', field: 'sku' }],
      1024,
    );
    expect(sql).toContain(`read_json(['/t/a.ndjson', '/t/b''.ndjson']`);
  });
});
