//! The protocol seam: a third protocol, written here without touching BGP or Layer 2, is driven
//! by the real loop (`daemon::run`): source updates reach it with what changed, its own
//! wake-ups reach it alone, and its reports land in the status file under its key and on its
//! Kubernetes status channel. Every wait is on a channel, with a deadline.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::model::Config;
use ferrolb_api::source::files::load_str;
use ferrolb_speaker::announce::change::ChangeSet;
use ferrolb_speaker::announce::input::{Cluster, ServiceKey};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::channels::{SourceUpdate, Wake};
use ferrolb_speaker::daemon::{self, reconcile::Reconciler, Reports};
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::{DesiredStatuses, Names, Protocol};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(10);

/// What the fake saw at one update.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    changes: ChangeSet,
    services: Vec<String>,
}

/// A protocol announcing every Service the cluster holds, reporting each update to the test.
struct Fake {
    name: &'static str,
    seen: mpsc::UnboundedSender<Seen>,
    announced: Vec<ServiceKey>,
}

impl Protocol for Fake {
    fn name(&self) -> &'static str {
        self.name
    }

    fn update(
        &mut self,
        _config: &Config,
        cluster: &Cluster,
        changes: &ChangeSet,
    ) -> Vec<ServiceKey> {
        let now: Vec<ServiceKey> = cluster.services.keys().cloned().collect();
        let _ = self.seen.send(Seen {
            changes: changes.clone(),
            services: now.iter().map(ToString::to_string).collect(),
        });
        let changed = if now == self.announced {
            Vec::new()
        } else {
            now.clone()
        };
        self.announced = now;
        changed
    }

    fn has_plan(&self) -> bool {
        true
    }

    fn status_file_key(&self) -> &'static str {
        self.name
    }

    fn status_entries(&self) -> Box<dyn Iterator<Item = (String, Value)> + '_> {
        Box::new(
            self.announced
                .iter()
                .map(|k| (k.to_string(), json!({"announced": true}))),
        )
    }

    fn announced(&self) -> DesiredStatuses {
        self.announced
            .iter()
            .map(|k| (k.clone(), Names::from_iter(["everywhere"])))
            .collect()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

const CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/24"]}
"#;

fn snapshot(services: &[&str]) -> SourceUpdate {
    let mut text = CONFIG.to_string();
    for name in services {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer}}\n"
        ));
    }
    SourceUpdate::snapshot(load_str(&text, Path::new("test")).expect("yaml"))
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("an update within the limit")
        .expect("the fake is alive")
}

#[tokio::test]
async fn the_loop_drives_any_protocol_and_passes_its_reports_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status_file = dir.path().join("status.json");
    let (seen_a, mut rx_a) = mpsc::unbounded_channel();
    let (seen_b, mut rx_b) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::default());
    let mut reconciler = Reconciler::new(SpeakerOptions::for_node("node-a"), Arc::clone(&metrics))
        .with_protocol(Fake {
            name: "a",
            seen: seen_a,
            announced: Vec::new(),
        })
        .with_protocol(Fake {
            name: "b",
            seen: seen_b,
            announced: Vec::new(),
        });
    let (kube_tx, mut kube_rx) = watch::channel(None);
    let reports = Reports {
        status_file: Some(status_file.clone()),
        statuses: [("a", kube_tx)].into_iter().collect(),
        config_errors: None,
        config_state: None,
    };
    let (source, source_rx) = mpsc::channel(4);
    let (wake, wake_rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            daemon::run(
                source_rx,
                wake_rx,
                &mut reconciler,
                "node-a",
                &metrics,
                reports,
                cancel,
            )
            .await;
        })
    };

    // A snapshot reaches every protocol, in registration order, with what changed.
    source.send(snapshot(&["web"])).await.expect("send");
    let a = next(&mut rx_a).await;
    assert_eq!(a.services, vec!["default/web"]);
    assert!(!a.changes.is_empty());
    assert_eq!(next(&mut rx_b).await, a);

    // Its Kubernetes report goes out on its own channel, keyed by its name.
    tokio::time::timeout(LIMIT, kube_rx.wait_for(Option::is_some))
        .await
        .expect("within the limit")
        .expect("sender alive");
    let desired = kube_rx.borrow().clone().expect("some");
    assert_eq!(
        desired.keys().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["default/web"]
    );

    // A wake-up reaches only the protocol it names, with everything to recompute.
    wake.send(Wake("b")).await.expect("send");
    let b = next(&mut rx_b).await;
    assert_eq!(b.changes, ChangeSet::all());
    assert_eq!(b.services, vec!["default/web"]);
    // An outage is no update for anyone; the next snapshot is seen by "a" first, so nothing
    // from the wake-up or the outage can be pending for "a" before it.
    source
        .send(SourceUpdate::Unavailable("gone".into()))
        .await
        .expect("send");
    source.send(snapshot(&["web", "api"])).await.expect("send");
    let a = next(&mut rx_a).await;
    assert_eq!(a.services, vec!["default/api", "default/web"]);
    assert_eq!(next(&mut rx_b).await.services, a.services);

    cancel.cancel();
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("the loop ends on cancel")
        .expect("no panic");
    // The status file carries each protocol's reports under its own key.
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&status_file).expect("status file")).expect("json");
    assert_eq!(doc["node"], "node-a");
    for key in ["a", "b"] {
        assert_eq!(doc[key]["default/api"]["announced"], true, "{doc}");
        assert_eq!(doc[key]["default/web"]["announced"], true, "{doc}");
    }
    assert!(rx_a.try_recv().is_err(), "a saw nothing of b's wake-up");
}
