import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { sharedDataDir } from '@parquetry/testkit';
import { type CaptureTrade, parseBinanceCapture } from '../src/domain/binance.js';

/** Real market data shared by the team (see shared/data/SOURCES.md). */
export const MARKET_DIR = join(sharedDataDir(), 'market');
export const BINANCE_CAPTURES = ['btcusdt_20240808.gz', 'btcusdt_20240809.gz'].map((f) =>
  join(MARKET_DIR, f),
);
export const COINBASE_DIR = join(MARKET_DIR, 'coinbase-btcusd-bars');

/** Every trade of the Binance captures, files in order, lines in file order. */
export function readBinanceTrades(paths: readonly string[] = BINANCE_CAPTURES): CaptureTrade[] {
  return paths.flatMap((p) => parseBinanceCapture(gunzipSync(readFileSync(p)).toString('utf8')));
}

/**
 * Entries of a zip archive, from its central directory (stored or deflated; no zip64,
 * no encryption — enough for the data files, and checked by CRC-32). Dependency-free so
 * the tests need no `unzip` binary.
 */
export function readZip(buf: Buffer): Map<string, Buffer> {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file: no end of central directory');
  const entries = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < entries; n++) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const method = buf.readUInt16LE(at + 10);
    const crc = buf.readUInt32LE(at + 16);
    const compressed = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.toString('utf8', at + 46, at + 46 + nameLen);
    at += 46 + nameLen + extraLen + commentLen;
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`bad local header for ${name}`);
    const dataAt = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataAt, dataAt + compressed);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`${name}: unsupported compression method ${method}`);
    if (crc32(data) !== crc) throw new Error(`${name}: CRC-32 mismatch`);
    out.set(name, data);
  }
  return out;
}

/** The single CSV inside one of the Coinbase minute-bar zips, as text. */
export function readCoinbaseMinuteCsv(day: string): { name: string; csv: string } {
  const entries = readZip(readFileSync(join(COINBASE_DIR, `${day}_trade.zip`)));
  if (entries.size !== 1) throw new Error(`${day}: expected one file in the zip, found ${entries.size}`);
  const [name, data] = [...entries][0]!;
  return { name, csv: data.toString('utf8') };
}
