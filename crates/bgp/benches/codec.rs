//! Codec and packer cost: decode and encode of one UPDATE holding 1, 100 and 800
//! IPv4 /32s with typical attributes (ORIGIN, AS_PATH, NEXT_HOP, MED, two COMMUNITIES, one
//! LARGE_COMMUNITY), the same bytes through bgpkit-parser in the same run for the ratio, and
//! packing 100k /32s into UPDATEs. Throughput is per prefix, so criterion's "elem/s" turns into
//! ns per prefix. Figures and how they were taken: crates/bgp/README.md.
//!
//! Run: `cargo bench -p ferrolb-bgp --bench codec`. Not run by the tests (only built by
//! `cargo clippy --all-targets`).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use bgpkit_parser::models::{AsnLength, BgpMessage};
use bgpkit_parser::parser::bgp::parse_bgp_message;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrolb_bgp::rib::{Route, Routes, SessionView};
use ferrolb_bgp::wire::{
    decode_message, AsPath, Community, DecodeCtx, LargeCommunity, Message, Origin, PathAttributes,
    Update,
};
use ferrolb_bgp::Packer;
use ipnet::{IpNet, Ipv4Net};

const SIZES: [u32; 3] = [1, 100, 800];

fn typical_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([4_200_000_001])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(0),
        communities: Some(vec![Community::new(65000, 100), Community::NO_EXPORT]),
        large_communities: Some(vec![LargeCommunity {
            global_admin: 4_200_000_001,
            local_data_1: 1,
            local_data_2: 2,
        }]),
        ..PathAttributes::default()
    }
}

fn host(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).expect("/32")
}

fn update(n: u32) -> Update {
    Update {
        attrs: typical_attrs(),
        nlri: (0..n).map(host).collect(),
        ..Update::default()
    }
}

fn codec(c: &mut Criterion) {
    let ctx = DecodeCtx::modern();
    let mut group = c.benchmark_group("update");
    for n in SIZES {
        let message = Message::Update(update(n));
        let bytes = message.to_bytes(&ctx).expect("encodes");
        group.throughput(Throughput::Elements(u64::from(n)));

        group.bench_with_input(BenchmarkId::new("decode/ferrolb", n), &bytes, |b, bytes| {
            b.iter(|| decode_message(black_box(bytes), &ctx).expect("decodes"))
        });
        group.bench_with_input(BenchmarkId::new("decode/bgpkit", n), &bytes, |b, bytes| {
            b.iter(|| {
                // Bytes::clone is a reference count increment, not a copy.
                let mut data: Bytes = black_box(bytes.clone());
                parse_bgp_message(&mut data, false, &AsnLength::Bits32).expect("decodes")
            })
        });

        let mut buf = BytesMut::with_capacity(4096);
        group.bench_with_input(BenchmarkId::new("encode/ferrolb", n), &message, |b, m| {
            b.iter(|| {
                buf.clear();
                black_box(m).encode(&ctx, &mut buf).expect("encodes");
                buf.len()
            })
        });
        let mut data = bytes.clone();
        let Ok(BgpMessage::Update(theirs)) =
            parse_bgp_message(&mut data, false, &AsnLength::Bits32)
        else {
            panic!("bgpkit-parser cannot read the bench UPDATE");
        };
        group.bench_with_input(BenchmarkId::new("encode/bgpkit", n), &theirs, |b, u| {
            b.iter(|| black_box(u).encode(AsnLength::Bits32).expect("encodes"))
        });
    }
    group.finish();
}

fn packer(c: &mut Criterion) {
    let ctx = DecodeCtx::modern();
    // 100k /32s in four routes (one community differs), as four Service pools would: the
    // typical attributes above (MED, two COMMUNITIES, one LARGE_COMMUNITY) with our AS and
    // the session's address as next hop.
    let typical = typical_attrs();
    let routes: Vec<Arc<Route>> = (0..4u16)
        .map(|k| {
            Arc::new(Route {
                med: typical.med,
                communities: [Community::new(65000, k), Community::NO_EXPORT].into(),
                large_communities: typical
                    .large_communities
                    .iter()
                    .flatten()
                    .copied()
                    .collect(),
                ..Route::default()
            })
        })
        .collect();
    let announce: Routes = (0..100_000u32)
        .map(|i| (IpNet::V4(host(i)), Arc::clone(&routes[(i % 4) as usize])))
        .collect();
    let session = SessionView {
        local_as: 4_200_000_001,
        ibgp: false,
        local_addr: Ipv4Addr::new(192, 0, 2, 1).into(),
        families: ctx.families,
        ipv4_via_ipv6: false,
    };
    let withdraw = BTreeSet::new();
    let mut group = c.benchmark_group("pack");
    group.sample_size(20);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("100k_v4_4_sets", |b| {
        // A packer per pass, as a session uses it: the attributes are built in the pass.
        b.iter(|| {
            Packer::new(ctx, session)
                .pack(black_box(&announce), &withdraw)
                .expect("packs")
        })
    });
    group.finish();
}

criterion_group!(benches, codec, packer);
criterion_main!(benches);
