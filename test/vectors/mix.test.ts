/** specs/vectors/mix.json against protocol/mix-packet.ts (specs/mix.md §2). */
import { expect } from 'chai';
import { toHex } from '../../protocol/bytes.js';
import { createMixPacket, processMixPacket, type MixResult } from '../../protocol/mix-packet.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Relay {
  identity: string;
  secretKey: string;
  publicKey: string;
}
interface Valid {
  name: string;
  path: number[];
  delays: number[];
  final: { kind: 'deliver'; inbox: string } | { kind: 'drop' };
  payload: string;
  random: string;
  randomCalls: number[];
  packet: string;
  hops: Record<string, unknown>[];
}
interface Invalid {
  name: string;
  packet: string;
  relay: number;
  identity?: string;
  code: string;
}

const ctx = (r: Relay, identity?: string) => ({
  identity: hex(identity ?? r.identity),
  keys: [{ publicKey: hex(r.publicKey), secretKey: hex(r.secretKey) }],
  replay: new ReplayFilter({ capacity: 100 }),
});

function describe_(r: MixResult): Record<string, unknown> {
  if (r.kind === 'forward') return { kind: r.kind, delayMs: r.delayMs, next: toHex(r.next), packet: toHex(r.packet) };
  if (r.kind === 'deliver') return { kind: r.kind, delayMs: r.delayMs, inbox: toHex(r.inbox), payload: toHex(r.payload) };
  return { kind: r.kind, delayMs: r.delayMs };
}

describeEachBinding('vectors: mix packets', () => {
  const v = readVectors<{ relays: Relay[]; valid: Valid[]; invalid: Invalid[] }>('mix.json');

  for (const t of v.valid) {
    it(`valid: ${t.name}`, () => {
      const random = hex(t.random);
      let off = 0;
      const source = (n: number): Uint8Array => {
        const b = random.subarray(off, off + n);
        off += n;
        return Uint8Array.from(b);
      };
      const path = t.path.map((i, k) => ({ identity: hex(v.relays[i]!.identity), mixKey: hex(v.relays[i]!.publicKey), delayMs: t.delays[k]! }));
      const final = t.final.kind === 'deliver' ? { kind: 'deliver' as const, inbox: hex(t.final.inbox) } : { kind: 'drop' as const };
      expect(toHex(createMixPacket(path, final, hex(t.payload), { random: source }))).to.equal(t.packet);
      let p = hex(t.packet);
      t.path.forEach((i, k) => {
        const r = processMixPacket(p, ctx(v.relays[i]!));
        expect(describe_(r)).to.deep.equal(t.hops[k]);
        if (r.kind === 'forward') p = r.packet;
      });
    });
  }

  for (const t of v.invalid) {
    it(`invalid: ${t.name} → ${t.code}`, () => {
      expectCode(() => processMixPacket(hex(t.packet), ctx(v.relays[t.relay]!, t.identity)), t.code);
    });
  }

  it('refuses a replayed packet under the same key (ERR_MIX_REPLAY)', () => {
    const t = v.valid[0]!;
    const c = ctx(v.relays[t.path[0]!]!);
    processMixPacket(hex(t.packet), c);
    expectCode(() => processMixPacket(hex(t.packet), c), 'ERR_MIX_REPLAY');
  });
});
