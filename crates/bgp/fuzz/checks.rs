//! The properties the fuzz targets check, shared with the stable-Rust corpus replay
//! (`crates/bgp/tests/fuzz_corpus.rs` includes this file with `#[path]`).
//!
//! Input layout for both targets: the first octet selects the decoding context (bit 0:
//! 4-octet AS, bit 1: extended message) and, for framing, the read size; the rest is the bytes.

use bytes::BytesMut;
use ferrolb_bgp::wire::{decode_message, DecodeCtx, Families, Message, MessageError};
use ferrolb_bgp::BgpCodec;
use tokio_util::codec::Decoder;

/// The context selected by the first input octet.
pub fn ctx_of(selector: u8) -> DecodeCtx {
    DecodeCtx {
        four_octet_as: selector & 1 != 0,
        extended_message: selector & 2 != 0,
        families: Families::IPV4_IPV6_UNICAST,
    }
}

/// Message decode: never panics; a message that decodes without RFC 7606 findings encodes
/// (the encoder accepts everything the decoder produces) and decodes back to itself.
pub fn check_decode_message(data: &[u8]) {
    let Some((&selector, msg)) = data.split_first() else {
        return;
    };
    let ctx = ctx_of(selector);
    let Ok(message) = decode_message(msg, &ctx) else {
        return;
    };
    if let Message::Update(u) = &message {
        if !u.attribute_errors.is_empty() {
            return;
        }
        let _ = u.validate(&ctx);
    }
    let bytes = match message.to_bytes(&ctx) {
        Ok(b) => b,
        Err(e) => panic!("decoded message does not encode: {e}\n{message:?}"),
    };
    assert_eq!(
        bytes.len(),
        message.encoded_len(&ctx),
        "encoded_len disagrees"
    );
    match decode_message(&bytes, &ctx) {
        Ok(again) => assert_eq!(again, message, "decode(encode(m)) != m"),
        Err(e) => panic!("re-encoded message does not decode: {e}\n{message:?}"),
    }
}

/// One framing outcome: a message, a body error, or the stream error that ended it.
// Short-lived test values: boxing the message would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Framed {
    /// A well-framed message: decoded, or the NOTIFICATION its body calls for.
    Item(Result<Message, MessageError>),
    /// The frame was broken (the NOTIFICATION) or the stream ended inside a message.
    End(Option<ferrolb_bgp::wire::Notification>),
}

/// Feeds `stream` to a [`BgpCodec`] `step` octets at a time (at least 1).
pub fn frame(stream: &[u8], ctx: DecodeCtx, step: usize) -> Vec<Framed> {
    let mut codec = BgpCodec::new(ctx);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    // Bounded: one pass over the input, and each inner step yields or breaks.
    for chunk in stream.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => out.push(Framed::Item(item)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Framed::End(e.notification().cloned()));
                    return out;
                }
            }
        }
    }
    if !buf.is_empty() {
        out.push(Framed::End(None));
    }
    out
}

/// Stream framing: never panics, and the items do not depend on how the stream is split into
/// reads (tokio-util `Decoder` contract). Each framed message decodes as it would alone.
pub fn check_framing(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let ctx = ctx_of(selector);
    let step = usize::from(selector >> 2) + 1;
    let whole = frame(stream, ctx, stream.len().max(1));
    let split = frame(stream, ctx, step);
    assert_eq!(whole, split, "framing depends on the read size {step}");
    let byte_by_byte = frame(stream, ctx, 1);
    assert_eq!(whole, byte_by_byte, "framing depends on the read size 1");
}
