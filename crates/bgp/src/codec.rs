//! Framing of BGP messages on a byte stream: a `tokio_util` [`Decoder`]/[`Encoder`].
//!
//! ```text
//!            19 octets buffered               header.length octets buffered
//!   [Head] ──────────────────────▶ [Body(h)] ──────────────────────────────▶ [Head]
//!     │ bad marker / length / type                      yields Some(Ok(msg)) or
//!     ▼                                                 Some(Err(MessageError)) for a bad body
//!   Err(CodecError::Frame)  (the stream cannot be resynchronised)
//! ```
//!
//! The header is checked as soon as its bytes are in, before waiting for the body (RFC 4271
//! §6.1; RFC 8654 §4 for the maximum after Extended Message). A broken frame is a stream
//! error carrying the NOTIFICATION; a well-framed message with a bad body is an item whose
//! `Err` carries the NOTIFICATION, so the session can still send it before closing.
//! The session switches the context with [`BgpCodec::set_ctx`] after the OPEN exchange.
//!
//! ```no_run
//! # async fn session(stream: tokio::net::TcpStream, local: ferrolb_bgp::wire::Open) {
//! use futures::{SinkExt, StreamExt};
//! use ferrolb_bgp::wire::{DecodeCtx, Message};
//! use ferrolb_bgp::BgpCodec;
//! use tokio_util::codec::Framed;
//!
//! let mut framed = Framed::new(stream, BgpCodec::default());
//! framed.send(Message::Open(local.clone())).await.ok();
//! while let Some(frame) = framed.next().await {
//!     match frame {
//!         Ok(Ok(Message::Open(remote))) => {
//!             // From now on: 4-octet AS, Extended Message, families as negotiated.
//!             framed.codec_mut().set_ctx(DecodeCtx::negotiate(&local, &remote));
//!         }
//!         Ok(Ok(_other)) => { /* to the FSM */ }
//!         // Well framed, bad body: send its NOTIFICATION, then close.
//!         Ok(Err(bad)) => {
//!             framed.send(Message::Notification(bad.notification)).await.ok();
//!             break;
//!         }
//!         // Broken framing: send the NOTIFICATION if the peer caused it, then close.
//!         Err(e) => {
//!             if let Some(n) = e.notification() {
//!                 framed.send(Message::Notification(n.clone())).await.ok();
//!             }
//!             break;
//!         }
//!     }
//! }
//! # }
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::wire::error::{header_subcode, ErrorCode};
use crate::wire::{
    decode_body, parse_header, DecodeCtx, EncodingError, Header, Message, MessageError,
    Notification, HEADER_LEN, MARKER,
};

/// A failure that ends the stream.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The header is broken; the NOTIFICATION to send is inside.
    #[error("broken frame: {0}")]
    Frame(MessageError),
    /// A message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encoding(#[from] EncodingError),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl CodecError {
    /// The NOTIFICATION to send before closing, if the peer caused the error.
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            CodecError::Frame(e) => Some(&e.notification),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head,
    Body(Header),
}

/// The BGP framing codec.
#[derive(Debug, Clone)]
pub struct BgpCodec {
    ctx: DecodeCtx,
    state: State,
}

impl Default for BgpCodec {
    fn default() -> Self {
        Self::new(DecodeCtx::default())
    }
}

impl BgpCodec {
    /// A codec decoding and encoding under `ctx` (use `DecodeCtx::default()` before OPEN).
    pub fn new(ctx: DecodeCtx) -> Self {
        BgpCodec {
            ctx,
            state: State::Head,
        }
    }

    /// The current context.
    pub fn ctx(&self) -> &DecodeCtx {
        &self.ctx
    }

    /// Switches the context (after the OPEN exchange). Applies from the next header on.
    pub fn set_ctx(&mut self, ctx: DecodeCtx) {
        self.ctx = ctx;
    }
}

impl Decoder for BgpCodec {
    type Item = Result<Message, MessageError>;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let header = match self.state {
            State::Body(header) => header,
            State::Head => {
                let Some(head) = src.get(..HEADER_LEN) else {
                    // Reject a bad marker as soon as its bytes arrive instead of waiting for
                    // 19 octets that may never come.
                    let seen = src.len().min(MARKER.len());
                    if src.get(..seen) != MARKER.get(..seen) {
                        return Err(CodecError::Frame(MessageError::new(
                            ErrorCode::MESSAGE_HEADER,
                            header_subcode::CONNECTION_NOT_SYNCHRONIZED,
                            Vec::new(),
                            "header.marker",
                            "marker is not all ones",
                        )));
                    }
                    src.reserve(HEADER_LEN - src.len());
                    return Ok(None);
                };
                let header = parse_header(head, &self.ctx).map_err(CodecError::Frame)?;
                self.state = State::Body(header);
                header
            }
        };
        let len = usize::from(header.length);
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(len);
        self.state = State::Head;
        let body = frame.get(HEADER_LEN..).unwrap_or_default();
        Ok(Some(decode_body(header.message_type, body, &self.ctx)))
    }
}

impl Encoder<&Message> for BgpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), Self::Error> {
        item.encode(&self.ctx, dst)?;
        Ok(())
    }
}

impl Encoder<Message> for BgpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), Self::Error> {
        item.encode(&self.ctx, dst)?;
        Ok(())
    }
}
