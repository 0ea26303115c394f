//! Fuzz target: a byte stream through the `BgpCodec` framing, split into reads of several sizes.
#![no_main]

// Each target uses one of the shared checks.
#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_framing(data));
