//! RFC 6793: talking to a 2-octet-AS peer. AS_TRANS substitution on the way out (§4.2.2) and
//! AS_PATH reconstruction on the way in (§4.2.3).

use std::net::Ipv4Addr;

use ferrolb_bgp::wire::*;
use proptest::prelude::*;

#[test]
fn leading_two_octet_asns_are_kept_before_as4_path() {
    // A 2-octet speaker prepended 100 and 200 after the 4-octet part was built.
    let as_path = AsPath::sequence([100, 200, u32::from(AS_TRANS), 300]);
    let as4_path = AsPath::sequence([4_200_000_000, 300]);
    assert_eq!(
        as_path.merged_with_as4_path(&as4_path),
        AsPath::sequence([100, 200, 4_200_000_000, 300])
    );
    // AS4_PATH longer than AS_PATH: ignored (§4.2.3).
    let short = AsPath::sequence([u32::from(AS_TRANS)]);
    assert_eq!(short.merged_with_as4_path(&as4_path), short);
}

#[test]
fn aggregator_other_than_as_trans_makes_as4_attributes_ignored() {
    let attrs = PathAttributes {
        as_path: Some(AsPath::sequence([u32::from(AS_TRANS)])),
        aggregator: Some(Aggregator {
            asn: 100,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        as4_path: Some(AsPath::sequence([4_200_000_000])),
        as4_aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        ..PathAttributes::default()
    };
    let merged = attrs.with_as4_merged();
    assert_eq!(merged.as_path, attrs.as_path);
    assert_eq!(merged.aggregator, attrs.aggregator);
    assert_eq!((merged.as4_path, merged.as4_aggregator), (None, None));
}

proptest! {
    #[test]
    fn as_trans_substitution_and_reconstruction_are_inverse(
        asns in proptest::collection::vec(any::<u32>(), 0..20),
        // An aggregator with a 2-octet ASN tells the receiver to ignore AS4_PATH (§4.2.3), so
        // only 4-octet aggregators round-trip.
        agg in proptest::option::of(65536u32..),
    ) {
        let attrs = PathAttributes {
            as_path: Some(AsPath::sequence(asns)),
            aggregator: agg.map(|asn| Aggregator { asn, address: Ipv4Addr::new(192, 0, 2, 1) }),
            ..PathAttributes::default()
        };
        let sent = attrs.for_two_octet_peer();
        // What a 2-octet peer can carry, then what we rebuild from it.
        let ctx = DecodeCtx::default();
        let m = Message::Update(Update { attrs: sent, ..Update::default() });
        let bytes = m.to_bytes(&ctx).unwrap();
        let Ok(Message::Update(back)) = decode_message(&bytes, &ctx) else { panic!("decode") };
        prop_assert_eq!(back.attrs.with_as4_merged(), attrs);
    }
}
