/**
 * specs/vectors/relay-crypto.json: the per-hop relay-cell layer (specs/relay-crypto.md) on a 3-hop circuit with
 * fixed keys: forward cells as they leave the client and after each hop, backward cells from their originating hop
 * to the client.
 */
import { toHex, utf8 } from '../../protocol/bytes.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { encodeRelayPayload, RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { ClientCircuitCrypto, payloadOf, RelayHopCrypto } from '../../protocol/relay-crypto.js';
import type { RandomSource } from '../../crypto/drbg.js';
import { check, recordingRandom, seeded, SEED_PREFIX, VECTORS_VERSION, type VectorFile } from './common.js';

const HOPS = 3;

export function relayCryptoFile(): VectorFile {
  const keys: HopKeys[] = Array.from({ length: HOPS }, (_, i) => ({
    forward: seeded(`relay-crypto/hop-${i}/forward`)(32),
    backward: seeded(`relay-crypto/hop-${i}/backward`)(32),
    binding: new Uint8Array(32),
  }));
  const rnd = seeded('relay-crypto/payloads');
  const msg = (command: RelayMessage['command'], streamId: number, data: Uint8Array) => encodeRelayPayload({ command, streamId, data });

  let fill: RandomSource = () => {
    throw new Error('no fill source set');
  };
  const client = new ClientCircuitCrypto(keys, { random: (n) => fill(n) });
  const relays = keys.map((k) => new RelayHopCrypto(k));

  const forwardPlan: [number, Uint8Array][] = [
    [0, msg(RelayCommand.DROP, 0, new Uint8Array(0))],
    [1, msg(RelayCommand.EXTEND, 0, rnd(100))],
    [2, msg(RelayCommand.BEGIN, 1, utf8('example.org:443'))],
    [2, msg(RelayCommand.DATA, 1, rnd(886))],
    [0, msg(RelayCommand.SENDME, 0, rnd(20))],
    [1, msg(RelayCommand.DATA, 2, rnd(1))],
    [2, msg(RelayCommand.END, 1, Uint8Array.of(6))],
  ];
  const forward = forwardPlan.map(([target, payload], index) => {
    const seed = `relay-crypto/forward-${index}/fill`;
    const rec = recordingRandom(seed);
    fill = rec.random;
    const counters = relays.slice(0, target + 1).map((r) => r.counters.forward);
    const body = client.wrapForward(payload, target);
    const sent = toHex(body);
    const afterHop = [];
    for (let j = 0; j <= target; j++) {
      const result = relays[j]!.unwrapForward(body);
      check(result === (j === target ? 'mine' : 'forward'), `forward ${index} at hop ${j}`);
      afterHop.push({ hop: j, result, body: toHex(body) });
    }
    check(toHex(payloadOf(body)) === toHex(payload), `forward ${index} payload arrives`);
    check(rec.calls().length === 1, 'one fill call per forward cell');
    return { target, payload: toHex(payload), fillSeed: SEED_PREFIX + seed, fill: rec.taken(), counters, sent, afterHop };
  });

  const backwardPlan: [number, Uint8Array][] = [
    [2, msg(RelayCommand.CONNECTED, 1, rnd(8))],
    [0, msg(RelayCommand.SENDME, 0, new Uint8Array(0))],
    [1, msg(RelayCommand.EXTENDED, 0, rnd(80))],
    [2, msg(RelayCommand.DATA, 1, rnd(886))],
    [2, msg(RelayCommand.END, 1, Uint8Array.of(9))],
  ];
  const backward = backwardPlan.map(([origin, payload], index) => {
    const counters = relays.slice(0, origin + 1).map((r) => r.counters.backward);
    const body = relays[origin]!.originateBackward(payload);
    const path = [{ hop: origin, body: toHex(body) }];
    for (let j = origin - 1; j >= 0; j--) {
      relays[j]!.wrapBackward(body);
      path.push({ hop: j, body: toHex(body) });
    }
    const got = client.unwrapBackward(body);
    check(got === origin && toHex(payloadOf(body)) === toHex(payload), `backward ${index} reaches the client`);
    check(body.length === CELL_BODY_LEN, 'body length');
    return { origin, payload: toHex(payload), counters, path, clientOrigin: got };
  });

  return {
    description:
      'Relay-cell crypto (specs/relay-crypto.md) on a 3-hop circuit with the given per-hop keys. Cells in each list ' +
      'are processed in order on one circuit; the two directions have independent counters. "counters" lists the ' +
      'cell counter (the ChaCha20 nonce) each hop uses for that cell, hop 0 first. Forward: the client wraps payload ' +
      'for hop target, taking the tag-area fill (128 - 16 * target bytes) from fill (one call to seededRandom(fillSeed)), and sends the body "sent" ' +
      'to hop 0; afterHop[j] is the body after hop j removed its layer, with its result ("forward" or "mine"). ' +
      'Backward: hop origin originates payload (path[0].body), each earlier hop wraps it (path[k].body is the body ' +
      'leaving hop path[k].hop), the client receives the last body, finds clientOrigin, and reads payload at body ' +
      'offset 128.',
    version: VECTORS_VERSION,
    hops: keys.map((k) => ({ forward: toHex(k.forward), backward: toHex(k.backward) })),
    forward,
    backward,
  };
}
