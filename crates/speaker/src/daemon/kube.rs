//! Kubernetes source: the config snapshots of `ferrolb_api::source::kube` plus reflectors over
//! Services, EndpointSlices (discovery.k8s.io/v1) and Nodes, merged into one
//! [`SourceUpdate::Snapshot`] per change.
//!
//! *Guarantees*: nothing is sent before every watch finished its initial list; a watch error is
//! sent as [`SourceUpdate::Unavailable`] (the watchers retry with backoff on their own), so
//! losing the API server never withdraws a route; only an observed change does. The reflectors
//! swap a re-list in whole at its end (kube-runtime `InitDone`), so a reconnect does not show a
//! half-empty cluster.
//!
//! *Caveats*: compile-checked only here (no API server in this environment); see
//! docs/speaker.md. ServiceBGPStatus objects are not written yet.

use std::fmt::Debug;
use std::hash::Hash;

use ferrolb_api::source::{kube as config_source, Resources};
use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reconcile::SourceUpdate;

/// What woke the merge loop.
enum Tick {
    Config(Result<Box<Resources>, watcher::Error>),
    Cluster(Result<(usize, bool), watcher::Error>),
}

fn watch_into<K>(api: Api<K>, index: usize) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let ticks = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map(move |ev| Tick::Cluster(ev.map(|e| (index, matches!(e, watcher::Event::InitDone)))))
        .boxed();
    (reader, ticks)
}

fn all<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|k| (**k).clone()).collect()
}

/// Watches the cluster through `client` (config CRs and Secrets in `namespace`) and sends
/// snapshots on `tx` until `cancel` or until the receiver is gone.
pub async fn watch(
    client: Client,
    namespace: String,
    tx: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) {
    let config = config_source::snapshots(client.clone(), &namespace)
        .map(|r| Tick::Config(r.map(Box::new)))
        .boxed();
    let (services, s0) = watch_into(Api::<Service>::all(client.clone()), 0);
    let (slices, s1) = watch_into(Api::<EndpointSlice>::all(client.clone()), 1);
    let (nodes, s2) = watch_into(Api::<Node>::all(client), 2);
    let mut ticks = stream::select_all([config, s0, s1, s2]);
    let mut cluster_ready = [false; 3];
    let mut last_config: Option<Resources> = None;
    loop {
        let tick = tokio::select! {
            t = ticks.next() => t,
            () = cancel.cancelled() => return,
        };
        let update = match tick {
            None => return,
            Some(Tick::Config(Err(e)) | Tick::Cluster(Err(e))) => {
                Some(SourceUpdate::Unavailable(format!("watch: {e}")))
            }
            Some(Tick::Config(Ok(res))) => {
                last_config = Some(*res);
                None
            }
            Some(Tick::Cluster(Ok((i, init_done)))) => {
                if let Some(flag) = cluster_ready.get_mut(i) {
                    *flag |= init_done;
                }
                None
            }
        };
        let update = update.or_else(|| {
            let config = last_config.as_ref()?;
            cluster_ready.iter().all(|r| *r).then(|| {
                let mut res = config.clone();
                res.services = all(&services);
                res.endpoint_slices = all(&slices);
                res.nodes = all(&nodes);
                SourceUpdate::Snapshot(Box::new(res))
            })
        });
        if let Some(update) = update {
            if tx.send(update).await.is_err() {
                return;
            }
        }
    }
}
