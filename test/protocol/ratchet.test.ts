/**
 * The session handshake (specs/messaging.md §4), the double ratchet (§5) and session state (§7): both sides reach
 * one root key and know who they talk to; 1,000 messages each way, randomly interleaved and delivered out of order,
 * decrypt once each with the sender's sequence numbers; wrong keys, tampered headers and bodies, replays and
 * too-distant messages are refused without disturbing the session; sessions survive serialisation; and an attacker
 * holding an old state is locked out once both sides have ratcheted (post-compromise security).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto, type KeyPair } from '../../crypto/index.js';
import { createIdentity, type Identity } from '../../protocol/address.js';
import { toHex, utf8 } from '../../protocol/bytes.js';
import { isAlliumError } from '../../protocol/errors.js';
import { HANDSHAKE_LEN, initiatorHandshake, responderHandshake } from '../../protocol/message-handshake.js';
import { pad, PAD_BUCKETS, unpad } from '../../protocol/padding.js';
import { MAX_SKIP, RATCHET_HEADER_LEN, RATCHET_OVERHEAD, RatchetSession } from '../../protocol/ratchet.js';
import { decodeRatchetState, MAX_RATCHET_STATE_BYTES } from '../../protocol/ratchet-state.js';
import { encodeCbor, decodeCbor } from '../../protocol/cbor.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { total } from '../helpers/total.js';
import { expectCode } from '../helpers/vectors.js';

const text = (s: string) => utf8(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A small deterministic generator (mulberry32), so a failing interleaving can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pair {
  alice: RatchetSession;
  bob: RatchetSession;
  a: Identity;
  b: Identity;
  prekey: KeyPair;
}

/** Alice opens a session to Bob and her first message reaches him, so both can send. */
function connected(): Pair {
  const a = createIdentity();
  const b = createIdentity();
  const prekey = crypto().x25519Keypair();
  const init = initiatorHandshake(a, { identityKey: b.publicKey, prekey: prekey.publicKey });
  const resp = responderHandshake({ identity: b, prekey }, init.handshake);
  expect(str(resp.session.decrypt(init.session.encrypt(text('hello')).message).plaintext)).to.equal('hello');
  return { alice: init.session, bob: resp.session, a, b, prekey };
}

const DECRYPT_CODES = ['ERR_MESSAGE_AUTH', 'ERR_MESSAGE_REPLAY', 'ERR_RATCHET_SKIP', 'ERR_TRUNCATED', 'ERR_SCHEMA', 'ERR_LIMIT'];

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e.code;
  }
}

describeEachBinding('protocol/message-handshake', () => {
  it('both sides reach the same root key and associated data; the responder learns who is writing', () => {
    const a = createIdentity();
    const b = createIdentity();
    const prekey = crypto().x25519Keypair();
    const init = initiatorHandshake(a, { identityKey: b.publicKey, prekey: prekey.publicKey });
    expect(init.handshake.length).to.equal(HANDSHAKE_LEN);
    expect(toHex(init.handshake).includes(toHex(a.publicKey)), 'initiator identity in clear').to.equal(false);
    const resp = responderHandshake({ identity: b, prekey }, init.handshake);
    expect(toHex(resp.rootKey)).to.equal(toHex(init.rootKey));
    expect(toHex(resp.ad)).to.equal(toHex(init.ad));
    expect(toHex(resp.initiatorIdentityKey)).to.equal(toHex(a.publicKey));
    expect(toHex(resp.replayTag)).to.equal(toHex(init.replayTag));
    // two handshakes to the same prekey never share a root key or replay tag
    const again = initiatorHandshake(a, { identityKey: b.publicKey, prekey: prekey.publicKey });
    expect(toHex(again.rootKey)).to.not.equal(toHex(init.rootKey));
    expect(toHex(again.replayTag)).to.not.equal(toHex(init.replayTag));
  });

  it('only the intended recipient with the right prekey completes it', () => {
    const a = createIdentity();
    const b = createIdentity();
    const prekey = crypto().x25519Keypair();
    const { handshake } = initiatorHandshake(a, { identityKey: b.publicKey, prekey: prekey.publicKey });
    expectCode(() => responderHandshake({ identity: b, prekey: crypto().x25519Keypair() }, handshake), 'ERR_MESSAGE_AUTH');
    expectCode(() => responderHandshake({ identity: createIdentity(), prekey }, handshake), 'ERR_MESSAGE_AUTH');
  });

  it('refuses every single-byte change and every wrong length', () => {
    const b = createIdentity();
    const prekey = crypto().x25519Keypair();
    const { handshake } = initiatorHandshake(createIdentity(), { identityKey: b.publicKey, prekey: prekey.publicKey });
    for (let i = 0; i < handshake.length; i++) {
      const t = Uint8Array.from(handshake);
      t[i]! ^= 0x40;
      const code = codeOf(() => responderHandshake({ identity: b, prekey }, t));
      expect(code, `byte ${i}`).to.be.oneOf(['ERR_MESSAGE_AUTH', 'ERR_SCHEMA']);
    }
    expectCode(() => responderHandshake({ identity: b, prekey }, handshake.subarray(1)), 'ERR_BAD_LENGTH');
    expectCode(() => responderHandshake({ identity: b, prekey }, new Uint8Array(HANDSHAKE_LEN + 1)), 'ERR_BAD_LENGTH');
  });

  it("an impostor naming someone else's identity key cannot get a message through", () => {
    const alice = createIdentity();
    const mallory = createIdentity();
    const b = createIdentity();
    const prekey = crypto().x25519Keypair();
    // Mallory knows Alice's public key but not her secret
    const forged = initiatorHandshake({ publicKey: alice.publicKey, secretKey: mallory.secretKey }, { identityKey: b.publicKey, prekey: prekey.publicKey });
    const resp = responderHandshake({ identity: b, prekey }, forged.handshake);
    expect(toHex(resp.initiatorIdentityKey)).to.equal(toHex(alice.publicKey));
    expect(toHex(resp.rootKey)).to.not.equal(toHex(forged.rootKey));
    expectCode(() => resp.session.decrypt(forged.session.encrypt(text('it is me, Alice')).message), 'ERR_MESSAGE_AUTH');
  });
});

describeEachBinding('protocol/ratchet', () => {
  it('1,000 messages each way, randomly interleaved and delivered out of order, decrypt once each', () => {
    for (const seed of [1, 2]) {
      const rnd = prng(seed);
      const { alice, bob } = connected();
      const N = 1000;
      type Flight = { message: Uint8Array; body: string; seq: number };
      const toBob: Flight[] = [];
      const toAlice: Flight[] = [];
      const sent = { a: 0, b: 0 };
      const got = { a: new Set<number>(), b: new Set<number>() };
      const delivered: { to: RatchetSession; f: Flight }[] = [];
      const stats = { outOfOrder: 0, chains: 0 };
      const deliver = (queue: Flight[], to: RatchetSession, seen: Set<number>) => {
        const f = queue.splice(Math.floor(rnd() * queue.length), 1)[0]!;
        const d = to.decrypt(f.message);
        if ([...seen].some((q) => q > d.seq)) stats.outOfOrder++;
        stats.chains = Math.max(stats.chains, d.header.c + 1);
        expect(str(d.plaintext)).to.equal(f.body);
        expect(d.seq).to.equal(f.seq);
        expect(seen.has(d.seq)).to.equal(false);
        seen.add(d.seq);
        delivered.push({ to, f });
      };
      while (sent.a < N || sent.b < N || toBob.length > 0 || toAlice.length > 0) {
        const r = rnd();
        if (r < 0.25 && sent.a < N) {
          const body = `a→b ${sent.a} ${'x'.repeat(Math.floor(rnd() * 40))}`;
          const { message, seq } = alice.encrypt(text(body));
          expect(seq).to.equal(sent.a + 1); // seq 0 was the handshake's "hello"
          toBob.push({ message, body, seq });
          sent.a++;
        } else if (r < 0.5 && sent.b < N) {
          const body = `b→a ${sent.b}`;
          const { message, seq } = bob.encrypt(text(body));
          expect(seq).to.equal(sent.b);
          toAlice.push({ message, body, seq });
          sent.b++;
        } else if (r < 0.75 && toBob.length > 0) {
          deliver(toBob, bob, got.b);
        } else if (toAlice.length > 0) {
          deliver(toAlice, alice, got.a);
        } else if (toBob.length > 0) {
          deliver(toBob, bob, got.b);
        }
      }
      expect(got.b.size).to.equal(N);
      expect(got.a.size).to.equal(N);
      // the run really was out of order, with many DH ratchet steps
      expect(stats.outOfOrder).to.be.greaterThan(500);
      expect(stats.chains).to.be.greaterThan(100);
      expect(alice.skippedKeys).to.equal(0);
      expect(bob.skippedKeys).to.equal(0);
      // every message decrypts once: replays of a sample are refused
      for (let i = 0; i < 40; i++) {
        const { to, f } = delivered[Math.floor(rnd() * delivered.length)]!;
        expectCode(() => to.decrypt(f.message), 'ERR_MESSAGE_REPLAY');
      }
    }
  });

  it('a session with other keys cannot decrypt', () => {
    const { alice } = connected();
    const eve = connected();
    const m = alice.encrypt(text('for Bob only')).message;
    expectCode(() => eve.bob.decrypt(m), 'ERR_MESSAGE_AUTH');
    expectCode(() => eve.alice.decrypt(m), 'ERR_MESSAGE_AUTH');
  });

  it('refuses tampered headers and bodies and stays usable', () => {
    const { alice, bob } = connected();
    bob.decrypt(alice.encrypt(text('one')).message);
    alice.decrypt(bob.encrypt(text('two')).message);
    for (const [from, to] of [
      [alice, bob],
      [bob, alice],
    ] as const) {
      const m = from.encrypt(text('tamper with me')).message;
      for (let i = 0; i < m.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const t = Uint8Array.from(m);
          t[i]! ^= bit;
          const code = codeOf(() => to.decrypt(t));
          if (code === null) expect.fail(`accepted a change at byte ${i}`);
          expect(code).to.be.oneOf(i < RATCHET_HEADER_LEN ? DECRYPT_CODES : ['ERR_MESSAGE_AUTH']);
        }
      }
      expectCode(() => to.decrypt(m.subarray(0, RATCHET_OVERHEAD - 1)), 'ERR_TRUNCATED');
      expectCode(() => to.decrypt(m.subarray(0, m.length - 1)), 'ERR_MESSAGE_AUTH');
      expect(str(to.decrypt(m).plaintext)).to.equal('tamper with me');
    }
  });

  it('refuses replays: in order, after skipping, and from a closed chain', () => {
    const { alice, bob } = connected();
    const m = [0, 1, 2].map((i) => alice.encrypt(text(`m${i}`)).message);
    bob.decrypt(m[0]!);
    expectCode(() => bob.decrypt(m[0]!), 'ERR_MESSAGE_REPLAY');
    bob.decrypt(m[2]!); // m1's key is kept
    expectCode(() => bob.decrypt(m[2]!), 'ERR_MESSAGE_REPLAY');
    bob.decrypt(m[1]!);
    expectCode(() => bob.decrypt(m[1]!), 'ERR_MESSAGE_REPLAY');
    alice.decrypt(bob.encrypt(text('reply')).message);
    bob.decrypt(alice.encrypt(text('new chain')).message); // closes the chain of m0..m2
    for (const old of m) expectCode(() => bob.decrypt(old), 'ERR_MESSAGE_REPLAY');
  });

  it('skips at most MAX_SKIP keys in one step and holds at most MAX_SKIP', () => {
    const { alice, bob } = connected();
    // bob has received "hello" (n = 0); m[i] has n = i + 1, so decrypting m[i] first skips i keys
    const m = Array.from({ length: MAX_SKIP + 2 }, (_, i) => alice.encrypt(text(`m${i}`)).message);
    expectCode(() => bob.decrypt(m[MAX_SKIP + 1]!), 'ERR_RATCHET_SKIP');
    expect(bob.skippedKeys).to.equal(0);
    expect(str(bob.decrypt(m[MAX_SKIP]!).plaintext)).to.equal(`m${MAX_SKIP}`);
    expect(bob.skippedKeys).to.equal(MAX_SKIP);
    bob.decrypt(m[MAX_SKIP + 1]!);
    // a second jump pushes the total past MAX_SKIP: the oldest kept keys go
    alice.decrypt(bob.encrypt(text('reply')).message);
    const next = Array.from({ length: 12 }, (_, i) => alice.encrypt(text(`n${i}`)).message);
    bob.decrypt(next[11]!);
    expect(bob.skippedKeys).to.equal(MAX_SKIP);
    for (let i = 0; i < 11; i++) expectCode(() => bob.decrypt(m[i]!), 'ERR_MESSAGE_REPLAY'); // dropped
    for (let i = 11; i < MAX_SKIP; i += 97) expect(str(bob.decrypt(m[i]!).plaintext)).to.equal(`m${i}`);
    for (let i = 0; i < 11; i++) expect(str(bob.decrypt(next[i]!).plaintext)).to.equal(`n${i}`);
  });

  it('the responder sends only after its first message; destroyed sessions refuse use', () => {
    const b = createIdentity();
    const prekey = crypto().x25519Keypair();
    const init = initiatorHandshake(createIdentity(), { identityKey: b.publicKey, prekey: prekey.publicKey });
    const resp = responderHandshake({ identity: b, prekey }, init.handshake);
    expect(resp.session.canSend).to.equal(false);
    expectCode(() => resp.session.encrypt(text('too early')), 'ERR_INTERNAL');
    resp.session.decrypt(init.session.encrypt(text('hi')).message);
    expect(resp.session.canSend).to.equal(true);
    resp.session.destroy();
    expectCode(() => resp.session.encrypt(text('gone')), 'ERR_KEY_WIPED');
  });

  it('padding with RATCHET_OVERHEAD makes every message exactly a bucket long', () => {
    const { alice, bob } = connected();
    for (const len of [0, 1, 100, 824, 825, 826, 1700, 5000, 20000]) {
      const plain = crypto().random(len);
      const { message } = alice.encrypt(pad(plain, RATCHET_OVERHEAD));
      expect(PAD_BUCKETS).to.include(message.length);
      expect(toHex(unpad(bob.decrypt(message).plaintext, RATCHET_OVERHEAD))).to.equal(toHex(plain));
    }
  });

  it('decrypt is total over arbitrary and mutated messages, and leaves the session working', () => {
    const { alice, bob } = connected();
    const sample = alice.encrypt(text('sample')).message;
    const mutated = fc.tuple(fc.nat({ max: sample.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const t = Uint8Array.from(sample);
      t[i]! ^= x;
      return t;
    });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 120 })), (m) => {
        total(() => bob.decrypt(m), DECRYPT_CODES);
      }),
      { numRuns: 300 },
    );
    expect(str(bob.decrypt(sample).plaintext)).to.equal('sample');
    expect(str(alice.decrypt(bob.encrypt(text('still here')).message).plaintext)).to.equal('still here');
  });
});

describeEachBinding('protocol/ratchet-state', () => {
  it('serialised sessions restore and carry on, held skipped keys included', () => {
    const { alice, bob } = connected();
    const early = [0, 1, 2, 3].map((i) => alice.encrypt(text(`early ${i}`)).message);
    bob.decrypt(early[3]!); // keys for early 0..2 held
    alice.decrypt(bob.encrypt(text('ack')).message);
    const a2 = RatchetSession.restore(alice.serialize());
    const b2 = RatchetSession.restore(bob.serialize());
    expect(toHex(b2.serialize())).to.equal(toHex(bob.serialize()));
    expect(b2.skippedKeys).to.equal(3);
    for (let i = 0; i < 3; i++) expect(str(b2.decrypt(early[i]!).plaintext)).to.equal(`early ${i}`);
    expect(str(b2.decrypt(a2.encrypt(text('after restore')).message).plaintext)).to.equal('after restore');
    expect(str(a2.decrypt(b2.encrypt(text('both ways')).message).plaintext)).to.equal('both ways');
  });

  it('refuses malformed or inconsistent state', () => {
    const { bob } = connected();
    const bytes = bob.serialize();
    expect(bytes.length).to.be.below(MAX_RATCHET_STATE_BYTES);
    const m = decodeCbor(bytes, MAX_RATCHET_STATE_BYTES) as Record<string, unknown> & { dhs: { pk: Uint8Array; sk: Uint8Array } };
    expectCode(() => decodeRatchetState(encodeCbor({ ...m, dhs: { pk: m.dhs.pk, sk: crypto().random(32) } })), 'ERR_KEY_FORMAT');
    expectCode(() => decodeRatchetState(encodeCbor({ ...m, v: 2 })), 'ERR_SCHEMA');
    expectCode(() => decodeRatchetState(encodeCbor({ ...m, dhr: null })), 'ERR_SCHEMA');
    const mutated = fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const t = Uint8Array.from(bytes);
      t[i]! ^= x;
      return t;
    });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 200 })), (b) => {
        total(() => decodeRatchetState(b), ['ERR_CBOR_MALFORMED', 'ERR_CBOR_NONCANONICAL', 'ERR_CBOR_DEPTH', 'ERR_SCHEMA', 'ERR_KEY_FORMAT']);
      }),
      { numRuns: 300 },
    );
  });
});

describeEachBinding('protocol/ratchet: compromise', () => {
  it('post-compromise security: an old state reads the current chains, and nothing once both sides have ratcheted', () => {
    const { alice, bob } = connected();
    const stolenBob = bob.serialize(); // Eve copies Bob's whole state after "hello"
    const stolenAlice = alice.serialize(); // and Alice's
    const b1 = bob.encrypt(text('b1')).message; // on Bob's chain from "hello": Eve-as-Bob knows it
    alice.decrypt(b1);
    const a2 = alice.encrypt(text('a2')).message; // Alice's new chain, DH(A2, B1): Eve knows B1's secret
    bob.decrypt(a2);
    const b3 = bob.encrypt(text('b3')).message; // Bob's new chain, DH(B2, A2): B2 is new
    alice.decrypt(b3);
    const a4 = alice.encrypt(text('a4')).message; // DH(A3, B2)
    bob.decrypt(a4);
    const b5 = bob.encrypt(text('b5')).message;
    alice.decrypt(b5);

    // Eve with Bob's old state reads a2 (not yet healed), but not a4: Bob's new key B2 is unknown to her
    const eveB = RatchetSession.restore(stolenBob);
    expect(str(eveB.decrypt(a2).plaintext)).to.equal('a2');
    expectCode(() => eveB.decrypt(a4), 'ERR_MESSAGE_AUTH');
    // Eve with Alice's old state reads b1, but not b3 or b5
    const eveA = RatchetSession.restore(stolenAlice);
    expect(str(eveA.decrypt(b1).plaintext)).to.equal('b1');
    expectCode(() => eveA.decrypt(b3), 'ERR_MESSAGE_AUTH');
    expectCode(() => RatchetSession.restore(stolenAlice).decrypt(b5), 'ERR_MESSAGE_AUTH');
  });

  it('forward secrecy: a later state cannot decrypt messages already received', () => {
    const { alice, bob } = connected();
    const ms = [0, 1, 2].map((i) => alice.encrypt(text(`m${i}`)).message);
    for (const m of ms) bob.decrypt(m);
    alice.decrypt(bob.encrypt(text('r')).message);
    bob.decrypt(alice.encrypt(text('next')).message);
    const later = RatchetSession.restore(bob.serialize());
    for (const m of ms) expectCode(() => later.decrypt(m), 'ERR_MESSAGE_REPLAY');
    // and no key for them is stored: the serialised state holds no skipped keys
    expect(later.skippedKeys).to.equal(0);
  });
});
