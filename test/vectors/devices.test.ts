/** specs/vectors/devices.json against the code: link code and proof, a signed device list, envelopes, refusals. */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
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
  parseLinkCode,
  signMembership,
  verifyDeviceList,
} from '../../protocol/device-link.js';
import { expectCode, hex, readVectors } from '../helpers/vectors.js';

interface Case {
  name: string;
  bytes: string;
  error: string;
}
interface File {
  constants: Record<string, number>;
  seeds: { primary: string; laptop: string; tablet: string };
  linkCode: { device: string; secret: string; bytes: string; text: string; person: string; proof: string };
  list: { person: string; r: number; members: Array<{ key: string; sig: string }>; sig: string; envelope: string };
  envelopes: Array<{ name: string; bytes: string }>;
  invalid: Case[];
  refusedLists: Case[];
  invalidCodes: Case[];
}

describe('vectors: devices (specs/messaging.md §14)', () => {
  const v = readVectors<File>('devices.json');

  it('states the limits the code uses', () => {
    expect(v.constants).to.deep.equal({
      maxDevices: MAX_DEVICES,
      maxDeviceEnvelopeBytes: MAX_DEVICE_ENVELOPE_BYTES,
      maxSyncDataBytes: MAX_SYNC_DATA_BYTES,
      historyChunkBytes: HISTORY_CHUNK_BYTES,
      maxHistorySyncBytes: MAX_HISTORY_SYNC_BYTES,
    });
  });

  it('a link code: bytes, text, checksum, and the proof for the primary', () => {
    const c = v.linkCode;
    expect(toHex(crypto().ed25519Keypair(hex(v.seeds.laptop)).publicKey)).to.equal(c.device);
    expect(toHex(encodeLinkCode({ device: hex(c.device), secret: hex(c.secret) }))).to.equal(c.bytes);
    expect(formatLinkCode({ device: hex(c.device), secret: hex(c.secret) })).to.equal(c.text);
    for (const parsed of [decodeLinkCode(hex(c.bytes)), parseLinkCode(c.text.toUpperCase())]) {
      expect([toHex(parsed.device), toHex(parsed.secret)]).to.deep.equal([c.device, c.secret]);
    }
    expect(c.text).to.have.length(97);
    expect(toHex(linkProof(hex(c.secret), hex(c.person), hex(c.device)))).to.equal(c.proof);
  });

  it('a device list: member signatures, the person’s signature, the envelope', () => {
    const l = decodeDeviceEnvelope(hex(v.list.envelope));
    if (l.kind !== 'list') throw new Error('kind');
    expect(l.r).to.equal(v.list.r);
    expect(l.members.map((m) => ({ key: toHex(m.key), sig: toHex(m.sig) }))).to.deep.equal(v.list.members);
    const seeds = [v.seeds.primary, v.seeds.laptop, v.seeds.tablet];
    for (const [i, seed] of seeds.entries()) {
      const k = crypto().ed25519Keypair(hex(seed));
      expect(toHex(signMembership(hex(v.list.person), k.secretKey))).to.equal(v.list.members[i]!.sig);
    }
    expect(toHex(l.sig)).to.equal(v.list.sig);
    verifyDeviceList(l);
    expect(toHex(encodeDeviceEnvelope(l))).to.equal(v.list.envelope);
  });

  for (const e of v.envelopes) {
    it(`the ${e.name} envelope round-trips`, () => {
      const d = decodeDeviceEnvelope(hex(e.bytes));
      expect(d.kind).to.equal(e.name);
      expect(toHex(encodeDeviceEnvelope(d))).to.equal(e.bytes);
    });
  }

  for (const c of v.invalid) {
    it(`refuses ${c.name} (${c.error})`, () => {
      expectCode(() => decodeDeviceEnvelope(hex(c.bytes)), c.error);
    });
  }

  for (const c of v.refusedLists) {
    it(`refuses ${c.name} (${c.error})`, () => {
      const l = decodeDeviceEnvelope(hex(c.bytes));
      if (l.kind !== 'list') throw new Error('kind');
      expectCode(() => verifyDeviceList(l), c.error);
    });
  }

  for (const c of v.invalidCodes) {
    it(`refuses ${c.name} (${c.error})`, () => {
      expectCode(() => decodeLinkCode(hex(c.bytes)), c.error);
    });
  }
});
