/**
 * The Node Messenger (what `allium/client` exports): the library's Messenger with hidden TCP services reached over
 * node:net (tcp-connector.ts) unless `connectService` says otherwise. Everything else is client/messaging/index.ts.
 */
import type { Identity } from '../../protocol/address.js';
import { Messenger as BaseMessenger } from './messenger.js';
import { tcpServiceConnector } from './tcp-connector.js';
import type { MessengerHost, MessengerOptions } from './types.js';

export * from './index.js';
export { tcpServiceConnector } from './tcp-connector.js';
export { fileContactStorage } from './contact-file.js';
export { fileGroupStorage } from './group-file.js';

export class Messenger extends BaseMessenger {
  constructor(client: MessengerHost, identity?: Identity, options: MessengerOptions = {}) {
    super(client, identity, { connectService: tcpServiceConnector, ...options });
  }
}
