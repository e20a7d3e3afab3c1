/**
 * Vectors for devices (specs/messaging.md §14): a link code (bytes, text) and its proof; a device list of three
 * devices signed by its person and countersigned by each device; one envelope of every other type; and refused
 * envelopes and codes with their codes. Identities come from fixed seeds; Ed25519 signatures are deterministic.
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import { fromHex, toHex } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import {
  decodeDeviceEnvelope,
  decodeLinkCode,
  encodeDeviceEnvelope,
  encodeLinkCode,
  formatLinkCode,
  HISTORY_CHUNK_BYTES,
  linkProof,
  MAX_DEVICE_ENVELOPE_BYTES,
  MAX_DEVICES,
  MAX_HISTORY_SYNC_BYTES,
  MAX_SYNC_DATA_BYTES,
  signDeviceList,
  signMembership,
  verifyDeviceList,
  type DeviceEnvelope,
} from '../../protocol/device-link.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

export function devicesFile(): VectorFile {
  const seeds = ['devices/primary', 'devices/laptop', 'devices/tablet'].map((s) => seeded(s)(32));
  const keys: KeyPair[] = seeds.map((s) => crypto().ed25519Keypair(s));
  const [primary, laptop, tablet] = [keys[0]!, keys[1]!, keys[2]!];
  const P = primary.publicKey;
  const secret = seeded('devices/link-secret')(16);
  const code = encodeLinkCode({ device: laptop.publicKey, secret });
  const proof = linkProof(secret, P, laptop.publicKey);

  const members = [primary, laptop, tablet].map((k) => ({ key: k.publicKey, sig: signMembership(P, k.secretKey) }));
  const list = signDeviceList({ person: P, r: 2, members }, primary.secretKey);
  verifyDeviceList(list);
  const listBytes = encodeDeviceEnvelope(list);
  check(decodeDeviceEnvelope(listBytes).kind === 'list', 'the list decodes');

  const id = seeded('devices/id')(16);
  const q = seeded('devices/q')(16);
  const alice = crypto().ed25519Keypair(seeded('devices/alice')(32)).publicKey;
  const data = new TextEncoder().encode('see you at the allotment');
  const others: Array<{ name: string; envelope: DeviceEnvelope }> = [
    { name: 'offer', envelope: { kind: 'offer', person: P, proof } },
    { name: 'accept', envelope: { kind: 'accept', person: P, sig: members[1]!.sig } },
    { name: 'sent', envelope: { kind: 'sent', to: alice, id, ts: 1_800_000_000_000, data, attachment: false } },
    { name: 'history-request', envelope: { kind: 'history-request', q, after: 1_700_000_000_000, max: 1_048_576 } },
    {
      name: 'history',
      envelope: {
        kind: 'history',
        q,
        i: 0,
        last: true,
        entries: [
          { outgoing: false, peer: alice, id, ts: 1_800_000_000_000, data, attachment: false },
          { outgoing: true, peer: alice, id: q, ts: 1_800_000_000_001, data: new Uint8Array(0), attachment: true },
        ],
      },
    },
  ];
  const envelopes = others.map((o) => {
    const bytes = encodeDeviceEnvelope(o.envelope);
    check(toHex(encodeDeviceEnvelope(decodeDeviceEnvelope(bytes))) === toHex(bytes), `${o.name} round-trips`);
    return { name: o.name, bytes: toHex(bytes) };
  });

  const raw = (l: typeof list, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    v: 1,
    t: 1,
    p: l.person,
    r: l.r,
    d: l.members.map((m) => ({ k: m.key, s: m.sig })),
    sig: l.sig,
    ...extra,
  });
  const invalid = [
    { name: 'a list not naming its person first', value: raw(list, { d: [...members].reverse().map((m) => ({ k: m.key, s: m.sig })) }), error: 'ERR_SCHEMA' },
    {
      name: 'a list naming a device twice',
      value: raw(list, { d: [members[0], members[1], members[1]].map((m) => ({ k: m!.key, s: m!.sig })) }),
      error: 'ERR_SCHEMA',
    },
    { name: 'a list of no device', value: raw(list, { d: [] }), error: 'ERR_SCHEMA' },
    { name: 'an unknown type', value: { v: 1, t: 7, p: P, proof }, error: 'ERR_SCHEMA' },
    { name: 'version 2', value: { v: 2, t: 2, p: P, proof }, error: 'ERR_SCHEMA' },
    { name: 'an unknown field', value: { v: 1, t: 2, p: P, proof, x: 1 }, error: 'ERR_SCHEMA' },
    { name: 'a history request above MAX_HISTORY_SYNC_BYTES', value: { v: 1, t: 5, q, after: 0, max: MAX_HISTORY_SYNC_BYTES + 1 }, error: 'ERR_SCHEMA' },
    { name: 'a sync whose "a" is false', value: { v: 1, t: 4, to: alice, id, ts: 0, d: data, a: false }, error: 'ERR_SCHEMA' },
  ].map((c) => {
    const bytes = encodeCbor(c.value);
    return {
      name: c.name,
      bytes: toHex(bytes),
      error: expectCode(
        errorCodeOf(() => decodeDeviceEnvelope(bytes), c.name),
        c.error,
        c.name,
      ),
    };
  });
  const forged = { ...list, sig: signDeviceList({ person: P, r: 2, members }, laptop.secretKey).sig };
  const forgedBytes = encodeDeviceEnvelope(forged);
  // The tablet listed with the laptop's membership signature: the person signed the list, the tablet never consented.
  const unsignedBytes = encodeCbor(
    raw(signDeviceList({ person: P, r: 2, members: [members[0]!, { key: tablet.publicKey, sig: members[1]!.sig }] }, primary.secretKey)),
  );
  const refusedLists = [
    { name: 'a list signed by one of its devices, not its person', bytes: toHex(forgedBytes), error: 'ERR_SIGNATURE' },
    { name: 'a list whose device did not sign its membership', bytes: toHex(unsignedBytes), error: 'ERR_SIGNATURE' },
  ].map((c) => {
    const l = decodeDeviceEnvelope(fromHex(c.bytes));
    if (l.kind !== 'list') throw new Error('not a list');
    return {
      ...c,
      error: expectCode(
        errorCodeOf(() => verifyDeviceList(l), c.name),
        c.error,
        c.name,
      ),
    };
  });

  const badChecksum = Uint8Array.from(code);
  badChecksum[52] = code[52]! ^ 1;
  const badVersion = Uint8Array.from(code);
  badVersion[0] = 2;
  const invalidCodes = [
    { name: 'a code one byte short', bytes: toHex(code.subarray(0, 52)), error: 'ERR_ADDRESS_FORMAT' },
    { name: 'a code of version 2', bytes: toHex(badVersion), error: 'ERR_ADDRESS_VERSION' },
    { name: 'a code whose checksum does not match', bytes: toHex(badChecksum), error: 'ERR_ADDRESS_CHECKSUM' },
  ].map((c) => ({
    ...c,
    error: expectCode(
      errorCodeOf(() => decodeLinkCode(fromHex(c.bytes)), c.name),
      c.error,
      c.name,
    ),
  }));

  return {
    description:
      'Devices (specs/messaging.md §14): a link code for the laptop (identity from the seed "devices/laptop") with its text form and the proof for the primary; a device list of revision 2 (primary, laptop, tablet) with every member signature and the list signature; an offer, accept, sent, history-request and history envelope; refused envelopes (decoding), refused lists (verification) and refused link codes, each with its code.',
    version: VECTORS_VERSION,
    constants: {
      maxDevices: MAX_DEVICES,
      maxDeviceEnvelopeBytes: MAX_DEVICE_ENVELOPE_BYTES,
      maxSyncDataBytes: MAX_SYNC_DATA_BYTES,
      historyChunkBytes: HISTORY_CHUNK_BYTES,
      maxHistorySyncBytes: MAX_HISTORY_SYNC_BYTES,
    },
    seeds: { primary: toHex(seeds[0]!), laptop: toHex(seeds[1]!), tablet: toHex(seeds[2]!) },
    linkCode: {
      device: toHex(laptop.publicKey),
      secret: toHex(secret),
      bytes: toHex(code),
      text: formatLinkCode({ device: laptop.publicKey, secret }),
      person: toHex(P),
      proof: toHex(proof),
    },
    list: { person: toHex(P), r: 2, members: members.map((m) => ({ key: toHex(m.key), sig: toHex(m.sig) })), sig: toHex(list.sig), envelope: toHex(listBytes) },
    envelopes,
    invalid,
    refusedLists,
    invalidCodes,
  };
}
