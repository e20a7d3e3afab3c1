/**
 * The initiator's side of a rendezvous (specs/rendezvous.md §4.1) with a stand-in client and lookups: what waits for
 * what. The rendezvous point is set up while the descriptor is looked up, and given up for another when it turns out
 * to be one of the endpoint's introduction points; INTRODUCE1 goes only once RENDEZVOUS_ESTABLISHED has come.
 */
import { expect } from 'chai';
import type { CircuitSource } from '../../client/client.js';
import type { ContentClient } from '../../client/content.js';
import { meetEndpoint } from '../../client/messaging/rendezvous.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { createIdentity, formatAddress } from '../../protocol/address.js';
import { equalBytes } from '../../protocol/bytes.js';
import { descriptorMd, type Consensus, type ConsensusEntry } from '../../protocol/consensus.js';
import { signDescriptor, type Descriptor } from '../../protocol/descriptor.js';
import { createEndpointDescriptor } from '../../protocol/endpoint-descriptor.js';
import { Flag } from '../../protocol/flags.js';
import { periodAt } from '../../protocol/key-blinding.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { encodeRv } from '../../protocol/rendezvous-messages.js';
import { DirectoryView } from '../../protocol/view.js';
import { FLAT_WEIGHTS } from '../../protocol/weights.js';

function relay(i: number): Descriptor {
  const now = Date.now();
  const id = IdentityKey.generate();
  return signDescriptor(
    {
      id: id.publicKey,
      onion: crypto().random(32),
      addr: `ws://10.0.${i}.1:9001/allium`,
      nick: `r${i}`,
      contact: '',
      family: [],
      bw: 1000,
      exit: ['reject *:*'],
      caps: ['intro', 'rendezvous'],
      pub: now,
      exp: now + 3_600_000,
    },
    id.secretKey,
  );
}

/** A circuit that answers RENDEZVOUS_ESTABLISHED when told to, INTRODUCE_ACK "ok" at once, and never RENDEZVOUS2. */
class StandIn {
  state: 'open' | 'closed' = 'open';
  readonly sent: RelayMessage[] = [];
  private established: (() => void) | null = null;
  constructor(readonly last: Descriptor) {}
  setPurpose(): void {}
  send(m: RelayMessage): boolean {
    this.sent.push(m);
    return true;
  }
  waitFor(command: RelayCommand, _ms: number, o: { signal?: AbortSignal } = {}): Promise<RelayMessage> {
    return new Promise((resolve, reject) => {
      o.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      if (command === RelayCommand.INTRODUCE_ACK) resolve({ command, streamId: 0, data: encodeRv('introduceAck', { s: 'ok' }) });
      if (command === RelayCommand.RENDEZVOUS_ESTABLISHED) this.established = () => resolve({ command, streamId: 0, data: new Uint8Array(0) });
    });
  }
  establish(): void {
    this.established?.();
  }
  close(): void {
    this.state = 'closed';
  }
  sends(command: RelayCommand): boolean {
    return this.sent.some((m) => m.command === command);
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An endpoint whose only introduction point is `relays[0]`, in a directory of `relays`; lookups answer when told. */
function rig(relays: Descriptor[]) {
  const view = new DirectoryView(relays, {
    entries: relays.map((d): ConsensusEntry => ({ id: d.id, md: descriptorMd(d), flags: Flag.FAST | Flag.STABLE, w: 1000 })),
    weights: FLAT_WEIGHTS,
  } as unknown as Consensus);
  const circuits: StandIn[] = [];
  const client = {
    directory: { view, get: (id: Uint8Array) => relays.find((d) => equalBytes(d.id, id)), all: () => relays },
    newCircuit: (o: { last: Descriptor }) => {
      const c = new StandIn(o.last);
      circuits.push(c);
      return Promise.resolve(c);
    },
  } as unknown as CircuitSource;
  const endpoint = createIdentity();
  const now = Date.now();
  const period = periodAt(Math.floor(now / 1000));
  const d = createEndpointDescriptor(endpoint, period, {
    v: 1,
    intro: [{ relay: relays[0]!.id, auth: crypto().ed25519Keypair().publicKey, enc: crypto().x25519Keypair().publicKey }],
    created: now,
    expires: now + 3_600_000,
  });
  // A holder's copy as it answers (onCopy), and the lookup's end once every holder has answered.
  let onCopy: (bytes: Uint8Array) => void = () => undefined;
  let done: (copies: Uint8Array[]) => void = () => undefined;
  const given: Uint8Array[] = [];
  const lookups = {
    fetchFromAll: (_kind: string, _rk: Uint8Array, o: { onCopy?: (bytes: Uint8Array) => void }) =>
      new Promise<Uint8Array[]>((r) => {
        onCopy = o.onCopy ?? (() => undefined);
        done = r;
      }),
  } as unknown as ContentClient;
  /** Another revision of the endpoint's descriptor, its one introduction point at `relay`. */
  const revision = (r: number, relay: Descriptor): Uint8Array =>
    createEndpointDescriptor(
      endpoint,
      period,
      {
        v: 1,
        intro: [{ relay: relay.id, auth: crypto().ed25519Keypair().publicKey, enc: crypto().x25519Keypair().publicKey }],
        created: now,
        expires: now + 3_600_000,
      },
      { revision: r },
    ).bytes;
  const copy = (bytes: Uint8Array): void => {
    given.push(bytes);
    onCopy(bytes);
  };
  return {
    client,
    lookups,
    circuits,
    address: formatAddress(endpoint.publicKey),
    answer: () => {
      copy(d.bytes);
      done(given);
    },
    copy,
    finish: () => done(given),
    revision,
  };
}

describe('the initiator of a rendezvous waits only where it must (specs/rendezvous.md §4.1)', () => {
  it('sets up the rendezvous point while the descriptor is looked up, and introduces itself only once it is established', async () => {
    const r = rig([relay(0), relay(1), relay(2)]);
    const ac = new AbortController();
    const met = meetEndpoint(r.client, r.lookups, r.address, { as: createIdentity(), signal: ac.signal });
    met.catch(() => undefined);
    await settle();
    // The lookup has not answered: the rendezvous point's circuit is built and its cookie sent all the same.
    expect(r.circuits.length).to.equal(1);
    expect(r.circuits[0]!.sends(RelayCommand.ESTABLISH_RENDEZVOUS)).to.equal(true);
    r.answer();
    await settle();
    const intro = r.circuits.find((c) => c.last === r.client.directory.view.relays[0] && !c.sends(RelayCommand.ESTABLISH_RENDEZVOUS));
    // The circuit to the introduction point is built; INTRODUCE1 waits for RENDEZVOUS_ESTABLISHED (of a second
    // rendezvous point, when the first was the introduction point).
    expect(intro, 'the circuit to the introduction point').to.not.equal(undefined);
    for (let round = 0; round < 2; round++) {
      expect(intro!.sends(RelayCommand.INTRODUCE1)).to.equal(false);
      for (const c of r.circuits.filter((c) => c.state === 'open' && c.sends(RelayCommand.ESTABLISH_RENDEZVOUS))) c.establish();
      for (let i = 0; i < 3; i++) await settle();
      if (intro!.sends(RelayCommand.INTRODUCE1)) break;
    }
    expect(intro!.sends(RelayCommand.INTRODUCE1)).to.equal(true);
    ac.abort();
    await met.then(
      () => expect.fail('no RENDEZVOUS2 came'),
      () => undefined,
    );
  });

  it('gives up a rendezvous point drawn before the descriptor that is one of its introduction points, when another can serve', async () => {
    let collided = 0;
    for (let run = 0; run < 24; run++) {
      const r = rig([relay(0), relay(1)]);
      const ip = r.client.directory.view.relays[0]!;
      const ac = new AbortController();
      const met = meetEndpoint(r.client, r.lookups, r.address, { as: createIdentity(), signal: ac.signal });
      met.catch(() => undefined);
      await settle();
      const early = r.circuits[0]!;
      r.answer();
      early.establish();
      for (let i = 0; i < 3; i++) await settle();
      for (const c of r.circuits.filter((c) => c.sends(RelayCommand.ESTABLISH_RENDEZVOUS) && c.state === 'open')) c.establish();
      for (let i = 0; i < 3; i++) await settle();
      const points = r.circuits.filter((c) => c.sends(RelayCommand.ESTABLISH_RENDEZVOUS));
      const open = points.filter((c) => c.state === 'open');
      expect(open.length, 'one rendezvous point in use').to.equal(1);
      expect(open[0]!.last, 'the rendezvous point is not the introduction point').to.not.equal(ip);
      if (early.last === ip) {
        collided++;
        expect(early.state, 'the early rendezvous point, an introduction point, given up').to.equal('closed');
      }
      expect(r.circuits.some((c) => c.sends(RelayCommand.INTRODUCE1))).to.equal(true);
      ac.abort();
      await met.catch(() => undefined);
    }
    // Drawn by equal weight from two relays, 24 times: the case happened (all 24 missing it: 2^-24).
    expect(collided).to.be.greaterThan(0);
  });

  it('builds the circuit to an introduction point from the first copy that opens, before the slowest holder answers', async () => {
    const relays = [relay(0), relay(1), relay(2), relay(3)];
    const r = rig(relays);
    const ac = new AbortController();
    const met = meetEndpoint(r.client, r.lookups, r.address, { as: createIdentity(), signal: ac.signal });
    met.catch(() => undefined);
    await settle();
    // One holder answers; the others have not.
    r.copy(r.revision(1, relays[3]!));
    for (let i = 0; i < 3; i++) await settle();
    const toIp = (fp: string) => r.circuits.find((c) => c.last.fingerprint === fp && !c.sends(RelayCommand.ESTABLISH_RENDEZVOUS));
    expect(toIp(relays[3]!.fingerprint), "the circuit to the first copy's introduction point").to.not.equal(undefined);
    for (const c of r.circuits.filter((c) => c.state === 'open' && c.sends(RelayCommand.ESTABLISH_RENDEZVOUS))) c.establish();
    for (let i = 0; i < 3; i++) await settle();
    // Nothing is sent to an introduction point before every holder has answered.
    expect(
      r.circuits.some((c) => c.sends(RelayCommand.INTRODUCE1)),
      'INTRODUCE1 before the lookup ended',
    ).to.equal(false);
    r.finish();
    for (let round = 0; round < 3; round++) {
      for (const c of r.circuits.filter((c) => c.state === 'open' && c.sends(RelayCommand.ESTABLISH_RENDEZVOUS))) c.establish();
      for (let i = 0; i < 3; i++) await settle();
    }
    expect(toIp(relays[3]!.fingerprint)!.sends(RelayCommand.INTRODUCE1)).to.equal(true);
    ac.abort();
    await met.catch(() => undefined);
  });

  it('introduces itself at the newest revision any holder has, not the first copy, giving up the circuit built for it', async () => {
    const relays = [relay(0), relay(1), relay(2), relay(3)];
    const r = rig(relays);
    const ac = new AbortController();
    const met = meetEndpoint(r.client, r.lookups, r.address, { as: createIdentity(), signal: ac.signal });
    met.catch(() => undefined);
    await settle();
    r.copy(r.revision(1, relays[3]!)); // an older revision first
    for (let i = 0; i < 3; i++) await settle();
    r.copy(r.revision(2, relays[2]!));
    r.finish();
    for (let round = 0; round < 3; round++) {
      for (const c of r.circuits.filter((c) => c.state === 'open' && c.sends(RelayCommand.ESTABLISH_RENDEZVOUS))) c.establish();
      for (let i = 0; i < 3; i++) await settle();
    }
    const introduced = r.circuits.filter((c) => c.sends(RelayCommand.INTRODUCE1));
    expect(introduced.map((c) => c.last.fingerprint)).to.deep.equal([relays[2]!.fingerprint]);
    const stale = r.circuits.filter((c) => c.last.fingerprint === relays[3]!.fingerprint && !c.sends(RelayCommand.ESTABLISH_RENDEZVOUS));
    expect(stale.length, 'a circuit was built from the first copy').to.equal(1);
    for (const c of stale) expect(c.state, "the circuit to the older revision's introduction point").to.equal('closed');
    ac.abort();
    await met.catch(() => undefined);
  });
});
