//! Fuzz target: the speaker's whole gossip receive path (envelope, foca's decoding and state
//! machine, its timers and replies) never panics on a sequence of datagrams. The first octet
//! picks the mode: with or without the secret, and whether each datagram is sealed first so
//! fuzzed foca payloads get past the HMAC (see `ferrolb_gossip_fuzz::run_datagrams`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrolb_gossip_fuzz::run_datagrams(data);
});
