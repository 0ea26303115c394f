//! Allocation cost: 10k and 100k Services from one /16 (IPv4) and one /112 (IPv6).
//!
//! A /16 and a /112 each hold 65,536 addresses, fewer than 100k, so Services come in pairs that
//! share an IP under one `allow-shared-ip` key on different ports (50k IPs for 100k Services);
//! both sizes use the same scheme so their per-allocation times compare. One iteration is a
//! fresh allocator allocating every Service in turn; building the Service list is setup, not
//! measured. Results and how to read them: `docs/allocator.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferrolb_allocator::{PoolAllocator, Protocol, Service, ServiceKey, ServicePort, ServiceState};
use ferrolb_api::model::{AddressRange, Config, IpFamily, Pool};

fn config(family: IpFamily) -> Config {
    let net: ipnet::IpNet = match family {
        IpFamily::V4 => "10.0.0.0/16",
        IpFamily::V6 => "fd00::/112",
    }
    .parse()
    .expect("static CIDR");
    let pool = Pool {
        name: "bench".into(),
        labels: Default::default(),
        ranges: vec![AddressRange {
            start: net.network(),
            end: net.broadcast(),
            cidr_len: Some(net.prefix_len()),
        }],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    };
    Config {
        pools: [(pool.name.clone(), pool)].into(),
        ..Default::default()
    }
}

fn services(n: usize, family: IpFamily) -> Vec<Service> {
    (0..n)
        .map(|i| Service {
            key: ServiceKey::new(format!("ns{}", i % 100), format!("svc-{i}")),
            ip_families: vec![family],
            sharing_key: Some(format!("pair-{}", i / 2)),
            ports: vec![ServicePort {
                port: 80 + (i % 2) as u16,
                protocol: Protocol::Tcp,
            }],
            ..Default::default()
        })
        .collect()
}

fn allocate_all(cfg: &Config, svcs: Vec<Service>) -> usize {
    let mut a = PoolAllocator::new(None);
    a.set_config(cfg);
    let mut ok = 0;
    for s in svcs {
        if matches!(a.upsert(s).state, ServiceState::Assigned(_)) {
            ok += 1;
        }
    }
    ok
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate");
    group.sample_size(10);
    for (family, label) in [(IpFamily::V4, "v4_slash16"), (IpFamily::V6, "v6_slash112")] {
        let cfg = config(family);
        for n in [10_000usize, 100_000] {
            // Not a timing assertion: a wrong setup (e.g. exhaustion) would make the numbers lie.
            assert_eq!(allocate_all(&cfg, services(n, family)), n, "{label} {n}");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(format!("{label}/{n}"), |b| {
                b.iter_batched(
                    || services(n, family),
                    |svcs| black_box(allocate_all(&cfg, svcs)),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
