//! The daemon's `ConfigurationState` (metallb.io/v1beta1, MetalLB v0.15): one object per
//! reporter in the daemons' namespace saying whether the last configuration it read was valid,
//! so `kubectl get configurationstates -n metallb-system` shows what only logs showed before.
//!
//! MetalLB's names and labels: the controller's object is `controller`, a speaker's is
//! `speaker-<node>`; label `metallb.io/component-type: controller|speaker`, plus
//! `metallb.io/node-name: <node>` for speakers ([`Reporter`]).
//!
//! ```text
//!  ConfigApplier ─ desired() (pure) ─▶ watch<Option<Status>> ─▶ run_writer ─▶ apply object
//!                                       (None: not reporting)             └▶ apply /status
//! ```
//!
//! *Guarantees*: the object is created (server-side apply, so labels are ours and other fields
//! are left alone) before its status is written; a status is written only when it differs from
//! the last one written; a failed write is retried with backoff until it lands or a newer status
//! replaces it. *Reuse*: the speaker builds [`Reporter::speaker`] with its node name and sends
//! [`desired`] of its own applier after each snapshot; nothing else differs.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_api::crd::configuration_state::{
    ConfigurationStateStatus, COMPONENT_TYPE_LABEL, NODE_NAME_LABEL,
};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Backoff, ConfigApplier};

/// Ceiling of the retry backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), MAX_BACKOFF);
/// Limit on one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Who reports: the object's name and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl Reporter {
    /// The controller's object: `controller`, `metallb.io/component-type: controller`.
    pub fn controller() -> Self {
        Self {
            name: "controller".into(),
            labels: BTreeMap::from([(COMPONENT_TYPE_LABEL.into(), "controller".into())]),
        }
    }

    /// A speaker's object: `speaker-<node>`, component type `speaker` and the node name.
    pub fn speaker(node: &str) -> Self {
        Self {
            name: format!("speaker-{node}"),
            labels: BTreeMap::from([
                (COMPONENT_TYPE_LABEL.into(), "speaker".into()),
                (NODE_NAME_LABEL.into(), node.into()),
            ]),
        }
    }
}

/// The status an applier's state asks for: `Valid`, `Invalid` with the errors (the last good
/// configuration stays in force, but the newest one is what users must fix), or `Unknown`
/// before any configuration was read.
pub fn desired(applier: &ConfigApplier) -> ConfigurationStateStatus {
    ConfigurationStateStatus::from_state(applier.state())
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metallb.io", "v1beta1", "ConfigurationState"),
        "configurationstates",
    )
}

/// Writes what `status` holds (when `Some`) to `namespace`/`reporter.name` until `cancel`.
/// `manager` is the server-side apply field manager.
pub async fn run_writer(
    client: Client,
    namespace: String,
    reporter: Reporter,
    manager: String,
    mut status: watch::Receiver<Option<ConfigurationStateStatus>>,
    cancel: CancellationToken,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &resource());
    let params = PatchParams::apply(&manager).force();
    let mut created = false;
    let mut written: Option<ConfigurationStateStatus> = None;
    let mut failures = 0u32;
    loop {
        let want = status.borrow_and_update().clone();
        let pending = want
            .as_ref()
            .filter(|w| written.as_ref() != Some(*w))
            .cloned();
        let wait = match pending {
            None => None,
            Some(want) => match write(&api, &params, &reporter, &mut created, &want).await {
                Ok(()) => {
                    failures = 0;
                    written = Some(want);
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, name = %reporter.name, "writing the ConfigurationState failed; retrying");
                    failures = failures.saturating_add(1);
                    Some(RETRY.delay(failures - 1))
                }
            },
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
            () = crate::sleep_until(wait.map(|w| tokio::time::Instant::now() + w)) => {}
        }
    }
}

async fn write(
    api: &Api<DynamicObject>,
    params: &PatchParams,
    reporter: &Reporter,
    created: &mut bool,
    status: &ConfigurationStateStatus,
) -> Result<(), String> {
    let timed = |r: Result<Result<DynamicObject, kube::Error>, tokio::time::error::Elapsed>| {
        r.map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())
    };
    if !*created {
        let object = json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": {"name": reporter.name, "labels": reporter.labels},
        });
        timed(
            tokio::time::timeout(
                CALL_TIMEOUT,
                api.patch(&reporter.name, params, &Patch::Apply(&object)),
            )
            .await,
        )?;
        *created = true;
    }
    let body = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "ConfigurationState",
        "status": status,
    });
    let r = timed(
        tokio::time::timeout(
            CALL_TIMEOUT,
            api.patch_status(&reporter.name, params, &Patch::Apply(&body)),
        )
        .await,
    );
    if r.as_ref()
        .is_err_and(|e| e.contains("404") || e.contains("NotFound"))
    {
        // Deleted behind our back: create it again next time.
        *created = false;
    }
    r.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::source::Resources;

    #[test]
    fn names_and_labels_are_metallbs() {
        let c = Reporter::controller();
        assert_eq!(c.name, "controller");
        assert_eq!(c.labels[COMPONENT_TYPE_LABEL], "controller");
        assert!(!c.labels.contains_key(NODE_NAME_LABEL));
        let s = Reporter::speaker("kind-worker");
        assert_eq!(s.name, "speaker-kind-worker");
        assert_eq!(s.labels[COMPONENT_TYPE_LABEL], "speaker");
        assert_eq!(s.labels[NODE_NAME_LABEL], "kind-worker");
    }

    #[test]
    fn desired_follows_the_applier() {
        let mut applier = ConfigApplier::new();
        assert_eq!(desired(&applier).result.as_deref(), Some("Unknown"));
        applier.apply(&Resources::default());
        assert_eq!(desired(&applier).result.as_deref(), Some("Valid"));
        let bad: Resources = ferrolb_api::source::files::load_str(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/33]}\n",
            std::path::Path::new("test.yaml"),
        )
        .expect("yaml");
        applier.apply(&bad);
        let s = desired(&applier);
        assert_eq!(s.result.as_deref(), Some("Invalid"));
        assert!(
            s.error_summary
                .as_deref()
                .is_some_and(|e| e.contains("10.0.0.0/33")),
            "{s:?}"
        );
    }
}
