/**
 * Fixed sizes of the Allium wire format (specs/cells.md, specs/circuits.md, specs/relay-crypto.md).
 * Changing any of these is a protocol version change.
 */

/** Every cell on every link is exactly this long (specs/cells.md §1 explains the choice). */
export const CELL_LEN = 1024;
export const CELL_HEADER_LEN = 5; // circ_id u32 + command u8
export const CELL_BODY_LEN = CELL_LEN - CELL_HEADER_LEN; // 1019

/** Longest path a setup onion or a relay cell can address. */
export const MAX_HOPS = 8;

// Setup onion (specs/circuits.md)
export const ONION_X_LEN = 32;
export const ONION_MAC_LEN = 16;
export const ONION_SLOT_LEN = 96;
export const ONION_BETA_LEN = MAX_HOPS * ONION_SLOT_LEN; // 768
export const ONION_HEADER_LEN = ONION_X_LEN + ONION_MAC_LEN + ONION_BETA_LEN; // 816
export const REPLY_SLOT_LEN = 80;
export const REPLY_LEN = MAX_HOPS * REPLY_SLOT_LEN; // 640

// Relay cells (specs/relay-crypto.md)
export const RELAY_TAG_LEN = 16;
export const RELAY_TAG_AREA_LEN = MAX_HOPS * RELAY_TAG_LEN; // 128
export const RELAY_PAYLOAD_LEN = CELL_BODY_LEN - RELAY_TAG_AREA_LEN; // 891
export const RELAY_HEADER_LEN = 5; // relay_cmd u8 + stream_id u16 + length u16
export const RELAY_DATA_LEN = RELAY_PAYLOAD_LEN - RELAY_HEADER_LEN; // 886

/** Protocol identifier bound into every handshake transcript. */
export const PROTOID = 'allium-ntor-x25519-blake2b-1';

/** Link protocol versions this implementation speaks. */
export const LINK_VERSIONS = [1] as const;
