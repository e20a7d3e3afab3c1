/**
 * What one hop of a circuit is to the protocol layers that build and use it (specs/circuits.md §3, §4): the relay a
 * client names in its onion, and the keys the hop's handshake gives both ends. A module of its own so that the
 * handshake (ntor.ts) and the onion (onion.ts) can both use them without importing each other.
 */

/** What a client needs to know of one hop to build its layer. */
export interface OnionHop {
  /** Ed25519 identity public key (32 bytes). */
  readonly identity: Uint8Array;
  /** The relay's current X25519 onion public key (32 bytes). */
  readonly onionKey: Uint8Array;
}

/** The symmetric keys of one hop of a circuit, shared by the client and that relay. */
export interface HopKeys {
  /** Key of the forward (client → relay) direction. */
  readonly forward: Uint8Array;
  /** Key of the backward (relay → client) direction. */
  readonly backward: Uint8Array;
  /** A value both ends know and nobody else does; binds later messages to this hop (rendezvous). */
  readonly binding: Uint8Array;
}
