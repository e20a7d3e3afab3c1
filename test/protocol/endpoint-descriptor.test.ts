/**
 * Endpoint descriptors (specs/messaging.md §3) and client authorisation (§3.3): round trips with and without
 * authorised clients; relays verify without learning the address; tampering, forgery, the wrong locator, address,
 * period or client, and expired or future descriptors are refused with their codes; sizes reveal only a bucket;
 * and the decoders are total over arbitrary and mutated input.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { crypto, type KeyPair } from '../../crypto/index.js';
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { AUTH_ENTRY_LEN, AUTH_GROUP, MAX_AUTH_CLIENTS, openCookie, sealCookie } from '../../protocol/descriptor-auth.js';
import {
  createEndpointDescriptor,
  ENDPOINT_CT_LEN,
  MAX_ENDPOINT_DESCRIPTOR_BYTES,
  MAX_INTRO_POINTS,
  openEndpointDescriptor,
  verifyEndpointDescriptor,
  type EndpointDescriptorBody,
} from '../../protocol/endpoint-descriptor.js';
import { blindSigningKey, descriptorLocator, locatorOfBlindedKey, periodStart, signBlinded } from '../../protocol/key-blinding.js';
import { MAX_POW_EFFORT } from '../../protocol/intro-pow.js';
import { describeEachBinding } from '../helpers/bindings.js';
import { total } from '../helpers/total.js';
import { expectCode } from '../helpers/vectors.js';

const P = 20000;
const NOW = periodStart(P) * 1000 + 3600_000; // an hour into period P, in ms
const HOUR = 3600_000;

function introPoints(n: number): EndpointDescriptorBody['intro'] {
  return Array.from({ length: n }, () => ({ relay: crypto().random(32), auth: createIdentity().publicKey, enc: crypto().x25519Keypair().publicKey }));
}

function body(n = 3, created = NOW - HOUR, expires = NOW + 3 * HOUR): EndpointDescriptorBody {
  return { v: 1, intro: introPoints(n), created, expires };
}

function sameBody(a: EndpointDescriptorBody, b: EndpointDescriptorBody): void {
  const flat = (x: EndpointDescriptorBody) => [x.created, x.expires, ...x.intro.map((i) => [toHex(i.relay), toHex(i.auth), toHex(i.enc)])];
  expect(flat(b)).to.deep.equal(flat(a));
}

/** Re-encodes the outer map with one field replaced (a well-formed but altered descriptor). */
function withField(bytes: Uint8Array, field: string, value: unknown): Uint8Array {
  const m = decodeCbor(bytes, MAX_ENDPOINT_DESCRIPTOR_BYTES) as Record<string, unknown>;
  return encodeCbor({ ...m, [field]: value });
}

const OPEN_CODES = [
  'ERR_CBOR_MALFORMED',
  'ERR_CBOR_NONCANONICAL',
  'ERR_CBOR_TOO_LARGE',
  'ERR_CBOR_DEPTH',
  'ERR_SCHEMA',
  'ERR_ENDPOINT_MISMATCH',
  'ERR_ENDPOINT_DESCRIPTOR',
  'ERR_ENDPOINT_DECRYPT',
  'ERR_SIGNATURE',
  'ERR_CLIENT_AUTH',
  'ERR_DESCRIPTOR_EXPIRED',
  'ERR_DESCRIPTOR_FUTURE',
  'ERR_PADDING',
  'ERR_KEY_FORMAT',
];

describeEachBinding('protocol/endpoint-descriptor', () => {
  let endpoint: Identity;
  let address: string;
  before(() => {
    endpoint = createIdentity();
    address = formatAddress(endpoint.publicKey);
  });

  it('round trips without client authorisation; a relay verifies it under the locator', () => {
    const b = body();
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, b, { revision: 7 });
    expect(toHex(locator)).to.equal(toHex(descriptorLocator(address, P)));
    const v = verifyEndpointDescriptor(locator, bytes, NOW);
    expect([v.period, v.revision, toHex(v.blindedKey)]).to.deep.equal([P, 7, toHex(blindSigningKey(endpoint, P).publicKey)]);
    const opened = openEndpointDescriptor(address, P, bytes, { now: NOW });
    sameBody(b, opened);
    expect(opened.revision).to.equal(7);
    sameBody(b, openEndpointDescriptor(endpoint.publicKey, P, bytes)); // by key, no time checks
  });

  it('carries the proof-of-work seed and suggested effort, with the most intro points, in the smallest size', () => {
    const b = { ...body(MAX_INTRO_POINTS), pow: { seed: crypto().random(32), e: MAX_POW_EFFORT } };
    const { bytes } = createEndpointDescriptor(endpoint, P, b);
    const opened = openEndpointDescriptor(address, P, bytes, { now: NOW });
    expect([toHex(opened.pow!.seed), opened.pow!.e]).to.deep.equal([toHex(b.pow.seed), MAX_POW_EFFORT]);
    expect(openEndpointDescriptor(address, P, createEndpointDescriptor(endpoint, P, body()).bytes, { now: NOW }).pow).to.equal(undefined);
    expectCode(() => createEndpointDescriptor(endpoint, P, { ...body(), pow: { seed: crypto().random(32), e: MAX_POW_EFFORT + 1 } }), 'ERR_SCHEMA');
    expectCode(() => createEndpointDescriptor(endpoint, P, { ...body(), pow: { seed: crypto().random(31), e: 1 } }), 'ERR_SCHEMA');
  });

  it('round trips for every listed client and for nobody else', () => {
    const clients: KeyPair[] = Array.from({ length: 5 }, () => crypto().x25519Keypair());
    const b = body(2);
    const { bytes } = createEndpointDescriptor(endpoint, P, b, { clients: clients.map((c) => c.publicKey) });
    for (const client of clients) sameBody(b, openEndpointDescriptor(address, P, bytes, { now: NOW, client }));
    expectCode(() => openEndpointDescriptor(address, P, bytes, { now: NOW, client: crypto().x25519Keypair() }), 'ERR_CLIENT_AUTH');
    expectCode(() => openEndpointDescriptor(address, P, bytes, { now: NOW }), 'ERR_CLIENT_AUTH');
  });

  it('what a relay stores contains neither the identity key nor anything of another period', () => {
    const { bytes } = createEndpointDescriptor(endpoint, P, body());
    const hay = toHex(bytes);
    for (const needle of [endpoint.publicKey, blindSigningKey(endpoint, P + 1).publicKey, descriptorLocator(address, P + 1)]) {
      expect(hay.includes(toHex(needle))).to.equal(false);
    }
  });

  it('reveals only whether it is public, for up to 16, or for up to 32 clients: not the number of points', () => {
    const ctLen = (bytes: Uint8Array) => (decodeCbor(bytes, MAX_ENDPOINT_DESCRIPTOR_BYTES) as { ct: Uint8Array }).ct.length;
    const keys = (k: number) => Array.from({ length: k }, () => crypto().x25519Keypair().publicKey);
    const groups: [number[], number][] = [
      [[0], ENDPOINT_CT_LEN[0]!],
      [[1, 9, 16], ENDPOINT_CT_LEN[1]!],
      [[17, 32], ENDPOINT_CT_LEN[2]!],
    ];
    for (const [clientCounts, expected] of groups) {
      const sizes = new Set<number>();
      const outer = new Set<number>();
      for (const k of clientCounts) {
        for (const n of [1, 4, MAX_INTRO_POINTS]) {
          const { bytes } = createEndpointDescriptor(endpoint, P, body(n), k ? { clients: keys(k) } : {});
          sizes.add(ctLen(bytes));
          outer.add(bytes.length);
          expect(bytes.length).to.be.at.most(MAX_ENDPOINT_DESCRIPTOR_BYTES);
        }
      }
      expect([...sizes]).to.deep.equal([expected]);
      expect(outer.size).to.equal(1);
    }
    expect(ENDPOINT_CT_LEN).to.deep.equal([1772, 3544, 7088]);
  });

  it('refuses the wrong locator, period or address', () => {
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, body());
    const other = createIdentity();
    expectCode(() => verifyEndpointDescriptor(descriptorLocator(address, P + 1), bytes), 'ERR_ENDPOINT_MISMATCH');
    expectCode(() => verifyEndpointDescriptor(descriptorLocator(other.publicKey, P), bytes), 'ERR_ENDPOINT_MISMATCH');
    expectCode(() => openEndpointDescriptor(address, P + 1, bytes), 'ERR_ENDPOINT_MISMATCH');
    expectCode(() => openEndpointDescriptor(address, P - 1, bytes), 'ERR_ENDPOINT_MISMATCH');
    expectCode(() => openEndpointDescriptor(other.publicKey, P, bytes), 'ERR_ENDPOINT_MISMATCH');
    // relabelled as another period, re-locating it so the relay-side locator check passes: the signature fails
    const relabelled = withField(bytes, 'p', P + 1);
    const bk = blindSigningKey(endpoint, P).publicKey;
    expectCode(() => verifyEndpointDescriptor(locatorOfBlindedKey(bk, P + 1), relabelled), 'ERR_SIGNATURE');
    expect(toHex(locator)).to.equal(toHex(locatorOfBlindedKey(bk, P)));
  });

  it("refuses forgeries: re-signed by another key, or another identity's descriptor under this locator", () => {
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, body());
    const mallory = createIdentity();
    // Mallory's own, valid descriptor offered under the endpoint's locator
    const own = createEndpointDescriptor(mallory, P, body()).bytes;
    expectCode(() => verifyEndpointDescriptor(locator, own), 'ERR_ENDPOINT_MISMATCH');
    expectCode(() => openEndpointDescriptor(address, P, own), 'ERR_ENDPOINT_MISMATCH');
    // the endpoint's header with Mallory's blinded signature
    const m = decodeCbor(bytes, MAX_ENDPOINT_DESCRIPTOR_BYTES) as { ct: Uint8Array };
    const forged = withField(bytes, 'sig', signBlinded(blindSigningKey(mallory, P), m.ct));
    expectCode(() => verifyEndpointDescriptor(locator, forged), 'ERR_SIGNATURE');
    expectCode(() => openEndpointDescriptor(address, P, forged), 'ERR_SIGNATURE');
    // a new ciphertext (Mallory cannot sign for bk)
    const swapped = withField(bytes, 'ct', crypto().random(m.ct.length));
    expectCode(() => verifyEndpointDescriptor(locator, swapped), 'ERR_SIGNATURE');
    // a higher revision to win replacement at relays
    expectCode(() => verifyEndpointDescriptor(locator, withField(bytes, 'rev', 10 ** 15)), 'ERR_SIGNATURE');
  });

  it('refuses every single-byte change at the relay, and a stride of them at the client', () => {
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, body(1));
    for (let i = 0; i < bytes.length; i++) {
      const t = Uint8Array.from(bytes);
      t[i]! ^= 1 << (i % 8);
      expect(total(() => verifyEndpointDescriptor(locator, t, NOW), OPEN_CODES).ok, `byte ${i} accepted`).to.equal(false);
      // the client repeats the relay's checks first; every 16th byte (and the whole header) is enough to show it
      if (i < 120 || i % 16 === 0) expect(total(() => openEndpointDescriptor(address, P, t, { now: NOW }), OPEN_CODES).ok).to.equal(false);
    }
  });

  it('checks periods and times', () => {
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, body());
    const day = 86400_000;
    verifyEndpointDescriptor(locator, bytes, NOW - day); // published a period ahead: allowed
    verifyEndpointDescriptor(locator, bytes, NOW + day); // the previous period: still served
    expectCode(() => verifyEndpointDescriptor(locator, bytes, NOW - 2 * day), 'ERR_DESCRIPTOR_FUTURE');
    expectCode(() => verifyEndpointDescriptor(locator, bytes, NOW + 2 * day), 'ERR_DESCRIPTOR_EXPIRED');
    expectCode(() => openEndpointDescriptor(address, P, bytes, { now: NOW + 4 * HOUR }), 'ERR_DESCRIPTOR_EXPIRED');
    expectCode(() => openEndpointDescriptor(address, P, bytes, { now: NOW - 2 * HOUR }), 'ERR_DESCRIPTOR_FUTURE');
  });

  it('refuses bodies that break the rules when creating', () => {
    expectCode(() => createEndpointDescriptor(endpoint, P, body(MAX_INTRO_POINTS + 1)), 'ERR_SCHEMA');
    expectCode(() => createEndpointDescriptor(endpoint, P, body(0)), 'ERR_SCHEMA');
    expectCode(() => createEndpointDescriptor(endpoint, P, body(2, NOW, NOW)), 'ERR_ENDPOINT_DESCRIPTOR');
    expectCode(() => createEndpointDescriptor(endpoint, P, body(2, NOW, NOW + 25 * HOUR)), 'ERR_ENDPOINT_DESCRIPTOR');
    const dup = body(2);
    dup.intro[1] = { ...dup.intro[1]!, relay: dup.intro[0]!.relay };
    expectCode(() => createEndpointDescriptor(endpoint, P, dup), 'ERR_ENDPOINT_DESCRIPTOR');
    const badAuth = body(1);
    badAuth.intro[0] = { ...badAuth.intro[0]!, auth: new Uint8Array(32) };
    expectCode(() => createEndpointDescriptor(endpoint, P, badAuth), 'ERR_ENDPOINT_DESCRIPTOR');
    const many = Array.from({ length: MAX_AUTH_CLIENTS + 1 }, () => crypto().x25519Keypair().publicKey);
    expectCode(() => createEndpointDescriptor(endpoint, P, body(), { clients: many }), 'ERR_CONFIG');
  });

  it('decoding is total over arbitrary and mutated input', () => {
    const { locator, bytes } = createEndpointDescriptor(endpoint, P, body(2), { clients: [crypto().x25519Keypair().publicKey] });
    const mutated = fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 8 })).map(([i, x, cut]) => {
      const t = Uint8Array.from(bytes.subarray(0, bytes.length - cut));
      if (i < t.length) t[i]! ^= x;
      return t;
    });
    const input = fc.oneof(
      mutated,
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ minLength: MAX_ENDPOINT_DESCRIPTOR_BYTES + 1, maxLength: MAX_ENDPOINT_DESCRIPTOR_BYTES + 2 }),
    );
    fc.assert(
      fc.property(input, (b) => {
        total(() => verifyEndpointDescriptor(locator, b, NOW), OPEN_CODES);
        total(() => openEndpointDescriptor(address, P, b, { now: NOW, client: crypto().x25519Keypair() }), OPEN_CODES);
      }),
      { numRuns: 200 },
    );
  });
});

describeEachBinding('protocol/descriptor-auth', () => {
  it('seals one cookie per client among decoys, in groups of 16, and each client opens it', () => {
    for (const n of [1, 15, 16, 17, 32]) {
      const clients = Array.from({ length: n }, () => crypto().x25519Keypair());
      const { cookie, entries } = sealCookie(clients.map((c) => c.publicKey));
      expect(entries.length).to.equal(Math.ceil(n / AUTH_GROUP) * AUTH_GROUP);
      for (const e of entries) expect(e.length).to.equal(AUTH_ENTRY_LEN);
      for (const c of clients) expect(toHex(openCookie(entries, c)!)).to.equal(toHex(cookie));
      expect(openCookie(entries, crypto().x25519Keypair())).to.equal(null);
    }
  });

  it('refuses an empty or oversized client list', () => {
    expectCode(() => sealCookie([]), 'ERR_CONFIG');
    expectCode(() => sealCookie(Array.from({ length: MAX_AUTH_CLIENTS + 1 }, () => crypto().x25519Keypair().publicKey)), 'ERR_CONFIG');
  });
});
