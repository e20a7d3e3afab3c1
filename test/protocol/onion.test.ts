/**
 * protocol/onion.ts: reply status codes, tampered replies, wrong keys, onion-key overlap, path errors.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { OnionKeyRing } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { MAX_HOPS, ONION_HEADER_LEN, REPLY_LEN, REPLY_SLOT_LEN } from '../../protocol/constants.js';
import type { HopKeys } from '../../protocol/ntor.js';
import { createOnion, openReply, processOnion, ReplyStatus, wipeClientOnion } from '../../protocol/onion.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { noReplay, onionTo, replyChain, runPath, testRelays, type TestRelay } from '../helpers/circuit.js';
import { expectCode } from '../helpers/vectors.js';

const keysHex = (k: HopKeys) => [toHex(k.forward), toHex(k.backward), toHex(k.binding)];

describe('protocol/onion', () => {
  let relays: TestRelay[];
  before(() => {
    relays = testRelays(MAX_HOPS + 1, 'protocol/onion');
  });

  describe('reply status', () => {
    for (const [name, status] of Object.entries(ReplyStatus).filter(([, s]) => s !== ReplyStatus.OK)) {
      it(`${name} from hop 2 of 3 ends the reply with that status and the keys of hops 1-2`, () => {
        const path = relays.slice(0, 3);
        const onion = onionTo(path);
        const { hops } = runPath(path.slice(0, 2), onion.header);
        const reply = hops[0]!.reply(hops[1]!.reply(null, status));
        const opened = openReply(onion, reply);
        expect(opened.status).to.equal(status);
        expect(opened.hops.map(keysHex)).to.deep.equal(hops.map((h) => keysHex(h.keys)));
      });
    }

    it('a failure reported by the first hop gives its keys only', () => {
      const onion = onionTo(relays.slice(0, 8));
      const { hops } = runPath(relays.slice(0, 1), onion.header);
      const opened = openReply(onion, hops[0]!.reply(null, ReplyStatus.REFUSED));
      expect(opened.status).to.equal(ReplyStatus.REFUSED);
      expect(opened.hops.map(keysHex)).to.deep.equal([keysHex(hops[0]!.keys)]);
    });

    it('OK from every hop of an 8-hop path gives all eight keys', () => {
      const onion = onionTo(relays.slice(0, 8));
      const { hops } = runPath(relays.slice(0, 8), onion.header);
      const opened = openReply(onion, replyChain(hops));
      expect(opened.status).to.equal(ReplyStatus.OK);
      expect(opened.hops.map(keysHex)).to.deep.equal(hops.map((h) => keysHex(h.keys)));
    });
  });

  describe('tampered replies', () => {
    let onion: ReturnType<typeof onionTo>;
    let reply: Uint8Array;
    before(() => {
      onion = onionTo(relays.slice(0, 3));
      reply = replyChain(runPath(relays.slice(0, 3), onion.header).hops);
    });
    const flipped = (i: number) => {
      const r = Uint8Array.from(reply);
      r[i]! ^= 0x10;
      return r;
    };

    it('a changed byte of any hop’s Y or AUTH gives ERR_HANDSHAKE_AUTH', () => {
      for (let hop = 0; hop < 3; hop++) {
        for (let i = 16; i < REPLY_SLOT_LEN; i++) expectCode(() => openReply(onion, flipped(hop * REPLY_SLOT_LEN + i)), 'ERR_HANDSHAKE_AUTH');
      }
    });

    it('a changed reserved byte gives ERR_ONION_SLOT', () => {
      for (let i = 1; i < 16; i++) expectCode(() => openReply(onion, flipped(i)), 'ERR_ONION_SLOT');
    });

    it('the reply to another onion is refused (under the wrong pi its reserved bytes are noise); a wrong size too', () => {
      const other = onionTo(relays.slice(0, 3));
      const otherReply = replyChain(runPath(relays.slice(0, 3), other.header).hops);
      expectCode(() => openReply(onion, otherReply), 'ERR_ONION_SLOT');
      expectCode(() => openReply(onion, reply.subarray(0, REPLY_LEN - 1)), 'ERR_BAD_LENGTH');
      expect(openReply(onion, reply).status).to.equal(ReplyStatus.OK);
    });
  });

  describe('onion keys', () => {
    it('an onion for another onion key or another identity gives ERR_ONION_MAC', () => {
      const [a, b] = relays;
      const header = onionTo([a!]).header;
      expectCode(() => processOnion(header, { identity: a!.identity, onionKeys: [b!.onionKey], replay: noReplay }), 'ERR_ONION_MAC');
      expectCode(() => processOnion(header, { identity: b!.identity, onionKeys: [a!.onionKey], replay: noReplay }), 'ERR_ONION_MAC');
      expect(processOnion(header, { identity: a!.identity, onionKeys: [b!.onionKey, a!.onionKey], replay: noReplay }).kind).to.equal('terminal');
    });

    it("a relay's hop wipes its keys with what its reply needed", () => {
      const [a] = relays;
      const r = processOnion(onionTo([a!]).header, { identity: a!.identity, onionKeys: [a!.onionKey], replay: noReplay });
      const { forward, backward, binding } = r.hop.keys;
      expect([forward, backward, binding].some((k) => k.some((x) => x !== 0))).to.equal(true);
      r.hop.wipe();
      // Before, only pi and the reply slot were wiped; the keys stayed until the collector took them.
      for (const k of [forward, backward, binding]) expect(k.every((x) => x === 0)).to.equal(true);
    });

    it('after rotation the old key opens onions until its overlap has passed, then ERR_ONION_MAC', () => {
      const relay = relays[0]!;
      const ring = OnionKeyRing.create(0, { lifetimeMs: 1000, overlapMs: 100 });
      const old = { identity: relay.identity, onionKey: ring.current.keyPair.publicKey };
      const replay = new ReplayFilter({ capacity: 100 });
      const open = () => {
        const onion = createOnion([old]);
        const r = processOnion(onion.header, { identity: relay.identity, onionKeys: ring.usable, replay });
        return openReply(onion, r.hop.reply(null)).status;
      };
      expect(ring.rotate(1000).rotated).to.equal(true);
      expect(toHex(ring.current.keyPair.publicKey)).to.not.equal(toHex(old.onionKey));
      expect(open()).to.equal(ReplyStatus.OK);
      expect(ring.rotate(1099).dropped).to.have.length(0);
      expect(open()).to.equal(ReplyStatus.OK);
      expect(ring.rotate(1100).dropped).to.have.length(1);
      expectCode(open, 'ERR_ONION_MAC');
    });

    it('a small-order X gives ERR_BAD_POINT; a header of the wrong size ERR_BAD_LENGTH', () => {
      const r = relays[0]!;
      const ctx = { identity: r.identity, onionKeys: [r.onionKey], replay: noReplay };
      expectCode(() => processOnion(new Uint8Array(ONION_HEADER_LEN), ctx), 'ERR_BAD_POINT');
      expectCode(() => processOnion(new Uint8Array(ONION_HEADER_LEN - 1), ctx), 'ERR_BAD_LENGTH');
    });
  });

  describe('paths', () => {
    const hop = (r: TestRelay) => ({ identity: r.identity, onionKey: r.onionKey.publicKey });
    it('refuses empty, too long and repeating paths (ERR_ONION_PATH) and keys of the wrong size (ERR_KEY_FORMAT)', () => {
      expectCode(() => createOnion([]), 'ERR_ONION_PATH');
      expectCode(() => createOnion(relays.slice(0, MAX_HOPS + 1).map(hop)), 'ERR_ONION_PATH');
      expectCode(() => createOnion([hop(relays[0]!), hop(relays[1]!), hop(relays[0]!)]), 'ERR_ONION_PATH');
      expectCode(() => createOnion([{ identity: relays[0]!.identity, onionKey: new Uint8Array(31) }]), 'ERR_KEY_FORMAT');
    });

    it('wipeClientOnion zeroes the ephemeral secrets', () => {
      const onion = onionTo(relays.slice(0, 2));
      wipeClientOnion(onion);
      for (const h of onion.hops) expect(h.x.every((b) => b === 0) && h.xb.every((b) => b === 0) && h.pi.every((b) => b === 0)).to.equal(true);
      expect(crypto().equal(onion.hops[0]!.x, new Uint8Array(32))).to.equal(true);
    });
  });
});
