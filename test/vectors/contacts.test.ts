/** specs/vectors/contacts.json against protocol/contact-card.ts, safety-number.ts and attachment.ts (messaging.md §11–§12). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { decodeAttachment, encodeAttachment, MAX_ATTACHMENT_DESCRIPTOR_BYTES } from '../../protocol/attachment.js';
import { decodeCard, encodeCard, formatCard, MAX_CARD_NAME_BYTES, parseCard } from '../../protocol/contact-card.js';
import { sameSafetyNumber, safetyHalf, safetyNumber, SAFETY_ITERATIONS } from '../../protocol/safety-number.js';
import { decodeFrame, encodeHelloFrame, HELLO_PREKEYS } from '../../protocol/message-frames.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface ContactVectors {
  constants: { maxCardNameBytes: number; safetyIterations: number; maxAttachmentDescriptorBytes: number };
  cards: { name: string; key: string; cardName: string; prekeys: boolean; address: string; bytes: string; text: string }[];
  mixCards: {
    name: string;
    key: string;
    cardName: string;
    prekeys: boolean;
    mix: { gateway: string; inbox: string; key: string };
    address: string;
    bytes: string;
    text: string;
  }[];
  cardInvalidBytes: { name: string; bytes: string; error: string }[];
  cardInvalidText: { name: string; text: string; error: string }[];
  safety: { name: string; a: string; b: string; halfA: string; halfB: string; number: string }[];
  attachments: { name: string; rk: string; dk: string; size: number; type: string; fileName: string; bytes: string }[];
  attachmentInvalid: { name: string; bytes: string; error: string }[];
  hellos: { name: string; flags: number; prekeys: boolean; bytes: string }[];
  helloInvalid: { name: string; bytes: string; error: string }[];
}

describeEachBinding('vectors: address cards, safety numbers and attachment descriptors (specs/vectors/contacts.json)', () => {
  const v = readVectors<ContactVectors>('contacts.json');

  it('constants match the code', () => {
    expect(v.constants).to.deep.equal({
      maxCardNameBytes: MAX_CARD_NAME_BYTES,
      safetyIterations: SAFETY_ITERATIONS,
      maxAttachmentDescriptorBytes: MAX_ATTACHMENT_DESCRIPTOR_BYTES,
    });
  });

  for (const c of v.cards) {
    it(`card: ${c.name} (bytes ↔ fields, text ↔ fields, any case)`, () => {
      expect(toHex(encodeCard(hex(c.key), c.cardName, { prekeys: c.prekeys }))).to.equal(c.bytes);
      expect(formatCard(hex(c.key), c.cardName, { prekeys: c.prekeys })).to.equal(c.text);
      for (const form of [decodeCard(hex(c.bytes)), parseCard(c.text), parseCard(`  ${c.text.toUpperCase()}\n`)]) {
        expect(toHex(form.key)).to.equal(c.key);
        expect(form.name).to.equal(c.cardName);
        expect(form.address).to.equal(c.address);
        expect(form.prekeys).to.equal(c.prekeys);
      }
    });
  }

  for (const c of v.mixCards) {
    it(`card: ${c.name} (version 3, mix.md §8.1: bytes ↔ fields, text ↔ fields)`, () => {
      const mix = { gateway: hex(c.mix.gateway), inbox: hex(c.mix.inbox), key: hex(c.mix.key) };
      expect(toHex(encodeCard(hex(c.key), c.cardName, { prekeys: c.prekeys, mix }))).to.equal(c.bytes);
      expect(formatCard(hex(c.key), c.cardName, { prekeys: c.prekeys, mix })).to.equal(c.text);
      for (const form of [decodeCard(hex(c.bytes)), parseCard(c.text.toUpperCase())]) {
        expect([toHex(form.key), form.name, form.address, form.prekeys]).to.deep.equal([c.key, c.cardName, c.address, c.prekeys]);
        expect({ gateway: toHex(form.mix!.gateway), inbox: toHex(form.mix!.inbox), key: toHex(form.mix!.key) }).to.deep.equal(c.mix);
      }
    });
  }

  it('a plain address reads as a card without a name', () => {
    const c = v.cards[0]!;
    const card = parseCard(c.address);
    expect(toHex(card.key)).to.equal(c.key);
    expect(card.name).to.equal('');
  });

  for (const c of v.cardInvalidBytes) it(`card bytes refused: ${c.name} → ${c.error}`, () => void expectCode(() => decodeCard(hex(c.bytes)), c.error));
  for (const c of v.cardInvalidText) it(`card text refused: ${c.name} → ${c.error}`, () => void expectCode(() => parseCard(c.text), c.error));

  it('a plain address, and a card of version 1, says nothing of prekeys', () => {
    expect(parseCard(v.cards[0]!.address).prekeys).to.equal(false);
    expect(decodeCard(hex(v.cards[1]!.bytes)).prekeys).to.equal(false);
  });

  for (const which of [1, 3])
    it(`every truncation and every single-byte change of a card is refused with a typed error, never accepted (${v.cards[which]!.name})`, () => {
      const good = hex(v.cards[which]!.bytes);
      for (let n = 0; n < good.length; n++)
        expect(() => decodeCard(good.subarray(0, n)))
          .to.throw()
          .with.property('code')
          .that.matches(/^ERR_ADDRESS_/);
      for (let i = 0; i < good.length; i++) {
        const bad = Uint8Array.from(good);
        bad[i]! ^= 0x20;
        expect(() => decodeCard(bad))
          .to.throw()
          .with.property('code')
          .that.matches(/^ERR_ADDRESS_/);
      }
    });

  it('formatting refuses a name a reader would refuse', () => {
    const key = hex(v.cards[0]!.key);
    expectCode(() => encodeCard(key, 'x'.repeat(65)), 'ERR_ADDRESS_FORMAT');
    expectCode(() => encodeCard(key, 'a\u202eb'), 'ERR_ADDRESS_FORMAT');
    expectCode(() => encodeCard(new Uint8Array(32).fill(0xff), ''), 'ERR_KEY_FORMAT');
  });

  for (const s of v.safety) {
    it(`safety number: ${s.name} (the same from either side)`, () => {
      expect(safetyHalf(hex(s.a))).to.equal(s.halfA);
      expect(safetyHalf(hex(s.b))).to.equal(s.halfB);
      expect(safetyNumber(hex(s.a), hex(s.b))).to.equal(s.number);
      expect(safetyNumber(hex(s.b), hex(s.a))).to.equal(s.number);
      expect(s.number).to.match(/^(\d{5} ){11}\d{5}$/);
      expect(sameSafetyNumber(s.number, s.number.replace(/ /g, ''))).to.equal(true);
    });
  }

  it('different key pairs give different numbers', () => {
    expect(new Set(v.safety.map((s) => s.number)).size).to.equal(v.safety.length);
    expect(sameSafetyNumber(v.safety[0]!.number, v.safety[1]!.number)).to.equal(false);
  });

  for (const a of v.attachments) {
    it(`attachment descriptor: ${a.name}`, () => {
      const value = { root: { rk: hex(a.rk), dk: hex(a.dk) }, size: a.size, type: a.type, name: a.fileName };
      expect(toHex(encodeAttachment(value))).to.equal(a.bytes);
      const back = decodeAttachment(hex(a.bytes));
      expect({ rk: toHex(back.root.rk), dk: toHex(back.root.dk), size: back.size, type: back.type, name: back.name }).to.deep.equal({
        rk: a.rk,
        dk: a.dk,
        size: a.size,
        type: a.type,
        name: a.fileName,
      });
    });
  }
  for (const a of v.attachmentInvalid)
    it(`attachment descriptor refused: ${a.name} → ${a.error}`, () => void expectCode(() => decodeAttachment(hex(a.bytes)), a.error));

  for (const h of v.hellos)
    it(`conversation hello: ${h.name} (specs/messaging.md §8.1)`, () => {
      expect(toHex(encodeHelloFrame(h.flags))).to.equal(h.bytes);
      const f = decodeFrame(hex(h.bytes));
      expect(f).to.deep.equal({ kind: 'hello', flags: h.flags });
      expect(f.kind === 'hello' && (f.flags & HELLO_PREKEYS) !== 0).to.equal(h.prekeys);
    });
  for (const h of v.helloInvalid) it(`conversation hello refused: ${h.name} → ${h.error}`, () => void expectCode(() => decodeFrame(hex(h.bytes)), h.error));
});
