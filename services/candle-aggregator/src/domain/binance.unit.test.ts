import { InvalidInputError } from '@parquetry/service';
import { describe, expect, it } from 'vitest';
import { parseBinanceCapture, parseBinanceCaptureLine } from './binance.js';

const wrapped =
  '1723161254087896568 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}';
const bare =
  '1723161254347673567 {"e":"trade","E":1723161255619,"s":"BTCUSDT","t":3735683260,"p":"61837.64000000","q":"0.04800000","T":1723161255617,"m":false,"M":true}';
const book =
  '1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}';

describe('Binance capture parser', () => {
  it('reads wrapped and bare trade events and skips everything else', () => {
    expect(parseBinanceCapture([book, wrapped, '', bare, book].join('\n'))).toEqual([
      {
        receivedAtMs: 1723161254087,
        tick: {
          symbol: 'BTCUSDT',
          ts: 1723161255342,
          price: 61837.63,
          size: 0.02,
          side: 'sell',
          trade_id: '3735683259',
        },
      },
      {
        receivedAtMs: 1723161254347,
        tick: {
          symbol: 'BTCUSDT',
          ts: 1723161255617,
          price: 61837.64,
          size: 0.048,
          side: 'buy',
          trade_id: '3735683260',
        },
      },
    ]);
  });

  it('fails loudly on a broken trade line', () => {
    expect(() => parseBinanceCaptureLine('1723161254087896568 {"e":"trade","t":1')).toThrow(
      InvalidInputError,
    );
    expect(() => parseBinanceCaptureLine(wrapped.replace('"p":"61837.63000000"', '"p":"x"'))).toThrow(
      InvalidInputError,
    );
    expect(() => parseBinanceCaptureLine('{"e":"trade"}')).toThrow(InvalidInputError);
  });
});
