//! Framing tests for `BgpCodec` on every split: one frame per read, many per read, a frame
//! across reads (`None` in between), byte-by-byte, truncated at EOF, over the maximum, a bad
//! header rejected before the body arrives, and the maximum changed between frames.

use bytes::BytesMut;
use ferrolb_bgp::wire::*;
use ferrolb_bgp::{BgpCodec, CodecError};
use tokio_util::codec::{Decoder, Encoder};

fn keepalive() -> Vec<u8> {
    Message::Keepalive
        .to_bytes(&DecodeCtx::default())
        .unwrap()
        .to_vec()
}

fn update_with_prefixes(n: u32) -> Message {
    Message::Update(Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            next_hop: Some("10.0.0.1".parse().unwrap()),
            ..PathAttributes::default()
        },
        nlri: (0..n)
            .map(|i| ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
            .collect(),
        ..Update::default()
    })
}

fn open() -> Message {
    Message::Open(Open::new(
        65001,
        HoldTime::DEFAULT,
        "192.0.2.1".parse().unwrap(),
        vec![Capability::RouteRefresh],
    ))
}

/// Feeds `bytes` in chunks of `chunk` octets, collecting every item.
fn feed(codec: &mut BgpCodec, bytes: &[u8], chunk: usize) -> Vec<Result<Message, MessageError>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        // Bounded: each item consumes at least 19 octets.
        while let Some(item) = codec.decode(&mut buf).expect("no frame error") {
            out.push(item);
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    out
}

#[test]
fn every_split_of_a_message_stream_decodes_the_same() {
    let ctx = DecodeCtx::modern();
    let messages = vec![
        open(),
        Message::Keepalive,
        update_with_prefixes(100),
        Message::Keepalive,
    ];
    let mut stream = Vec::new();
    for m in &messages {
        stream.extend_from_slice(&m.to_bytes(&ctx).unwrap());
    }
    for chunk in [1, 2, 3, 7, 18, 19, 20, 64, 4096, stream.len()] {
        let mut codec = BgpCodec::new(ctx);
        let got: Vec<Message> = feed(&mut codec, &stream, chunk)
            .into_iter()
            .map(|r| r.expect("valid message"))
            .collect();
        assert_eq!(got, messages, "chunk size {chunk}");
    }
}

#[test]
fn partial_frame_yields_none_until_complete() {
    let mut codec = BgpCodec::default();
    let bytes = keepalive();
    let mut buf = BytesMut::from(&bytes[..10]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&bytes[10..18]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&bytes[18..]);
    assert_eq!(
        codec.decode(&mut buf).unwrap().unwrap().unwrap(),
        Message::Keepalive
    );
}

#[test]
fn bad_marker_is_rejected_at_the_first_wrong_byte() {
    let mut codec = BgpCodec::default();
    let mut buf = BytesMut::from(&[0xff, 0xff, 0x00][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    let n = err
        .notification()
        .expect("frame error carries a NOTIFICATION");
    assert_eq!((n.code.0, n.subcode, n.data.clone()), (1, 1, vec![]));
}

#[test]
fn bad_length_is_rejected_before_the_body_arrives() {
    let mut codec = BgpCodec::default();
    // Header only, claiming 5000 octets without Extended Message.
    let mut head = vec![0xff; 16];
    head.extend_from_slice(&5000u16.to_be_bytes());
    head.push(2);
    let mut buf = BytesMut::from(&head[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Frame(_)));
    let n = err.notification().unwrap();
    assert_eq!(
        (n.code.0, n.subcode, n.data.clone()),
        (1, 2, vec![0x13, 0x88])
    );
}

#[test]
fn bad_type_is_a_frame_error_with_1_3() {
    let mut codec = BgpCodec::default();
    let mut head = vec![0xff; 16];
    head.extend_from_slice(&19u16.to_be_bytes());
    head.push(9);
    let err = codec.decode(&mut BytesMut::from(&head[..])).unwrap_err();
    let n = err.notification().unwrap();
    assert_eq!((n.code.0, n.subcode, n.data.clone()), (1, 3, vec![9]));
}

#[test]
fn bad_body_is_an_item_so_the_session_can_answer() {
    // An OPEN with version 3: well framed, bad body -> Some(Err(2/1)), stream continues.
    let mut bytes = open().to_bytes(&DecodeCtx::default()).unwrap().to_vec();
    bytes[19] = 3;
    bytes.extend_from_slice(&keepalive());
    let mut codec = BgpCodec::default();
    let items = feed(&mut codec, &bytes, 5);
    assert_eq!(items.len(), 2);
    let err = items[0].as_ref().unwrap_err();
    assert_eq!((err.notification.code.0, err.notification.subcode), (2, 1));
    assert_eq!(items[1].as_ref().unwrap(), &Message::Keepalive);
}

#[test]
fn truncated_stream_at_eof_is_an_error() {
    let mut codec = BgpCodec::default();
    let bytes = keepalive();
    let mut buf = BytesMut::from(&bytes[..12]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(codec.decode_eof(&mut buf).is_err());
}

#[test]
fn maximum_changes_after_extended_message_is_negotiated() {
    let ext = DecodeCtx {
        extended_message: true,
        ..DecodeCtx::modern()
    };
    // 1000 /32s = 5000+ octets: only valid with Extended Message.
    let big = update_with_prefixes(1000).to_bytes(&ext).unwrap();
    assert!(big.len() > 4096);
    let mut codec = BgpCodec::new(DecodeCtx::modern());
    let mut buf = BytesMut::from(&keepalive()[..]);
    buf.extend_from_slice(&big);
    assert_eq!(
        codec.decode(&mut buf).unwrap().unwrap().unwrap(),
        Message::Keepalive
    );
    codec.set_ctx(ext);
    let got = codec.decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(got, update_with_prefixes(1000));
    // Without the switch the same frame is refused with 1/2.
    let mut codec = BgpCodec::new(DecodeCtx::modern());
    let mut buf = BytesMut::from(&big[..]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::Frame(_))));
}

#[test]
fn encoder_refuses_an_oversized_update() {
    let mut codec = BgpCodec::new(DecodeCtx::modern());
    let mut buf = BytesMut::new();
    let err = codec
        .encode(update_with_prefixes(1000), &mut buf)
        .unwrap_err();
    assert!(matches!(
        err,
        CodecError::Encoding(EncodingError::TooLong { .. })
    ));
    assert!(buf.is_empty(), "nothing written on refusal");
    codec.encode(&Message::Keepalive, &mut buf).unwrap();
    assert_eq!(&buf[..], &keepalive()[..]);
}

#[tokio::test]
async fn framed_reader_over_a_duplex_stream() {
    use futures::{SinkExt, StreamExt};
    use tokio_util::codec::Framed;
    let (a, b) = tokio::io::duplex(64);
    let mut tx = Framed::new(a, BgpCodec::new(DecodeCtx::modern()));
    let mut rx = Framed::new(b, BgpCodec::new(DecodeCtx::modern()));
    let sent = vec![open(), update_with_prefixes(700), Message::Keepalive];
    let sender = tokio::spawn(async move {
        for m in sent {
            tx.send(m).await.unwrap();
        }
    });
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            rx.next()
                .await
                .expect("stream open")
                .expect("frame")
                .expect("message"),
        );
    }
    sender.await.unwrap();
    assert_eq!(
        got,
        vec![open(), update_with_prefixes(700), Message::Keepalive]
    );
}

mod random_streams {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random bytes in random chunks: the codec returns items or an error, never panics,
        /// and stops (each step consumes input or waits for more).
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..300) {
            let mut codec = BgpCodec::new(DecodeCtx::modern());
            let mut buf = BytesMut::new();
            'outer: for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }

        /// Marker-valid frames with random type and body: framing holds, every frame yields
        /// exactly one item (a message or the NOTIFICATION for its body).
        #[test]
        fn well_framed_random_bodies_give_one_item_each(
            frames in proptest::collection::vec((1u8..=5, proptest::collection::vec(any::<u8>(), 4..200)), 1..10),
            chunk in 1usize..64,
        ) {
            let mut stream = Vec::new();
            let mut expected = 0;
            for (ty, body) in &frames {
                let body: &[u8] = if *ty == 4 { &[] } else { body };
                let len = body.len() + 19;
                if (*ty == 1 && len < 29) || (*ty == 3 && len < 21) || (*ty == 2 && len < 23) || (*ty == 5 && len < 23) {
                    continue;
                }
                stream.extend_from_slice(&[0xff; 16]);
                stream.extend_from_slice(&(len as u16).to_be_bytes());
                stream.push(*ty);
                stream.extend_from_slice(body);
                expected += 1;
            }
            let mut codec = BgpCodec::new(DecodeCtx::modern());
            let items = feed(&mut codec, &stream, chunk);
            prop_assert_eq!(items.len(), expected);
        }
    }
}
