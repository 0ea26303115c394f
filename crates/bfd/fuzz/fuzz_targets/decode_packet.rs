//! Fuzz target: one UDP payload through `packet::decode`, then encode/decode round trip.
#![no_main]

// Each target uses one of the shared checks.
#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_decode_packet(data));
