// Protocol timing and limits from the WireGuard whitepaper (section 6), in milliseconds.

export const REKEY_AFTER_MESSAGES = 2 ** 60;
/** 2^64 - 2^13 - 1; as a number this rounds to 2^64, so compare counters with `>=` on the halves
 * where exactness matters (ReplayFilter does); the sender stops far earlier (REKEY_AFTER_MESSAGES). */
export const REJECT_AFTER_MESSAGES = 2 ** 64 - 2 ** 13 - 1;
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Handshake attempts before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Random extra delay added to handshake retransmissions. */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Packets kept per peer while waiting for a handshake (wireguard-go keeps 128). */
export const MAX_STAGED_PACKETS = 128;
/** Initiations per second above which the responder is "under load" and asks for cookies. */
export const UNDER_LOAD_HANDSHAKES_PER_SECOND = 64;
/** How long "under load" lasts after the rate drops. */
export const UNDER_LOAD_AFTER_TIME = 1_000;
