/**
 * Inputs of a chosen size for a decoder of test/helpers/decoders.ts: the CBOR attack shapes for CBOR decoders,
 * repetition shapes for text parsers (the inputs that make a backtracking pattern or a quadratic split slow), and
 * random, constant and repeated-seed inputs for all. Deterministic for a given decoder and size. Not a test file.
 */
import { seededRandom } from '../../crypto/drbg.js';
import { shapesOfSize } from './cbor-shapes.js';
import type { DecoderCase, DecoderInput } from './decoders.js';

const TEXT_UNITS = [
  ' ',
  '\t',
  ':',
  '/',
  '.',
  '[',
  ']',
  '=',
  '-',
  'a',
  '0',
  'f',
  '"',
  '\\',
  '#',
  '*',
  ',',
  '\n',
  'é',
  'ws://',
  'allium:',
  'accept ',
  '[::',
  '1.',
];

function repeatTo(unit: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (unit.length === 0) return out;
  for (let i = 0; i < size; i += unit.length) out.set(unit.subarray(0, Math.min(unit.length, size - i)), i);
  return out;
}

/** Named inputs of about `size` bytes (characters for text) for decoder `c`. */
export function inputsOfSize(c: DecoderCase, size: number): Record<string, DecoderInput> {
  const rand = seededRandom(`inputs/${c.name}/${size}`);
  const seeds = c.seeds();
  const out: Record<string, DecoderInput> = {};
  if (c.input === 'text') {
    for (const u of TEXT_UNITS) out[`"${u.replace('\n', '\\n')}" repeated`] = u.repeat(Math.ceil(size / u.length)).slice(0, size);
    out['printable noise'] = Array.from(rand(size), (b) => String.fromCharCode(32 + (b % 95))).join('');
    seeds.forEach((s, i) => {
      const t = s as string;
      out[`seed ${i} with a long tail`] = (t + t.slice(-1).repeat(size)).slice(0, Math.max(size, t.length));
      out[`seed ${i} repeated`] = t.repeat(Math.ceil(size / Math.max(1, t.length))).slice(0, size);
    });
    return out;
  }
  out['random'] = rand(size);
  out['zeros'] = new Uint8Array(size);
  out['0xff'] = new Uint8Array(size).fill(0xff);
  seeds.slice(0, 4).forEach((s, i) => (out[`seed ${i} repeated`] = repeatTo(s as Uint8Array, size)));
  if (c.cbor) for (const [name, b] of Object.entries(shapesOfSize(Math.max(16, size)))) out[name] = b.length > size + 16 ? b.subarray(0, size) : b;
  return out;
}
