/**
 * specs/vectors/link.json: the link handshake (specs/link.md §2): msg1, msg2 and msg3 of full handshakes from fixed
 * identity keys, ephemerals and clocks, for a client and a relay initiator, without and with a bridge secret, with
 * every value of the key schedule; the upgrade token and the dialed URL (§2.6); the first frames of one direction
 * (§3); the msg1, msg2, msg3, token and frame inputs that are refused, with their codes. Then bridges
 * (specs/directory.md §9): the bridge line and what it parses to, lines that are refused, a bridge descriptor signed
 * under the bridge context (and a public one under the relay context), each refused under the other context, and
 * the bridge-get and bridge CONTROL messages.
 */
import { parseBridgeLine } from '../../client/bootstrap.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { withUpgradeToken } from '../../net/dial.js';
import { ByteWriter, concatBytes, fromHex, toHex, utf8 } from '../../protocol/bytes.js';
import { encodeControl } from '../../protocol/control.js';
import { signDescriptor, verifyDescriptor, type DescriptorFields } from '../../protocol/descriptor.js';
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
  LinkRole,
  MSG1_HEAD_LEN,
  PAYLOAD1_LEN,
  PAYLOAD2_LEN,
  UPGRADE_TOKEN_LEN,
  UPGRADE_TOKEN_PARAM,
} from '../../protocol/link-handshake.js';
import { check, errorCodeOf, expectCode, recordingRandom, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

/** A fixed clock for the vectors: 2025-06-15 12:00:00 UTC. */
const NOW = 1_749_988_800_000;
/** The default clock skew (`timing.clock_skew`); the replay cache keeps tags for twice that. */
const SKEW = 10 * 60_000;
const HOUR = 3_600_000;
const NONCE0 = new Uint8Array(12);
const MSG3_HEAD_LEN = 97;

/** The labels of specs/link.md §2.2, written out here so that the vectors check the code against the spec. */
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

const BRIDGE_URL = 'wss://example.org/some/path';
const RELAY_URL = 'ws://198.51.100.7:9001/allium';

function keys() {
  const relaySeed = seeded('link/relay/identity')(32);
  const bridgeSeed = seeded('link/bridge/identity')(32);
  const dialerSeed = seeded('link/dialer/identity')(32);
  return {
    relaySeed,
    relay: IdentityKey.fromSeed(relaySeed),
    bridgeSeed,
    bridge: IdentityKey.fromSeed(bridgeSeed),
    bridgeSecret: seeded('link/bridge/secret')(32),
    dialerSeed,
    dialer: IdentityKey.fromSeed(dialerSeed),
  };
}
type Keys = ReturnType<typeof keys>;

function payload1(vmin: number, vmax: number, role: number, ts: number): Uint8Array {
  return new ByteWriter(PAYLOAD1_LEN).u16(vmin).u16(vmax).u8(role).u8(0).u16(0).u64(BigInt(ts)).done();
}

function payload2(version: number, ts: number): Uint8Array {
  return new ByteWriter(PAYLOAD2_LEN).u16(version).u16(0).u64(BigInt(ts)).u32(0).done();
}

/** An ephemeral key as §2.2 makes it from random(32) and random(1). */
function ephemeral(random: Uint8Array, off: number): { e: Uint8Array; E: Uint8Array } {
  const e = random.slice(off, off + 32);
  const E = crypto().x25519Public(e);
  E[31] = (E[31]! & 0x7f) | (random[off + 32]! & 0x80);
  return { e, E };
}

/** A msg1 head (E_i | c1) made by the formulas of §2.2, for payloads LinkInitiator never makes. */
function craftHead(seed: string, responder: Uint8Array, psk: Uint8Array, p1: Uint8Array): Uint8Array {
  const c = crypto();
  const e = seeded(seed)(32);
  const E = c.x25519Public(e);
  const S = c.edPublicToX25519(responder);
  const k1 = H(LABEL.k1, c.x25519(e, S), E, S, psk);
  return concatBytes(E, c.aeadEncrypt(p1, E, NONCE0, k1));
}

interface HandshakeCase {
  slug: string;
  name: string;
  initiator: 'client' | 'relay';
  responder: 'relay' | 'bridge';
}

const HANDSHAKES: readonly HandshakeCase[] = [
  { slug: 'client-relay', name: 'client to a public relay, no pre-shared key', initiator: 'client', responder: 'relay' },
  { slug: 'relay-relay', name: 'relay to a public relay, no pre-shared key', initiator: 'relay', responder: 'relay' },
  { slug: 'client-bridge', name: 'client to a bridge, bridge secret as psk', initiator: 'client', responder: 'bridge' },
  { slug: 'relay-bridge', name: 'relay to a bridge, bridge secret as psk', initiator: 'relay', responder: 'bridge' },
];

function handshake(k: Keys, h: HandshakeCase, index: number) {
  const c = crypto();
  const responderKey = h.responder === 'bridge' ? k.bridge : k.relay;
  const psk = h.responder === 'bridge' ? k.bridgeSecret : new Uint8Array(32);
  const tI = NOW + index * 60_000;
  const tR = tI + 1_500;
  const iRec = recordingRandom(`link/${h.slug}/initiator`);
  const rRec = recordingRandom(`link/${h.slug}/responder`);
  const init = new LinkInitiator({
    responder: responderKey.publicKey,
    ...(h.initiator === 'relay' ? { identity: k.dialer } : {}),
    ...(h.responder === 'bridge' ? { psk } : {}),
    now: tI,
    random: iRec.random,
  });
  const msg1 = Uint8Array.from(init.start());
  const token = init.upgradeToken();
  const resp = new LinkResponder({
    identity: responderKey,
    ...(h.responder === 'bridge' ? { psk } : {}),
    replay: new HandshakeReplayCache(2 * SKEW, 1000),
    maxClockSkewMs: SKEW,
    random: rRec.random,
  });
  const msg2 = resp.respond(msg1, tR);
  const fin = init.finish(msg2);
  const rKeys = resp.keys;
  check(toHex(fin.keys.send) === toHex(rKeys.receive) && toHex(fin.keys.receive) === toHex(rKeys.send), `${h.name}: both ends agree on the frame keys`);
  const msg3Frame = new FrameCipher(Uint8Array.from(fin.keys.send)).seal(fin.msg3);
  const opened = new FrameCipher(Uint8Array.from(rKeys.receive)).open(Uint8Array.from(msg3Frame));
  const peer = resp.finish(opened);

  // The key schedule of §2.2, computed from the spec and checked against what the code produced.
  const iTaken = fromHex(iRec.taken());
  const rTaken = fromHex(rRec.taken());
  const { e: ei, E: Ei } = ephemeral(iTaken, 0);
  const { e: er, E: Er } = ephemeral(rTaken, 0);
  const S = c.edPublicToX25519(responderKey.publicKey);
  const es = c.x25519(ei, S);
  const k1 = H(LABEL.k1, es, Ei, S, psk);
  const p1 = payload1(LINK_VERSION_MIN, LINK_VERSION_MAX, h.initiator === 'relay' ? LinkRole.RELAY : LinkRole.CLIENT, tI);
  const head = msg1.subarray(0, MSG1_HEAD_LEN);
  const th = H(LABEL.th, head, Er);
  const ee = c.x25519(er, Ei);
  const ck = H(LABEL.ck, ee, es, psk, th);
  const k2 = H(LABEL.k2, ck);
  const p2 = payload2(LINK_VERSION_MAX, tR);
  const i2r = H(LABEL.i2r, ck);
  const r2i = H(LABEL.r2i, ck);
  const auth = H(LABEL.auth, ck);
  check(toHex(msg1.subarray(0, 32)) === toHex(Ei), `${h.name}: E_i`);
  check(toHex(msg1.subarray(32, 64)) === toHex(c.aeadEncrypt(p1, Ei, NONCE0, k1)), `${h.name}: c1`);
  check(toHex(msg1.subarray(64)) === toHex(iTaken.subarray(33 + 64)), `${h.name}: msg1 padding`);
  check(toHex(msg2.subarray(0, 32)) === toHex(Er), `${h.name}: E_r`);
  check(toHex(msg2.subarray(32, 64)) === toHex(c.aeadEncrypt(p2, th, NONCE0, k2)), `${h.name}: c2`);
  check(toHex(fin.keys.send) === toHex(i2r) && toHex(fin.keys.receive) === toHex(r2i), `${h.name}: K_i2r and K_r2i`);
  check(token === encodeUpgradeToken(head) && toHex(decodeUpgradeToken(token)) === toHex(head), `${h.name}: token`);
  check(token === Buffer.from(head).toString('base64url'), `${h.name}: token is RFC 4648 §5 base64url`);
  const msg3Head = fin.msg3.subarray(0, MSG3_HEAD_LEN);
  check(
    fin.msg3.subarray(MSG3_HEAD_LEN).every((b) => b === 0),
    `${h.name}: msg3 is zero after byte 97`,
  );
  if (h.initiator === 'relay') {
    check(toHex(msg3Head.subarray(1, 33)) === toHex(k.dialer.publicKey), `${h.name}: msg3 identity`);
    check(c.verify(msg3Head.subarray(33, 97), concatBytes(SIGN_CONTEXT, auth), k.dialer.publicKey), `${h.name}: msg3 signature over auth`);
  }
  check(peer.role === (h.initiator === 'relay' ? LinkRole.RELAY : LinkRole.CLIENT) && peer.version === LINK_VERSION_MAX, `${h.name}: peer`);

  return {
    name: h.name,
    initiator: h.initiator,
    responder: h.responder,
    responderIdentity: toHex(responderKey.publicKey),
    psk: toHex(psk),
    initiatorNow: tI,
    responderNow: tR,
    initiatorRandom: iRec.taken(),
    initiatorRandomCalls: iRec.calls(),
    responderRandom: rRec.taken(),
    responderRandomCalls: rRec.calls(),
    schedule: {
      e_i: toHex(ei),
      E_i: toHex(Ei),
      S: toHex(S),
      es: toHex(es),
      k1: toHex(k1),
      payload1: toHex(p1),
      e_r: toHex(er),
      E_r: toHex(Er),
      ee: toHex(ee),
      th: toHex(th),
      ck: toHex(ck),
      k2: toHex(k2),
      payload2: toHex(p2),
      auth: toHex(auth),
    },
    msg1: toHex(msg1),
    upgradeToken: token,
    msg2: toHex(msg2),
    keys: { i2r: toHex(i2r), r2i: toHex(r2i) },
    msg3Head: toHex(msg3Head),
    msg3Frame: toHex(msg3Frame),
    peer: { role: peer.role, identity: peer.identity ? toHex(peer.identity) : null, version: peer.version },
  };
}
type Handshake = ReturnType<typeof handshake>;

const flip = (b: Uint8Array, i: number, mask = 0x01): Uint8Array => {
  const out = Uint8Array.from(b);
  out[i]! ^= mask;
  return out;
};
const headOf = (h: Handshake): Uint8Array => fromHex(h.msg1).subarray(0, MSG1_HEAD_LEN);

/** What a responder does with a msg1 (its 4048 padding bytes do not matter: they are zero here). */
function respondTo(
  k: Keys,
  responder: 'relay' | 'bridge',
  psk: Uint8Array | null,
  head: Uint8Array,
  now: number,
  seen: readonly { head: Uint8Array; now: number }[],
): void {
  const replay = new HandshakeReplayCache(2 * SKEW, 1000);
  const make = () =>
    new LinkResponder({
      identity: responder === 'bridge' ? k.bridge : k.relay,
      ...(psk ? { psk } : {}),
      replay,
      maxClockSkewMs: SKEW,
      random: seeded('link/msg1-invalid/responder'),
    });
  for (const s of seen) make().respond(concatBytes(s.head, new Uint8Array(FRAME_LEN - MSG1_HEAD_LEN)), s.now);
  make().respond(concatBytes(head, new Uint8Array(FRAME_LEN - MSG1_HEAD_LEN)), now);
}

function msg1Invalid(k: Keys, hs: readonly Handshake[]) {
  const [clientRelay, , clientBridge] = hs as [Handshake, Handshake, Handshake, Handshake];
  const noSecret = new LinkInitiator({ responder: k.bridge.publicKey, now: NOW, random: seeded('link/msg1-invalid/no-secret') }).start();
  const wrongSecret = new LinkInitiator({
    responder: k.bridge.publicKey,
    psk: seeded('link/msg1-invalid/wrong-secret')(32),
    now: NOW,
    random: seeded('link/msg1-invalid/wrong-secret-init'),
  }).start();
  const otherRelay = new LinkInitiator({ responder: k.dialer.publicKey, now: NOW, random: seeded('link/msg1-invalid/other-relay') }).start();
  const cases: {
    name: string;
    responder: 'relay' | 'bridge';
    psk: Uint8Array | null;
    head: Uint8Array;
    now: number;
    seen: { head: Uint8Array; now: number }[];
    error: string;
  }[] = [
    {
      name: 'made without the secret, at a bridge',
      responder: 'bridge',
      psk: k.bridgeSecret,
      head: noSecret.subarray(0, 64),
      now: NOW,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    {
      name: 'made with a wrong secret, at a bridge',
      responder: 'bridge',
      psk: k.bridgeSecret,
      head: wrongSecret.subarray(0, 64),
      now: NOW,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    {
      name: 'made with the secret, at the bridge run without one',
      responder: 'bridge',
      psk: null,
      head: headOf(clientBridge),
      now: clientBridge.responderNow,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    { name: 'made for another relay', responder: 'relay', psk: null, head: otherRelay.subarray(0, 64), now: NOW, seen: [], error: 'ERR_LINK_PROBE' },
    {
      name: 'top bit of E_i flipped (E_i is the AEAD associated data)',
      responder: 'relay',
      psk: null,
      head: flip(headOf(clientRelay), 31, 0x80),
      now: clientRelay.responderNow,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    {
      name: 'last tag byte of c1 flipped',
      responder: 'relay',
      psk: null,
      head: flip(headOf(clientRelay), 63),
      now: clientRelay.responderNow,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    {
      name: 'E_i all zero (small order)',
      responder: 'relay',
      psk: null,
      head: concatBytes(new Uint8Array(32), headOf(clientRelay).subarray(32)),
      now: clientRelay.responderNow,
      seen: [],
      error: 'ERR_LINK_PROBE',
    },
    {
      name: 'replayed: the same msg1 a second time, one second later',
      responder: 'relay',
      psk: null,
      head: headOf(clientRelay),
      now: clientRelay.responderNow + 1000,
      seen: [{ head: headOf(clientRelay), now: clientRelay.responderNow }],
      error: 'ERR_LINK_REPLAY',
    },
    {
      name: 'timestamp one millisecond more than the clock skew behind',
      responder: 'relay',
      psk: null,
      head: headOf(clientRelay),
      now: clientRelay.initiatorNow + SKEW + 1,
      seen: [],
      error: 'ERR_LINK_CLOCK',
    },
    {
      name: 'timestamp one millisecond more than the clock skew ahead',
      responder: 'relay',
      psk: null,
      head: headOf(clientRelay),
      now: clientRelay.initiatorNow - SKEW - 1,
      seen: [],
      error: 'ERR_LINK_CLOCK',
    },
    {
      name: 'role 3',
      responder: 'relay',
      psk: null,
      head: craftHead('link/msg1-invalid/role-3', k.relay.publicKey, new Uint8Array(32), payload1(1, 1, 3, NOW)),
      now: NOW,
      seen: [],
      error: 'ERR_LINK_HANDSHAKE',
    },
    {
      name: 'versions 2 to 3 only',
      responder: 'relay',
      psk: null,
      head: craftHead('link/msg1-invalid/version-2', k.relay.publicKey, new Uint8Array(32), payload1(2, 3, 1, NOW)),
      now: NOW,
      seen: [],
      error: 'ERR_LINK_VERSION',
    },
  ];
  const accepted = [
    {
      name: 'timestamp exactly the clock skew behind',
      responder: 'relay' as const,
      psk: null,
      head: headOf(clientRelay),
      now: clientRelay.initiatorNow + SKEW,
    },
    { name: 'timestamp exactly the clock skew ahead', responder: 'relay' as const, psk: null, head: headOf(clientRelay), now: clientRelay.initiatorNow - SKEW },
  ];
  for (const a of accepted) respondTo(k, a.responder, a.psk, a.head, a.now, []);
  return {
    refused: cases.map((v) => ({
      name: v.name,
      responder: v.responder,
      psk: v.psk ? toHex(v.psk) : null,
      head: toHex(v.head),
      now: v.now,
      seen: v.seen.map((s) => ({ head: toHex(s.head), now: s.now })),
      error: expectCode(
        errorCodeOf(() => respondTo(k, v.responder, v.psk, v.head, v.now, v.seen), v.name),
        v.error,
        `msg1 "${v.name}"`,
      ),
    })),
    accepted: accepted.map((a) => ({ name: a.name, responder: a.responder, psk: a.psk, head: toHex(a.head), now: a.now })),
  };
}

/** The initiator of handshake `h`, rebuilt from its random bytes, reading a msg2 whose head is `head`. */
function finishWith(k: Keys, h: Handshake, head: Uint8Array): void {
  const bytes = fromHex(h.initiatorRandom);
  let off = 0;
  const init = new LinkInitiator({
    responder: fromHex(h.responderIdentity),
    ...(h.initiator === 'relay' ? { identity: k.dialer } : {}),
    psk: fromHex(h.psk),
    now: h.initiatorNow,
    random: (n) => bytes.slice(off, (off += n)),
  });
  init.start();
  init.finish(concatBytes(head, new Uint8Array(FRAME_LEN - MSG1_HEAD_LEN)));
}

function msg2Invalid(k: Keys, hs: readonly Handshake[]) {
  const [clientRelay, relayRelay] = hs as [Handshake, Handshake];
  const head = fromHex(clientRelay.msg2).subarray(0, 64);
  const s = clientRelay.schedule;
  const version2 = concatBytes(fromHex(s.E_r), crypto().aeadEncrypt(payload2(2, clientRelay.responderNow), fromHex(s.th), NONCE0, fromHex(s.k2)));
  const cases: [string, Handshake, Uint8Array, string][] = [
    ['last tag byte of c2 flipped', clientRelay, flip(head, 63), 'ERR_LINK_AUTH'],
    ['top bit of E_r flipped (E_r is in the transcript)', clientRelay, flip(head, 31, 0x80), 'ERR_LINK_AUTH'],
    ['E_r all zero (small order)', clientRelay, concatBytes(new Uint8Array(32), head.subarray(32)), 'ERR_LINK_AUTH'],
    ['the msg2 of another handshake', clientRelay, fromHex(relayRelay.msg2).subarray(0, 64), 'ERR_LINK_AUTH'],
    ['version 2 chosen (c2 made under k2 of this handshake)', clientRelay, version2, 'ERR_LINK_VERSION'],
  ];
  return cases.map(([name, h, bytes, error]) => ({
    name,
    handshake: h.name,
    head: toHex(bytes),
    error: expectCode(
      errorCodeOf(() => finishWith(k, h, bytes), name),
      error,
      `msg2 "${name}"`,
    ),
  }));
}

/** The responder of handshake `h`, rebuilt from its random bytes, reading a msg3 plaintext. */
function readMsg3(k: Keys, h: Handshake, msg3: Uint8Array): void {
  const bytes = fromHex(h.responderRandom);
  let off = 0;
  const resp = new LinkResponder({
    identity: h.responder === 'bridge' ? k.bridge : k.relay,
    psk: fromHex(h.psk),
    replay: new HandshakeReplayCache(2 * SKEW, 1000),
    maxClockSkewMs: SKEW,
    random: (n) => bytes.slice(off, (off += n)),
  });
  resp.respond(fromHex(h.msg1), h.responderNow);
  resp.finish(msg3);
}

function msg3Invalid(k: Keys, hs: readonly Handshake[]) {
  const [clientRelay, relayRelay] = hs as [Handshake, Handshake];
  const client = fromHex(clientRelay.msg3Head);
  const relay = fromHex(relayRelay.msg3Head);
  const withRole = (b: Uint8Array, role: number) => {
    const o = Uint8Array.from(b);
    o[0] = role;
    return o;
  };
  const otherIdentity = Uint8Array.from(relay);
  otherIdentity.set(k.relay.publicKey, 1);
  const cases: [string, Handshake, Uint8Array, number | null, string][] = [
    ['relay: a signature bit flipped', relayRelay, flip(relay, 40), null, 'ERR_LINK_AUTH'],
    ['relay: another identity named', relayRelay, otherIdentity, null, 'ERR_LINK_AUTH'],
    ['relay: role 1 (msg1 said 2)', relayRelay, withRole(relay, LinkRole.CLIENT), null, 'ERR_LINK_HANDSHAKE'],
    ['relay: byte 4095 not zero', relayRelay, relay, FRAME_PLAIN_LEN - 1, 'ERR_CELL_PADDING'],
    ['client: role 2 (msg1 said 1)', clientRelay, withRole(client, LinkRole.RELAY), null, 'ERR_LINK_HANDSHAKE'],
    ['client: an identity given', clientRelay, concatBytes(client.subarray(0, 1), k.dialer.publicKey, client.subarray(33)), null, 'ERR_LINK_HANDSHAKE'],
    ['client: byte 97 not zero', clientRelay, client, MSG3_HEAD_LEN, 'ERR_CELL_PADDING'],
  ];
  return cases.map(([name, h, head, nonZero, error]) => {
    const full = new Uint8Array(FRAME_PLAIN_LEN);
    full.set(head);
    if (nonZero !== null) full[nonZero] = 1;
    return {
      name,
      handshake: h.name,
      head: toHex(head),
      nonZero,
      error: expectCode(
        errorCodeOf(() => readMsg3(k, h, full), name),
        error,
        `msg3 "${name}"`,
      ),
    };
  });
}

/** The replay cache of §2.4, one cache through the steps: the tag ignores E_i's top bit, and forgets after the window. */
function replayCache(hs: readonly Handshake[]) {
  const E0 = fromHex(hs[0]!.schedule.E_i);
  const E1 = fromHex(hs[1]!.schedule.E_i);
  const window = 2 * SKEW;
  const cache = new HandshakeReplayCache(window, 1000);
  const steps: [string, Uint8Array, number, boolean][] = [
    ['E_i of the first handshake', E0, NOW, false],
    ['the same with its top bit flipped', flip(E0, 31, 0x80), NOW + 1, true],
    ['E_i of the second handshake', E1, NOW + 2, false],
    ['the first again, 1 ms before its tag expires', E0, NOW + window - 1, true],
    ['the first again, when its tag has expired', E0, NOW + window, false],
  ];
  return {
    windowMs: window,
    steps: steps.map(([name, E, now, seen]) => {
      check(cache.checkAndRecord(E, now) === seen, `replay cache: ${name}`);
      return { name, E: toHex(E), now, seen };
    }),
  };
}

function nonceOf(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, BigInt(counter));
  return n;
}

function frames(h: Handshake) {
  const key = fromHex(h.keys.r2i);
  const plains = [new Uint8Array(FRAME_PLAIN_LEN), seeded('link/frames/plain-1')(FRAME_PLAIN_LEN)];
  const sealer = new FrameCipher(Uint8Array.from(key));
  const sealed = plains.map((plain, counter) => {
    const frame = sealer.seal(plain);
    check(toHex(frame) === toHex(crypto().aeadEncrypt(plain, null, nonceOf(counter), key)), `frame ${counter} nonce`);
    return { counter, nonce: toHex(nonceOf(counter)), plain: toHex(plain), frame: toHex(frame) };
  });
  const f1 = fromHex(sealed[1]!.frame);
  const invalid: { name: string; counter: number; frame: Uint8Array; error: string }[] = [
    { name: 'frame 1 with one bit of its ciphertext flipped', counter: 1, frame: flip(f1, 100), error: 'ERR_LINK_FRAME' },
    { name: 'frame 1 with one bit of its tag flipped', counter: 1, frame: flip(f1, FRAME_LEN - 1, 0x80), error: 'ERR_LINK_FRAME' },
    { name: 'frame 1 opened as counter 0 (reordered)', counter: 0, frame: f1, error: 'ERR_LINK_FRAME' },
    { name: 'frame 1 without its last byte', counter: 1, frame: f1.subarray(0, FRAME_LEN - 1), error: 'ERR_LINK_FRAME' },
  ];
  const openAt = (counter: number, frame: Uint8Array): Uint8Array => {
    const c = new FrameCipher(Uint8Array.from(key));
    for (let i = 0; i < counter; i++) c.open(fromHex(sealed[i]!.frame));
    return c.open(Uint8Array.from(frame));
  };
  check(toHex(openAt(1, f1)) === sealed[1]!.plain, 'frame 1 opens at counter 1');
  return {
    handshake: h.name,
    direction: 'responder to initiator (K_r2i)',
    key: toHex(key),
    sealed,
    refused: invalid.map((v) => ({
      name: v.name,
      counter: v.counter,
      frame: toHex(v.frame),
      error: expectCode(
        errorCodeOf(() => openAt(v.counter, v.frame), v.name),
        v.error,
        `frame "${v.name}"`,
      ),
    })),
  };
}

function tokens(hs: readonly Handshake[]) {
  const t = hs[0]!.upgradeToken;
  const last = t[t.length - 1]!;
  // 64 bytes are 512 bits: the 86th character carries 2 of them, and its 4 low bits must be zero.
  const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const unusedBit = t.slice(0, -1) + B64URL[B64URL.indexOf(last) | 1]!;
  const cases: [string, string][] = [
    ['85 characters', t.slice(0, -1)],
    ['87 characters', t + 'A'],
    ['padded with "=="', t + '=='],
    ['empty', ''],
    ['an unused low bit of the last character set', unusedBit],
    ['standard base64 "+" in place of a base64url character', '+' + t.slice(1)],
    ['standard base64 "/" in place of a base64url character', t.slice(0, -2) + '/' + last],
  ];
  const urls: [string, string][] = [
    [BRIDGE_URL, hs[2]!.upgradeToken],
    [`${RELAY_URL}?token=${hs[1]!.upgradeToken}`, t],
    [`wss://example.org/p/allium?a=1&token=earlier&b=2`, t],
  ];
  return {
    param: UPGRADE_TOKEN_PARAM,
    urls: urls.map(([url, token]) => {
      const result = withUpgradeToken(url, token);
      check(new URL(result).searchParams.getAll(UPGRADE_TOKEN_PARAM).join() === token, `token in ${url}`);
      return { url, token, result };
    }),
    refused: cases.map(([name, token]) => ({
      name,
      token,
      error: expectCode(
        errorCodeOf(() => decodeUpgradeToken(token), name),
        'ERR_LINK_PROBE',
        `token "${name}"`,
      ),
    })),
  };
}

function bridge(k: Keys) {
  const fp = toHex(k.bridge.publicKey);
  const secret = toHex(k.bridgeSecret);
  const line = `bridge ${BRIDGE_URL} ${fp} secret=${secret}`;
  const parsedOf = (text: string) => {
    const p = parseBridgeLine(text);
    return { url: p.url, identity: toHex(p.identity), secret: toHex(p.secret), line: p.line };
  };
  const lines: [string, string][] = [
    ['as a bridge prints it', line],
    ['without the leading word', `${BRIDGE_URL} ${fp} secret=${secret}`],
    ['upper-case hex, extra spaces', `  bridge   ${BRIDGE_URL}\t${fp.toUpperCase()}  secret=${secret.toUpperCase()} `],
    ['ws:// address', `bridge ws://192.0.2.10:8443/allium ${fp} secret=${secret}`],
  ];
  const parsed = lines.map(([name, text]) => ({ name, text, parsed: parsedOf(text) }));
  check(
    parsed.slice(0, 3).every((p) => p.parsed.line === line),
    'bridge lines normalise to the printed form',
  );
  const refusedLines: [string, string][] = [
    ['fingerprint of 63 hex digits', `bridge ${BRIDGE_URL} ${fp.slice(1)} secret=${secret}`],
    ['fingerprint with a non-hex digit', `bridge ${BRIDGE_URL} g${fp.slice(1)} secret=${secret}`],
    ['no secret', `bridge ${BRIDGE_URL} ${fp}`],
    ['secret of 63 hex digits', `bridge ${BRIDGE_URL} ${fp} secret=${secret.slice(1)}`],
    ['secret without "secret="', `bridge ${BRIDGE_URL} ${fp} ${secret}`],
    ['an https:// address', `bridge https://example.org/some/path ${fp} secret=${secret}`],
    ['a field too many', `bridge ${BRIDGE_URL} ${fp} secret=${secret} extra`],
    ['a line break between fields', `bridge ${BRIDGE_URL} ${fp}\nsecret=${secret}`],
    ['a no-break space (U+00A0) between fields', `bridge ${BRIDGE_URL}\u00a0${fp} secret=${secret}`],
  ];

  const onion = (seed: string) => crypto().x25519Public(seeded(seed)(32));
  const bridgeFields: DescriptorFields = {
    id: k.bridge.publicKey,
    onion: onion('link/bridge/onion-key'),
    addr: BRIDGE_URL,
    nick: 'quietbridge',
    contact: '',
    family: [],
    bw: 10 * 1024 * 1024,
    exit: ['reject *:*'],
    caps: [],
    pub: NOW,
    exp: NOW + 3 * HOUR,
  };
  const relayFields: DescriptorFields = {
    ...bridgeFields,
    id: k.relay.publicKey,
    onion: onion('link/relay/onion-key'),
    addr: RELAY_URL,
    nick: 'publicrelay',
    caps: ['store', 'intro', 'rendezvous'],
  };
  const fieldsHex = (f: DescriptorFields) => ({ ...f, id: toHex(f.id), onion: toHex(f.onion), family: f.family.map(toHex) });
  const descriptor = (kind: 'bridge' | 'relay', f: DescriptorFields, sk: Uint8Array) => {
    const d = signDescriptor(f, sk, kind);
    const other = kind === 'bridge' ? 'relay' : 'bridge';
    check(toHex(verifyDescriptor(d.raw, NOW, undefined, kind).id) === toHex(f.id), `${kind} descriptor verifies under its own context`);
    return {
      kind,
      context: kind === 'bridge' ? 'allium-v1 bridge descriptor' : 'allium-v1 descriptor',
      fields: fieldsHex(f),
      raw: toHex(d.raw),
      digest: toHex(d.digest),
      refusedAs: {
        kind: other,
        error: expectCode(
          errorCodeOf(() => verifyDescriptor(d.raw, NOW, undefined, other), `${kind} as ${other}`),
          'ERR_SIGNATURE',
          `${kind} descriptor under the ${other} context`,
        ),
      },
    };
  };
  const bridgeDescriptor = descriptor('bridge', bridgeFields, k.bridge.secretKey);
  return {
    identitySeed: toHex(k.bridgeSeed),
    identity: fp,
    secret,
    url: BRIDGE_URL,
    line,
    lines: parsed,
    refusedLines: refusedLines.map(([name, text]) => ({
      name,
      text,
      error: expectCode(
        errorCodeOf(() => parseBridgeLine(text), name),
        'ERR_CONFIG',
        `bridge line "${name}"`,
      ),
    })),
    now: NOW,
    descriptors: [bridgeDescriptor, descriptor('relay', relayFields, k.relay.secretKey)],
    messages: {
      bridgeGet: toHex(encodeControl({ t: 'bridge-get' })),
      bridge: toHex(encodeControl({ t: 'bridge', d: fromHex(bridgeDescriptor.raw) })),
    },
  };
}

export function linkFile(): VectorFile {
  const k = keys();
  const hs = HANDSHAKES.map((h, i) => handshake(k, h, i));
  return {
    description:
      'The link handshake (specs/link.md §2), upgrade token (§2.6) and frames (§3), and bridge lines and descriptors (specs/directory.md §9). Each handshake gives the random bytes each side drew (ephemeral secret 32, top bit 1, padding 4112), the key schedule of §2.2, msg1, msg2, the first 97 bytes of msg3 (the rest is zero) and msg3 sealed as frame 0 under K_i2r. msg1 cases give the 64-byte head (the padding is zero) and the msg1 heads the responder admitted before, under one replay cache.',
    version: VECTORS_VERSION,
    constants: {
      frameLen: FRAME_LEN,
      framePlainLen: FRAME_PLAIN_LEN,
      frameCells: FRAME_CELLS,
      msg1HeadLen: MSG1_HEAD_LEN,
      payload1Len: PAYLOAD1_LEN,
      payload2Len: PAYLOAD2_LEN,
      upgradeTokenLen: UPGRADE_TOKEN_LEN,
      linkVersionMin: LINK_VERSION_MIN,
      linkVersionMax: LINK_VERSION_MAX,
      clockSkewMs: SKEW,
      replayWindowMs: 2 * SKEW,
    },
    relayIdentitySeed: toHex(k.relaySeed),
    relayIdentity: toHex(k.relay.publicKey),
    bridgeIdentitySeed: toHex(k.bridgeSeed),
    bridgeIdentity: toHex(k.bridge.publicKey),
    bridgeSecret: toHex(k.bridgeSecret),
    dialerIdentitySeed: toHex(k.dialerSeed),
    dialerIdentity: toHex(k.dialer.publicKey),
    handshakes: hs,
    msg1: msg1Invalid(k, hs),
    replayCache: replayCache(hs),
    msg2Refused: msg2Invalid(k, hs),
    msg3Refused: msg3Invalid(k, hs),
    frames: frames(hs[0]!),
    tokens: tokens(hs),
    bridge: bridge(k),
  };
}
