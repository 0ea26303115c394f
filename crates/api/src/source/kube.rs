//! Kubernetes source: reflectors over the metallb.io CRs and the Secrets of the FerroLB
//! namespace, yielding a fresh [`Resources`] snapshot after every change.
//!
//! Thin by design: no logic beyond "watch, cache, snapshot". Validation is the caller's
//! ([`crate::validate::validate`]); Services, Nodes, Namespaces and EndpointSlices are watched by
//! the daemons' own controllers and are left empty here.
//!
//! Guarantees: the first snapshot is yielded only once every watch has finished its initial
//! list, so a partial configuration is never validated; each watch retries with kube-runtime's
//! default exponential backoff; snapshots list objects sorted by name, so equal cluster states
//! give equal snapshots. Caveats: tested only against a LIST/WATCH stub
//! (`tests/kube_source.rs`), not a real API server; the stream ends only when dropped; every
//! event yields a full snapshot (callers that validate on each should debounce if they care).

use std::fmt::Debug;
use std::hash::Hash;

use futures::stream::{self, BoxStream, Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::Resources;
use crate::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};

/// A change seen by one of the watches: its index and whether it completed the initial list.
type Tick = Result<(usize, bool), watcher::Error>;

/// Read-only caches of every watched kind.
#[derive(Clone)]
struct Stores {
    pools: Store<IPAddressPool>,
    peers: Store<BGPPeer>,
    bgp_advs: Store<BGPAdvertisement>,
    l2_advs: Store<L2Advertisement>,
    communities: Store<Community>,
    bfd: Store<BFDProfile>,
    secrets: Store<Secret>,
}

const WATCHES: usize = 7;

fn watch_into<K>(api: Api<K>, index: usize) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let ticks = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map(move |ev| ev.map(|e| (index, matches!(e, watcher::Event::InitDone))))
        .boxed();
    (reader, ticks)
}

fn sorted<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let mut v: Vec<K> = store.state().iter().map(|k| (**k).clone()).collect();
    v.sort_by_key(|k| k.name_any());
    v
}

impl Stores {
    fn snapshot(&self) -> Resources {
        Resources {
            ip_address_pools: sorted(&self.pools),
            bgp_peers: sorted(&self.peers),
            bgp_advertisements: sorted(&self.bgp_advs),
            l2_advertisements: sorted(&self.l2_advs),
            communities: sorted(&self.communities),
            bfd_profiles: sorted(&self.bfd),
            secrets: sorted(&self.secrets),
            ..Resources::default()
        }
    }
}

/// Watches the configuration in `namespace` and yields a snapshot after every change once all
/// initial lists are done. Watch errors are yielded too (the watch itself keeps retrying), so
/// the caller can log them and report staleness.
pub fn snapshots(
    client: Client,
    namespace: &str,
) -> impl Stream<Item = Result<Resources, watcher::Error>> + Send + 'static {
    let (pools, s0) = watch_into(
        Api::<IPAddressPool>::namespaced(client.clone(), namespace),
        0,
    );
    let (peers, s1) = watch_into(Api::<BGPPeer>::namespaced(client.clone(), namespace), 1);
    let (bgp_advs, s2) = watch_into(
        Api::<BGPAdvertisement>::namespaced(client.clone(), namespace),
        2,
    );
    let (l2_advs, s3) = watch_into(
        Api::<L2Advertisement>::namespaced(client.clone(), namespace),
        3,
    );
    let (communities, s4) = watch_into(Api::<Community>::namespaced(client.clone(), namespace), 4);
    let (bfd, s5) = watch_into(Api::<BFDProfile>::namespaced(client.clone(), namespace), 5);
    let (secrets, s6) = watch_into(Api::<Secret>::namespaced(client, namespace), 6);
    let stores = Stores {
        pools,
        peers,
        bgp_advs,
        l2_advs,
        communities,
        bfd,
        secrets,
    };
    let mut ready = [false; WATCHES];
    stream::select_all([s0, s1, s2, s3, s4, s5, s6]).filter_map(move |tick| {
        let out = match tick {
            Err(e) => Some(Err(e)),
            Ok((index, init_done)) => {
                if let Some(flag) = ready.get_mut(index) {
                    *flag |= init_done;
                }
                ready.iter().all(|r| *r).then(|| Ok(stores.snapshot()))
            }
        };
        futures::future::ready(out)
    })
}
