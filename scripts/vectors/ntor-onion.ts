/**
 * specs/vectors/ntor-onion.json: the setup onion, its per-hop processing and the one-round-trip reply, with the
 * ntor-style handshake's hop keys (specs/circuits.md §3–§5), for paths of 1, 3 and 8 hops.
 */
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { fromHex, toHex } from '../../protocol/bytes.js';
import { MAX_HOPS, ONION_HEADER_LEN, PROTOID, REPLY_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { createOnion, openReply, processOnion, ReplyStatus, type RelayHop } from '../../protocol/onion.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { check, recordingRandom, seeded, SEED_PREFIX, VECTORS_VERSION, type VectorFile } from './common.js';

export const ONION_PATH_LENGTHS = [1, 3, 8] as const;

const keysHex = (k: HopKeys) => ({ forward: toHex(k.forward), backward: toHex(k.backward), binding: toHex(k.binding) });

function relays() {
  return Array.from({ length: MAX_HOPS }, (_, i) => {
    const identitySeed = seeded(`ntor-onion/relay-${i}/identity`)(32);
    const onionSecretKey = seeded(`ntor-onion/relay-${i}/onion-key`)(32);
    const identity = IdentityKey.fromSeed(identitySeed);
    const onionKey = crypto().x25519Keypair(onionSecretKey);
    return { identitySeed, identity, onionKey };
  });
}

function circuit(n: number, all: ReturnType<typeof relays>) {
  const path = all.slice(0, n);
  const clientSeed = `ntor-onion/path-${n}/client`;
  const client = recordingRandom(clientSeed);
  const onion = createOnion(
    path.map((r) => ({ identity: r.identity.publicKey, onionKey: r.onionKey.publicKey })),
    { random: client.random },
  );

  const hops: {
    header: Uint8Array;
    result: 'extend' | 'terminal';
    next: Uint8Array | null;
    hop: RelayHop;
    seed: string;
    rec: ReturnType<typeof recordingRandom>;
  }[] = [];
  let header = onion.header;
  for (let i = 0; i < n; i++) {
    check(header.length === ONION_HEADER_LEN, 'every hop receives 816 bytes');
    const seed = `ntor-onion/path-${n}/relay-${i}`;
    const rec = recordingRandom(seed);
    const r = processOnion(header, {
      identity: path[i]!.identity.publicKey,
      onionKeys: [path[i]!.onionKey],
      replay: new ReplayFilter({ capacity: 16 }),
      random: rec.random,
    });
    check(r.kind === (i === n - 1 ? 'terminal' : 'extend'), `hop ${i} of ${n} result`);
    hops.push({ header, result: r.kind, next: r.kind === 'extend' ? r.next : null, hop: r.hop, seed, rec });
    if (r.kind === 'extend') {
      check(toHex(r.next) === toHex(path[i + 1]!.identity.publicKey), 'next identity');
      header = r.header;
    }
  }
  const replies: Uint8Array[] = new Array(n);
  let fromNext: Uint8Array | null = null;
  for (let i = n - 1; i >= 0; i--) {
    fromNext = hops[i]!.hop.reply(fromNext);
    replies[i] = fromNext;
  }
  const opened = openReply(onion, replies[0]!);
  check(opened.status === ReplyStatus.OK && opened.hops.length === n, 'reply opens');
  opened.hops.forEach((k, i) => check(JSON.stringify(keysHex(k)) === JSON.stringify(keysHex(hops[i]!.hop.keys)), `hop ${i} keys agree`));

  return {
    pathLength: n,
    clientRandomSeed: SEED_PREFIX + clientSeed,
    clientRandom: client.taken(),
    clientRandomCalls: client.calls(),
    hops: hops.map((h, i) => {
      const relayRandom = h.rec.taken();
      const y = relayRandom.slice(0, 64);
      return {
        identitySeed: toHex(path[i]!.identitySeed),
        identity: toHex(path[i]!.identity.publicKey),
        onionSecretKey: toHex(path[i]!.onionKey.secretKey),
        onionPublicKey: toHex(path[i]!.onionKey.publicKey),
        x: toHex(onion.hops[i]!.x),
        X: toHex(onion.hops[i]!.X),
        header: toHex(h.header),
        result: h.result,
        next: h.next ? toHex(h.next) : null,
        relayRandomSeed: SEED_PREFIX + h.seed,
        relayRandom,
        relayRandomCalls: h.rec.calls(),
        y,
        Y: toHex(crypto().x25519Public(fromHex(y))),
        reply: toHex(replies[i]!),
        keys: keysHex(h.hop.keys),
      };
    }),
    status: opened.status,
  };
}

export function ntorOnionFile(): VectorFile {
  const all = relays();
  return {
    description:
      'Setup onion, ntor-style handshake and reply (specs/circuits.md §3-§5). For each path, hop i (0 = first) has ' +
      'an Ed25519 identity from identitySeed and the X25519 onion key onionSecretKey (used as given; X25519 clamps it). ' +
      'createOnion(path, random) where random hands out clientRandom in order (calls of the sizes in clientRandomCalls ' +
      'made to seededRandom(clientRandomSeed) return exactly these bytes) ' +
      'gives hops[0].header; x and X are the ephemeral keys the client chose for each hop (X as sent, top bit random). ' +
      "processOnion(hops[i].header) with that relay's keys and random handing out relayRandom (likewise with " +
      'relayRandomCalls; y is its first 32 bytes, then, ' +
      'at the terminal hop, the 560 bytes of reply padding) gives result, next (the next identity) and, for "extend", ' +
      'hops[i+1].header. Replies are built from the last hop back: hops[i].reply is what hop i sends towards the ' +
      "client, and openReply(onion, hops[0].reply) gives every hop's keys (forward, backward, binding) and status.",
    version: VECTORS_VERSION,
    protoid: PROTOID,
    headerLength: ONION_HEADER_LEN,
    replyLength: REPLY_LEN,
    circuits: ONION_PATH_LENGTHS.map((n) => circuit(n, all)),
  };
}
