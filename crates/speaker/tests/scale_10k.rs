//! The speaker at scale: 10,000 LoadBalancer Services (each with an EndpointSlice) in one YAML file
//! go through the whole standalone pipeline (load → validate → cluster → compute_bgp →
//! advertiser) and come out as 10,000 routes. No timing assertions: how long it takes and how
//! much it holds is printed (`--nocapture`) for docs/speaker.md; what is asserted is the result.
//!
//! A counting global allocator reports the live heap after each stage, so a regression that
//! keeps a big intermediate (the parsed YAML, the k8s objects) alive shows up in the output.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferrolb_api::source::files::{fingerprint, load_paths, FileCache};
use ferrolb_speaker::advertiser::testing::FakeAdvertiser;
use ferrolb_speaker::announce::bgp::BgpDesired;
use ferrolb_speaker::announce::input::ServiceKey;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::channels::SourceUpdate;
use ferrolb_speaker::daemon::reconcile::Reconciler;
use ferrolb_speaker::daemon::status::{write_atomically, StatusDoc};
use ferrolb_speaker::inputs::Inputs;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::bgp::{status_json, BgpProtocol};
use ferrolb_speaker::protocol::l2::L2Protocol;

/// Counts live heap bytes (all threads; the test harness adds a little noise).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call to `System` unchanged; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// The highest live heap since the last call, and starts a new period.
fn peak_mib() -> f64 {
    let peak = PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    peak as f64 / (1024.0 * 1024.0)
}

const N: usize = 10_000;

/// The BGP protocol of the reconciler.
fn bgp(rec: &Reconciler) -> &BgpProtocol<FakeAdvertiser<BgpDesired>> {
    rec.protocol().expect("BGP registered")
}

/// The VIP of Service `i`: 100.64.0.0/16 holds 65,536 addresses, enough for N.
fn vip(i: usize) -> String {
    format!("100.64.{}.{}", (i + 1) / 256, (i + 1) % 256)
}

/// One pool, one peer, one advertisement, then N Services with one ready endpoint each.
pub fn config_yaml(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool, namespace: metallb-system}\nspec: {addresses: [\"100.64.0.0/16\"]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: router, namespace: metallb-system}\nspec: {myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, routerID: 10.255.0.2}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: adv, namespace: metallb-system}\nspec: {ipAddressPools: [pool]}\n",
    );
    for i in 0..n {
        s.push_str(&service_yaml(i));
    }
    s
}

/// Service `i` and its EndpointSlice (one ready endpoint on node-a).
pub fn service_yaml(i: usize) -> String {
    let ip = vip(i);
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: Cluster, ports: [{{port: 80}}]}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{i}-x, namespace: default, labels: {{kubernetes.io/service-name: s{i}}}}}\naddressType: IPv4\nendpoints: [{{addresses: [10.0.0.1], nodeName: node-a, conditions: {{ready: true}}}}]\n"
    )
}

#[test]
fn ten_thousand_services_become_ten_thousand_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("all.yaml"), config_yaml(N)).expect("write");
    eprintln!("baseline live heap: {:.1} MiB", mib());
    peak_mib();

    // The daemon's model: Services and EndpointSlices reduced document by document.
    let mut cache = FileCache::<Inputs>::default();
    let t = Instant::now();
    let inputs = cache
        .load(&fingerprint(&[dir.path()]).expect("fingerprint"))
        .expect("load");
    eprintln!(
        "first load (every file parsed): {:?}, live heap holding the inputs (shared with the \
         file cache): {:.1} MiB, peak during the load {:.1} MiB",
        t.elapsed(),
        mib(),
        peak_mib()
    );
    assert_eq!(cache.last_stats().parsed, 1);
    assert_eq!(inputs.service_count(), N);

    let metrics = Arc::new(Metrics::default());
    let mut rec = Reconciler::new(SpeakerOptions::for_node("node-a"), Arc::clone(&metrics))
        .with_protocol(BgpProtocol::new(
            SpeakerOptions::for_node("node-a"),
            FakeAdvertiser::<BgpDesired>::default(),
        ))
        .with_protocol(L2Protocol::new(
            SpeakerOptions::for_node("node-a"),
            FakeAdvertiser::<ferrolb_speaker::advertiser::L2Desired>::default(),
            None,
        ));
    let t = Instant::now();
    let changed = rec.apply(SourceUpdate::Snapshot(Box::new(inputs)));
    eprintln!(
        "reconcile (validate + cluster + compute_bgp + status diff): {:?}, live heap after \
         (snapshot dropped, cache kept): {:.1} MiB, peak during the reconcile {:.1} MiB",
        t.elapsed(),
        mib(),
        peak_mib()
    );
    assert_eq!(changed.len(), N, "every Service's report is new");
    let desired = bgp(&rec)
        .advertiser()
        .current()
        .expect("a desired state was set");
    let routes = &desired.peers.get("router").expect("peer router").routes;
    assert_eq!(routes.len(), N, "one /32 per Service");
    assert!(routes.contains_key(&vip(N - 1).parse::<std::net::IpAddr>().expect("ip").into()));
    assert!(!rec.is_stale());
    let before = mib();
    let statuses = bgp(&rec).statuses().clone();
    eprintln!("  of which per-Service statuses: {:.1} MiB", mib() - before);
    drop(statuses);
    let before = mib();
    let copy = desired.clone();
    eprintln!("  of which one BgpDesired: {:.1} MiB", mib() - before);
    drop(copy);

    let t = Instant::now();
    let doc = status_json("node-a", false, bgp(&rec).statuses());
    let services = doc["services"].as_object().expect("services").len();
    eprintln!(
        "status_json: {:?}, live heap while the document exists: {:.1} MiB",
        t.elapsed(),
        mib()
    );
    assert_eq!(services, N);
    drop(doc);

    // The daemon streams the same document to the status file, one Service at a time.
    let path = dir.path().join("status.json");
    let doc = StatusDoc {
        node: "node-a",
        stale: false,
        protocols: rec.protocols(),
    };
    write_atomically(&path, &doc).expect("status file");
    let back: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert_eq!(back["services"].as_object().expect("services").len(), N);
    drop(back);
    std::fs::remove_file(&path).expect("rm");

    // The same snapshot again changes nothing and sends nothing new.
    let res = load_paths(&[dir.path()]).expect("load again");
    let t = Instant::now();
    let changed = rec.apply(SourceUpdate::snapshot(res));
    eprintln!("unchanged snapshot reconcile: {:?}", t.elapsed());
    assert!(changed.is_empty());
    assert_eq!(
        bgp(&rec).advertiser().history.len(),
        1,
        "no second desired state"
    );

    // One more Service in a file of its own: only that file is parsed; the big one's reduced
    // objects come from the cache.
    std::fs::write(dir.path().join("extra.yaml"), service_yaml(N)).expect("write");
    peak_mib();
    let t = Instant::now();
    let inputs = cache
        .load(&fingerprint(&[dir.path()]).expect("fingerprint"))
        .expect("reload");
    let reload = t.elapsed();
    assert_eq!(cache.last_stats().parsed, 1, "only extra.yaml parsed");
    assert_eq!(cache.last_stats().reused, 1, "all.yaml from the cache");
    let t = Instant::now();
    let changed = rec.apply(SourceUpdate::Snapshot(Box::new(inputs)));
    eprintln!(
        "one Service file added: incremental load {reload:?}, reconcile {:?}, live heap after \
         {:.1} MiB, peak during load and reconcile {:.1} MiB",
        t.elapsed(),
        mib(),
        peak_mib()
    );
    assert_eq!(changed, [ServiceKey::new("default", format!("s{N}"))]);
    let desired = bgp(&rec).advertiser().current().expect("desired");
    assert_eq!(desired.peers["router"].routes.len(), N + 1);
    let t = Instant::now();
    let full = load_paths(&[dir.path()]).expect("full load");
    eprintln!(
        "the same load without the cache, as whole k8s objects (Resources): {:?}, live heap \
         holding them {:.1} MiB",
        t.elapsed(),
        mib()
    );
    assert_eq!(full.services.len(), N + 1);
}
