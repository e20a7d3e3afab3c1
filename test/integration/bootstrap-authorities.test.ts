/**
 * A client given only a relay's printed bootstrap line, on a network under directory authorities (relay processes),
 * takes the authorities from the line (specs/directory.md §6.7): it requires their consensus and places content where
 * the relays keep and repair it (positions salted by the consensus's shared random value, Holder relays; content.md
 * §6.1). Before bootstrap lines named authorities, such a client placed content by unsalted positions among every
 * store relay: the relays then copied each block to the holders of their own placement and kept the client's
 * copies elsewhere as cache, and the client asked other holders than the relays repair to.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { toHex } from '../../protocol/bytes.js';
import { parseLink } from '../../protocol/content-link.js';
import { Flag } from '../../protocol/flags.js';
import { openStore, startClient } from '../helpers/content.js';
import { startNetwork, waitFor, type RelayProcess, type TestNetwork } from '../helpers/network.js';

/** How a relay's store holds a block: its role ('replica': a holder by the relay's placement, 'cache': not) and whether repair checked it. */
function rowAt(relay: RelayProcess, rk: Uint8Array): { role: string; checked: boolean } | null {
  const db = openStore(relay);
  try {
    const row = db.prepare<[Uint8Array], { role: string; checked_gen: string }>('SELECT role, checked_gen FROM blocks WHERE rk = ?').get(rk);
    return row ? { role: row.role, checked: row.checked_gen !== '' } : null;
  } finally {
    db.close();
  }
}

describe('bootstrap line naming the authorities: a client given only the printed line uses their consensus (relay processes)', function () {
  this.timeout(240_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;
  let printed: string;

  before(async () => {
    // Five store relays, the first three the authorities; every relay is configured with them.
    net = await startNetwork(5, { timing: { repair_interval: 1000 } });
    // What a plain relay of the network printed for its operator to hand out, and nothing else.
    printed = /bootstrap line: (.+)/.exec(net.relays[4]!.logs())![1]!.trim();
    client = await startClient(printed);
    content = new ContentClient(client);
    const n = net.relays.length;
    // Every relay holds a consensus in which all are Holders (their placement counts every relay), and so does the
    // client when it follows one.
    await waitFor(
      async () => (await Promise.all(net.relays.map((r) => r.metric('allium_consensus_relays', { flag: 'holder' })))).every((x) => x === n),
      60_000,
      `a consensus at every relay in which all ${n} are Holders`,
    );
    await waitFor(
      async () => {
        await client.refreshDirectory();
        const all = client.directory.all();
        return all.length === n && (client.directory.consensus === null || all.every((d) => client.directory.view.has(d, Flag.HOLDER)));
      },
      60_000,
      `${n} relays in the client's directory (each a Holder in its consensus, when it has one)`,
    );
  });

  after(async () => {
    content?.close();
    await client?.stop();
    await net?.stop();
  });

  it('places content at the holders the relays keep it at (salted placement)', async () => {
    const roots: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) roots.push((parseLink(await content.put(randomBytes(2000))) as { rk: Uint8Array }).rk);
    const nick = (r: RelayProcess): string => `r${net.relays.indexOf(r)}`;
    const byRole = (rk: Uint8Array, role: string): string[] =>
      net.relays
        .filter((r) => rowAt(r, rk)?.role === role)
        .map(nick)
        .sort();
    // Each relay holding a block checks it against its own placement (relay/replication.ts): it copies the block to
    // the holders it lacks, and keeps it as 'replica' when it is a holder itself, as 'cache' when not. Wait until every
    // copy was checked and three relays keep the block as holders.
    await waitFor(
      () =>
        roots.every((rk) => {
          const rows = net.relays.map((r) => rowAt(r, rk)).filter((x) => x !== null);
          return rows.every((x) => x.checked) && rows.filter((x) => x.role === 'replica').length >= 3;
        }),
      60_000,
      () =>
        `every copy checked by its relay and three replicas of each block (${roots.map((rk) => `${toHex(rk).slice(0, 8)}: ${byRole(rk, 'replica').join(' ')}`).join('; ')})`,
    );
    for (const rk of roots) {
      const clientHolders = content
        .holders(rk)
        .map((d) => nick(net.relays.find((r) => r.fingerprint === d.fingerprint)!))
        .sort();
      const what = `block ${toHex(rk).slice(0, 8)}`;
      expect(byRole(rk, 'replica'), `${what}: the relays' holders are the client's`).to.deep.equal(clientHolders);
      expect(byRole(rk, 'cache'), `${what}: no copy the client stored is outside the relays' placement`).to.deep.equal([]);
    }
  });

  it('requires the consensus of the authorities the line names, exactly as if configured', () => {
    expect(printed).to.match(/ authorities=[0-9a-f]{64}(\+[0-9a-f]{64}){2}$/);
    expect([...client.authorities]).to.deep.equal([...net.authorities].sort());
    expect(client.directory.usesAuthorities).to.equal(true);
    const c = client.directory.consensus;
    expect(c, 'a consensus held').to.not.equal(null);
    expect(c!.signers.length).to.be.at.least(2);
  });
});
