/**
 * Vectors for groups (specs/messaging.md §13): the sender-key chain (chain keys and message keys from a fixed chain
 * key), a group message encrypted and signed under fixed keys, a sender-key envelope, a signed roster, and refused
 * envelopes with their codes.
 */
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  decodeGroupEnvelope,
  encodeGroupEnvelope,
  MAX_GROUP_ENVELOPE_BYTES,
  MAX_GROUP_MEMBERS,
  MAX_GROUP_MESSAGE_BYTES,
  signRoster,
} from '../../protocol/group-messages.js';
import { groupHeader, kdfGroupChain, MAX_GROUP_SKIP, OwnSenderKey, SenderChain } from '../../protocol/sender-key.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

export function groupsFile(): VectorFile {
  const ck0 = seeded('groups/ck')(32);
  const chain: Array<{ n: number; ck: string; mk: string }> = [];
  let ck = ck0;
  for (let n = 0; n < 3; n++) {
    const [next, mk] = kdfGroupChain(ck);
    chain.push({ n, ck: toHex(ck), mk: toHex(mk) });
    ck = next;
  }

  const group = seeded('groups/id')(32);
  const alice = crypto().ed25519Keypair(seeded('groups/alice')(32));
  const bob = crypto().ed25519Keypair(seeded('groups/bob')(32));
  const signingSeed = seeded('groups/signing')(32);
  const own = OwnSenderKey.fromParts({ ck: ck0, signingSeed, e: 2, n: 0, pn: 7 });
  const dist = own.distribution(group);
  const distBytes = encodeGroupEnvelope(dist);
  const data = new TextEncoder().encode('the leeks are up');
  own.encrypt(group, alice.publicKey, new Uint8Array(0)); // index 0
  const m = own.encrypt(group, alice.publicKey, data); // index 1
  const mBytes = encodeGroupEnvelope(m);
  const reader = SenderChain.from(dist);
  const opened = reader.decrypt(alice.publicKey, m);
  check(toHex(opened) === toHex(data), 'the vector message opens from the distribution');
  check(reader.skippedKeys === 1, 'index 0 is kept as a skipped key');

  const roster = signRoster({ group, r: 1, name: 'allotment', members: [alice.publicKey, bob.publicKey], admins: [0], by: alice.publicKey }, alice.secretKey);
  const rosterBytes = encodeGroupEnvelope(roster);
  check(decodeGroupEnvelope(rosterBytes).kind === 'roster', 'the roster decodes');

  const base = { v: 1, t: 2, g: group, e: 0, n: 0, pn: 0, ck: ck0, sp: alice.publicKey };
  const invalid = [
    { name: 'an unknown type', value: { ...base, t: 4 }, error: 'ERR_SCHEMA' },
    { name: 'version 2', value: { ...base, v: 2 }, error: 'ERR_SCHEMA' },
    { name: 'a short group id', value: { ...base, g: group.subarray(0, 31) }, error: 'ERR_SCHEMA' },
    { name: 'an unknown field', value: { ...base, x: 1 }, error: 'ERR_SCHEMA' },
    { name: 'a generation beyond 2^32 - 1', value: { ...base, e: 2 ** 32 }, error: 'ERR_SCHEMA' },
    {
      name: 'a roster listing a member twice',
      value: { v: 1, t: 3, g: group, r: 1, name: 'x', m: [alice.publicKey, alice.publicKey], a: [0], by: alice.publicKey, sig: new Uint8Array(64) },
      error: 'ERR_SCHEMA',
    },
    {
      name: 'a roster whose admin index names no member',
      value: { v: 1, t: 3, g: group, r: 1, name: 'x', m: [alice.publicKey], a: [1], by: alice.publicKey, sig: new Uint8Array(64) },
      error: 'ERR_SCHEMA',
    },
    {
      name: 'a roster with admin indices out of order',
      value: { v: 1, t: 3, g: group, r: 1, name: 'x', m: [alice.publicKey, bob.publicKey], a: [1, 0], by: alice.publicKey, sig: new Uint8Array(64) },
      error: 'ERR_SCHEMA',
    },
  ].map((c) => {
    const bytes = encodeCbor(c.value);
    return {
      name: c.name,
      bytes: toHex(bytes),
      error: expectCode(
        errorCodeOf(() => decodeGroupEnvelope(bytes), c.name),
        c.error,
        c.name,
      ),
    };
  });
  const trailing = Uint8Array.of(...distBytes, 0);
  invalid.push({ name: 'a sender key with a trailing byte', bytes: toHex(trailing), error: errorCodeOf(() => decodeGroupEnvelope(trailing), 'trailing') });

  return {
    description:
      'Groups (specs/messaging.md §13): the sender-key chain from a fixed chain key (ck_n and mk_n for n = 0..2); a sender key of generation 2 and the message of index 1 under it (sender identity and signing key from fixed seeds), with its header, AEAD ciphertext and signature; a signed roster; and refused envelopes with their codes.',
    version: VECTORS_VERSION,
    constants: {
      maxGroupMembers: MAX_GROUP_MEMBERS,
      maxGroupMessageBytes: MAX_GROUP_MESSAGE_BYTES,
      maxGroupEnvelopeBytes: MAX_GROUP_ENVELOPE_BYTES,
      maxGroupSkip: MAX_GROUP_SKIP,
    },
    chain,
    message: {
      group: toHex(group),
      sender: toHex(alice.publicKey),
      signingSeed: toHex(signingSeed),
      signingKey: toHex(dist.sp),
      e: 2,
      n: 1,
      data: toHex(data),
      header: toHex(groupHeader(group, alice.publicKey, 2, 1)),
      mk: chain[1]!.mk,
      ct: toHex(m.ct),
      sig: toHex(m.sig),
      envelope: toHex(mBytes),
    },
    senderKey: { ck: toHex(ck0), e: 2, n: 0, pn: 7, sp: toHex(dist.sp), envelope: toHex(distBytes) },
    roster: {
      adminSeed: toHex(seeded('groups/alice')(32)),
      members: [toHex(alice.publicKey), toHex(bob.publicKey)],
      admins: [0],
      r: 1,
      name: 'allotment',
      sig: toHex(roster.sig),
      envelope: toHex(rosterBytes),
    },
    invalid,
  };
}
