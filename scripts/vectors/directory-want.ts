/**
 * specs/vectors/directory-want.json: descriptors by identity (specs/directory.md §6.1). `messages`: `dir-want` and
 * `dir-found` CONTROL messages, hex ↔ fields, and encodings decodeControl refuses; `answers`: a `dir-found` answer to
 * the identities of one `dir-want`, with the fingerprints checkFound keeps or the code it throws.
 */
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { compareBytes, decodeControl, encodeControl, MAX_DESCRIPTORS_PER_MESSAGE, type ControlMessage } from '../../protocol/control.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { checkFound } from '../../protocol/directory-want.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** 2025-06-15 12:00 UTC. */
const PUB = 1_749_988_800_000;

function relay(i: number): Descriptor {
  const key = IdentityKey.fromSeed(seeded(`directory-want/relay-${i}`)(32));
  return signDescriptor(
    {
      id: key.publicKey,
      onion: seeded(`directory-want/onion-${i}`)(32),
      addr: `ws://198.51.100.${10 + i}:9001/allium`,
      nick: `want${i}`,
      contact: '',
      family: [],
      bw: 1_000_000,
      exit: ['reject *:*'],
      caps: ['store', 'intro', 'rendezvous'],
      pub: PUB,
      exp: PUB + 3 * 3600_000,
    },
    key.secretKey,
  );
}

const fieldsOf = (m: ControlMessage): Record<string, unknown> =>
  m.t === 'dir-want' ? { t: m.t, ids: m.ids.map(toHex) } : m.t === 'dir-found' ? { t: m.t, ds: m.ds.map(toHex) } : {};

export function directoryWantFile(): VectorFile {
  const relays = [0, 1, 2, 3].map(relay).sort((a, b) => compareBytes(a.id, b.id));
  const [r0, r1, r2, r3] = relays as [Descriptor, Descriptor, Descriptor, Descriptor];
  const stranger = relay(4);

  const validMessages: ControlMessage[] = [
    { t: 'dir-want', ids: [r0.id] },
    { t: 'dir-want', ids: [r0.id, r1.id, r2.id] },
    { t: 'dir-found', ds: [] },
    { t: 'dir-found', ds: [r1.raw] },
  ];
  const valid = validMessages.map((m, i) => {
    const hex = toHex(encodeControl(m));
    check(JSON.stringify(fieldsOf(decodeControl(encodeControl(m)))) === JSON.stringify(fieldsOf(m)), `message ${i} round trip`);
    return { name: `${m.t} ${i}`, fields: fieldsOf(m), hex };
  });

  const ids = (n: number): Uint8Array[] =>
    Array.from({ length: n }, (_, i) => {
      const id = new Uint8Array(32);
      id[30] = i >> 8;
      id[31] = i & 255;
      return id;
    });
  const invalidMessages: { name: string; bytes: Uint8Array; code: string }[] = [
    { name: 'dir-want with no identity', bytes: encodeCbor({ t: 'dir-want', ids: [] }), code: 'ERR_SCHEMA' },
    { name: 'dir-want with identities out of order', bytes: encodeCbor({ t: 'dir-want', ids: [r1.id, r0.id] }), code: 'ERR_SCHEMA' },
    { name: 'dir-want naming one identity twice', bytes: encodeCbor({ t: 'dir-want', ids: [r0.id, r0.id] }), code: 'ERR_SCHEMA' },
    {
      name: `dir-want of ${MAX_DESCRIPTORS_PER_MESSAGE + 1} identities`,
      bytes: encodeCbor({ t: 'dir-want', ids: ids(MAX_DESCRIPTORS_PER_MESSAGE + 1) }),
      code: 'ERR_SCHEMA',
    },
    { name: 'dir-want with a 31-byte identity', bytes: encodeCbor({ t: 'dir-want', ids: [r0.id.subarray(0, 31)] }), code: 'ERR_SCHEMA' },
    { name: 'dir-want with another field', bytes: encodeCbor({ t: 'dir-want', ids: [r0.id], since: 0 }), code: 'ERR_SCHEMA' },
    {
      name: `dir-found of ${MAX_DESCRIPTORS_PER_MESSAGE + 1} descriptors`,
      bytes: encodeCbor({ t: 'dir-found', ds: Array.from({ length: MAX_DESCRIPTORS_PER_MESSAGE + 1 }, () => new Uint8Array(1)) }),
      code: 'ERR_SCHEMA',
    },
  ];
  const invalid = invalidMessages.map((v) => ({
    name: v.name,
    hex: toHex(v.bytes),
    code: expectCode(
      errorCodeOf(() => decodeControl(v.bytes), v.name),
      v.code,
      v.name,
    ),
  }));

  // The last byte is the signature's (`s` follows `b` in the canonical map).
  const flipped = Uint8Array.from(r2.raw);
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
  const answerCases: { name: string; asked: Descriptor[]; ds: Uint8Array[]; code?: string }[] = [
    { name: 'every identity asked, in order', asked: [r0, r1, r2], ds: [r0.raw, r1.raw, r2.raw] },
    { name: 'some identities not held by the source', asked: [r0, r1, r2, r3], ds: [r1.raw, r3.raw] },
    { name: 'nothing held', asked: [r0], ds: [] },
    { name: 'more descriptors than identities asked', asked: [r0], ds: [r0.raw, r1.raw], code: 'ERR_DIRECTORY' },
    { name: 'a descriptor not asked for', asked: [r0, r1], ds: [stranger.raw], code: 'ERR_DIRECTORY' },
    { name: 'out of order', asked: [r0, r1], ds: [r1.raw, r0.raw], code: 'ERR_DIRECTORY' },
    { name: 'one descriptor twice', asked: [r0, r1], ds: [r0.raw, r0.raw], code: 'ERR_DIRECTORY' },
    { name: 'a signature that does not verify', asked: [r2], ds: [flipped], code: 'ERR_DIRECTORY' },
  ];
  const answers = answerCases.map((c) => {
    const asked = c.asked.map((d) => d.id);
    const base = { name: c.name, asked: asked.map(toHex), ds: c.ds.map(toHex) };
    if (c.code)
      return {
        ...base,
        code: expectCode(
          errorCodeOf(() => checkFound(asked, c.ds), c.name),
          c.code,
          c.name,
        ),
      };
    return { ...base, found: checkFound(asked, c.ds).map((d) => d.fingerprint) };
  });

  return {
    description:
      'Descriptors by identity (specs/directory.md §6.1). messages.valid: encodeControl(fields) = hex and decodeControl(hex) = fields (identities and descriptors as hex). messages.invalid: decodeControl(hex) throws `code`. answers: checkFound(asked, ds) returns descriptors with fingerprints `found`, or throws `code`.',
    version: VECTORS_VERSION,
    messages: { valid, invalid },
    answers,
  };
}
