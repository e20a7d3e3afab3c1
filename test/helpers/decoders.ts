/**
 * Every decoder of untrusted bytes or text, as one table shared by the bounds test (test/property/bounds.test.ts)
 * and the fuzz targets (test/fuzz/): how to call it, its input cap, what it may throw, and valid inputs to start from
 * (seeds, made with the encoders or taken from specs/vectors/). A new decoder of untrusted input belongs here.
 * Not a test file: mocha only loads *.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseBootstrapLine, parseBridgeLine } from '../../protocol/bootstrap-line.js';
import { SocksHandshake } from '../../client/socks-handshake.js';
import { filterCss, filterHtml, filterSvg } from '../../client/content-filter/index.js';
import { filterStyleAttribute } from '../../client/content-filter/css.js';
import { seededRandom } from '../../crypto/drbg.js';
import { crypto } from '../../crypto/index.js';
import { fingerprintOf, IdentityKey, parseFingerprint } from '../../crypto/keys.js';
import { createIdentity, formatAddress, parseAddress } from '../../protocol/address.js';
import { decodeAttachment, encodeAttachment } from '../../protocol/attachment.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { decodeDeviceEnvelope, decodeLinkCode } from '../../protocol/device-link.js';
import { fromHex } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { decodeCell, decodeControlBody, decodeCreateBody, decodeCreatedBody, decodeDestroyBody } from '../../protocol/cell.js';
import { parseBlockPlaintext } from '../../protocol/chk.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { decodeCard, encodeCard, formatCard, parseCard } from '../../protocol/contact-card.js';
import { base32Decode, formatLink, parseLink } from '../../protocol/content-link.js';
import { decodeFetch, decodeFetched, decodeStore, decodeStored, encodeFetch, encodeStore } from '../../protocol/content-messages.js';
import { decodeControl, encodeControl } from '../../protocol/control.js';
import { computeConsensus, descriptorMd, encodeSignedHead, signHead, signVote, verifyConsensusHead, verifyVote } from '../../protocol/consensus.js';
import { verifyDescriptor as verifyDesc } from '../../protocol/descriptor.js';
import { signDescriptor, verifyDescriptor } from '../../protocol/descriptor.js';
import { createEndpointDescriptor, openEndpointDescriptor, verifyEndpointDescriptor } from '../../protocol/endpoint-descriptor.js';
import { ERROR_CODES, isAlliumError } from '../../protocol/errors.js';
import { parseExitPolicy, parsePolicyLine } from '../../protocol/exit-policy.js';
import { normalizeHost } from '../../protocol/hostname.js';
import { periodAt } from '../../protocol/key-blinding.js';
import { decodeManifestPayload } from '../../protocol/file-codec.js';
import { decodeUpgradeToken, HandshakeReplayCache, LinkResponder } from '../../protocol/link-handshake.js';
import { decodeMailboxDeletion, decodeMailboxItem, openMailboxItem, verifyMailboxStore } from '../../protocol/mailbox.js';
import { decodeFrame, encodeAckFrame, encodeHelloFrame, encodeMessageFrame } from '../../protocol/message-frames.js';
import { processOnion } from '../../protocol/onion.js';
import { decodeMixMailBody, decodeMixPollBody } from '../../protocol/mix-cells.js';
import { processMixPacket } from '../../protocol/mix-packet.js';
import { parseMessage } from '../../protocol/ratchet.js';
import { decodeRatchetState } from '../../protocol/ratchet-state.js';
import { decodeRelayPayload } from '../../protocol/relay-cell.js';
import { decodeRv, encodeRv } from '../../protocol/rendezvous-messages.js';
import { createEditionHints, decodeSiteManifest, editionPeriods, encodeSiteManifest, openEditionHint } from '../../protocol/site-manifest.js';
import { createRecord, openRecord, verifyRecord } from '../../protocol/ssk.js';
import { decodeBegin, decodeCircuitSendme, decodeEnd, encodeBegin } from '../../protocol/stream-messages.js';
import { parseHostPort, resolveRelayConfig } from '../../relay/config.js';
import { noReplay, onionTo, testRelays } from './circuit.js';

export type DecoderInput = Uint8Array | string;

export interface DecoderCase {
  readonly name: string;
  readonly input: 'bytes' | 'text';
  /** Largest input the decoder reads before refusing on size alone (its cap); the bounds test grows inputs to it. */
  readonly cap: number;
  /** Decodes; returns anything (the value), or throws. */
  run(input: DecoderInput): unknown;
  /** Valid inputs (and a few near-valid ones) to start from. */
  seeds(): DecoderInput[];
  /** True when the decoder reads CBOR, so the CBOR attack shapes apply. */
  readonly cbor?: boolean;
}

/** What a decoder may do with hostile input: return, or throw an AlliumError of a documented code other than ERR_INTERNAL. */
export function acceptableFailure(e: unknown): boolean {
  return isAlliumError(e) && e.code in ERROR_CODES && e.code !== 'ERR_INTERNAL';
}

const NOW = 1_750_000_000_000;
const bytes = (x: DecoderInput): Uint8Array => (typeof x === 'string' ? new TextEncoder().encode(x) : x);
const text = (x: DecoderInput): string => (typeof x === 'string' ? x : new TextDecoder().decode(x));

function vectors<T>(file: string): T {
  return JSON.parse(readFileSync(join(import.meta.dirname, '../../specs/vectors', file), 'utf8')) as T;
}
const hexList = (file: string, ...lists: string[]): Uint8Array[] => {
  const v = vectors<Record<string, { hex: string }[]>>(file);
  return lists.flatMap((l) => (v[l] ?? []).map((x) => fromHex(x.hex)));
};

function descriptorRaw(identity: IdentityKey, rand: (n: number) => Uint8Array): Uint8Array {
  return signDescriptor(
    {
      id: identity.publicKey,
      onion: rand(32),
      addr: 'ws://10.0.0.1:9001/allium',
      nick: 'seed',
      contact: 'x@y',
      family: [rand(32)],
      bw: 1000,
      exit: ['accept *:443', 'reject *:*'],
      caps: ['store', 'intro'],
      pub: NOW,
      exp: NOW + 3_600_000,
    },
    identity.secretKey,
  ).raw;
}

/** Keys, signed objects and seeds, made on first use (they need the crypto facade, initialised by the test hooks). */
function makeContext() {
  const rand = seededRandom('decoder-table');
  const identity = IdentityKey.fromSeed(rand(32));
  const desc = descriptorRaw(identity, rand);
  const authority = IdentityKey.fromSeed(rand(32));
  const authorities = new Set([fingerprintOf(authority.publicKey)]);
  const va = Math.floor(NOW / 600_000) * 600_000;
  const vote = signVote(
    {
      authority: authority.publicKey,
      validAfter: va,
      measures: true,
      commit: rand(32),
      reveal: null,
      entries: [{ id: identity.publicKey, md: descriptorMd(verifyDesc(desc, NOW)), flags: 3, bw: 1000, m: 900 }],
    },
    authority.secretKey,
  );
  const { head } = computeConsensus([verifyVote(vote, authorities)], null, { validAfter: va, interval: 600_000, srPeriod: 86_400_000, authorities });
  const consensus = encodeSignedHead(head, [[authority.publicKey, signHead(head, authority.secretKey)]]);
  const recipient = createIdentity(rand(32));
  const address = formatAddress(recipient.publicKey);
  const mailbox = vectors<{ items: { bytes?: string }[]; storeInvalid: { bytes: string }[] }>('mailbox.json');
  const mailboxSeeds = [...mailbox.storeInvalid.map((x) => fromHex(x.bytes))];
  const sskKey = { publisher: identity.publicKey, secret: rand(32), name: 'site' };
  const ssk = createRecord(identity.secretKey, sskKey, 3, 'allium:chk/abc');
  const siteRef = { rk: rand(32), dk: rand(32) };
  const site = encodeSiteManifest({
    idx: 'index.html',
    files: [
      { path: 'img/a.png', type: 'image/png', ref: siteRef, size: 100 },
      { path: 'index.html', type: 'text/html;charset=utf-8', ref: siteRef, size: 2000 },
    ],
    note: 'what changed',
  });
  const hintTarget = 'allium:chk/' + 'a'.repeat(111);
  const hints = createEditionHints(identity.secretKey, sskKey, 4, hintTarget, NOW);
  const relays = testRelays(2, 'decoder-table');
  const onion = onionTo(relays);
  const period = periodAt(Math.floor(NOW / 1000));
  const endpoint = createEndpointDescriptor(recipient, period, {
    v: 1,
    intro: [{ relay: rand(32), auth: IdentityKey.fromSeed(rand(32)).publicKey, enc: crypto().x25519Keypair(rand(32)).publicKey }],
    created: NOW,
    expires: NOW + 3_600_000,
  });
  const locator = endpoint.locator;
  return {
    rand,
    identity,
    desc,
    authorities,
    consensus,
    vote,
    recipient,
    address,
    mailboxSeeds,
    sskKey,
    ssk,
    site,
    hints,
    relays,
    onion,
    period,
    endpoint,
    locator,
    cells: hexList('cells.json', 'valid', 'invalid'),
  };
}
let context: ReturnType<typeof makeContext> | null = null;
const ctx = (): ReturnType<typeof makeContext> => (context ??= makeContext());

const FILTER_BASE = new URL('http://127.0.0.1:8888/allium:chk/aaaa/dir/page.html');
const FILTER_SEEDS = {
  html: [
    '<!doctype html><html><head><title>t</title><link rel=stylesheet href=s.css><style>a{color:red;background:url(x.png)}</style></head><body><p style="color:blue">x<img src=a.png srcset="b.png 2x"><a href="http://e/">out</a><video src=v.webm controls></video></body></html>',
    '<table><tr><td><form action=http://e/><input type=image src=x></form><iframe src=x></iframe><svg><image href=x /></svg><noscript><b>n</b></noscript><script>1</script>',
  ],
  css: [
    '@import "a.css"; @media screen { a { color: red } } @font-face { src: url(f.woff2) format("woff2") } b { background: url(http://e/) }',
    'a{width:calc(1px + 2%)}',
  ],
  svg: [
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style>rect{fill:red}</style><rect width="10" height="10" fill="url(#g)"/><image href="a.png"/><a href="b.html"><text>t</text></a></svg>',
  ],
};

const rv = (kind: Parameters<typeof decodeRv>[0]): DecoderCase => ({
  name: `rendezvous ${kind}`,
  input: 'bytes',
  cap: 900,
  cbor: true,
  run: (x) => decodeRv(kind, bytes(x)),
  seeds: () => [
    encodeRv('establishIntro', { k: ctx().rand(32), s: ctx().rand(64) }),
    encodeRv('introduce1', { k: ctx().rand(32), p: ctx().rand(100) }),
    encodeRv('rendezvous1', { c: ctx().rand(20), h: ctx().rand(100) }),
    encodeRv('empty', {}),
  ],
});
const CASES: DecoderCase[] = [
  {
    name: 'CBOR',
    input: 'bytes',
    cap: 256 * 1024,
    cbor: true,
    run: (x) => decodeCbor(bytes(x), 256 * 1024),
    seeds: () => hexList('cbor.json', 'valid', 'nonCanonical', 'invalid'),
  },
  { name: 'cell', input: 'bytes', cap: 1024, run: (x) => decodeCell(bytes(x)), seeds: () => ctx().cells },
  { name: 'CREATE body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeCreateBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  { name: 'CREATED body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeCreatedBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  { name: 'DESTROY body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeDestroyBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  { name: 'CONTROL body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeControlBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  { name: 'relay payload', input: 'bytes', cap: 891, run: (x) => decodeRelayPayload(bytes(x)), seeds: () => hexList('relay-payload.json', 'valid', 'invalid') },
  {
    name: 'control message',
    input: 'bytes',
    cap: 256 * 1024,
    cbor: true,
    run: (x) => decodeControl(bytes(x)),
    seeds: () => [
      encodeControl({ t: 'gossip-push', ds: [ctx().desc] }),
      encodeControl({ t: 'dir-get', since: 0, after: null }),
      encodeControl({ t: 'dir-want', ids: [ctx().rand(32)] }),
      encodeControl({ t: 'dir-found', ds: [ctx().desc] }),
      encodeControl({ t: 'gossip-summary', e: [[ctx().rand(32), 5]], after: null, more: false }),
      encodeControl({ t: 'gossip-announce', e: [[ctx().rand(32), 5]] }),
      encodeControl({ t: 'consensus-head', c: ctx().consensus }),
      encodeControl({ t: 'consensus-entries', d: ctx().rand(32), from: 0, e: [[ctx().rand(32), ctx().rand(16), 3, 1000]], more: false, ok: true }),
      encodeControl({ t: 'consensus-diff', from: ctx().rand(32), to: ctx().rand(32), ch: [[ctx().rand(32), null]], more: false, ok: true }),
      encodeControl({ t: 'vote-part', va: 600_000, i: 0, n: 1, b: ctx().rand(64) }),
      encodeControl({ t: 'view', at: NOW, d: ctx().rand(32), n: 3, c: null, s: ctx().rand(64) }),
    ],
  },
  ...(['establishIntro', 'introduce1', 'introduce2', 'introduceAck', 'establishRendezvous', 'rendezvous1', 'rendezvous2', 'empty'] as const).map(rv),
  {
    name: 'BEGIN',
    input: 'bytes',
    cap: 886,
    cbor: true,
    run: (x) => decodeBegin(bytes(x)),
    seeds: () => [encodeBegin({ a: 'example.com', p: 443 }), encodeBegin({ a: '127.0.0.1', p: 80 })],
  },
  { name: 'END', input: 'bytes', cap: 886, run: (x) => decodeEnd(bytes(x)), seeds: () => [Uint8Array.of(1), Uint8Array.of(255), new Uint8Array(0)] },
  { name: 'circuit SENDME', input: 'bytes', cap: 886, run: (x) => decodeCircuitSendme(bytes(x)), seeds: () => [new Uint8Array(17), ctx().rand(21)] },
  {
    name: 'STORE',
    input: 'bytes',
    cap: 886,
    cbor: true,
    run: (x) => decodeStore(bytes(x)),
    seeds: () => [encodeStore({ k: ctx().rand(32), t: 'block', n: 100, c: true })],
  },
  {
    name: 'FETCH',
    input: 'bytes',
    cap: 886,
    cbor: true,
    run: (x) => decodeFetch(bytes(x)),
    seeds: () => [encodeFetch({ k: ctx().rand(32), t: 'record', h: false })],
  },
  { name: 'STORED', input: 'bytes', cap: 886, cbor: true, run: (x) => decodeStored(bytes(x)), seeds: () => [encodeCbor({ s: 'ok' })] },
  { name: 'FETCHED', input: 'bytes', cap: 886, cbor: true, run: (x) => decodeFetched(bytes(x)), seeds: () => [encodeCbor({ s: 'found', n: 5 })] },
  { name: 'descriptor', input: 'bytes', cap: 8192, cbor: true, run: (x) => verifyDescriptor(bytes(x), NOW), seeds: () => [ctx().desc] },
  {
    name: 'consensus head',
    input: 'bytes',
    cap: 16 * 1024,
    cbor: true,
    run: (x) => verifyConsensusHead(bytes(x), ctx().authorities, NOW),
    seeds: () => [ctx().consensus],
  },
  { name: 'vote', input: 'bytes', cap: 64 * 1024, cbor: true, run: (x) => verifyVote(bytes(x), ctx().authorities), seeds: () => [ctx().vote] },
  { name: 'mailbox item', input: 'bytes', cap: 64 * 1024, cbor: true, run: (x) => decodeMailboxItem(bytes(x)), seeds: () => ctx().mailboxSeeds },
  { name: 'mailbox deletion', input: 'bytes', cap: 64 * 1024, cbor: true, run: (x) => decodeMailboxDeletion(bytes(x)), seeds: () => ctx().mailboxSeeds },
  {
    name: 'mailbox store',
    input: 'bytes',
    cap: 64 * 1024,
    cbor: true,
    run: (x) => verifyMailboxStore(bytes(x), NOW, new Uint8Array(32)),
    seeds: () => ctx().mailboxSeeds,
  },
  {
    name: 'mailbox item opened',
    input: 'bytes',
    cap: 64 * 1024,
    cbor: true,
    run: (x) => openMailboxItem(ctx().recipient, new Uint8Array(32), bytes(x), { now: NOW }),
    seeds: () => ctx().mailboxSeeds,
  },
  {
    name: 'endpoint descriptor',
    input: 'bytes',
    cap: 64 * 1024,
    cbor: true,
    run: (x) => verifyEndpointDescriptor(ctx().locator, bytes(x), NOW),
    seeds: () => [ctx().endpoint.bytes],
  },
  {
    name: 'endpoint descriptor opened',
    input: 'bytes',
    cap: 64 * 1024,
    cbor: true,
    run: (x) => openEndpointDescriptor(ctx().address, ctx().period, bytes(x), { now: NOW }),
    seeds: () => [ctx().endpoint.bytes],
  },
  { name: 'SSK record', input: 'bytes', cap: 8192, cbor: true, run: (x) => verifyRecord(ctx().ssk.rk, bytes(x)), seeds: () => [ctx().ssk.bytes] },
  { name: 'SSK record opened', input: 'bytes', cap: 8192, cbor: true, run: (x) => openRecord(ctx().sskKey, bytes(x)), seeds: () => [ctx().ssk.bytes] },
  {
    name: 'file manifest',
    input: 'bytes',
    cap: 32 * 1024,
    cbor: true,
    run: (x) => decodeManifestPayload(bytes(x)),
    seeds: () => [encodeCbor({ v: 1, size: 100, segs: [[1, 1, new Uint8Array(128)]] }), encodeCbor({ v: 1, len: 64, parts: new Uint8Array(64) })],
  },
  { name: 'site manifest', input: 'bytes', cap: 256 * 1024, cbor: true, run: (x) => decodeSiteManifest(bytes(x)), seeds: () => [ctx().site] },
  {
    name: 'edition hint opened',
    input: 'bytes',
    cap: 8192,
    cbor: true,
    run: (x) => openEditionHint(ctx().sskKey, editionPeriods(NOW)[0]!, bytes(x)),
    seeds: () => ctx().hints.map((h) => h.bytes),
  },
  {
    name: 'block plaintext',
    input: 'bytes',
    cap: 32 * 1024,
    run: (x) => parseBlockPlaintext(bytes(x)),
    seeds: () => [Uint8Array.of(0, 0, 0, 0, 5, 1, 2, 3, 4, 5)],
  },
  {
    name: 'ratchet message',
    input: 'bytes',
    cap: 64 * 1024,
    run: (x) => parseMessage(bytes(x)),
    seeds: () => [Uint8Array.of(1, ...ctx().rand(32), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, ...ctx().rand(40))],
  },
  {
    name: 'conversation frame',
    input: 'bytes',
    cap: 64 * 1024,
    run: (x) => decodeFrame(bytes(x)),
    seeds: () => [
      encodeMessageFrame(1, ctx().rand(16), ctx().rand(10)),
      encodeMessageFrame(2, ctx().rand(16), ctx().rand(10), true),
      encodeAckFrame([ctx().rand(16), ctx().rand(16)]),
      encodeHelloFrame(1),
    ],
  },
  {
    name: 'attachment descriptor',
    input: 'bytes',
    cap: 4096,
    cbor: true,
    run: (x) => decodeAttachment(bytes(x)),
    seeds: () => [encodeAttachment({ root: { rk: ctx().rand(32), dk: ctx().rand(32) }, size: 123_456, type: 'image/png', name: 'leek.png' })],
  },
  {
    name: 'group envelope',
    input: 'bytes',
    cap: 48 * 1024,
    cbor: true,
    run: (x) => decodeGroupEnvelope(bytes(x)),
    seeds: () => {
      const v = vectors<{ message: { envelope: string }; senderKey: { envelope: string }; roster: { envelope: string } }>('groups.json');
      return [v.message.envelope, v.senderKey.envelope, v.roster.envelope].map(fromHex);
    },
  },
  { name: 'address card', input: 'bytes', cap: 1024, run: (x) => decodeCard(bytes(x)), seeds: () => [encodeCard(parseAddress(ctx().address), 'Alice')] },
  {
    name: 'device envelope',
    input: 'bytes',
    cap: 32 * 1024,
    cbor: true,
    run: (x) => decodeDeviceEnvelope(bytes(x)),
    seeds: () => {
      const v = vectors<{ list: { envelope: string }; envelopes: Array<{ bytes: string }> }>('devices.json');
      return [v.list.envelope, ...v.envelopes.map((e) => e.bytes)].map(fromHex);
    },
  },
  {
    name: 'link code',
    input: 'bytes',
    cap: 128,
    run: (x) => decodeLinkCode(bytes(x)),
    seeds: () => [fromHex(vectors<{ linkCode: { bytes: string } }>('devices.json').linkCode.bytes)],
  },
  { name: 'ratchet state', input: 'bytes', cap: 256 * 1024, cbor: true, run: (x) => decodeRatchetState(bytes(x)), seeds: () => [] },
  { name: 'MIX_POLL body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeMixPollBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  { name: 'MIX_MAIL body', input: 'bytes', cap: CELL_BODY_LEN, run: (x) => decodeMixMailBody(bytes(x)), seeds: () => ctx().cells.map((c) => c.subarray(5)) },
  {
    name: 'mix packet',
    input: 'bytes',
    cap: CELL_BODY_LEN,
    run: (x) => processMixPacket(bytes(x), { identity: ctx().relays[0]!.identity, keys: [ctx().relays[0]!.onionKey], replay: noReplay }),
    seeds: () => vectors<{ valid: { packet: string }[]; invalid: { packet: string }[] }>('mix.json').valid.map((v) => fromHex(v.packet)),
  },
  {
    name: 'setup onion header',
    input: 'bytes',
    cap: CELL_BODY_LEN,
    run: (x) => processOnion(bytes(x), { identity: ctx().relays[0]!.identity, onionKeys: [ctx().relays[0]!.onionKey], replay: noReplay }),
    seeds: () => [ctx().onion.header],
  },
  {
    name: 'link msg1',
    input: 'bytes',
    cap: 4112,
    run: (x) => new LinkResponder({ identity: ctx().identity, replay: new HandshakeReplayCache(60_000, 100), maxClockSkewMs: 600_000 }).respond(bytes(x), NOW),
    seeds: () => [],
  },
  // text
  { name: 'upgrade token', input: 'text', cap: 1024, run: (x) => decodeUpgradeToken(text(x)), seeds: () => ['AAAA', 'abc-_'] },
  { name: 'messaging address', input: 'text', cap: 1024, run: (x) => parseAddress(text(x)), seeds: () => [ctx().address, ctx().address.toUpperCase()] },
  {
    name: 'address card text',
    input: 'text',
    cap: 1024,
    run: (x) => parseCard(text(x)),
    seeds: () => [formatCard(parseAddress(ctx().address), 'Bob'), formatCard(parseAddress(ctx().address)).toUpperCase(), ctx().address],
  },
  {
    name: 'content link',
    input: 'text',
    cap: 4096,
    run: (x) => parseLink(text(x)),
    seeds: () => [
      'allium:chk/' + 'a'.repeat(103),
      'allium:ssk/' + 'b'.repeat(58) + '/name',
      formatLink({ type: 'ssk', ...ctx().sskKey }),
      formatLink({ type: 'chk', rk: ctx().rand(32), dk: ctx().rand(32), flags: 1 }),
    ],
  },
  { name: 'base32', input: 'text', cap: 4096, run: (x) => base32Decode(text(x)), seeds: () => ['mfrgg', 'aaaaaaaa'] },
  {
    name: 'exit policy line',
    input: 'text',
    cap: 1024,
    run: (x) => parsePolicyLine(text(x)),
    seeds: () => ['accept *:443', 'reject 10.0.0.0/8:*', 'accept [::1]:80-90'],
  },
  { name: 'exit policy', input: 'text', cap: 64 * 1024, run: (x) => parseExitPolicy(text(x).split('\n')), seeds: () => ['accept 127.0.0.1:*\nreject *:*'] },
  {
    name: 'bootstrap line',
    input: 'text',
    cap: 4096,
    run: (x) => parseBootstrapLine(text(x)),
    seeds: () => [
      `ws://127.0.0.1:9001/allium ${fingerprintOf(ctx().identity.publicKey)}`,
      `ws://127.0.0.1:9001/allium ${fingerprintOf(ctx().identity.publicKey)} authorities=${fingerprintOf(ctx().identity.publicKey)}`,
    ],
  },
  {
    name: 'bridge line',
    input: 'text',
    cap: 4096,
    run: (x) => parseBridgeLine(text(x)),
    seeds: () => [`bridge wss://h/p ${fingerprintOf(ctx().identity.publicKey)} secret=${'ab'.repeat(32)}`],
  },
  { name: 'fingerprint', input: 'text', cap: 1024, run: (x) => parseFingerprint(text(x)), seeds: () => [fingerprintOf(ctx().identity.publicKey)] },
  {
    name: 'SOCKS5 handshake',
    input: 'bytes',
    cap: 600,
    run: (x) => new SocksHandshake().push(bytes(x)),
    seeds: () => [
      Uint8Array.of(5, 1, 0, 5, 1, 0, 3, 3, 0x61, 0x62, 0x63, 0, 80),
      Uint8Array.of(5, 1, 2, 1, 1, 0x61, 1, 0x62, 5, 1, 0, 1, 127, 0, 0, 1, 1, 0xbb),
      new TextEncoder().encode('GET / HTTP/1.1\r\n'),
    ],
  },
  // The content filter (specs/content.md §13): pages, stylesheets and SVG a publisher controls.
  { name: 'HTML filter', input: 'text', cap: 256 * 1024, run: (x) => filterHtml(text(x), { base: FILTER_BASE }), seeds: () => FILTER_SEEDS.html },
  {
    name: 'HTML filter, scripts on',
    input: 'text',
    cap: 256 * 1024,
    run: (x) => filterHtml(text(x), { base: FILTER_BASE, scripts: true }),
    seeds: () => FILTER_SEEDS.html,
  },
  { name: 'CSS filter', input: 'text', cap: 256 * 1024, run: (x) => filterCss(text(x), FILTER_BASE), seeds: () => FILTER_SEEDS.css },
  {
    name: 'style attribute filter',
    input: 'text',
    cap: 64 * 1024,
    run: (x) => filterStyleAttribute(text(x), FILTER_BASE),
    seeds: () => ['color: red; background: url(a.png)', 'width: calc(1px + (2px * 3))'],
  },
  { name: 'SVG filter', input: 'text', cap: 256 * 1024, run: (x) => filterSvg(text(x), { base: FILTER_BASE }), seeds: () => FILTER_SEEDS.svg },
  {
    name: 'host name',
    input: 'text',
    cap: 1024,
    run: (x) => normalizeHost(text(x)),
    seeds: () => ['example.com', 'x.allium.', '[::1]', '127.0.0.1', 'xn--allium-.com'],
  },
  { name: 'host:port', input: 'text', cap: 1024, run: (x) => parseHostPort(text(x), 'listen'), seeds: () => ['127.0.0.1:9001', '[::1]:80'] },
  {
    name: 'relay config (TOML)',
    input: 'text',
    cap: 64 * 1024,
    run: (x) => {
      let data: unknown;
      try {
        data = parseToml(text(x));
      } catch {
        return null; // the shell turns a TOML syntax error into ERR_CONFIG (relay/config.ts)
      }
      return resolveRelayConfig(data);
    },
    seeds: () => ['nickname = "r"\nlisten = "127.0.0.1:9001"\n', 'exit_policy = ["accept *:80"]\n[timing]\n'],
  },
];

/** The table of decoders of untrusted input. */
export function decoderCases(): readonly DecoderCase[] {
  return CASES;
}
