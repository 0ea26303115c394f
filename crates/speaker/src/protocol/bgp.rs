//! The BGP [`Protocol`]: [`BgpAnnouncer`] (incremental: a change to one Service recomputes that
//! Service's routes; [`compute_bgp`](crate::announce::bgp::compute_bgp) is its reference) over
//! the kept inputs, its desired state to the BGP
//! [`Advertiser`] (backend::bgp), and the per-Service report: which peers this node announces a
//! Service to, or why not (status file section `services`, ServiceBGPStatus objects).

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::model::Config;
use serde_json::{json, Value};

use super::{log_reports, DesiredStatuses, DrainWatch, Protocol};
use crate::advertiser::Advertiser;
use crate::announce::bgp::{
    announced_weight, BgpAnnouncer, BgpDesired, RouteConflict, ServiceStatus, VipStatus,
};
use crate::announce::change::ChangeSet;
use crate::announce::drain::{self, DrainPhase};
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::SpeakerOptions;
use crate::channels::Wake;
use crate::metrics::{L2Announced, Metrics};

/// [`Protocol::name`] of BGP.
pub const NAME: &str = "bgp";

/// Drives one BGP [`Advertiser`] from the loop.
pub struct BgpProtocol<A: Advertiser<Desired = BgpDesired>> {
    opts: SpeakerOptions,
    advertiser: A,
    applied: Option<BgpDesired>,
    announcer: BgpAnnouncer,
    /// The LOCAL_PREF conflicts last logged, so each is said when it appears, not per update.
    logged_conflicts: BTreeSet<RouteConflict>,
    /// Where `metallb_speaker_announced{protocol="bgp"}` goes (none in unit tests).
    metrics: Option<Arc<Metrics>>,
    /// This node's drain (announce::drain).
    drain: DrainWatch,
    /// The weighted-ECMP weights last exported, per (peer address, prefix), so each change is
    /// logged once.
    logged_weights: BTreeMap<(String, String), f64>,
    /// The last configuration had a weighted advertisement (its weights are exported).
    weights_set: bool,
}

impl<A: Advertiser<Desired = BgpDesired>> std::fmt::Debug for BgpProtocol<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgpProtocol")
            .field("node", &self.opts.node_name)
            .field("services", &self.announcer.statuses().len())
            .finish_non_exhaustive()
    }
}

impl<A: Advertiser<Desired = BgpDesired>> BgpProtocol<A> {
    /// BGP for `opts.node_name` with nothing announced yet.
    pub fn new(opts: SpeakerOptions, advertiser: A) -> Self {
        Self {
            announcer: BgpAnnouncer::new(opts.clone()),
            opts,
            advertiser,
            applied: None,
            logged_conflicts: BTreeSet::new(),
            metrics: None,
            drain: DrainWatch::new(NAME),
            logged_weights: BTreeMap::new(),
            weights_set: false,
        }
    }

    /// Exports the announced VIPs to `metrics` after each update.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// BGP whose last report is `statuses` (the status file's tests).
    #[cfg(test)]
    pub(crate) fn with_statuses(
        opts: SpeakerOptions,
        advertiser: A,
        statuses: BTreeMap<ServiceKey, ServiceStatus>,
    ) -> Self {
        Self {
            announcer: BgpAnnouncer::with_statuses(opts.clone(), statuses),
            ..Self::new(opts, advertiser)
        }
    }

    /// The advertiser (tests read the fake's history).
    pub fn advertiser(&self) -> &A {
        &self.advertiser
    }

    /// The last per-Service report.
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, ServiceStatus> {
        self.announcer.statuses()
    }

    /// The desired state last accepted by the advertiser.
    pub fn applied(&self) -> Option<&BgpDesired> {
        self.applied.as_ref()
    }

    /// Drains take `period`, and `wake` gets a [`Wake`] for this protocol when one ends.
    pub fn with_drain(mut self, period: Duration, wake: tokio::sync::mpsc::Sender<Wake>) -> Self {
        self.drain.set(period, wake);
        self
    }

    /// The drain phase at the last update.
    pub fn drain_phase(&self) -> DrainPhase {
        self.drain.phase()
    }
}

impl<A: Advertiser<Desired = BgpDesired> + 'static> Protocol for BgpProtocol<A> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn update(
        &mut self,
        config: &Config,
        cluster: &Cluster,
        changes: &ChangeSet,
    ) -> Vec<ServiceKey> {
        let all = ChangeSet::all();
        let changes = match self.drain.observe(cluster, &self.opts) {
            Some(draining) => {
                self.announcer = BgpAnnouncer::new(SpeakerOptions {
                    draining,
                    ..self.opts.clone()
                });
                &all
            }
            None => changes,
        };
        let changed = self.announcer.update(config, cluster, changes);
        let conflicts = self.announcer.conflicts();
        if *conflicts != self.logged_conflicts {
            for c in conflicts.difference(&self.logged_conflicts) {
                tracing::warn!(peer = %c.peer, prefix = %c.prefix, chosen = ?c.chosen,
                    "advertisements disagree on localPref; announcing the highest");
            }
            self.logged_conflicts = conflicts.clone();
        }
        // Cheap when nothing changed: the peers' route maps are shared `Arc`s, compared by
        // pointer first.
        let desired = match self.drain.phase() {
            DrainPhase::Draining { .. } => {
                Cow::Owned(drain::gracefully_shut(self.announcer.desired()))
            }
            _ => Cow::Borrowed(self.announcer.desired()),
        };
        let desired = desired.as_ref();
        if self.applied.as_ref() != Some(desired) {
            match self.advertiser.set_desired(desired.clone()) {
                Ok(()) => self.applied = Some(desired.clone()),
                Err(error) => tracing::error!(%error, kind = error.metric_label(),
                    "advertiser did not accept the desired state"),
            }
            // Only a weighted advertisement puts weights in routes: without one the scan of
            // every route is skipped (and a stale table emptied once).
            let weighted = config
                .bgp_advertisements
                .values()
                .any(|a| a.weighted_ecmp.is_some());
            if weighted || self.weights_set {
                let weights = announced_weights(desired);
                if let Some(metrics) = &self.metrics {
                    metrics.set_bgp_weights(weights.clone());
                }
                for ((peer, prefix), weight) in &weights {
                    if self.logged_weights.get(&(peer.clone(), prefix.clone())) != Some(weight) {
                        tracing::info!(%peer, %prefix, weight,
                            "weighted ECMP: link bandwidth announced, in endpoints");
                    }
                }
                self.logged_weights = weights;
                self.weights_set = weighted;
            }
        }
        log_reports(NAME, &changed, self.announcer.statuses(), summary);
        if let Some(metrics) = &self.metrics {
            metrics.set_bgp_announced(
                &self.opts.node_name,
                announced_vips(self.announcer.statuses()),
            );
        }
        changed
    }

    fn has_plan(&self) -> bool {
        self.applied.is_some()
    }

    fn status_file_key(&self) -> &'static str {
        "services"
    }

    fn status_entries(&self) -> Box<dyn Iterator<Item = (String, Value)> + '_> {
        Box::new(self.announcer.statuses().iter().map(|(key, st)| {
            let mut json = service_json(st);
            add_weights(&mut json, st, self.announcer.desired());
            (key.to_string(), json)
        }))
    }

    fn announced(&self) -> DesiredStatuses {
        announced_from(self.announcer.statuses())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The weight (link bandwidth in endpoints) of every route that carries one, per (peer
/// address, prefix).
fn announced_weights(desired: &BgpDesired) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for announcement in desired.peers.values() {
        let peer = announcement.session.peer_address.to_string();
        for (prefix, route) in &announcement.routes {
            if let Some(weight) = announced_weight(route) {
                out.insert((peer.clone(), prefix.to_string()), weight);
            }
        }
    }
    out
}

/// The VIPs announced to at least one peer (MetalLB's `metallb_speaker_announced` rows).
pub fn announced_vips(statuses: &BTreeMap<ServiceKey, ServiceStatus>) -> BTreeSet<L2Announced> {
    statuses
        .iter()
        .filter_map(|(key, st)| match st {
            ServiceStatus::Vips(vips) => Some((key, vips)),
            ServiceStatus::Skipped(_) => None,
        })
        .flat_map(|(key, vips)| {
            vips.iter()
                .filter(|(_, st)| matches!(st, VipStatus::Announced { .. }))
                .map(move |(ip, _)| L2Announced {
                    service: format!("{}/{}", key.namespace, key.name),
                    ip: *ip,
                })
        })
        .collect()
}

/// The ServiceBGPStatus set of a per-Service report: Services with at least one peer, and the
/// peers' names.
pub fn announced_from(statuses: &BTreeMap<ServiceKey, ServiceStatus>) -> DesiredStatuses {
    statuses
        .iter()
        .filter_map(|(key, st)| {
            let peers = st.peers();
            (!peers.is_empty()).then(|| (key.clone(), peers.into_iter().collect()))
        })
        .collect()
}

/// One Service's report as JSON: `{"announced": bool, "peers": [...], "reason"?: "...",
/// "vips": {"<ip>": {...}}}`.
pub fn service_json(status: &ServiceStatus) -> Value {
    match status {
        ServiceStatus::Skipped(reason) => json!({
            "announced": false,
            "peers": [],
            "reason": reason.to_string(),
            "reasonCode": reason.label(),
        }),
        ServiceStatus::Vips(vips) => {
            let vips: serde_json::Map<String, Value> = vips
                .iter()
                .map(|(ip, v)| (ip.to_string(), vip_json(v)))
                .collect();
            json!({
                "announced": !status.peers().is_empty(),
                "peers": status.peers(),
                "vips": vips,
            })
        }
    }
}

fn vip_json(v: &VipStatus) -> Value {
    let skipped: serde_json::Map<String, Value> = v
        .skipped_peers()
        .iter()
        .map(|(peer, why)| (peer.to_string(), Value::String(format!("{why:?}"))))
        .collect();
    match v {
        VipStatus::Announced {
            prefixes, peers, ..
        } => json!({
            "announced": true,
            "prefixes": prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "peers": peers.iter().map(|p| &**p).collect::<Vec<&str>>(),
            "skippedPeers": skipped,
        }),
        VipStatus::NotAnnounced { reason, .. } => json!({
            "announced": false,
            "reason": reason.to_string(),
            "reasonCode": reason.label(),
            "skippedPeers": skipped,
        }),
    }
}

/// Adds to each announced VIP of `status` (in `json`, from [`service_json`]) the weighted-ECMP
/// weight its routes carry, in endpoints, per peer and prefix (`"weights": {"<peer>":
/// {"<prefix>": 3.0}}`): what the node announces, summed over the Services sharing the prefix.
/// Nothing is added for VIPs whose routes carry no link bandwidth.
pub fn add_weights(json: &mut Value, status: &ServiceStatus, desired: &BgpDesired) {
    let ServiceStatus::Vips(vips) = status else {
        return;
    };
    for (ip, vip) in vips {
        let VipStatus::Announced {
            prefixes, peers, ..
        } = vip
        else {
            continue;
        };
        let mut weights = serde_json::Map::new();
        for peer in peers.iter() {
            let Some(announcement) = desired.peers.get(&**peer) else {
                continue;
            };
            let per_prefix: serde_json::Map<String, Value> = prefixes
                .iter()
                .filter_map(|prefix| {
                    let weight = announced_weight(announcement.routes.get(prefix)?)?;
                    Some((prefix.to_string(), json!(weight)))
                })
                .collect();
            if !per_prefix.is_empty() {
                weights.insert(peer.to_string(), Value::Object(per_prefix));
            }
        }
        if !weights.is_empty() {
            json["vips"][ip.to_string()]["weights"] = Value::Object(weights);
        }
    }
}

/// The whole status document of node `node`, from the statuses alone (the daemon's status
/// file also carries the weights of [`add_weights`], which come from the desired routes).
pub fn status_json(
    node: &str,
    stale: bool,
    services: &BTreeMap<ServiceKey, ServiceStatus>,
) -> Value {
    let services: serde_json::Map<String, Value> = services
        .iter()
        .map(|(k, s)| (k.to_string(), service_json(s)))
        .collect();
    json!({ "node": node, "configStale": stale, "services": services })
}

/// One line for the log: `announced to [a, b]` or `not announced: <reason>`.
pub fn summary(status: &ServiceStatus) -> String {
    let peers = status.peers();
    if !peers.is_empty() {
        return format!("announced to {peers:?}");
    }
    match status {
        ServiceStatus::Skipped(reason) => format!("not announced: {reason}"),
        ServiceStatus::Vips(vips) => {
            let reasons: Vec<String> = vips
                .iter()
                .filter_map(|(ip, v)| match v {
                    VipStatus::NotAnnounced { reason, .. } => Some(format!("{ip}: {reason}")),
                    VipStatus::Announced { .. } => None,
                })
                .collect();
            format!("not announced: {}", reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::reason::SkipReason;

    #[test]
    fn skipped_service_reports_its_reason() {
        let s = ServiceStatus::Skipped(SkipReason::NoIpAssigned);
        let v = service_json(&s);
        assert_eq!(v["announced"], false);
        assert_eq!(v["reasonCode"], SkipReason::NoIpAssigned.label());
        assert!(summary(&s).starts_with("not announced"));
    }
}
