//! deploy/ferrolb.yaml's RBAC against what the daemons really do: the real `ferrolb-controller`
//! and `ferrolb-speaker` run against the API-server test double (one double each, so every
//! request is known to come from one daemon), through allocation, a status write, Events and a
//! rejected configuration; every request they made must be allowed by the Role and ClusterRole
//! bound to their ServiceAccount. Rules no request needed are printed, not asserted (a short
//! scenario does not exercise every path, e.g. deleting a ServiceBGPStatus).
//!
//! No root needed: everything is on 127.0.0.1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::fixture::{self, yaml, Object};
use ferrolb_e2e::ours::{workspace_bin_or_skip, ApiLab, FlbCommand};
use ferrolb_e2e::wait_for;
use serde_yaml_ng::Value as Yaml;

const NS: &str = "metallb-system";
const NODE: &str = "node-a";
const LIMIT: Duration = Duration::from_secs(30);

/// One RBAC rule of the manifest.
#[derive(Debug, Clone)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
}

/// One API request as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    verb: String,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn manifest() -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ferrolb.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/ferrolb.yaml");
    text.split("\n---\n")
        .map(|d| serde_yaml_ng::from_str::<Yaml>(d).expect("YAML document"))
        .filter(|d| !d.is_null())
        .collect()
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// (cluster rules, namespace rules) bound to ServiceAccount `account`.
fn rules_of(docs: &[Yaml], account: &str) -> (Vec<Rule>, Vec<Rule>) {
    let bound = |binding_kind: &str, role_kind: &str| -> Vec<Rule> {
        let role_names: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == binding_kind)
            .filter(|d| {
                d["subjects"]
                    .as_sequence()
                    .is_some_and(|s| s.iter().any(|s| s["name"] == account))
            })
            .filter_map(|d| d["roleRef"]["name"].as_str().map(str::to_owned))
            .collect();
        docs.iter()
            .filter(|d| d["kind"] == role_kind)
            .filter(|d| {
                d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| role_names.iter().any(|r| r == n))
            })
            .flat_map(|d| d["rules"].as_sequence().cloned().unwrap_or_default())
            .map(|r| Rule {
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                verbs: strings(&r["verbs"]),
                names: strings(&r["resourceNames"]),
            })
            .collect()
    };
    (
        bound("ClusterRoleBinding", "ClusterRole"),
        bound("RoleBinding", "Role"),
    )
}

/// `"METHOD /path?query"` as RBAC attributes; `None` for discovery paths.
fn access(request: &str) -> Option<Access> {
    let (method, target) = request.split_once(' ')?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [res] => (*res, None, None),
        [res, name] => (*res, Some((*name).to_owned()), None),
        [res, name, sub] => (*res, Some((*name).to_owned()), Some(*sub)),
        _ => return None,
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some(Access {
        verb: verb.to_owned(),
        group: group.to_owned(),
        resource: match sub {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        },
        namespace,
        name,
    })
}

fn allows(rule: &Rule, a: &Access) -> bool {
    rule.groups.contains(&a.group)
        && rule.resources.contains(&a.resource)
        && rule.verbs.contains(&a.verb)
        && (rule.names.is_empty() || a.name.as_ref().is_some_and(|n| rule.names.contains(n)))
}

/// Every request the daemon made is allowed; returns the rules never used.
fn check(server: &ApiServer, account: &str) -> Vec<Rule> {
    let docs = manifest();
    let (cluster, local) = rules_of(&docs, account);
    assert!(
        !cluster.is_empty() && !local.is_empty(),
        "{account} has RBAC"
    );
    let accesses: BTreeSet<Access> = server.requests().iter().filter_map(|r| access(r)).collect();
    assert!(!accesses.is_empty(), "{account} made no request");
    let mut denied = Vec::new();
    let mut used = vec![false; cluster.len() + local.len()];
    for a in &accesses {
        let by_cluster = cluster.iter().position(|r| allows(r, a));
        let by_local = (a.namespace.as_deref() == Some(NS))
            .then(|| local.iter().position(|r| allows(r, a)))
            .flatten();
        match (by_cluster, by_local) {
            (Some(i), _) => used[i] = true,
            (None, Some(i)) => used[cluster.len() + i] = true,
            (None, None) => denied.push(a.clone()),
        }
    }
    assert!(
        denied.is_empty(),
        "{account}: RBAC in deploy/ferrolb.yaml denies {denied:#?}"
    );
    cluster
        .into_iter()
        .chain(local)
        .zip(used)
        .filter_map(|(r, u)| (!u).then_some(r))
        .collect()
}

fn bins() -> Option<(FlbCommand, FlbCommand)> {
    let controller = workspace_bin_or_skip("ferrolb-controller")?;
    let speaker = workspace_bin_or_skip("ferrolb-speaker")?;
    Some((FlbCommand::new(controller), FlbCommand::new(speaker)))
}

/// The pool, a peer nobody listens for, the advertisement, the namespace and the Node.
fn config() -> String {
    yaml(&[
        fixture::pool("pool", &["198.51.100.0/24"]),
        fixture::bgp_peer("router", 64500, 64512, "127.0.0.1", "10.255.0.2")
            .set("spec.peerPort", 9),
        fixture::bgp_advertisement("adv", &["pool"]),
        fixture::namespace("default"),
        fixture::node(NODE, &["127.0.0.1"]),
    ])
}

/// Service `web` (selector app=web, port 80/TCP), with its IP in the status if `with_ip`, and
/// its EndpointSlice with one ready endpoint on [`NODE`].
fn service(with_ip: bool) -> String {
    let ips: &[&str] = if with_ip { &["198.51.100.7"] } else { &[] };
    let svc = fixture::service("web", "default", ips)
        .set(
            "spec.ports",
            serde_json::json!([{"port": 80, "protocol": "TCP"}]),
        )
        .set("spec.selector.app", "web");
    let slice: Object = fixture::endpoint_slice("web", "default", &[("10.0.0.5", NODE)])
        .set("metadata.name", "web-1")
        .set(
            "ports",
            serde_json::json!([{"port": 80, "protocol": "TCP"}]),
        );
    yaml(&[svc, slice])
}

fn lab() -> (ApiServer, tempfile::TempDir, PathBuf) {
    let ApiLab {
        api,
        dir,
        kubeconfig,
    } = ApiLab::start();
    api.apply_yaml(&config()).expect("config");
    (api, dir, kubeconfig)
}

fn event_with_reason(server: &ApiServer, reason: &str) -> bool {
    server
        .list("events.k8s.io/v1", "Event")
        .iter()
        .any(|e| e["reason"] == reason)
}

/// The last step of each scenario: an invalid pool, answered with an Event of `reason`; then
/// every request `account` made must be allowed by its RBAC ([`check`]).
fn reject_config_and_check(server: &ApiServer, reason: &str, account: &str) {
    server
        .apply_yaml(&fixture::pool("broken", &["198.51.100.0/33"]).yaml())
        .expect("invalid pool");
    wait_for(LIMIT, &format!("a {reason} Event"), || {
        event_with_reason(server, reason).then_some(())
    });
    for rule in check(server, account) {
        eprintln!("{account} rule not exercised by this scenario: {rule:?}");
    }
}

#[test]
fn the_controller_needs_nothing_its_rbac_does_not_grant() {
    let Some((controller, _)) = bins() else {
        return;
    };
    let (server, dir, kubeconfig) = lab();
    server.apply_yaml(&service(false)).expect("service");
    // The shipped webhook registration, so the cert rotation's requests are checked too.
    let vwc = manifest()
        .into_iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("a ValidatingWebhookConfiguration in deploy/ferrolb.yaml");
    server.apply(serde_json::to_value(vwc).expect("JSON"));
    let _daemon = controller
        .controller_kube(&kubeconfig, NS, "controller-0")
        .spawn("controller", dir.path())
        .expect("spawn ferrolb-controller");
    let svc = server.wait_for_object("v1", "Service", Some("default"), "web", LIMIT, |s| {
        s["status"]["loadBalancer"]["ingress"][0]["ip"].is_string()
    });
    assert!(svc.is_some(), "the controller allocated no IP");
    wait_for(LIMIT, "an IPAllocated Event", || {
        event_with_reason(&server, "IPAllocated").then_some(())
    });
    // The webhook Secret and caBundle, the ConfigurationState and the pool counters are written.
    let written = |api_version: &str, kind: &str, ns: Option<&str>, name: &str, field: &str| {
        server.wait_for_object(api_version, kind, ns, name, LIMIT, |o| {
            o.pointer(field).is_some()
        })
    };
    let (group, vwc) = (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    );
    let ca = "/webhooks/0/clientConfig/caBundle";
    let configuration_state = "ConfigurationState";
    assert!(written(group, vwc, None, "ferrolb-webhook-configuration", ca).is_some());
    assert!(written(
        "metallb.io/v1beta1",
        configuration_state,
        Some(NS),
        "controller",
        "/status/result"
    )
    .is_some());
    assert!(written(
        "metallb.io/v1beta1",
        "IPAddressPool",
        Some(NS),
        "pool",
        "/status/assignedIPv4"
    )
    .is_some());
    reject_config_and_check(&server, "ConfigurationRejected", "ferrolb-controller");
}

#[test]
fn the_speaker_needs_nothing_its_rbac_does_not_grant() {
    let Some((_, speaker)) = bins() else {
        return;
    };
    let (server, dir, kubeconfig) = lab();
    server.apply_yaml(&service(true)).expect("service");
    let _daemon = speaker
        .speaker_kube(&kubeconfig, NODE, NS)
        .args(["--memberlist-port", "0"])
        .env("POD_NAME", "ferrolb-speaker-abcde")
        .env("POD_UID", "0f0f0f0f-0000-4000-8000-000000000001")
        .env("RUST_LOG", "warn")
        .spawn("speaker", dir.path())
        .expect("spawn ferrolb-speaker");
    wait_for(LIMIT, "the speaker's first ServiceBGPStatus", || {
        (!server
            .list("metallb.io/v1beta1", "ServiceBGPStatus")
            .is_empty())
        .then_some(())
    });
    reject_config_and_check(&server, "ConfigurationRejected", "ferrolb-speaker");
}

#[test]
fn request_lines_map_to_rbac_attributes() {
    let a = |r: &str| access(r).map(|a| (a.verb, a.group, a.resource, a.namespace, a.name));
    let s = |v: &str| v.to_owned();
    assert_eq!(
        a("GET /api/v1/services?watch=true&resourceVersion=5"),
        Some((s("watch"), s(""), s("services"), None, None))
    );
    assert_eq!(
        a("PATCH /api/v1/namespaces/default/services/web/status"),
        Some((
            s("patch"),
            s(""),
            s("services/status"),
            Some(s("default")),
            Some(s("web"))
        ))
    );
    assert_eq!(
        a("GET /apis/coordination.k8s.io/v1/namespaces/metallb-system/leases/ferrolb-controller"),
        Some((
            s("get"),
            s("coordination.k8s.io"),
            s("leases"),
            Some(s(NS)),
            Some(s("ferrolb-controller"))
        ))
    );
    assert_eq!(
        a("GET /api/v1/namespaces"),
        Some((s("list"), s(""), s("namespaces"), None, None))
    );
    assert_eq!(
        a("GET /api/v1/namespaces/default"),
        Some((s("get"), s(""), s("namespaces"), None, Some(s("default"))))
    );
    assert_eq!(a("GET /version"), None);
    assert_eq!(a("GET /apis"), None);
}
