/**
 * Allium messaging in a web page: joins the network through the relays in the query string, creates an identity,
 * listens at its address and exchanges end-to-end encrypted messages with other addresses.
 *
 *   npm run build:browser
 *   serve the repository root over HTTP (for example `python3 -m http.server -b 127.0.0.1 8000`) and open
 *   http://127.0.0.1:8000/examples/browser/?bootstrap=ws://127.0.0.1:PORT/allium%20FINGERPRINT&testnet=1
 *
 * `bootstrap` is a bootstrap line, URL-encoded (a space as %20, and the "+" between the authorities a relay under
 * directory authorities names as %2B, since a bare "+" in a query means a space); it may be repeated. `testnet=1` lets a circuit use several relays of one address, as on a local test
 * network (`npm start`); leave it out on a real network. The identity is new on every load: a real application
 * would keep its seed (identity.secretKey's first 32 bytes) somewhere safer than this example cares to.
 *
 * Whoever writes the bootstrap lines chooses the network: the relays, and with `authorities=` the authorities whose
 * consensus the client accepts (SECURITY.md). Lines from the address fill the form, but the page does not connect
 * until the user has seen them and pressed Connect, so a link someone sends cannot put the page on their network
 * unnoticed. Every line in one form: a mix of lines with and without authorities is refused (ERR_CONFIG).
 *
 * Groups: "Create group" makes a group of this identity (its admin) and the addresses listed, with version 2 delivery
 * (`delivery: 'inbox'`: each message is one deposit in the group's inbox at the relays, read every GROUP_POLL_MS).
 * Groups others add this address to appear in the same list. Their state lives as long as the page: with a kept
 * identity, `groupStorage: browserGroupStorage({ prefix })` would bring them back after a reload.
 */
import { AlliumClient, AlliumError, Messenger, browserSocketFactory, browserStorage, createIdentity, initCrypto, parseAddress } from 'allium/browser';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const testnet = params.get('testnet') === '1';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How often the page reads its groups' inboxes: often enough for a chat, at one content lookup per group each time. */
const GROUP_POLL_MS = 5_000;

/** @type {Messenger | null} */
let messenger = null;

function setStatus(text, state) {
  $('status').textContent = text;
  if (state) $('status').dataset.state = state;
}

function describe(e) {
  return e instanceof AlliumError ? `${e.code}: ${e.message}` : String(e?.message ?? e);
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Adds a line to the message list; text always goes in as text, never as HTML. */
function addEntry(kind, meta, bytes, state) {
  return addLine($('log'), kind, meta, bytes, state);
}

/** Adds a line to `list` (the messages, or the groups' messages). */
function addLine(list, kind, meta, bytes, state) {
  const li = document.createElement('li');
  li.className = kind;
  if (bytes) li.dataset.hex = toHex(bytes);
  if (state) li.dataset.state = state;
  const m = document.createElement('span');
  m.className = 'meta';
  m.textContent = meta;
  li.append(m, bytes ? decoder.decode(bytes) : '');
  list.append(li);
  return li;
}

/** A group's line in the group list (its name and size), added the first time the group shows up. */
function showGroup(group) {
  let option = [...$('group-select').options].find((o) => o.value === group.id);
  if (!option) {
    option = document.createElement('option');
    option.value = group.id;
    $('group-select').append(option);
    $('group-select').value = group.id;
  }
  option.textContent = `${group.name} (${group.members.length} members${group.isAdmin ? ', you are an admin' : ''}${group.isActive ? '' : ', left'})`;
  $('group-send').disabled = false;
}

const groupName = (id) => messenger?.group(id)?.name ?? id.slice(0, 12);

async function connect(lines) {
  $('connect').disabled = true;
  try {
    setStatus('Loading libsodium (WebAssembly)…', 'connecting');
    await initCrypto();
    // One storage per network, so guards and the cached directory of one network never mix with another's.
    const network = lines[0].trim().split(/[ \t]+/)[1] ?? 'default';
    const client = new AlliumClient({
      bootstrap: lines,
      socketFactory: browserSocketFactory,
      storage: browserStorage({ prefix: `allium-example:${network}` }),
      enforceDistinctSubnets: !testnet,
      poolSize: 0, // messaging builds its own circuits; no exit circuits kept ready
    });
    client.on('client:progress', (line) => setStatus(line));
    await client.start({ signal: AbortSignal.timeout(120_000) });

    messenger = new Messenger(client, createIdentity(), { groupInbox: { pollMs: GROUP_POLL_MS } });
    $('address').textContent = messenger.address;
    messenger.on('message:received', (m) => addEntry('in', `from ${m.from} ${m.offline ? '(from its mailbox)' : `(#${m.seq})`}`, m.data));
    messenger.on('endpoint:error', (e) => addEntry('error', describe(e)));
    // Someone added us to a group (or a member joined or left one we are in): show it in the list.
    for (const event of ['group:member-added', 'group:member-removed'])
      messenger.on(event, (c) => {
        const group = messenger.group(c.group);
        if (group) showGroup(group);
      });
    messenger.on('group:message', (m) => {
      const li = addLine($('group-log'), 'in', `${groupName(m.group)} · from ${m.from}`, m.data);
      li.dataset.group = m.group;
      li.dataset.from = m.from;
    });
    $('send').disabled = false;
    $('group-create').disabled = false;
    setStatus(`Connected to ${client.directory.all().length} relays; publishing this address…`, 'connected');
    await messenger.startListening({ signal: AbortSignal.timeout(180_000) });
    setStatus('Listening: others can now send to this address.', 'listening');
  } catch (e) {
    setStatus(`Failed: ${describe(e)}`, 'error');
    $('connect').disabled = messenger !== null;
  }
}

$('connect-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const lines = $('bootstrap')
    .value.split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length) void connect(lines);
});

$('send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!messenger) return;
  const to = $('to').value.trim();
  const bytes = encoder.encode($('text').value);
  try {
    parseAddress(to); // a typo is refused here, before any network work
  } catch (e) {
    addEntry('error', describe(e));
    return;
  }
  const entry = addEntry('out', `to ${to}: sending…`, bytes, 'sending');
  $('text').value = '';
  try {
    // Delivered over a live session, or left in the recipient's mailbox when it is not listening.
    const receipt = await messenger.send(to, bytes, { signal: AbortSignal.timeout(120_000) });
    const offline = receipt.status === 'stored-offline';
    entry.dataset.state = offline ? 'stored-offline' : 'sent';
    entry.querySelector('.meta').textContent = offline ? `to ${to} (left in its mailbox)` : `to ${to} (#${receipt.seq})`;
  } catch (e) {
    entry.dataset.state = 'failed';
    entry.querySelector('.meta').textContent = `to ${to}: not sent (${describe(e)})`;
  }
});

$('group-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!messenger) return;
  const name = $('group-name').value.trim();
  const members = $('group-members')
    .value.split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  try {
    for (const a of members) parseAddress(a); // a typo is refused here, before any network work
  } catch (e) {
    addLine($('group-log'), 'error', describe(e));
    return;
  }
  $('group-create').disabled = true;
  try {
    // Each member gets the roster and the group's key over its pairwise session (live, else its mailbox).
    const group = await messenger.createGroup(name, members, { delivery: 'inbox', signal: AbortSignal.timeout(180_000) });
    showGroup(group);
    $('group-members').value = '';
  } catch (e) {
    addLine($('group-log'), 'error', `group ${name} not created (${describe(e)})`);
  } finally {
    $('group-create').disabled = false;
  }
});

$('group-send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const group = messenger?.group($('group-select').value);
  if (!group) return;
  const bytes = encoder.encode($('group-text').value);
  const entry = addLine($('group-log'), 'out', `${group.name} · you: sending…`, bytes, 'sending');
  entry.dataset.group = group.id;
  $('group-text').value = '';
  try {
    // One deposit in the group's inbox, whatever the group's size; the members read it on their next pass.
    await group.send(bytes, { signal: AbortSignal.timeout(120_000) });
    entry.dataset.state = 'sent';
    entry.querySelector('.meta').textContent = `${group.name} · you`;
  } catch (e) {
    entry.dataset.state = 'failed';
    entry.querySelector('.meta').textContent = `${group.name} · you: not sent (${describe(e)})`;
  }
});

// Lines from the address only fill the form: whoever wrote the link chose them, and with them the network.
const given = params.getAll('bootstrap');
$('bootstrap').value = given.join('\n');
if (given.length) {
  setStatus(
    "The bootstrap lines below come from the link that opened this page. Whoever wrote them chooses the network (its relays and authorities): connect only if they are the lines your network's operators publish.",
    'idle',
  );
}
