/**
 * specs/vectors/link.json against protocol/link-handshake.ts (handshake, upgrade token, frame cipher), net/dial.ts
 * (the dialed URL), client/bootstrap.ts and relay/relay.ts (bridge lines), protocol/descriptor.ts (the bridge
 * signing context) and protocol/control.ts; the key schedule is also recomputed here from specs/link.md §2.2.
 */
import { expect } from 'chai';
import { parseBridgeLine } from '../../client/bootstrap.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { withUpgradeToken } from '../../net/dial.js';
import { concatBytes, toHex, utf8 } from '../../protocol/bytes.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { decodeControl, encodeControl } from '../../protocol/control.js';
import { MAX_DESCRIPTOR_BYTES, signDescriptor, verifyDescriptor, type DescriptorFields } from '../../protocol/descriptor.js';
import { H } from '../../protocol/kdf.js';
import {
  decodeUpgradeToken,
  encodeUpgradeToken,
  FRAME_CELLS,
  FRAME_LEN,
  FRAME_PLAIN_LEN,
  FrameCipher,
  HandshakeReplayCache,
  LINK_VERSION_MAX,
  LINK_VERSION_MIN,
  LinkInitiator,
  LinkResponder,
  MSG1_HEAD_LEN,
  PAYLOAD1_LEN,
  PAYLOAD2_LEN,
  UPGRADE_TOKEN_LEN,
  UPGRADE_TOKEN_PARAM,
} from '../../protocol/link-handshake.js';
import { formatBridgeLine } from '../../relay/relay.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { byteQueue, expectCode, hex, readVectors } from '../helpers/vectors.js';

interface HandshakeVector {
  name: string;
  initiator: 'client' | 'relay';
  responder: 'relay' | 'bridge';
  responderIdentity: string;
  psk: string;
  initiatorNow: number;
  responderNow: number;
  initiatorRandom: string;
  initiatorRandomCalls: number[];
  responderRandom: string;
  responderRandomCalls: number[];
  schedule: Record<'e_i' | 'E_i' | 'S' | 'es' | 'k1' | 'payload1' | 'e_r' | 'E_r' | 'ee' | 'th' | 'ck' | 'k2' | 'payload2' | 'auth', string>;
  msg1: string;
  upgradeToken: string;
  msg2: string;
  keys: { i2r: string; r2i: string };
  msg3Head: string;
  msg3Frame: string;
  peer: { role: number; identity: string | null; version: number };
}
interface Msg1Case {
  name: string;
  responder: 'relay' | 'bridge';
  psk: string | null;
  head: string;
  now: number;
  seen?: { head: string; now: number }[];
  error?: string;
}
interface DescriptorVector {
  kind: 'bridge' | 'relay';
  context: string;
  fields: Omit<DescriptorFields, 'id' | 'onion' | 'family'> & { id: string; onion: string; family: string[] };
  raw: string;
  digest: string;
  refusedAs: { kind: 'bridge' | 'relay'; error: string };
}
interface LinkVectors {
  constants: Record<string, number>;
  relayIdentitySeed: string;
  relayIdentity: string;
  bridgeIdentitySeed: string;
  bridgeIdentity: string;
  bridgeSecret: string;
  dialerIdentitySeed: string;
  dialerIdentity: string;
  handshakes: HandshakeVector[];
  msg1: { refused: Required<Msg1Case>[]; accepted: Msg1Case[] };
  replayCache: { windowMs: number; steps: { name: string; E: string; now: number; seen: boolean }[] };
  msg2Refused: { name: string; handshake: string; head: string; error: string }[];
  msg3Refused: { name: string; handshake: string; head: string; nonZero: number | null; error: string }[];
  frames: {
    handshake: string;
    direction: string;
    key: string;
    sealed: { counter: number; nonce: string; plain: string; frame: string }[];
    refused: { name: string; counter: number; frame: string; error: string }[];
  };
  tokens: { param: string; urls: { url: string; token: string; result: string }[]; refused: { name: string; token: string; error: string }[] };
  bridge: {
    identitySeed: string;
    identity: string;
    secret: string;
    url: string;
    line: string;
    lines: { name: string; text: string; parsed: { url: string; identity: string; secret: string; line: string } }[];
    refusedLines: { name: string; text: string; error: string }[];
    now: number;
    descriptors: DescriptorVector[];
    messages: { bridgeGet: string; bridge: string };
  };
}

const V = readVectors<LinkVectors>('link.json');

/** The labels and signing context of specs/link.md §2.2. */
const LABEL = {
  k1: utf8('allium-v1:link:k1'),
  th: utf8('allium-v1:link:transcript'),
  ck: utf8('allium-v1:link:chaining-key'),
  k2: utf8('allium-v1:link:k2'),
  i2r: utf8('allium-v1:link:initiator-to-responder'),
  r2i: utf8('allium-v1:link:responder-to-initiator'),
  auth: utf8('allium-v1:link:initiator-auth'),
};
const SIGN_CONTEXT = utf8('allium-v1 link initiator signature');
const NONCE0 = new Uint8Array(12);
const ZERO_PSK = '00'.repeat(32);

const padTo = (head: Uint8Array, len: number): Uint8Array => concatBytes(head, new Uint8Array(len - head.length));
const byName = (name: string): HandshakeVector => {
  const h = V.handshakes.find((x) => x.name === name);
  if (!h) throw new Error(`no handshake "${name}"`);
  return h;
};

describeEachBinding('vectors: link.json', () => {
  const relay = () => IdentityKey.fromSeed(hex(V.relayIdentitySeed));
  const bridge = () => IdentityKey.fromSeed(hex(V.bridgeIdentitySeed));
  const dialer = () => IdentityKey.fromSeed(hex(V.dialerIdentitySeed));
  const responderKey = (which: 'relay' | 'bridge') => (which === 'bridge' ? bridge() : relay());

  function initiatorOf(h: HandshakeVector, random: (n: number) => Uint8Array, psk: 'as-vector' | 'explicit' = 'as-vector'): LinkInitiator {
    const withPsk = psk === 'explicit' || h.psk !== ZERO_PSK;
    return new LinkInitiator({
      responder: hex(h.responderIdentity),
      ...(h.initiator === 'relay' ? { identity: dialer() } : {}),
      ...(withPsk ? { psk: hex(h.psk) } : {}),
      now: h.initiatorNow,
      random,
    });
  }
  function responderOf(
    h: HandshakeVector,
    random: (n: number) => Uint8Array,
    replay = new HandshakeReplayCache(V.constants['replayWindowMs']!, 1000),
  ): LinkResponder {
    return new LinkResponder({
      identity: responderKey(h.responder),
      ...(h.psk !== ZERO_PSK ? { psk: hex(h.psk) } : {}),
      replay,
      maxClockSkewMs: V.constants['clockSkewMs']!,
      random,
    });
  }

  it('has the constants of protocol/link-handshake.ts', () => {
    expect(V.constants).to.deep.equal({
      frameLen: FRAME_LEN,
      framePlainLen: FRAME_PLAIN_LEN,
      frameCells: FRAME_CELLS,
      msg1HeadLen: MSG1_HEAD_LEN,
      payload1Len: PAYLOAD1_LEN,
      payload2Len: PAYLOAD2_LEN,
      upgradeTokenLen: UPGRADE_TOKEN_LEN,
      linkVersionMin: LINK_VERSION_MIN,
      linkVersionMax: LINK_VERSION_MAX,
      clockSkewMs: 10 * 60_000,
      replayWindowMs: 20 * 60_000,
    });
  });

  it('derives the identities', () => {
    expect(toHex(relay().publicKey)).to.equal(V.relayIdentity);
    expect(toHex(bridge().publicKey)).to.equal(V.bridgeIdentity);
    expect(toHex(dialer().publicKey)).to.equal(V.dialerIdentity);
  });

  for (const h of V.handshakes) {
    describe(`handshake: ${h.name}`, () => {
      it('makes msg1, msg2 and msg3, and both ends derive the frame keys', () => {
        const iq = byteQueue(hex(h.initiatorRandom));
        const init = initiatorOf(h, iq.random);
        expect(toHex(init.start())).to.equal(h.msg1);
        expect(init.upgradeToken()).to.equal(h.upgradeToken);
        expect(iq.remaining()).to.equal(0);

        const rq = byteQueue(hex(h.responderRandom));
        const resp = responderOf(h, rq.random);
        expect(toHex(resp.respond(hex(h.msg1), h.responderNow))).to.equal(h.msg2);
        expect(rq.remaining()).to.equal(0);

        const fin = init.finish(hex(h.msg2));
        expect(fin.version).to.equal(h.peer.version);
        expect([toHex(fin.keys.send), toHex(fin.keys.receive)]).to.deep.equal([h.keys.i2r, h.keys.r2i]);
        expect([toHex(resp.keys.send), toHex(resp.keys.receive)]).to.deep.equal([h.keys.r2i, h.keys.i2r]);
        expect(toHex(fin.msg3)).to.equal(toHex(padTo(hex(h.msg3Head), FRAME_PLAIN_LEN)));

        const frame = new FrameCipher(hex(h.keys.i2r)).seal(fin.msg3);
        expect(toHex(frame)).to.equal(h.msg3Frame);
        const peer = resp.finish(new FrameCipher(hex(h.keys.i2r)).open(hex(h.msg3Frame)));
        expect({ role: peer.role, identity: peer.identity ? toHex(peer.identity) : null, version: peer.version }).to.deep.equal(h.peer);
      });

      it('follows the key schedule of specs/link.md §2.2', () => {
        const c = crypto();
        const s = h.schedule;
        const ir = hex(h.initiatorRandom);
        const rr = hex(h.responderRandom);
        expect(h.initiatorRandomCalls).to.deep.equal([32, 1, FRAME_LEN]);
        expect(h.responderRandomCalls).to.deep.equal([32, 1, FRAME_LEN]);
        const eph = (r: Uint8Array) => {
          const E = c.x25519Public(r.subarray(0, 32));
          E[31] = (E[31]! & 0x7f) | (r[32]! & 0x80);
          return E;
        };
        expect([toHex(ir.subarray(0, 32)), toHex(eph(ir))]).to.deep.equal([s.e_i, s.E_i]);
        expect([toHex(rr.subarray(0, 32)), toHex(eph(rr))]).to.deep.equal([s.e_r, s.E_r]);
        const msg1 = hex(h.msg1);
        const msg2 = hex(h.msg2);
        expect(toHex(msg1.subarray(0, 32))).to.equal(s.E_i);
        expect(toHex(msg1.subarray(64))).to.equal(toHex(ir.subarray(33 + 64)));
        expect(toHex(msg2.subarray(0, 32))).to.equal(s.E_r);
        expect(toHex(msg2.subarray(64))).to.equal(toHex(rr.subarray(33 + 64)));

        const psk = hex(h.psk);
        const S = c.edPublicToX25519(hex(h.responderIdentity));
        expect(toHex(S)).to.equal(s.S);
        const es = c.x25519(hex(s.e_i), S);
        expect(toHex(es)).to.equal(s.es);
        expect(toHex(c.x25519(c.edSecretToX25519(responderKey(h.responder).secretKey), hex(s.E_i)))).to.equal(s.es);
        const k1 = H(LABEL.k1, es, hex(s.E_i), S, psk);
        expect(toHex(k1)).to.equal(s.k1);
        const p1 = c.aeadDecrypt(msg1.subarray(32, 64), hex(s.E_i), NONCE0, k1);
        expect(p1 && toHex(p1)).to.equal(s.payload1);
        const role = h.initiator === 'relay' ? 2 : 1;
        const ts = (n: number) => toHex(new Uint8Array(new BigUint64Array([BigInt(n)]).buffer).reverse());
        expect(s.payload1).to.equal(`0001` + `0001` + `0${role}` + `000000` + ts(h.initiatorNow));

        const th = H(LABEL.th, msg1.subarray(0, 64), hex(s.E_r));
        expect(toHex(th)).to.equal(s.th);
        const ee = c.x25519(hex(s.e_r), hex(s.E_i));
        expect(toHex(ee)).to.equal(s.ee);
        expect(toHex(c.x25519(hex(s.e_i), hex(s.E_r)))).to.equal(s.ee);
        const ck = H(LABEL.ck, ee, es, psk, th);
        expect(toHex(ck)).to.equal(s.ck);
        const k2 = H(LABEL.k2, ck);
        expect(toHex(k2)).to.equal(s.k2);
        const p2 = c.aeadDecrypt(msg2.subarray(32, 64), th, NONCE0, k2);
        expect(p2 && toHex(p2)).to.equal(s.payload2);
        expect(s.payload2).to.equal(`0001` + `0000` + ts(h.responderNow) + `00000000`);

        expect([toHex(H(LABEL.i2r, ck)), toHex(H(LABEL.r2i, ck))]).to.deep.equal([h.keys.i2r, h.keys.r2i]);
        const auth = H(LABEL.auth, ck);
        expect(toHex(auth)).to.equal(s.auth);
        const m3 = hex(h.msg3Head);
        expect(m3.length).to.equal(97);
        expect(m3[0]).to.equal(role);
        if (h.initiator === 'relay') {
          expect(toHex(m3.subarray(1, 33))).to.equal(V.dialerIdentity);
          expect(c.verify(m3.subarray(33, 97), concatBytes(SIGN_CONTEXT, auth), hex(V.dialerIdentity))).to.equal(true);
        } else expect(m3.subarray(1).every((b) => b === 0)).to.equal(true);
        const nonce0 = new Uint8Array(12);
        expect(toHex(c.aeadEncrypt(padTo(m3, FRAME_PLAIN_LEN), null, nonce0, hex(h.keys.i2r)))).to.equal(h.msg3Frame);
      });

      it("carries msg1's head as the upgrade token", () => {
        const head = hex(h.msg1).subarray(0, MSG1_HEAD_LEN);
        expect(h.upgradeToken).to.have.length(UPGRADE_TOKEN_LEN);
        expect(h.upgradeToken).to.equal(Buffer.from(head).toString('base64url'));
        expect(encodeUpgradeToken(head)).to.equal(h.upgradeToken);
        expect(toHex(decodeUpgradeToken(h.upgradeToken))).to.equal(toHex(head));
        // The relay's path for a token (§2.6): open the head, then admit.
        const resp = responderOf(h, byteQueue(hex(h.responderRandom)).random);
        resp.open(decodeUpgradeToken(h.upgradeToken));
        resp.admit(h.responderNow);
        expect(toHex(resp.reply(h.responderNow))).to.equal(h.msg2);
      });

      if (h.psk === ZERO_PSK) {
        it('gives the same msg1 for an explicit all-zero psk', () => {
          expect(toHex(initiatorOf(h, byteQueue(hex(h.initiatorRandom)).random, 'explicit').start())).to.equal(h.msg1);
        });
      }
    });
  }

  /** A responder reads msg1 (its padding zero), after the heads in `seen`, under one replay cache. */
  function respondTo(v: Msg1Case, via: 'message' | 'token'): Uint8Array {
    const replay = new HandshakeReplayCache(V.constants['replayWindowMs']!, 1000);
    const make = () =>
      new LinkResponder({ identity: responderKey(v.responder), ...(v.psk ? { psk: hex(v.psk) } : {}), replay, maxClockSkewMs: V.constants['clockSkewMs']! });
    for (const s of v.seen ?? []) make().respond(padTo(hex(s.head), FRAME_LEN), s.now);
    if (via === 'message') return make().respond(padTo(hex(v.head), FRAME_LEN), v.now);
    const r = make();
    r.open(decodeUpgradeToken(encodeUpgradeToken(hex(v.head))));
    r.admit(v.now);
    return r.reply(v.now);
  }

  for (const v of V.msg1.refused) {
    it(`msg1 refused: ${v.name} → ${v.error}`, () => {
      expectCode(() => respondTo(v, 'message'), v.error);
      expectCode(() => respondTo(v, 'token'), v.error);
    });
  }
  for (const v of V.msg1.accepted) {
    it(`msg1 accepted: ${v.name}`, () => {
      expect(respondTo(v, 'message')).to.have.length(FRAME_LEN);
      expect(respondTo(v, 'token')).to.have.length(FRAME_LEN);
    });
  }
  it('refuses a msg1 of the wrong size', () => {
    const v = V.msg1.accepted[0]!;
    const r = new LinkResponder({
      identity: relay(),
      replay: new HandshakeReplayCache(V.constants['replayWindowMs']!, 10),
      maxClockSkewMs: V.constants['clockSkewMs']!,
    });
    expectCode(() => r.respond(padTo(hex(v.head), FRAME_LEN - 1), v.now), 'ERR_LINK_PROBE');
  });

  it('keeps replay tags as §2.4 says (top bit ignored, forgotten after the window)', () => {
    expect(V.replayCache.windowMs).to.equal(V.constants['replayWindowMs']);
    const cache = new HandshakeReplayCache(V.replayCache.windowMs, 1000);
    for (const s of V.replayCache.steps) expect(cache.checkAndRecord(hex(s.E), s.now), s.name).to.equal(s.seen);
  });

  for (const v of V.msg2Refused) {
    it(`msg2 refused: ${v.name} → ${v.error}`, () => {
      const h = byName(v.handshake);
      const init = initiatorOf(h, byteQueue(hex(h.initiatorRandom)).random);
      init.start();
      expectCode(() => init.finish(padTo(hex(v.head), FRAME_LEN)), v.error);
    });
  }

  for (const v of V.msg3Refused) {
    it(`msg3 refused: ${v.name} → ${v.error}`, () => {
      const h = byName(v.handshake);
      const resp = responderOf(h, byteQueue(hex(h.responderRandom)).random);
      expect(toHex(resp.respond(hex(h.msg1), h.responderNow))).to.equal(h.msg2);
      const msg3 = padTo(hex(v.head), FRAME_PLAIN_LEN);
      if (v.nonZero !== null) msg3[v.nonZero] = 1;
      expectCode(() => resp.finish(msg3), v.error);
    });
  }

  describe('frames', () => {
    const F = V.frames;
    it('uses K_r2i of the first handshake', () => {
      expect(F.handshake).to.equal(V.handshakes[0]!.name);
      expect(F.key).to.equal(V.handshakes[0]!.keys.r2i);
    });

    it('seals and opens the first frames with counter nonces', () => {
      const sealer = new FrameCipher(hex(F.key));
      const opener = new FrameCipher(hex(F.key));
      for (const f of F.sealed) {
        const nonce = new Uint8Array(12);
        new DataView(nonce.buffer).setBigUint64(4, BigInt(f.counter));
        expect(toHex(nonce)).to.equal(f.nonce);
        expect(toHex(crypto().aeadEncrypt(hex(f.plain), null, nonce, hex(F.key)))).to.equal(f.frame);
        expect(toHex(sealer.seal(hex(f.plain)))).to.equal(f.frame);
        expect(toHex(opener.open(hex(f.frame)))).to.equal(f.plain);
      }
    });

    for (const v of F.refused) {
      it(`refuses: ${v.name} → ${v.error}`, () => {
        const opener = new FrameCipher(hex(F.key));
        for (const f of F.sealed.slice(0, v.counter)) opener.open(hex(f.frame));
        expectCode(() => opener.open(hex(v.frame)), v.error);
      });
    }
  });

  describe('upgrade token', () => {
    it(`is sent as the query parameter "${UPGRADE_TOKEN_PARAM}", replacing an earlier one`, () => {
      expect(V.tokens.param).to.equal(UPGRADE_TOKEN_PARAM);
      for (const u of V.tokens.urls) {
        expect(withUpgradeToken(u.url, u.token), u.url).to.equal(u.result);
        expect(new URL(u.result).searchParams.getAll(UPGRADE_TOKEN_PARAM)).to.deep.equal([u.token]);
      }
    });

    for (const v of V.tokens.refused) {
      it(`refuses: ${v.name} → ${v.error}`, () => {
        expectCode(() => decodeUpgradeToken(v.token), v.error);
      });
    }
  });

  describe('bridges', () => {
    const B = V.bridge;
    it('prints the bridge line as a bridge does', () => {
      expect(toHex(bridge().publicKey)).to.equal(B.identity);
      expect(B.identity).to.equal(V.bridgeIdentity);
      expect(B.secret).to.equal(V.bridgeSecret);
      expect(formatBridgeLine(B.url, B.identity, hex(B.secret))).to.equal(B.line);
    });

    for (const l of B.lines) {
      it(`parses the bridge line: ${l.name}`, () => {
        const p = parseBridgeLine(l.text);
        expect({ url: p.url, identity: toHex(p.identity), secret: toHex(p.secret), line: p.line }).to.deep.equal(l.parsed);
      });
    }
    for (const l of B.refusedLines) {
      it(`refuses the bridge line: ${l.name} → ${l.error}`, () => {
        const e = expectCode(() => parseBridgeLine(l.text), l.error);
        expect(e.message).to.not.include(B.secret);
      });
    }

    for (const d of B.descriptors) {
      it(`signs a ${d.kind} descriptor under "${d.context}" only`, () => {
        const fields: DescriptorFields = { ...d.fields, id: hex(d.fields.id), onion: hex(d.fields.onion), family: d.fields.family.map(hex) };
        const key = d.kind === 'bridge' ? bridge() : relay();
        expect(toHex(key.publicKey)).to.equal(d.fields.id);
        const signed = signDescriptor(fields, key.secretKey, d.kind);
        expect([toHex(signed.raw), toHex(signed.digest)]).to.deep.equal([d.raw, d.digest]);
        const got = verifyDescriptor(hex(d.raw), B.now, undefined, d.kind);
        expect([toHex(got.id), got.addr, got.caps, got.pub, got.exp]).to.deep.equal([d.fields.id, d.fields.addr, d.fields.caps, d.fields.pub, d.fields.exp]);
        expectCode(() => verifyDescriptor(hex(d.raw), B.now, undefined, d.refusedAs.kind), d.refusedAs.error);
        // The signature covers context | b (specs/directory.md §2.4, §9).
        const env = decodeCbor(hex(d.raw), MAX_DESCRIPTOR_BYTES) as { b: Uint8Array; s: Uint8Array };
        const other = d.kind === 'bridge' ? 'allium-v1 descriptor' : 'allium-v1 bridge descriptor';
        expect(crypto().verify(env.s, concatBytes(utf8(d.context), env.b), key.publicKey)).to.equal(true);
        expect(crypto().verify(env.s, concatBytes(utf8(other), env.b), key.publicKey)).to.equal(false);
      });
    }

    it("names the bridge line's identity and address in the bridge descriptor", () => {
      const d = B.descriptors.find((x) => x.kind === 'bridge')!;
      const line = parseBridgeLine(B.line);
      const got = verifyDescriptor(hex(d.raw), B.now, undefined, 'bridge');
      expect([toHex(got.id), got.addr, got.caps]).to.deep.equal([toHex(line.identity), line.url, []]);
    });

    it('encodes the bridge-get and bridge CONTROL messages', () => {
      expect(toHex(encodeControl({ t: 'bridge-get' }))).to.equal(B.messages.bridgeGet);
      expect(decodeControl(hex(B.messages.bridgeGet))).to.deep.equal({ t: 'bridge-get' });
      const raw = B.descriptors.find((x) => x.kind === 'bridge')!.raw;
      expect(toHex(encodeControl({ t: 'bridge', d: hex(raw) }))).to.equal(B.messages.bridge);
      const m = decodeControl(hex(B.messages.bridge));
      expect(m.t === 'bridge' && toHex(m.d)).to.equal(raw);
    });
  });
});
