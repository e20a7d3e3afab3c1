/**
 * Builds every vector file in memory. scripts/gen-vectors.ts writes them to specs/vectors/; the test
 * test/vectors/regenerate.test.ts rebuilds them and compares with the committed files byte for byte.
 * Requires an initialised crypto facade; the output is the same under either libsodium binding.
 */
import { bootstrapLineFile } from './bootstrap-line.js';
import { cborFile } from './cbor.js';
import { cellsFile } from './cells.js';
import { consensusFile } from './consensus.js';
import { contactsFile } from './contacts.js';
import { devicesFile } from './devices.js';
import { directoryWantFile } from './directory-want.js';
import { groupInboxFile } from './group-inbox.js';
import { groupsFile } from './groups.js';
import { introPowFile } from './intro-pow.js';
import { mailboxFile } from './mailbox.js';
import { mixFile } from './mix.js';
import type { VectorFile } from './common.js';
import { linkFile } from './link.js';
import { ntorOnionFile } from './ntor-onion.js';
import { paddingFile } from './padding.js';
import { prekeyEditionsFile } from './prekey-editions.js';
import { relayCryptoFile } from './relay-crypto.js';
import { relayPayloadFile } from './relay-payload.js';
import { siteFile } from './site.js';

export const VECTOR_BUILDERS: Readonly<Record<string, () => VectorFile>> = {
  'cells.json': cellsFile,
  'relay-payload.json': relayPayloadFile,
  'cbor.json': cborFile,
  'ntor-onion.json': ntorOnionFile,
  'relay-crypto.json': relayCryptoFile,
  'mailbox.json': mailboxFile,
  'link.json': linkFile,
  'site.json': siteFile,
  'consensus.json': consensusFile,
  'intro-pow.json': introPowFile,
  'contacts.json': contactsFile,
  'groups.json': groupsFile,
  'group-inbox.json': groupInboxFile,
  'padding.json': paddingFile,
  'devices.json': devicesFile,
  'mix.json': mixFile,
  'directory-want.json': directoryWantFile,
  'bootstrap-line.json': bootstrapLineFile,
  'prekey-editions.json': prekeyEditionsFile,
};

/** File name → exact file text (two-space JSON, trailing newline). */
export function buildVectorFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, build] of Object.entries(VECTOR_BUILDERS)) out.set(name, JSON.stringify(build(), null, 2) + '\n');
  return out;
}
