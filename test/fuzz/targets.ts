/**
 * Fuzz targets: one per decoder of untrusted input (test/helpers/decoders.ts), each a function of raw bytes that
 * returns when the decoder behaved and throws a Finding when it did not:
 *   - a failure other than an AlliumError of a documented code (a TypeError, a RangeError, ERR_INTERNAL, …);
 *   - for CBOR, an accepted input that does not re-encode to exactly itself (the profile has one encoding per value).
 * Text decoders get the bytes as UTF-8 (with replacement characters for invalid sequences, as a socket would give).
 */
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { acceptableFailure, decoderCases, type DecoderCase } from '../helpers/decoders.js';
import { Finding } from './engine.js';

export interface FuzzTarget {
  readonly name: string;
  readonly maxLen: number;
  execute(data: Uint8Array): void;
  seeds(): Uint8Array[];
}

/** Inputs longer than this are cut: the decoders' caps are checked by the bounds test, the fuzzer looks for logic. */
const FUZZ_MAX_LEN = 8192;
const utf8 = new TextDecoder();
const enc = new TextEncoder();

function describe(e: unknown): string {
  const err = e as { name?: string; code?: string; message?: string; stack?: string };
  return `${err?.name ?? typeof e}${err?.code ? ` ${err.code}` : ''}: ${err?.message ?? String(e)}\n${(err?.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
}

function targetOf(c: DecoderCase): FuzzTarget {
  return {
    name: c.name,
    maxLen: Math.min(c.cap + 16, FUZZ_MAX_LEN),
    seeds: () => c.seeds().map((s) => (typeof s === 'string' ? enc.encode(s) : s)),
    execute(data: Uint8Array): void {
      let value: unknown;
      try {
        value = c.run(c.input === 'text' ? utf8.decode(data) : data);
      } catch (e) {
        if (acceptableFailure(e)) return;
        throw new Finding('crash', `${c.name}: ${describe(e)}`);
      }
      if (c.name === 'CBOR') {
        const again = encodeCbor(value);
        if (toHex(again) !== toHex(data))
          throw new Finding('crash', `CBOR: accepted ${toHex(data).slice(0, 64)} but it re-encodes to ${toHex(again).slice(0, 64)}`);
      }
    },
  };
}

export function fuzzTargets(): FuzzTarget[] {
  return decoderCases().map(targetOf);
}

/** Words worth inserting: CBOR heads of the attack shapes and the tokens of the text formats. */
export const DICTIONARY: readonly Uint8Array[] = [
  [0xd8, 0x1c],
  [0xd8, 0x1d, 0x00],
  [0xc1],
  [0xd9, 0x01, 0x02],
  [0x9f],
  [0xbf],
  [0xff],
  [0x5f],
  [0x7f],
  [0xf7],
  [0xf9, 0x3c, 0x00],
  [0x1b, 0, 0x20, 0, 0, 0, 0, 0, 0],
  [0x1b, 0, 0, 0, 1, 0, 0, 0, 0],
  [0x3b, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
  [0x9a, 0x7f, 0xff, 0xff, 0xff],
  [0xba, 0xff, 0xff, 0xff, 0xff],
  [0x5a, 0x7f, 0xff, 0xff, 0xff],
  [0x81, 0x81, 0x81, 0x81],
  [0xa1, 0x61, 0x74],
  [0x62, 0xc3, 0x28],
  [0x61, 0x74],
  [0x62, 0x64, 0x73],
  [0x61, 0x6b],
  [0x61, 0x62],
  [0x61, 0x73],
  [0x63, 0x73, 0x69, 0x67],
]
  .map((a) => Uint8Array.from(a))
  .concat(
    [
      'ws://',
      'wss://',
      'allium:chk/',
      'allium:ssk/',
      'allium:usk/',
      'accept ',
      'reject ',
      '*:*',
      '[::1]',
      '[::ffff:127.0.0.1]',
      '/',
      ':',
      '=',
      '\n',
      ' ',
      'secret=',
      'bridge ',
      '0x',
      '1.2.3.4/8',
      ':1-65535',
      '"',
      '[',
      ']',
      '#',
      'nickname = ',
      '[timing]',
      '.allium',
      '\u0000',
      '\uffff',
    ].map((s) => enc.encode(s)),
  );
