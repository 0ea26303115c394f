//! `ferrolb-controller manifests`: the committed `deploy/ferrolb.yaml` is exactly its output, every
//! document is a valid k8s-openapi object, and the install has the properties an operator relies on.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifests(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("manifests")
        .args(args)
        .output()
        .expect("run ferrolb-controller manifests")
}

fn generated(args: &[&str]) -> String {
    let out = manifests(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn docs(yaml: &str) -> Vec<serde_yaml_ng::Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML document"))
        .collect()
}

fn typed<T: DeserializeOwned>(doc: &serde_yaml_ng::Value) -> T {
    serde_yaml_ng::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{} {:?} does not deserialize: {e}",
            std::any::type_name::<T>(),
            doc["metadata"]["name"]
        )
    })
}

fn of_kind<T: DeserializeOwned>(all: &[serde_yaml_ng::Value], kind: &str) -> Vec<T> {
    all.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| typed(d))
        .collect()
}

#[test]
fn committed_deploy_yaml_is_the_generated_output() {
    let committed = std::fs::read_to_string(repo().join("deploy/ferrolb.yaml"))
        .expect("deploy/ferrolb.yaml exists");
    // On drift: `cargo run -p ferrolb-controller -- manifests > deploy/ferrolb.yaml`.
    assert!(
        committed == generated(&[]),
        "deploy/ferrolb.yaml is stale: regenerate it with `ferrolb-controller manifests`"
    );
}

#[test]
fn every_document_deserializes_into_its_k8s_openapi_type() {
    let all = docs(&generated(&[]));
    assert!(all.len() > 20, "only {} documents", all.len());
    for doc in &all {
        let kind = doc["kind"].as_str().expect("every document has a kind");
        match kind {
            "Namespace" => drop(typed::<Namespace>(doc)),
            "CustomResourceDefinition" => drop(typed::<CustomResourceDefinition>(doc)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(doc)),
            "ClusterRole" => drop(typed::<ClusterRole>(doc)),
            "Role" => drop(typed::<Role>(doc)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(doc)),
            "RoleBinding" => drop(typed::<RoleBinding>(doc)),
            "Service" => drop(typed::<Service>(doc)),
            "Deployment" => drop(typed::<Deployment>(doc)),
            "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(doc)),
            "DaemonSet" => drop(typed::<DaemonSet>(doc)),
            "ValidatingWebhookConfiguration" => drop(typed::<ValidatingWebhookConfiguration>(doc)),
            other => panic!("unexpected kind {other} in the install"),
        }
        assert!(
            doc["apiVersion"].as_str().is_some(),
            "{kind} has apiVersion"
        );
    }
}

#[test]
fn the_install_embeds_exactly_the_committed_crds() {
    let all = docs(&generated(&[]));
    let in_install: Vec<_> = all
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .cloned()
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("deploy/crds"))
        .expect("deploy/crds")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let committed: Vec<_> = files
        .iter()
        .flat_map(|f| docs(&std::fs::read_to_string(f).expect("read CRD")))
        .collect();
    assert_eq!(committed.len(), 9);
    assert_eq!(in_install, committed);
}

fn only<T>(mut items: Vec<T>, what: &str) -> T {
    assert_eq!(items.len(), 1, "exactly one {what}");
    items.remove(0)
}

fn pod_container(spec: &Option<k8s_openapi::api::core::v1::PodSpec>) -> &Container {
    let spec = spec.as_ref().expect("pod spec");
    assert_eq!(spec.containers.len(), 1);
    &spec.containers[0]
}

#[test]
fn the_speaker_runs_on_the_host_network_with_net_raw_and_net_admin_only() {
    let all = docs(&generated(&[]));
    let ds: DaemonSet = only(of_kind(&all, "DaemonSet"), "DaemonSet");
    let pod = ds.spec.expect("spec").template.spec;
    assert_eq!(pod.as_ref().and_then(|p| p.host_network), Some(true));
    let c = pod_container(&pod);
    let sc = c.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(
        caps.add.as_deref(),
        Some(&["NET_ADMIN".to_owned(), "NET_RAW".to_owned()][..])
    );
    // The node name comes from the downward API.
    let env = c.env.as_ref().expect("env");
    let node = env
        .iter()
        .find(|e| e.name == "NODE_NAME")
        .expect("NODE_NAME");
    let field = node
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("fieldRef");
    assert_eq!(field.field_path, "spec.nodeName");
    // On the host network the ops port binds the node's IP, never every interface.
    let host = env
        .iter()
        .find(|e| e.name == "METALLB_HOST")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .expect("METALLB_HOST from a fieldRef");
    assert_eq!(host.field_path, "status.hostIP");
    let args = c.args.clone().unwrap_or_default();
    assert!(
        !args.iter().any(|a| a.contains("0.0.0.0")),
        "the speaker binds no wildcard address: {args:?}"
    );
    // The memberlist key is mounted from its Secret.
    let volumes = pod
        .as_ref()
        .and_then(|p| p.volumes.clone())
        .expect("volumes");
    assert!(volumes.iter().any(|v| v
        .secret
        .as_ref()
        .is_some_and(|s| s.secret_name.as_deref() == Some("memberlist"))));
}

#[test]
fn the_controller_runs_two_non_root_replicas_under_a_disruption_budget() {
    let all = docs(&generated(&[]));
    let d: Deployment = only(of_kind(&all, "Deployment"), "Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.clone();
    let psc = pod
        .as_ref()
        .and_then(|p| p.security_context.clone())
        .expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_ne!(psc.run_as_user, Some(0));
    let c = pod_container(&pod);
    let caps = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.clone())
        .expect("capabilities");
    assert_eq!(caps.add, None, "the controller needs no capability");
    let pdb: PodDisruptionBudget = only(of_kind(&all, "PodDisruptionBudget"), "PDB");
    let pdb = pdb.spec.expect("pdb spec");
    assert_eq!(
        pdb.selector.and_then(|s| s.match_labels),
        spec.selector.match_labels
    );
}

#[test]
fn every_binding_names_an_existing_role_and_service_account() {
    let all = docs(&generated(&[]));
    let accounts: Vec<ServiceAccount> = of_kind(&all, "ServiceAccount");
    let account_names: Vec<_> = accounts
        .iter()
        .filter_map(|a| a.metadata.name.clone())
        .collect();
    let roles: Vec<Role> = of_kind(&all, "Role");
    let cluster_roles: Vec<ClusterRole> = of_kind(&all, "ClusterRole");
    let bindings: Vec<RoleBinding> = of_kind(&all, "RoleBinding");
    let cluster_bindings: Vec<ClusterRoleBinding> = of_kind(&all, "ClusterRoleBinding");
    assert_eq!(bindings.len(), 2);
    assert_eq!(cluster_bindings.len(), 2);
    for b in &bindings {
        assert!(roles
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(&b.role_ref.name)));
        for s in b.subjects.iter().flatten() {
            assert!(account_names.contains(&s.name), "{}", s.name);
        }
    }
    for b in &cluster_bindings {
        assert!(cluster_roles
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(&b.role_ref.name)));
        for s in b.subjects.iter().flatten() {
            assert!(account_names.contains(&s.name), "{}", s.name);
        }
    }
    let d: Deployment = only(of_kind(&all, "Deployment"), "Deployment");
    let ds: DaemonSet = only(of_kind(&all, "DaemonSet"), "DaemonSet");
    for sa in [
        d.spec.and_then(|s| s.template.spec?.service_account_name),
        ds.spec.and_then(|s| s.template.spec?.service_account_name),
    ] {
        assert!(account_names.contains(&sa.expect("serviceAccountName")));
    }
    // Least privilege: no wildcard anywhere.
    let all_rules = roles
        .iter()
        .flat_map(|r| r.rules.iter().flatten())
        .chain(cluster_roles.iter().flat_map(|r| r.rules.iter().flatten()));
    for rule in all_rules {
        assert!(!rule.verbs.iter().any(|v| v == "*"), "{rule:?}");
        assert!(
            !rule.resources.iter().flatten().any(|r| r == "*"),
            "{rule:?}"
        );
    }
}

#[test]
fn namespace_and_image_flags_reach_every_object() {
    let yaml = generated(&[
        "--namespace",
        "lb",
        "--image",
        "registry.test/ferrolb:9.9.9",
    ]);
    assert!(
        !yaml.contains("metallb-system"),
        "the default namespace leaked"
    );
    assert!(
        !yaml.contains("localhost/ferrolb"),
        "the default image leaked"
    );
    let all = docs(&yaml);
    for doc in &all {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let cluster_scoped = matches!(
            kind,
            "Namespace"
                | "CustomResourceDefinition"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingWebhookConfiguration"
        );
        if !cluster_scoped {
            assert_eq!(doc["metadata"]["namespace"], "lb", "{kind}");
        }
    }
    let images: Vec<_> = yaml
        .lines()
        .filter(|l| l.trim_start().starts_with("image:"))
        .collect();
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(images
        .iter()
        .all(|l| l.ends_with("registry.test/ferrolb:9.9.9")));
}

#[test]
fn a_namespace_kubernetes_would_reject_is_refused() {
    let out = manifests(&["--namespace", "Not_A_Label"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--namespace"), "{err}");
    assert!(err.contains("Not_A_Label"), "{err}");
}

/// The flags each container is started with must be flags its binary accepts: a typo here is a
/// CrashLoopBackOff in every cluster.
#[test]
fn every_container_flag_is_accepted_by_its_binary() {
    let all = docs(&generated(&[]));
    let d: Deployment = only(of_kind(&all, "Deployment"), "Deployment");
    let ds: DaemonSet = only(of_kind(&all, "DaemonSet"), "DaemonSet");
    let controller_bin = PathBuf::from(env!("CARGO_BIN_EXE_ferrolb-controller"));
    let speaker_bin = controller_bin.with_file_name("ferrolb-speaker");
    for (pod, bin) in [
        (d.spec.and_then(|s| s.template.spec), controller_bin),
        (ds.spec.and_then(|s| s.template.spec), speaker_bin),
    ] {
        if !bin.exists() {
            eprintln!(
                "SKIP: {} is not built (cargo build --workspace builds it); its flags are unchecked",
                bin.display()
            );
            continue;
        }
        let c = pod_container(&pod);
        let args = c.args.clone().unwrap_or_default();
        // Leading words before the first flag are subcommands.
        let subcommands: Vec<_> = args.iter().take_while(|a| !a.starts_with('-')).collect();
        let help = Command::new(&bin)
            .args(&subcommands)
            .arg("--help")
            .output()
            .expect("run --help");
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        for arg in args.iter().filter(|a| a.starts_with("--")) {
            let flag = arg.split('=').next().unwrap_or(arg);
            assert!(
                help.split(|c: char| c.is_whitespace() || c == ',')
                    .any(|w| w == flag),
                "{} does not accept {flag}:\n{help}",
                bin.display()
            );
        }
        for env in c.env.iter().flatten() {
            assert!(
                help.contains(&format!("env: {}", env.name)) || env.name == "RUST_LOG",
                "{} reads no env {}:\n{help}",
                bin.display(),
                env.name
            );
        }
    }
}

/// The webhook registration reaches the controller: one webhook per metallb.io kind on
/// MetalLB's path, `failurePolicy: Fail`, through a Service whose target port is the
/// controller container's `webhook` port, on which the controller is told to listen.
#[test]
fn the_webhook_configuration_reaches_the_controller_on_metallbs_paths() {
    use ferrolb_controller::webhook::admission::Kind;
    let all = docs(&generated(&[]));
    let vwc: ValidatingWebhookConfiguration = only(
        of_kind(&all, "ValidatingWebhookConfiguration"),
        "ValidatingWebhookConfiguration",
    );
    assert_eq!(
        vwc.metadata.name.as_deref(),
        Some(ferrolb_controller::webhook::CONFIGURATION_NAME)
    );
    let hooks = vwc.webhooks.unwrap_or_default();
    assert_eq!(hooks.len(), Kind::ALL.len());
    let services: Vec<Service> = of_kind(&all, "Service");
    let svc = services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(ferrolb_controller::webhook::SERVICE_NAME))
        .expect("the webhook Service");
    let svc_port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .and_then(|p| p.into_iter().next())
        .expect("a port");
    for (hook, kind) in hooks.iter().zip(Kind::ALL) {
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, vec!["v1".to_owned()]);
        let target = hook.client_config.service.as_ref().expect("a service");
        assert_eq!(target.name, ferrolb_controller::webhook::SERVICE_NAME);
        assert_eq!(target.namespace, "metallb-system");
        assert_eq!(target.path.as_deref(), Some(kind.path().as_str()));
        assert_eq!(target.port, Some(svc_port.port));
        let rule = &hook.rules.as_ref().expect("rules")[0];
        assert_eq!(rule.resources, Some(vec![kind.plural().to_owned()]));
        assert_eq!(rule.api_versions, Some(vec![kind.version().to_owned()]));
        for op in ["CREATE", "UPDATE", "DELETE"] {
            assert!(rule.operations.iter().flatten().any(|o| o == op), "{op}");
        }
    }
    let d: Deployment = only(of_kind(&all, "Deployment"), "Deployment");
    let pod = d.spec.and_then(|s| s.template.spec);
    let c = pod_container(&pod);
    let port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("webhook"))
        .expect("a webhook container port");
    assert_eq!(
        svc_port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("webhook".into()))
    );
    let args = c.args.clone().unwrap_or_default();
    assert!(
        args.contains(&format!("--webhook-addr=0.0.0.0:{}", port.container_port)),
        "{args:?}"
    );
}
