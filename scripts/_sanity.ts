import { initCrypto, crypto } from '../crypto/index.js';
import { createOnion, processOnion, openReply } from '../protocol/onion.js';
import { ReplayFilter } from '../protocol/replay-filter.js';
import { RelayHopCrypto, ClientCircuitCrypto, payloadOf } from '../protocol/relay-crypto.js';
import { RELAY_PAYLOAD_LEN } from '../protocol/constants.js';
await initCrypto(process.argv[2] as any ?? 'auto');
const c = crypto();
console.log(c.bindingName);
for (let n = 1; n <= 8; n++) {
  const relays = Array.from({length: n}, () => { const id = c.ed25519Keypair(); const ok = c.x25519Keypair(); return { id, ok, replay: new ReplayFilter({capacity: 1000}) }; });
  const onion = createOnion(relays.map(r => ({ identity: r.id.publicKey, onionKey: r.ok.publicKey })));
  let header = onion.header; const hops: any[] = [];
  for (let i = 0; i < n; i++) {
    if (header.length !== 816) throw new Error('len');
    const res = processOnion(header, { identity: relays[i]!.id.publicKey, onionKeys: [relays[i]!.ok], replay: relays[i]!.replay });
    hops.push(res.hop);
    if (i < n-1) { if (res.kind !== 'extend') throw new Error('expected extend at ' + i); header = res.header; }
    else if (res.kind !== 'terminal') throw new Error('expected terminal');
  }
  let reply: Uint8Array | null = null;
  for (let i = n-1; i >= 0; i--) reply = hops[i].reply(reply);
  const opened = openReply(onion, reply!);
  if (opened.hops.length !== n || opened.status !== 0) throw new Error('reply');
  const client = new ClientCircuitCrypto(opened.hops);
  const relayC = hops.map(h => new RelayHopCrypto(h.keys));
  for (let trial = 0; trial < 20; trial++) {
    const target = trial % n;
    const p = c.random(RELAY_PAYLOAD_LEN);
    const body = client.wrapForward(p, target);
    for (let i = 0; i <= target; i++) {
      const r = relayC[i]!.unwrapForward(body);
      if ((r === 'mine') !== (i === target)) throw new Error(`fwd n=${n} target=${target} hop=${i} got ${r}`);
    }
    if (!c.equal(payloadOf(body), p)) throw new Error('payload mismatch');
    // backward from hop target
    const q = c.random(RELAY_PAYLOAD_LEN);
    const b = relayC[target]!.originateBackward(q);
    for (let i = target-1; i >= 0; i--) relayC[i]!.wrapBackward(b);
    const origin = client.unwrapBackward(b);
    if (origin !== target || !c.equal(payloadOf(b), q)) throw new Error('bwd');
  }
  // replay
  try { processOnion(onion.header, { identity: relays[0]!.id.publicKey, onionKeys: [relays[0]!.ok], replay: relays[0]!.replay }); throw new Error('no replay detect'); } catch (e: any) { if (e.code !== 'ERR_ONION_REPLAY') throw e; }
}
console.log('all ok');
