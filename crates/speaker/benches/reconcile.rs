//! Reconcile cost at 10k Services: the full computations (`compute_bgp`, `compute_l2`) against
//! the incremental engines (`BgpAnnouncer`, `L2Announcer`) bringing the plan up to date after
//! one Service is added. Figures and how to read them: docs/speaker.md, "Incremental
//! reconcile".
//!
//! The cluster is the one of `tests/announce_scale.rs`: one pool, one BGP peer, one BGP and one
//! L2 advertisement, 10k Services in one namespace (the worst case for finding a Service's
//! EndpointSlices, which scans its namespace), each with one ready endpoint; odd Services are
//! `externalTrafficPolicy: Local` with their endpoint on the other node.
//!
//! "+1 Service" times the Cluster upsert of a new Service and its EndpointSlice and the
//! engine's update; removing it again afterwards is not timed. The `plan_held` variant keeps a
//! clone of the previous plan alive, as the BGP backend does until it has converged, so the
//! update pays the copy-on-write of the peer's route map.
//!
//! A counting allocator reports, once, the heap each engine keeps (printed to stderr).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ferrolb_api::model::Config;
use ferrolb_speaker::announce::bgp::{compute_bgp, BgpAnnouncer};
use ferrolb_speaker::announce::change::ChangeSet;
use ferrolb_speaker::announce::input::{Cluster, TrafficPolicy};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::{compute_l2, L2Announcer};

#[path = "../tests/announce_fixtures/mod.rs"]
mod announce_fixtures;
use announce_fixtures::*;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SERVICES: u32 = 10_000;

/// Service `i`: VIP 100.64.0.0 + i, one endpoint; odd ones Local with the endpoint on n2.
fn service(
    i: u32,
) -> (
    ferrolb_speaker::announce::input::Service,
    ferrolb_speaker::announce::input::EndpointSlice,
) {
    let base = u32::from(Ipv4Addr::new(100, 64, 0, 0));
    let name = format!("s{i}");
    let mut s = svc(&name, &[]);
    s.ips = vec![IpAddr::V4(Ipv4Addr::from(base + i))];
    if i % 2 == 1 {
        s.traffic_policy = TrafficPolicy::Local;
    }
    let node = if i % 2 == 1 { "n2" } else { "n1" };
    (s, slice(&name, "a", vec![ep("10.0.0.1", node)]))
}

fn world() -> (Config, Cluster) {
    let (services, slices) = (0..SERVICES).map(service).unzip();
    let cfg = config(
        vec![pool("big", "100.64.0.0/18")],
        vec![peer("r1", "198.51.100.1", 64501)],
        vec![bgp_adv("a", &["big"])],
        vec![l2_adv("l2", &["big"])],
    );
    let c = cluster(services, slices, vec![node("n1", &[]), node("n2", &[])]);
    (cfg, c)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Prints the heap each engine keeps at 10k Services, next to the full plans'.
fn report_memory(cfg: &Config, c: &Cluster, opts: &SpeakerOptions) {
    let before = LIVE.load(Ordering::Relaxed);
    let plan = compute_bgp(cfg, c, opts);
    let plan_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(plan);
    let before = LIVE.load(Ordering::Relaxed);
    let mut bgp = BgpAnnouncer::new(opts.clone());
    bgp.update(cfg, c, &ChangeSet::all());
    let bgp_bytes = LIVE.load(Ordering::Relaxed) - before;
    let before = LIVE.load(Ordering::Relaxed);
    let l2_plan = compute_l2(cfg, c, opts, None);
    let l2_plan_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(l2_plan);
    let before = LIVE.load(Ordering::Relaxed);
    let mut l2 = L2Announcer::new(opts.clone());
    l2.update(cfg, c, None, &ChangeSet::all());
    let l2_bytes = LIVE.load(Ordering::Relaxed) - before;
    let n = SERVICES as usize;
    eprintln!(
        "heap at {n} Services: BgpPlan {:.2} MiB ({} B/Service), BgpAnnouncer {:.2} MiB ({} B/Service); \
         L2Plan {:.2} MiB ({} B/Service), L2Announcer {:.2} MiB ({} B/Service)",
        mib(plan_bytes),
        plan_bytes / n,
        mib(bgp_bytes),
        bgp_bytes / n,
        mib(l2_plan_bytes),
        l2_plan_bytes / n,
        mib(l2_bytes),
        l2_bytes / n,
    );
    drop((bgp, l2));
}

fn reconcile(cr: &mut Criterion) {
    let (cfg, mut c) = world();
    let opts = SpeakerOptions::for_node("n1");
    report_memory(&cfg, &c, &opts);

    let mut group = cr.benchmark_group("reconcile_10k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("bgp_full", |b| {
        b.iter(|| black_box(compute_bgp(&cfg, &c, &opts)))
    });
    group.bench_function("l2_full", |b| {
        b.iter(|| black_box(compute_l2(&cfg, &c, &opts, None)))
    });

    // The new Service is even: Cluster policy, announced from n1, so it adds a route.
    let (extra, extra_slice) = service(SERVICES);
    let key = extra.key.clone();
    let changed = ChangeSet::service(key.clone());

    let mut bgp = BgpAnnouncer::new(opts.clone());
    bgp.update(&cfg, &c, &ChangeSet::all());
    for held in [false, true] {
        let name = if held {
            "bgp_plus_one_service_plan_held"
        } else {
            "bgp_plus_one_service"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let holder = held.then(|| bgp.desired().clone());
                    let start = Instant::now();
                    c.upsert_service(extra.clone());
                    c.upsert_endpoint_slice(extra_slice.clone());
                    black_box(bgp.update(&cfg, &c, &changed));
                    total += start.elapsed();
                    drop(holder);
                    c.remove_service(&key);
                    c.remove_endpoint_slice(&extra_slice.key);
                    bgp.update(&cfg, &c, &changed);
                }
                total
            })
        });
    }

    let mut l2 = L2Announcer::new(opts.clone());
    l2.update(&cfg, &c, None, &ChangeSet::all());
    group.bench_function("l2_plus_one_service", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                c.upsert_service(extra.clone());
                c.upsert_endpoint_slice(extra_slice.clone());
                black_box(l2.update(&cfg, &c, None, &changed));
                total += start.elapsed();
                c.remove_service(&key);
                c.remove_endpoint_slice(&extra_slice.key);
                l2.update(&cfg, &c, None, &changed);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, reconcile);
criterion_main!(benches);
