/**
 * specs/vectors/contacts.json: address cards (specs/messaging.md §11.1; version 1, and version 2 with the prekeys
 * flag) from fixed identities, as bytes and text,
 * with damaged cards and the code a reader refuses each with; safety numbers (§11.2) of fixed key pairs, each half
 * and the number both ways round; attachment descriptors (§12.1), valid and refused; conversation hellos (§8.1),
 * the frame that carries the same prekeys flag in a conversation.
 */
import { createIdentity } from '../../protocol/address.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import { base32Encode } from '../../protocol/content-link.js';
import { decodeAttachment, encodeAttachment, MAX_ATTACHMENT_DESCRIPTOR_BYTES } from '../../protocol/attachment.js';
import { CARD_PREFIX, decodeCard, encodeCard, formatCard, MAX_CARD_BYTES, MAX_CARD_NAME_BYTES, parseCard } from '../../protocol/contact-card.js';
import { safetyHalf, safetyNumber, SAFETY_ITERATIONS } from '../../protocol/safety-number.js';
import { decodeFrame, encodeHelloFrame, HELLO_PREKEYS } from '../../protocol/message-frames.js';
import { crypto } from '../../crypto/index.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

function key(seed: string): Uint8Array {
  return createIdentity(seeded(`contacts/identity/${seed}`)(32)).publicKey;
}

/** A card body with the right checksum (for cards that are well-checksummed but malformed). */
function withChecksum(body: Uint8Array): Uint8Array {
  return concatBytes(body, crypto().hash(32, body, utf8('allium-v1:contact-card:checksum')).subarray(0, 4));
}

export function contactsFile(): VectorFile {
  const alice = key('alice');
  const bob = key('bob');
  const cards = [
    { name: 'no name', key: alice, cardName: '' },
    { name: 'an ASCII name', key: alice, cardName: 'Alice' },
    { name: 'the longest name: 64 bytes of UTF-8', key: bob, cardName: 'Боб'.repeat(10) + 'Бо' },
    // Version 2 (§11.1): the flags byte, bit 0 set: the identity publishes prekey records (§9.6).
    { name: 'version 2: publishes prekeys', key: alice, cardName: 'Alice', prekeys: true },
    { name: 'version 2: publishes prekeys, no name', key: bob, cardName: '', prekeys: true },
    { name: 'version 2: the longest card (103 bytes)', key: bob, cardName: 'Боб'.repeat(10) + 'Бо', prekeys: true },
  ].map((c: { name: string; key: Uint8Array; cardName: string; prekeys?: boolean }) => {
    const prekeys = c.prekeys === true;
    const bytes = encodeCard(c.key, c.cardName, { prekeys });
    check(utf8(c.cardName).length <= MAX_CARD_NAME_BYTES, `card name "${c.name}" fits`);
    check(bytes[0] === (prekeys ? 2 : 1), `card "${c.name}" is of version ${prekeys ? 2 : 1}`);
    const text = formatCard(c.key, c.cardName, { prekeys });
    const back = parseCard(text.toUpperCase());
    check(back.name === c.cardName && toHex(back.key) === toHex(c.key) && back.prekeys === prekeys, `card "${c.name}" round-trips through upper-case text`);
    return { name: c.name, key: toHex(c.key), cardName: c.cardName, prekeys, address: back.address, bytes: toHex(bytes), text };
  });
  check(fromHex(cards[cards.length - 1]!.bytes).length === MAX_CARD_BYTES - 96, 'the longest card of version 2 is 103 bytes');
  // Version 3 (§11.1; mix.md §8.1): flags (0 allowed), then a mix address: gateway | inbox | key.
  const mixOf = (seed: string): { gateway: Uint8Array; inbox: Uint8Array; key: Uint8Array } => {
    const r = seeded(`contacts/mix/${seed}`);
    return { gateway: createIdentity(r(32)).publicKey, inbox: r(32), key: crypto().x25519Keypair(r(32)).publicKey };
  };
  const mixCards = [
    { name: 'version 3: a mix address, no flags', key: alice, cardName: 'Alice', prekeys: false, mix: mixOf('alice') },
    { name: 'version 3: the longest card (199 bytes), publishes prekeys', key: bob, cardName: 'Боб'.repeat(10) + 'Бо', prekeys: true, mix: mixOf('bob') },
  ].map((c) => {
    const bytes = encodeCard(c.key, c.cardName, { prekeys: c.prekeys, mix: c.mix });
    check(bytes[0] === 3, `card "${c.name}" is of version 3`);
    const text = formatCard(c.key, c.cardName, { prekeys: c.prekeys, mix: c.mix });
    const back = parseCard(text.toUpperCase());
    check(back.name === c.cardName && back.prekeys === c.prekeys && toHex(back.mix!.inbox) === toHex(c.mix.inbox), `card "${c.name}" round-trips`);
    const mix = { gateway: toHex(c.mix.gateway), inbox: toHex(c.mix.inbox), key: toHex(c.mix.key) };
    return { name: c.name, key: toHex(c.key), cardName: c.cardName, prekeys: c.prekeys, mix, address: back.address, bytes: toHex(bytes), text };
  });
  check(fromHex(mixCards[mixCards.length - 1]!.bytes).length === MAX_CARD_BYTES, 'the longest card is MAX_CARD_BYTES');
  const goodV3 = encodeCard(alice, 'Alice', { mix: mixOf('alice') });
  const good = encodeCard(alice, 'Alice');
  const goodV2 = encodeCard(alice, 'Alice', { prekeys: true });
  const flipped = Uint8Array.from(good);
  flipped[5]! ^= 0x01;
  const badKey = new Uint8Array(32).fill(0xff);
  const invalidBytes = [
    { name: 'truncated by one byte', bytes: good.subarray(0, good.length - 1), error: 'ERR_ADDRESS_CHECKSUM' },
    { name: 'truncated to half', bytes: good.subarray(0, 20), error: 'ERR_ADDRESS_CHECKSUM' },
    { name: 'one bit flipped in the key', bytes: flipped, error: 'ERR_ADDRESS_CHECKSUM' },
    { name: 'four bytes', bytes: good.subarray(0, 4), error: 'ERR_ADDRESS_FORMAT' },
    { name: 'version 4', bytes: withChecksum(concatBytes(Uint8Array.of(4), good.subarray(1, good.length - 4))), error: 'ERR_ADDRESS_VERSION' },
    { name: 'version 3 without its mix address', bytes: withChecksum(goodV3.subarray(0, goodV3.length - 4 - 96)), error: 'ERR_ADDRESS_FORMAT' },
    {
      name: 'version 3 whose mix gateway is not a point',
      bytes: withChecksum(concatBytes(goodV3.subarray(0, goodV3.length - 4 - 96), badKey, goodV3.subarray(goodV3.length - 4 - 64, goodV3.length - 4))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'version 3 with an undefined flag',
      bytes: withChecksum(concatBytes(goodV3.subarray(0, 33), Uint8Array.of(0x02), goodV3.subarray(34, goodV3.length - 4))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'version 2 without its flags byte (a version 1 body)',
      bytes: withChecksum(concatBytes(Uint8Array.of(2), good.subarray(1, good.length - 4))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'version 2 with no flag set',
      bytes: withChecksum(concatBytes(Uint8Array.of(2), good.subarray(1, 33), Uint8Array.of(0), good.subarray(33, good.length - 4))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'version 2 with an undefined flag',
      bytes: withChecksum(concatBytes(Uint8Array.of(2), good.subarray(1, 33), Uint8Array.of(0x03), good.subarray(33, good.length - 4))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    { name: 'version 2 truncated by one byte', bytes: goodV2.subarray(0, goodV2.length - 1), error: 'ERR_ADDRESS_CHECKSUM' },
    {
      name: 'version 2 with the flag cleared (checksum not redone)',
      bytes: concatBytes(goodV2.subarray(0, 33), Uint8Array.of(0), goodV2.subarray(34)),
      error: 'ERR_ADDRESS_CHECKSUM',
    },
    {
      name: 'name length beyond the card',
      bytes: withChecksum(concatBytes(good.subarray(0, 33), Uint8Array.of(9), utf8('Alice'))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'a control character in the name',
      bytes: withChecksum(concatBytes(good.subarray(0, 33), Uint8Array.of(3), utf8('A\nb'))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'a bidirectional override in the name',
      bytes: withChecksum(concatBytes(good.subarray(0, 33), Uint8Array.of(4), utf8('\u202eAb'))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    {
      name: 'a name that is not UTF-8',
      bytes: withChecksum(concatBytes(good.subarray(0, 33), Uint8Array.of(2), Uint8Array.of(0xc3, 0x28))),
      error: 'ERR_ADDRESS_FORMAT',
    },
    { name: 'a key that is not a point', bytes: withChecksum(concatBytes(Uint8Array.of(1), badKey, Uint8Array.of(0))), error: 'ERR_ADDRESS_FORMAT' },
  ].map((c) => ({
    name: c.name,
    bytes: toHex(c.bytes),
    error: expectCode(
      errorCodeOf(() => decodeCard(c.bytes), c.name),
      c.error,
      c.name,
    ),
  }));
  const goodText = formatCard(alice, 'Alice');
  const typo = goodText.slice(0, 30) + (goodText[30] === 'a' ? 'b' : 'a') + goodText.slice(31);
  const invalidText = [
    { name: 'one character mistyped', text: typo, error: 'ERR_ADDRESS_CHECKSUM' },
    { name: 'the last 8 characters cut off', text: goodText.slice(0, -8), error: ['ERR_ADDRESS_CHECKSUM', 'ERR_ADDRESS_FORMAT'] },
    { name: 'another prefix', text: 'allium:card/' + goodText.slice(CARD_PREFIX.length), error: 'ERR_ADDRESS_FORMAT' },
    { name: 'a character outside base32', text: goodText.slice(0, -1) + '1', error: 'ERR_ADDRESS_FORMAT' },
    { name: 'too long', text: CARD_PREFIX + base32Encode(new Uint8Array(MAX_CARD_BYTES + 1)), error: 'ERR_ADDRESS_FORMAT' },
    {
      name: 'a name of 65 bytes',
      text: CARD_PREFIX + base32Encode(withChecksum(concatBytes(good.subarray(0, 33), Uint8Array.of(65), utf8('a'.repeat(65))))),
      error: 'ERR_ADDRESS_FORMAT',
    },
  ].map((c) => ({
    name: c.name,
    text: c.text,
    error: expectCode(
      errorCodeOf(() => parseCard(c.text), c.name),
      c.error,
      c.name,
    ),
  }));

  const carol = key('carol');
  const safety = [
    { name: 'alice and bob', a: alice, b: bob },
    { name: 'alice and carol', a: alice, b: carol },
    { name: 'a key with itself', a: bob, b: bob },
  ].map((c) => {
    const n = safetyNumber(c.a, c.b);
    check(n === safetyNumber(c.b, c.a), `safety number "${c.name}" is symmetric`);
    return { name: c.name, a: toHex(c.a), b: toHex(c.b), halfA: safetyHalf(c.a), halfB: safetyHalf(c.b), number: n };
  });

  const rk = seeded('contacts/attachment/rk')(32);
  const dk = seeded('contacts/attachment/dk')(32);
  const attachments = [
    { name: 'an image', size: 1_234_567, type: 'image/jpeg', fileName: 'garlic.jpg' },
    { name: 'a voice note without a name', size: 48_000, type: 'audio/ogg', fileName: '' },
    { name: 'a file with a UTF-8 name', size: 20 * 1024 * 1024, type: 'application/pdf', fileName: 'Zwiebelsuppe – Rezept.pdf' },
  ].map((c) => {
    const bytes = encodeAttachment({ root: { rk, dk }, size: c.size, type: c.type, name: c.fileName });
    const back = decodeAttachment(bytes);
    check(back.name === c.fileName && back.size === c.size && back.type === c.type, `attachment "${c.name}" round-trips`);
    return { name: c.name, rk: toHex(rk), dk: toHex(dk), size: c.size, type: c.type, fileName: c.fileName, bytes: toHex(bytes) };
  });
  const base = { v: 1, rk, dk, size: 10, type: 'text/plain', name: 'a.txt' };
  const attachmentInvalid = [
    { name: 'a directory in the name', value: { ...base, name: '../a.txt' } },
    { name: 'a media type in upper case', value: { ...base, type: 'Text/Plain' } },
    { name: 'a media type without a subtype', value: { ...base, type: 'text' } },
    { name: 'a short routing key', value: { ...base, rk: rk.subarray(0, 31) } },
    { name: 'an unknown field', value: { ...base, x: 1 } },
    { name: 'version 2', value: { ...base, v: 2 } },
    { name: 'a size beyond 2^40', value: { ...base, size: 2 ** 40 + 1 } },
  ].map((c) => {
    const bytes = encodeCbor(c.value);
    return {
      name: c.name,
      bytes: toHex(bytes),
      error: expectCode(
        errorCodeOf(() => decodeAttachment(bytes), c.name),
        'ERR_SCHEMA',
        c.name,
      ),
    };
  });
  // Hellos (§8.1): the plaintext of the frame (before padding), its flags and whether it says "publishes prekeys".
  const hellos = [
    { name: 'no flag', flags: 0 },
    { name: 'publishes prekeys', flags: HELLO_PREKEYS },
    { name: 'publishes prekeys, with a bit this version does not know (ignored)', flags: HELLO_PREKEYS | 0x80 },
    { name: 'only a bit this version does not know', flags: 0x02 },
  ].map((c) => {
    const bytes = encodeHelloFrame(c.flags);
    const back = decodeFrame(bytes);
    check(back.kind === 'hello' && back.flags === c.flags, `hello "${c.name}" round-trips`);
    return { name: c.name, flags: c.flags, prekeys: (c.flags & HELLO_PREKEYS) !== 0, bytes: toHex(bytes) };
  });
  const helloInvalid = [
    { name: 'no flags byte', bytes: Uint8Array.of(6), error: 'ERR_BAD_LENGTH' },
    { name: 'a byte too many', bytes: Uint8Array.of(6, 1, 0), error: 'ERR_BAD_LENGTH' },
  ].map((c) => ({
    name: c.name,
    bytes: toHex(c.bytes),
    error: expectCode(
      errorCodeOf(() => decodeFrame(c.bytes), c.name),
      c.error,
      c.name,
    ),
  }));
  return {
    description:
      'Address cards (specs/messaging.md §11.1): fixed identities (Ed25519 seeds from the vector DRBG) as card bytes and text (version 1 without flags, version 2 with the prekeys flag, "prekeys"; mixCards: version 3 with a mix address, "mix", mix.md §8.1), and damaged cards with the code each is refused with; safety numbers (§11.2) of fixed keys, each 30-digit half and the 60-digit number; attachment descriptors (§12.1), valid and refused; conversation hellos (§8.1): the frame plaintext, its flags and whether it says the sender publishes prekeys, and hellos refused.',
    version: VECTORS_VERSION,
    constants: { maxCardNameBytes: MAX_CARD_NAME_BYTES, safetyIterations: SAFETY_ITERATIONS, maxAttachmentDescriptorBytes: MAX_ATTACHMENT_DESCRIPTOR_BYTES },
    cards,
    mixCards,
    cardInvalidBytes: invalidBytes,
    cardInvalidText: invalidText,
    safety,
    attachments,
    attachmentInvalid,
    hellos,
    helloInvalid,
  };
}
