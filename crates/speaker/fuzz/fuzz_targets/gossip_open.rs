//! Fuzz target: the gossip envelope check (`l2::memberlist::auth::open`) never panics, with the
//! secret or without, and accepts only what `auth::seal` writes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrolb_speaker_fuzz::check_open(data);
});
