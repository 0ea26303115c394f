//! Fuzz target: the gossip envelope check (`ferrolb_gossip::auth::open`) never panics, with the
//! secret or without, and accepts only what `auth::seal` writes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrolb_gossip_fuzz::check_open(data);
});
