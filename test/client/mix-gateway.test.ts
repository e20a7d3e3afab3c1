/**
 * The mix gateway of message mode (specs/mix.md §8.1): chosen as a guard is (sampled by weight among the relays that
 * can be guards and list "mix", then kept in the guard sample) and the same one given again; none without a mix
 * relay (ERR_MIX_UNREACHABLE). The client has no network here: its directory and its dialer are stand-ins.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { toHex } from '../../protocol/bytes.js';
import { DirectoryView } from '../../protocol/view.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { descriptorFor } from '../helpers/overlay.js';

function clientWith(relays: Descriptor[]): { client: AlliumClient; dialed: string[] } {
  const client = new AlliumClient({ bootstrap: [], socketFactory: nodeSocketFactory, poolSize: 0 });
  const dialed: string[] = [];
  const inside = client as unknown as { state: string; linkTo: (id: Uint8Array) => Promise<unknown> };
  inside.state = 'running';
  inside.linkTo = (id) => {
    dialed.push(toHex(id));
    return Promise.resolve({ isOpen: true });
  };
  const view = new DirectoryView(relays, null);
  Object.defineProperty(client.directory, 'view', { get: () => view });
  (client.directory as unknown as { all: () => Descriptor[] }).all = () => relays;
  return { client, dialed };
}

describe('message mode: the mix gateway', () => {
  it('is a mix relay sampled into the guards and kept; mixRelays() lists the mix relays with their onion keys', async () => {
    const now = Date.now();
    const relays = [
      ...Array.from({ length: 4 }, () => descriptorFor({ pub: now })),
      ...Array.from({ length: 2 }, () => descriptorFor({ pub: now, caps: ['mix'] })),
    ];
    const { client, dialed } = clientWith(relays);
    expect(client.mixRelays().map((r) => toHex(r.mixKey))).to.deep.equal(relays.slice(4).map((d) => toHex(d.onion)));
    const g = await client.mixGateway();
    const fp = toHex(g.identity);
    expect(relays.slice(4).map((d) => d.fingerprint)).to.include(fp);
    expect(client.guards.all.map((r) => r.fingerprint)).to.include(fp);
    expect(toHex((await client.mixGateway()).identity)).to.equal(fp);
    expect(dialed).to.deep.equal([fp, fp]);
    expect(client.guards.all).to.have.length(1);
  });

  it('refuses with ERR_MIX_UNREACHABLE when no relay is a mix relay', async () => {
    const { client } = clientWith([descriptorFor({ pub: Date.now() })]);
    const e = await client.mixGateway().then(
      () => null,
      (x: { code?: string }) => x.code,
    );
    expect(e).to.equal('ERR_MIX_UNREACHABLE');
  });
});
