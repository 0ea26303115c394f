//! Fuzz target: the frame parser never panics, and whatever it accepts re-encodes to a frame
//! that parses to the same value (encoding may normalise padding, so octets can differ).
#![no_main]

use ferrolb_arp::wire::{encode_frame, parse_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_frame(data) {
        let again = parse_frame(&encode_frame(&frame));
        assert_eq!(again.as_ref(), Ok(&frame), "re-encoding changed the frame");
    }
});
