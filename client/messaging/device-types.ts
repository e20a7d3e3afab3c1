/**
 * The public types of devices (specs/messaging.md §14; docs/developer-guide.md §Devices): what the Messenger's
 * `devices` emits and returns. Apart from devices.ts so that types.ts can name them without an import cycle.
 */
import type { AlliumError } from '../../protocol/errors.js';

/** A person's devices as a messenger holds them. */
export interface DeviceListInfo {
  /** The person's address: its primary's. */
  readonly person: string;
  readonly revision: number;
  /** Device addresses, the primary first. */
  readonly devices: readonly string[];
}

export interface DeviceChange {
  readonly person: string;
  readonly device: string;
}

/** A message a sibling device sent (specs/messaging.md §14.5). */
export interface SyncedMessage {
  /** The recipient's (person's) address. */
  readonly to: string;
  readonly data: Uint8Array;
  /** The message id (hex): the recipient sees the same one. */
  readonly id: string;
  readonly sentAt: number;
  /** The sibling that sent it. */
  readonly device: string;
  /** `data` is an attachment descriptor. */
  readonly attachment: boolean;
}

/** A message from history (specs/messaging.md §14.7). */
export interface HistoryMessage {
  /** True for a message our person sent, false for one it received. */
  readonly outgoing: boolean;
  /** The other person's address. */
  readonly peer: string;
  readonly id: string;
  readonly sentAt: number;
  readonly data: Uint8Array;
  readonly attachment: boolean;
}

export interface HistoryProgress {
  /** The sibling answering. */
  readonly from: string;
  readonly entries: number;
  readonly bytes: number;
  readonly done: boolean;
}

/** What one device of a person made of a message sent to the person. */
export interface DeviceReceipt {
  readonly device: string;
  readonly status: 'delivered' | 'stored-offline' | 'mixed' | 'failed';
  readonly error?: AlliumError;
}

export interface LinkCodeInfo {
  /** "allium:link/…" (97 characters; upper-case it for a QR code's alphanumeric mode). */
  readonly text: string;
  /** The 53-byte payload, for a QR code in byte mode. */
  readonly bytes: Uint8Array;
  /** Until when the code can be used (Unix ms). */
  readonly expires: number;
}

export type DeviceEvents = {
  /** A device was added to our person (at the new device, `device` is its own address: it is linked). */
  'device:linked': [DeviceChange];
  /** A device was removed from our person (at the removed device, `device` is its own address). */
  'device:unlinked': [DeviceChange];
  /** A person's device list changed: ours, or a contact's. */
  'devices:changed': [DeviceListInfo];
  /** A sibling device sent a message. */
  'message:synced': [SyncedMessage];
  /** A history answer came in part or in whole. */
  'history:progress': [HistoryProgress];
};

export interface DeviceLimits {
  /** MAX_DEVICE_LISTS */
  maxLists: number;
  /** MAX_HISTORY_ENTRIES */
  maxHistoryEntries: number;
  /** MAX_HISTORY_LOG_BYTES */
  maxHistoryLogBytes: number;
  /** MAX_HISTORY_SYNC_BYTES: the most an answer sends and a request asks for by default. */
  maxHistorySyncBytes: number;
}
