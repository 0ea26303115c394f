//! The real `ferrolb-controller` in Kubernetes mode creates the speakers' memberlist Secret, as
//! MetalLB's controller does, against the API-server test double (`ferrolb_e2e::apiserver`)
//! over loopback only: no root, no network namespaces.
//!
//! Covered: the leader creates Secret `memberlist` (type Opaque, key `secretkey` = base64 text
//! of 128 random octets), retrying after a failed create; an existing Secret (here under
//! `--ml-secret-name`) is left untouched: the create gets 409 and nothing else is sent.
//!
//! Object waits use `ApiServer::wait_for_object` (woken by store changes); the request log is
//! another thread's state, so it is polled with `wait_for` (bounded).

use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::ours::{ApiLab, FlbCommand};
use ferrolb_e2e::{wait_for, workspace_bin, Daemon};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{json, Value};

const NS: &str = "metallb-system";
const T: Duration = Duration::from_secs(20);
const SECRETS: &str = "/api/v1/namespaces/metallb-system/secrets";

fn setup() -> (ApiServer, tempfile::TempDir) {
    let ApiLab { api, dir, .. } = ApiLab::start();
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    (api, dir)
}

fn start(dir: &Path, extra: &[&str]) -> Daemon {
    let bin = workspace_bin("ferrolb-controller").expect("build ferrolb-controller first");
    FlbCommand::new(bin)
        .controller_kube(&dir.join("kubeconfig"), NS, "ctl-a")
        .args(["--log-level", "info,ferrolb_controller=debug"])
        .args(extra)
        .spawn("ctl-a", dir)
        .expect("spawn controller")
}

fn secret_requests(api: &ApiServer) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.contains(SECRETS) && !r.starts_with("GET"))
        .collect()
}

#[test]
fn the_leader_creates_the_memberlist_secret_and_retries_a_failed_create() {
    let (api, dir) = setup();
    // The first create fails: the leader must retry rather than give up for its term.
    api.fail_next("POST", SECRETS, 500, 1);
    let _ctl = start(dir.path(), &[]);

    let obj = api
        .wait_for_object("v1", "Secret", Some(NS), "memberlist", T, |_| true)
        .unwrap_or_else(|| panic!("no Secret {NS}/memberlist within {T:?}"));
    let posts = secret_requests(&api);
    assert!(
        posts.iter().filter(|r| r.starts_with("POST")).count() >= 2,
        "the failed create was not retried: {posts:?}"
    );
    assert!(
        posts.iter().all(|r| r.starts_with("POST")),
        "only creates expected: {posts:?}"
    );

    let secret: Secret = serde_json::from_value(obj.clone()).expect("a v1 Secret");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"), "{obj}");
    let data = secret.data.expect("data");
    assert_eq!(data.len(), 1, "{obj}");
    let key = &data.get("secretkey").expect("key secretkey").0;
    // base64 text of 128 octets: 172 characters of the RFC 4648 §4 alphabet, one '=' of padding.
    assert_eq!(key.len(), 172, "{}", String::from_utf8_lossy(key));
    assert!(key
        .iter()
        .take(171)
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'));
    assert_eq!(key.last(), Some(&b'='));
    // Random: not one repeated octet (all-zero input would give "AAAA...").
    assert!(key.iter().take(171).any(|b| *b != key[0]));
}

#[test]
fn an_existing_memberlist_secret_is_left_untouched() {
    let (api, dir) = setup();
    let mine: Value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gossip", "namespace": NS},
        "type": "Opaque",
        // "operator-chosen-key"
        "data": {"secretkey": "b3BlcmF0b3ItY2hvc2VuLWtleQ=="},
    });
    let before = api.apply(mine);
    let ctl = start(dir.path(), &["--ml-secret-name", "gossip"]);

    // The leader tries a create, which the double answers 409 AlreadyExists.
    let tried = wait_for(T, "a create of Secret gossip", || {
        let r = secret_requests(&api);
        (!r.is_empty()).then_some(r)
    });
    assert!(
        tried.iter().all(|r| r.starts_with("POST")),
        "only creates expected: {tried:?}"
    );
    // The 409 counts as success (no retry loop): the controller says so at debug level.
    ctl.wait_log(T, "memberlist Secret exists; left as is")
        .expect("the controller to accept the existing Secret");
    let posts = secret_requests(&api);
    assert_eq!(posts.len(), 1, "one create, then nothing: {posts:?}");
    // Same object: not replaced, patched or recreated.
    let after = api
        .get("v1", "Secret", Some(NS), "gossip")
        .expect("the Secret is still there");
    assert_eq!(after["data"], before["data"]);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(
        api.get("v1", "Secret", Some(NS), "memberlist").is_none(),
        "--ml-secret-name was ignored"
    );
}
