/** specs/vectors/groups.json against the code: sender-key chain, group message, sender key, roster, refusals. */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import {
  decodeGroupEnvelope,
  encodeGroupEnvelope,
  MAX_GROUP_ENVELOPE_BYTES,
  MAX_GROUP_MEMBERS,
  MAX_GROUP_MESSAGE_BYTES,
  verifyRoster,
} from '../../protocol/group-messages.js';
import { groupHeader, kdfGroupChain, MAX_GROUP_SKIP, SenderChain } from '../../protocol/sender-key.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface File {
  constants: { maxGroupMembers: number; maxGroupMessageBytes: number; maxGroupEnvelopeBytes: number; maxGroupSkip: number };
  chain: Array<{ n: number; ck: string; mk: string }>;
  message: {
    group: string;
    sender: string;
    signingSeed: string;
    signingKey: string;
    e: number;
    n: number;
    data: string;
    header: string;
    mk: string;
    ct: string;
    sig: string;
    envelope: string;
  };
  senderKey: { ck: string; e: number; n: number; pn: number; sp: string; envelope: string };
  roster: { adminSeed: string; members: string[]; admins: number[]; r: number; name: string; sig: string; envelope: string };
  invalid: Array<{ name: string; bytes: string; error: string }>;
}

describe('vectors: groups (specs/messaging.md §13)', () => {
  const v = readVectors<File>('groups.json');

  it('states the limits the code uses', () => {
    expect(v.constants).to.deep.equal({
      maxGroupMembers: MAX_GROUP_MEMBERS,
      maxGroupMessageBytes: MAX_GROUP_MESSAGE_BYTES,
      maxGroupEnvelopeBytes: MAX_GROUP_ENVELOPE_BYTES,
      maxGroupSkip: MAX_GROUP_SKIP,
    });
  });

  it('derives the chain: (ck_n+1, mk_n) = KDF_GCK(ck_n)', () => {
    for (let i = 0; i < v.chain.length; i++) {
      const [next, mk] = kdfGroupChain(hex(v.chain[i]!.ck));
      expect(toHex(mk)).to.equal(v.chain[i]!.mk);
      if (i + 1 < v.chain.length) expect(toHex(next)).to.equal(v.chain[i + 1]!.ck);
    }
  });

  it('a group message: header, AEAD under mk_n, signature under the generation key, envelope', () => {
    const m = v.message;
    expect(toHex(groupHeader(hex(m.group), hex(m.sender), m.e, m.n))).to.equal(m.header);
    expect(toHex(crypto().aeadEncrypt(hex(m.data), hex(m.header), new Uint8Array(12), hex(m.mk)))).to.equal(m.ct);
    expect(toHex(crypto().ed25519Keypair(hex(m.signingSeed)).publicKey)).to.equal(m.signingKey);
    expect(crypto().verify(hex(m.sig), Uint8Array.of(...hex(m.header), ...hex(m.ct)), hex(m.signingKey))).to.equal(true);
    const env = decodeGroupEnvelope(hex(m.envelope));
    expect(env.kind).to.equal('message');
    expect(toHex(encodeGroupEnvelope(env))).to.equal(m.envelope);
    // Read from the sender key envelope, as a member does.
    const sk = decodeGroupEnvelope(hex(v.senderKey.envelope));
    if (sk.kind !== 'sender-key' || env.kind !== 'message') throw new Error('kinds');
    expect(toHex(SenderChain.from(sk).decrypt(hex(m.sender), env))).to.equal(m.data);
  });

  it('a sender key and a roster round-trip; the roster verifies under its admin', () => {
    const sk = decodeGroupEnvelope(hex(v.senderKey.envelope));
    expect(sk).to.include({ kind: 'sender-key', e: v.senderKey.e, n: v.senderKey.n, pn: v.senderKey.pn });
    expect(toHex(encodeGroupEnvelope(sk))).to.equal(v.senderKey.envelope);
    const r = decodeGroupEnvelope(hex(v.roster.envelope));
    if (r.kind !== 'roster') throw new Error('kind');
    expect(r.members.map(toHex)).to.deep.equal(v.roster.members);
    expect(r.admins).to.deep.equal(v.roster.admins);
    expect(toHex(r.by)).to.equal(toHex(crypto().ed25519Keypair(hex(v.roster.adminSeed)).publicKey));
    expect(verifyRoster(r)).to.equal(true);
    expect(verifyRoster({ ...r, name: 'other' })).to.equal(false);
    expect(toHex(encodeGroupEnvelope(r))).to.equal(v.roster.envelope);
  });

  for (const c of v.invalid) {
    it(`refuses ${c.name} (${c.error})`, () => {
      expectCode(() => decodeGroupEnvelope(hex(c.bytes)), c.error);
    });
  }
});
