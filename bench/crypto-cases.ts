/**
 * The Allium-level cases of bench/crypto.ts: circuit setup (protocol/onion.ts), the ntor-style handshake
 * (protocol/ntor.ts) and the per-hop relay-cell layer (protocol/relay-crypto.ts), all over the crypto facade with
 * whichever binding was made current. Every input is produced by the real code path (onions by createOnion, cells by
 * the other end of a real circuit), so a case that went wrong throws instead of timing something else.
 */
import { crypto, type Crypto, type KeyPair } from '../crypto/index.js';
import { RELAY_PAYLOAD_LEN } from '../protocol/constants.js';
import { ntorClientFinish, ntorServer } from '../protocol/ntor.js';
import { createOnion, openReply, processOnion, type OnionHop, type RelayOnionContext, type ReplayGuard } from '../protocol/onion.js';
import { ClientCircuitCrypto, RelayHopCrypto } from '../protocol/relay-crypto.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import { BODY, FUSED, MACED } from './bare-sodium.js';
import type { BenchCase } from './harness.js';

export const CASE = {
  createOnion: 'setup.createOnion',
  processOnion: 'setup.processOnion',
  roundTrip: 'setup.roundTrip',
  ntorServer: 'hs.ntorServer',
  ntorServerFull: 'hs.ntorServerFull',
  ntorClient: 'hs.ntorClientFinish',
  unwrapForward: 'cell.unwrapForward',
  wrapBackward: 'cell.wrapBackward',
  clientWrap: 'cell.clientWrapForward',
  clientUnwrap: 'cell.clientUnwrapBackward',
  facadeAead: 'facade.aead1003',
  facadeDuo: 'facade.layerDuo',
} as const;

/**
 * Cells prepared per batch. 32 bodies (32 KB) stay in L1/L2, as a cell just read off a socket would be and as the
 * bare primitives' buffers are; at 512 (0.5 MB) the layer read its cells from L3 and looked about 25% slower.
 */
const CELL_BATCH = 32;
/** Onions prepared per batch (each costs a createOnion and a processOnion at the first hop). */
const ONION_BATCH = 64;

interface Relay {
  readonly hop: OnionHop;
  readonly ctx: RelayOnionContext;
  readonly replay: ReplayFilter;
  readonly onionKey: KeyPair;
  /** Onions this relay has checked against its filter. */
  readonly checked: () => number;
}

function makeRelay(c: Crypto): Relay {
  const id = c.ed25519Keypair();
  const onionKey = c.x25519Keypair();
  // The default filter (capacity 1,000,000 onions, 1e-7 false positives): the real size, far from full here.
  const replay = new ReplayFilter();
  let checked = 0;
  const guard: ReplayGuard = {
    checkAndRecord: (k, tag) => {
      checked++;
      return replay.checkAndRecord(k, tag);
    },
  };
  return {
    hop: { identity: id.publicKey, onionKey: onionKey.publicKey },
    ctx: { identity: id.publicKey, onionKeys: [onionKey], replay: guard },
    replay,
    onionKey,
    checked: () => checked,
  };
}

export interface AlliumCases {
  readonly setup: BenchCase[];
  readonly handshake: BenchCase[];
  readonly cells: BenchCase[];
  /** The layer's libsodium calls through the facade, for attributing overhead between facade and layer code. */
  readonly facade: BenchCase[];
  /** How the replay filters ended up: onions recorded and whether any filled (it must not). */
  replayState(): { checked: number; capacity: number; bytes: number; full: boolean };
}

export function alliumCases(): AlliumCases {
  const c = crypto();
  const relays = [makeRelay(c), makeRelay(c), makeRelay(c)] as const;
  const [A, M, E] = relays;
  const path = relays.map((r) => r.hop);

  // --- circuit setup ---------------------------------------------------------------------------------------------
  const middleHeaders: Uint8Array[] = [];
  const setup: BenchCase[] = [
    { id: CASE.createOnion, label: 'createOnion (3 hops)', op: () => void createOnion(path) },
    {
      id: CASE.processOnion,
      label: 'processOnion, middle hop (replay-checked)',
      maxBatch: ONION_BATCH,
      prepare: (n) => {
        for (let i = 0; i < n; i++) {
          const r = processOnion(createOnion(path).header, A.ctx);
          if (r.kind !== 'extend') throw new Error('bench: first hop did not extend');
          middleHeaders[i] = r.header;
        }
      },
      op: (i) => {
        if (processOnion(middleHeaders[i]!, M.ctx).kind !== 'extend') throw new Error('bench: middle hop did not extend');
      },
    },
    {
      id: CASE.roundTrip,
      label: 'one-round-trip setup (create, 3 hops, replies, open)',
      op: () => {
        const onion = createOnion(path);
        const a = processOnion(onion.header, A.ctx);
        if (a.kind !== 'extend') throw new Error('bench: hop 1 did not extend');
        const m = processOnion(a.header, M.ctx);
        if (m.kind !== 'extend') throw new Error('bench: hop 2 did not extend');
        const e = processOnion(m.header, E.ctx);
        const opened = openReply(onion, a.hop.reply(m.hop.reply(e.hop.reply(null))));
        if (opened.hops.length !== 3 || opened.status !== 0) throw new Error('bench: reply did not open');
      },
    },
  ];

  // --- handshakes --------------------------------------------------------------------------------------------------
  // One onion's middle hop, as processOnion sees it: X as sent, s = X25519(b, X) already computed for the layer.
  const sample = createOnion(path);
  const mid = sample.hops[1]!;
  const random = (n: number): Uint8Array => c.random(n);
  const sMid = c.x25519(M.onionKey.secretKey, mid.X);
  const served = ntorServer(sMid, M.onionKey, M.hop.identity, mid.X, random);
  const handshake: BenchCase[] = [
    { id: CASE.ntorServer, label: 'ntorServer (as called by processOnion)', op: () => void ntorServer(sMid, M.onionKey, M.hop.identity, mid.X, random) },
    {
      id: CASE.ntorServerFull,
      label: 'ntor server incl. X25519(b, X)',
      op: () => void ntorServer(c.x25519(M.onionKey.secretKey, mid.X), M.onionKey, M.hop.identity, mid.X, random),
    },
    { id: CASE.ntorClient, label: 'ntorClientFinish', op: () => void ntorClientFinish(mid.x, mid.X, mid.hop, served.Y, served.auth) },
  ];

  // --- relay cells -------------------------------------------------------------------------------------------------
  // Keys from a real build, so the layer runs on handshake output. Each case gets its own endpoint objects so their
  // counters stay in step only with the cells made for them.
  const built = (() => {
    const onion = createOnion(path);
    const a = processOnion(onion.header, A.ctx);
    if (a.kind !== 'extend') throw new Error('bench: hop 1 did not extend');
    const m = processOnion(a.header, M.ctx);
    if (m.kind !== 'extend') throw new Error('bench: hop 2 did not extend');
    const e = processOnion(m.header, E.ctx);
    const opened = openReply(onion, a.hop.reply(m.hop.reply(e.hop.reply(null))));
    return { client: opened.hops, relays: [a.hop.keys, m.hop.keys, e.hop.keys] };
  })();
  const payload = c.random(RELAY_PAYLOAD_LEN);
  const cells: Uint8Array[] = [];

  // unwrapForward at hop 1 of cells addressed to hop 3: the common case at a guard or middle relay.
  const fwdClient = new ClientCircuitCrypto(built.client);
  const fwdHop1 = new RelayHopCrypto(built.relays[0]!);
  // wrapBackward at a relay passing a cell from further on.
  const bwdHop = new RelayHopCrypto(built.relays[1]!);
  const bwdBody = c.random(BODY);
  // The client's two directions.
  const client = new ClientCircuitCrypto(built.client);
  const inClient = new ClientCircuitCrypto(built.client);
  const inHops = built.relays.map((k) => new RelayHopCrypto(k));

  const cellCases: BenchCase[] = [
    {
      id: CASE.unwrapForward,
      label: 'RelayHopCrypto.unwrapForward (1 layer)',
      bytes: RELAY_PAYLOAD_LEN,
      maxBatch: CELL_BATCH,
      prepare: (n) => {
        for (let i = 0; i < n; i++) cells[i] = fwdClient.wrapForward(payload, 2);
      },
      op: (i) => {
        if (fwdHop1.unwrapForward(cells[i]!) !== 'forward') throw new Error('bench: cell not forwarded');
      },
    },
    { id: CASE.wrapBackward, label: 'RelayHopCrypto.wrapBackward (1 layer)', bytes: RELAY_PAYLOAD_LEN, op: () => bwdHop.wrapBackward(bwdBody) },
    { id: CASE.clientWrap, label: 'ClientCircuitCrypto.wrapForward → hop 3', bytes: RELAY_PAYLOAD_LEN, op: () => void client.wrapForward(payload, 2) },
    {
      id: CASE.clientUnwrap,
      label: 'ClientCircuitCrypto.unwrapBackward ← hop 3',
      bytes: RELAY_PAYLOAD_LEN,
      maxBatch: CELL_BATCH,
      prepare: (n) => {
        for (let i = 0; i < n; i++) {
          const b = inHops[2]!.originateBackward(payload);
          inHops[1]!.wrapBackward(b);
          inHops[0]!.wrapBackward(b);
          cells[i] = b;
        }
      },
      op: (i) => {
        if (inClient.unwrapBackward(cells[i]!) !== 2) throw new Error('bench: cell not from hop 3');
      },
    },
  ];

  // --- the layer's two libsodium calls through the facade --------------------------------------------------------
  const key = c.random(32);
  const nonce = c.random(12);
  const m1003 = c.random(MACED);
  const fused = c.random(FUSED);
  const otk = fused.subarray(0, 32);
  const tag = new Uint8Array(16);
  const facade: BenchCase[] = [
    { id: CASE.facadeAead, label: `  via facade: aeadEncrypt ${MACED} B (allocates)`, bytes: MACED, op: () => void c.aeadEncrypt(m1003, null, nonce, key) },
    {
      id: CASE.facadeDuo,
      label: "  via facade: a layer's 2 calls",
      bytes: MACED,
      op: () => {
        c.chacha20Xor(fused, fused, nonce, 0, key);
        c.poly1305(tag, m1003, otk);
      },
    },
  ];

  return {
    setup,
    handshake,
    cells: cellCases,
    facade,
    // The middle relay sees every onion the bench builds, so its filter is the fullest.
    replayState: () => ({
      checked: M.checked(),
      capacity: M.replay.capacity,
      bytes: M.replay.bytes,
      full: relays.some((r) => r.replay.isFull(r.onionKey.publicKey)),
    }),
  };
}
