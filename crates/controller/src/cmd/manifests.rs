//! `ferrolb-controller manifests`: the whole install (`deploy/ferrolb.yaml`) built from typed
//! k8s-openapi objects, so that what we ship always deserializes into the API types.
//!
//! One multi-document YAML stream, in apply order: the Namespace, the CRDs (the same objects as
//! `deploy/crds/`), ServiceAccounts, RBAC, the metrics Services and the webhook Service, the
//! controller Deployment and its PodDisruptionBudget, the speaker DaemonSet, and last the
//! ValidatingWebhookConfiguration (without `caBundle`: the controller's cert rotation sets it,
//! and the webhook Secret it creates holds a random key, so neither is in the output).
//!
//! *Guarantees*
//! - The output is a pure function of [`Options`]: no random values, no timestamps, so the
//!   committed file can be compared byte for byte and `kubectl apply --dry-run=server` is stable.
//! - RBAC lists exactly the verbs each daemon uses ([`CONTROLLER_CLUSTER_RULES`] and friends; the
//!   module of each daemon that makes the calls is named next to every rule).
//! - The memberlist Secret holds a random key, so it is not part of the output (it would differ on
//!   every run); the controller's leader creates it when missing (`daemon/memberlist.rs`), as
//!   MetalLB's controller does.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    DeploymentStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    HostPathVolumeSource, Namespace, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Toleration, Volume,
    VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The one place image names live: both daemons ship in one image (see `Containerfile`). The
/// tag is the crate version, so a release bumps it with the binaries.
pub const DEFAULT_IMAGE: &str = concat!("localhost/ferrolb:", env!("CARGO_PKG_VERSION"));
/// MetalLB's namespace, so existing metallb.io objects keep working unchanged.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";
/// Both daemons serve /metrics, /healthz and /readyz here (MetalLB's port).
pub const METRICS_PORT: i32 = 7472;
/// The speakers' liveness gossip port (UDP), as MetalLB's memberlist.
pub const MEMBERLIST_PORT: i32 = 7946;
/// The Secret the speakers' gossip key is read from (MetalLB's name and key).
pub const MEMBERLIST_SECRET: &str = "memberlist";
/// The key inside [`MEMBERLIST_SECRET`].
pub const MEMBERLIST_SECRET_KEY: &str = "secretkey";
/// Where the speaker finds the memberlist Secret mounted.
pub const MEMBERLIST_MOUNT: &str = "/etc/ferrolb/memberlist";

/// The speaker's state directory (`--state-dir`'s default), a hostPath: the restart marker left
/// at SIGTERM must outlive the Pod (a rolling update replaces it, so an emptyDir would not do)
/// but not a reboot (`/run` is a tmpfs), which tells an upgrade from a first start.
pub const SPEAKER_STATE_DIR: &str = "/run/ferrolb";
/// Controller object names (Deployment, ServiceAccount, RBAC, PDB, Lease).
pub const CONTROLLER: &str = "ferrolb-controller";
/// Speaker object names (DaemonSet, ServiceAccount, RBAC).
pub const SPEAKER: &str = "ferrolb-speaker";
/// The webhook's port on the controller pods (MetalLB's).
pub const WEBHOOK_PORT: i32 = 9443;
/// The webhook Service (MetalLB: `metallb-webhook-service`).
pub const WEBHOOK_SERVICE: &str = crate::webhook::SERVICE_NAME;
/// The webhook Secret, created by the controller (MetalLB: `metallb-webhook-cert`).
pub const WEBHOOK_SECRET: &str = crate::webhook::SECRET_NAME;
/// The ValidatingWebhookConfiguration (MetalLB: `metallb-webhook-configuration`).
pub const WEBHOOK_CONFIGURATION: &str = crate::webhook::CONFIGURATION_NAME;

/// What `manifests` can vary; everything else is fixed so the output stays reviewable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Namespace of both daemons and of the metallb.io configuration objects.
    pub namespace: String,
    /// `repository:tag` of the image holding both binaries.
    pub image: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
        }
    }
}

/// Why the manifests could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// An option that Kubernetes would reject anyway, caught before printing.
    #[error("--{field} {value:?} is invalid: {reason}")]
    BadOption {
        /// The flag name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// serde_yaml_ng refused an object (a bug: every object is a plain k8s-openapi type).
    #[error("serializing {kind} {name}: {source}")]
    Yaml {
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
        /// The serializer's error.
        source: serde_yaml_ng::Error,
    },
}

/// One object of the install, typed.
#[derive(Debug, Clone)]
pub enum Object {
    /// The namespace of both daemons.
    Namespace(Box<Namespace>),
    /// A metallb.io CRD (from `ferrolb_api::crd::manifests::all`).
    Crd(Box<CustomResourceDefinition>),
    /// A daemon's identity.
    ServiceAccount(Box<ServiceAccount>),
    /// Cluster-scoped permissions of a daemon.
    ClusterRole(Box<ClusterRole>),
    /// Namespaced permissions of a daemon.
    Role(Box<Role>),
    /// Binds a ClusterRole to a ServiceAccount.
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    /// Binds a Role to a ServiceAccount.
    RoleBinding(Box<RoleBinding>),
    /// A metrics Service (headless, for ServiceMonitors).
    Service(Box<Service>),
    /// The controller.
    Deployment(Box<Deployment>),
    /// Keeps one controller up through node drains.
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// The speaker.
    DaemonSet(Box<DaemonSet>),
    /// The controller's admission webhook (`crate::webhook`).
    ValidatingWebhookConfiguration(Box<ValidatingWebhookConfiguration>),
}

impl Object {
    /// The object's kind, as in its YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::Crd(_) => "CustomResourceDefinition",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ClusterRole(_) => "ClusterRole",
            Object::Role(_) => "Role",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::RoleBinding(_) => "RoleBinding",
            Object::Service(_) => "Service",
            Object::Deployment(_) => "Deployment",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Object::DaemonSet(_) => "DaemonSet",
            Object::ValidatingWebhookConfiguration(_) => "ValidatingWebhookConfiguration",
        }
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Crd(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::ClusterRoleBinding(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::ValidatingWebhookConfiguration(o) => &o.metadata,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// One YAML document, starting with `---`.
    pub fn to_yaml(&self) -> Result<String, ManifestError> {
        let body = match self {
            Object::Namespace(o) => serde_yaml_ng::to_string(o),
            Object::Crd(o) => serde_yaml_ng::to_string(o),
            Object::ServiceAccount(o) => serde_yaml_ng::to_string(o),
            Object::ClusterRole(o) => serde_yaml_ng::to_string(o),
            Object::Role(o) => serde_yaml_ng::to_string(o),
            Object::ClusterRoleBinding(o) => serde_yaml_ng::to_string(o),
            Object::RoleBinding(o) => serde_yaml_ng::to_string(o),
            Object::Service(o) => serde_yaml_ng::to_string(o),
            Object::Deployment(o) => serde_yaml_ng::to_string(o),
            Object::PodDisruptionBudget(o) => serde_yaml_ng::to_string(o),
            Object::DaemonSet(o) => serde_yaml_ng::to_string(o),
            Object::ValidatingWebhookConfiguration(o) => serde_yaml_ng::to_string(o),
        }
        .map_err(|source| ManifestError::Yaml {
            kind: self.kind(),
            name: self.name().to_owned(),
            source,
        })?;
        Ok(format!("---\n{body}"))
    }
}

/// One RBAC rule as data: (API group, resources, verbs, resourceNames).
type Rule = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const LIST_WATCH: &[&str] = &["list", "watch"];
const EVENT_WRITE: &[&str] = &["create", "patch"];

/// The metallb.io configuration kinds both daemons read (`ferrolb_api::source::kube`).
const CONFIG_KINDS: &[&str] = &[
    "bfdprofiles",
    "bgpadvertisements",
    "bgppeers",
    "communities",
    "ipaddresspools",
    "l2advertisements",
];

/// Cluster-wide permissions of the controller (`crates/controller/src/daemon/kube.rs`).
pub const CONTROLLER_CLUSTER_RULES: &[Rule] = &[
    // A reflector over every Service; the IP annotation is a merge patch, and a 409 re-reads the
    // Service with a get.
    ("", &["services"], &["get", "list", "watch", "patch"], &[]),
    // status.loadBalancer.ingress, a merge patch of the status subresource.
    ("", &["services/status"], &["patch"], &[]),
    // IPAddressPool spec.serviceAllocation.namespaceSelectors need Namespace labels.
    ("", &["namespaces"], LIST_WATCH, &[]),
    // IP assigned, pool exhausted, config rejected: kube-runtime's Recorder writes events.k8s.io/v1
    // Events (create; patch when the same Event repeats as a series).
    ("events.k8s.io", &["events"], EVENT_WRITE, &[]),
    // Webhook cert rotation (`webhook/rotation.rs`): reads our ValidatingWebhookConfiguration
    // and replaces it to set `caBundle`.
    (
        "admissionregistration.k8s.io",
        &["validatingwebhookconfigurations"],
        &["get", "update"],
        &[WEBHOOK_CONFIGURATION],
    ),
];

/// Permissions of the controller in its own namespace.
pub const CONTROLLER_NAMESPACE_RULES: &[Rule] = &[
    // `ferrolb_api::source::kube`: a reflector per configuration kind.
    ("metallb.io", CONFIG_KINDS, LIST_WATCH, &[]),
    // The same source reads Secrets (BGPPeer passwords) with the rest of the configuration.
    ("", &["secrets"], LIST_WATCH, &[]),
    // The leader creates the speakers' memberlist Secret when missing (`daemon/memberlist.rs`);
    // create cannot be limited by name, and an existing Secret is never read or changed.
    ("", &["secrets"], &["create"], &[]),
    // Webhook cert rotation (`webhook/rotation.rs`) creates (above), reads and replaces the
    // webhook Secret.
    ("", &["secrets"], &["get", "update"], &[WEBHOOK_SECRET]),
    // `ferrolb_runtime::config_state`: the controller's ConfigurationState, created or updated
    // by server-side apply, its status likewise.
    (
        "metallb.io",
        &["configurationstates"],
        &["get", "create", "patch"],
        &[],
    ),
    (
        "metallb.io",
        &["configurationstates/status"],
        &["patch"],
        &[],
    ),
    // `daemon/pool_status.rs`: the leader's IPAddressPool usage counters (merge patch).
    ("metallb.io", &["ipaddresspools/status"], &["patch"], &[]),
    // Lease leader election (`daemon/lease_driver.rs`): create cannot be limited by name; reads
    // and renewals (a replace, i.e. update) are confined to our Lease.
    ("coordination.k8s.io", &["leases"], &["create"], &[]),
    (
        "coordination.k8s.io",
        &["leases"],
        &["get", "update"],
        &[CONTROLLER],
    ),
];

/// Cluster-wide permissions of the speaker (`crates/speaker/src/daemon/kube.rs`).
pub const SPEAKER_CLUSTER_RULES: &[Rule] = &[
    // Reflectors; the Node readiness probe is a list of metadata.
    ("", &["services", "nodes"], LIST_WATCH, &[]),
    ("discovery.k8s.io", &["endpointslices"], LIST_WATCH, &[]),
    // Config-rejected Events (`daemon/kube_events.rs`, kube-runtime's Recorder).
    ("events.k8s.io", &["events"], EVENT_WRITE, &[]),
];

/// Permissions of the speaker in its namespace.
pub const SPEAKER_NAMESPACE_RULES: &[Rule] = &[
    ("metallb.io", CONFIG_KINDS, LIST_WATCH, &[]),
    // BGPPeer passwords.
    ("", &["secrets"], LIST_WATCH, &[]),
    // `daemon/kube_status.rs`: one ServiceBGPStatus per (Service, node) and one ServiceL2Status
    // per Service this node answers for, watched by label,
    // created, relabelled by merge patch, deleted; its status is a merge patch.
    (
        "metallb.io",
        &["servicebgpstatuses", "servicel2statuses"],
        &["list", "watch", "create", "patch", "delete"],
        &[],
    ),
    (
        "metallb.io",
        &["servicebgpstatuses/status", "servicel2statuses/status"],
        &["patch"],
        &[],
    ),
    // `ferrolb_runtime::config_state`: this speaker's ConfigurationState (`speaker-<node>`),
    // created or updated by server-side apply, its status likewise.
    (
        "metallb.io",
        &["configurationstates"],
        &["get", "create", "patch"],
        &[],
    ),
    (
        "metallb.io",
        &["configurationstates/status"],
        &["patch"],
        &[],
    ),
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn rules(table: &[Rule]) -> Vec<PolicyRule> {
    table
        .iter()
        .map(|(group, resources, verbs, names)| PolicyRule {
            api_groups: Some(vec![(*group).to_owned()]),
            resources: Some(strings(resources)),
            verbs: strings(verbs),
            resource_names: (!names.is_empty()).then(|| strings(names)),
            ..PolicyRule::default()
        })
        .collect()
}

fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "ferrolb".to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
    ])
}

fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels(component)),
        ..ObjectMeta::default()
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("monitoring".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(5),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        timeout_seconds: Some(1),
        ..Probe::default()
    }
}

fn port(name: &str, number: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some(protocol.to_owned()),
        ..ContainerPort::default()
    }
}

fn container_security(add: &[&str], non_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: non_root.then_some(true),
        capabilities: Some(Capabilities {
            add: (!add.is_empty()).then(|| strings(add)),
            drop: Some(strings(&["ALL"])),
        }),
        ..SecurityContext::default()
    }
}

fn linux_only() -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([(
        "kubernetes.io/os".to_owned(),
        "linux".to_owned(),
    )]))
}

fn selector(component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(component)),
        ..LabelSelector::default()
    }
}

fn namespace(opts: &Options) -> Namespace {
    // hostNetwork and NET_ADMIN are outside the "baseline" Pod Security level.
    let mut m = meta(&opts.namespace, None, "namespace");
    if let Some(l) = m.labels.as_mut() {
        for mode in ["audit", "enforce", "warn"] {
            l.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                "privileged".to_owned(),
            );
        }
    }
    Namespace {
        metadata: m,
        ..Namespace::default()
    }
}

fn rbac(opts: &Options, who: &str, cluster: &[Rule], local: &[Rule]) -> Vec<Object> {
    let ns = opts.namespace.as_str();
    let subject = Subject {
        kind: "ServiceAccount".to_owned(),
        name: who.to_owned(),
        namespace: Some(ns.to_owned()),
        ..Subject::default()
    };
    // Cluster-scoped names carry the namespace so two installs cannot collide.
    let cluster_name = format!("{ns}:{who}");
    let role_ref = |kind: &str, name: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    };
    vec![
        Object::ClusterRole(Box::new(ClusterRole {
            metadata: meta(&cluster_name, None, component_of(who)),
            rules: Some(rules(cluster)),
            ..ClusterRole::default()
        })),
        Object::Role(Box::new(Role {
            metadata: meta(who, Some(ns), component_of(who)),
            rules: Some(rules(local)),
        })),
        Object::ClusterRoleBinding(Box::new(ClusterRoleBinding {
            metadata: meta(&cluster_name, None, component_of(who)),
            role_ref: role_ref("ClusterRole", &cluster_name),
            subjects: Some(vec![subject.clone()]),
        })),
        Object::RoleBinding(Box::new(RoleBinding {
            metadata: meta(who, Some(ns), component_of(who)),
            role_ref: role_ref("Role", who),
            subjects: Some(vec![subject]),
        })),
    ]
}

fn component_of(who: &str) -> &'static str {
    if who == CONTROLLER {
        "controller"
    } else {
        "speaker"
    }
}

fn metrics_service(opts: &Options, who: &str) -> Service {
    let component = component_of(who);
    Service {
        metadata: meta(&format!("{who}-metrics"), Some(&opts.namespace), component),
        spec: Some(ServiceSpec {
            // Headless: Prometheus scrapes every pod, not one behind a virtual IP.
            cluster_ip: Some("None".to_owned()),
            selector: Some(labels(component)),
            ports: Some(vec![ServicePort {
                name: Some("monitoring".to_owned()),
                port: METRICS_PORT,
                target_port: Some(IntOrString::String("monitoring".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service the API server calls the webhook through: 443 to the controller pods' 9443.
fn webhook_service(opts: &Options) -> Service {
    Service {
        metadata: meta(WEBHOOK_SERVICE, Some(&opts.namespace), "controller"),
        spec: Some(ServiceSpec {
            selector: Some(labels("controller")),
            ports: Some(vec![ServicePort {
                name: Some("webhook".to_owned()),
                port: 443,
                target_port: Some(IntOrString::String("webhook".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// One webhook per metallb.io kind on MetalLB's paths. DELETE too: removing an object other
/// objects rely on (a BFDProfile, a Community alias) is denied. `failurePolicy: Fail`, as
/// MetalLB: no unvalidated configuration gets in while the controller is down. No `caBundle`:
/// the controller sets it (`webhook/rotation.rs`), or cert-manager's CA injector does.
fn webhook_configuration(opts: &Options) -> ValidatingWebhookConfiguration {
    use crate::webhook::admission::Kind;
    let webhooks = Kind::ALL
        .iter()
        .map(|kind| ValidatingWebhook {
            name: kind.webhook_name(),
            admission_review_versions: strings(&["v1"]),
            client_config: WebhookClientConfig {
                service: Some(ServiceReference {
                    name: WEBHOOK_SERVICE.to_owned(),
                    namespace: opts.namespace.clone(),
                    path: Some(kind.path()),
                    port: Some(443),
                }),
                ..WebhookClientConfig::default()
            },
            failure_policy: Some("Fail".to_owned()),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(10),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(strings(&["metallb.io"])),
                api_versions: Some(vec![kind.version().to_owned()]),
                operations: Some(strings(&["CREATE", "UPDATE", "DELETE"])),
                resources: Some(vec![kind.plural().to_owned()]),
                ..RuleWithOperations::default()
            }]),
            ..ValidatingWebhook::default()
        })
        .collect();
    ValidatingWebhookConfiguration {
        metadata: meta(WEBHOOK_CONFIGURATION, None, "controller"),
        webhooks: Some(webhooks),
    }
}

fn pod_metadata(component: &str) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels(component)),
        annotations: Some(BTreeMap::from([
            ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
            ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ])),
        ..ObjectMeta::default()
    }
}

fn controller(opts: &Options) -> Deployment {
    let container = Container {
        name: "controller".to_owned(),
        image: Some(opts.image.clone()),
        command: Some(strings(&["/ferrolb-controller"])),
        args: Some(vec![
            format!("--namespace={}", opts.namespace),
            format!("--metrics-addr=0.0.0.0:{METRICS_PORT}"),
            format!("--lease-name={CONTROLLER}"),
            format!("--ml-secret-name={MEMBERLIST_SECRET}"),
            format!("--webhook-addr=0.0.0.0:{WEBHOOK_PORT}"),
            "--log-level=info".to_owned(),
        ]),
        // --identity: the Lease holder is the pod, so a restarted pod is a new candidate.
        env: Some(vec![env_from_field("POD_NAME", "metadata.name")]),
        ports: Some(vec![
            port("monitoring", METRICS_PORT, "TCP"),
            port("webhook", WEBHOOK_PORT, "TCP"),
        ]),
        liveness_probe: Some(http_probe("/healthz")),
        readiness_probe: Some(http_probe("/readyz")),
        security_context: Some(container_security(&[], true)),
        ..Container::default()
    };
    let anti_affinity = PodAntiAffinity {
        // Two replicas on two nodes, when there are two nodes.
        preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: PodAffinityTerm {
                label_selector: Some(selector("controller")),
                topology_key: "kubernetes.io/hostname".to_owned(),
                ..PodAffinityTerm::default()
            },
        }]),
        ..PodAntiAffinity::default()
    };
    Deployment {
        metadata: meta(CONTROLLER, Some(&opts.namespace), "controller"),
        spec: Some(DeploymentSpec {
            // Two replicas: the Lease makes one of them the leader; the other takes over when
            // the leader's node goes away, without waiting for a reschedule.
            replicas: Some(2),
            revision_history_limit: Some(3),
            selector: selector("controller"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_metadata("controller")),
                spec: Some(PodSpec {
                    service_account_name: Some(CONTROLLER.to_owned()),
                    containers: vec![container],
                    node_selector: linux_only(),
                    affinity: Some(Affinity {
                        pod_anti_affinity: Some(anti_affinity),
                        ..Affinity::default()
                    }),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        // nobody, as MetalLB's controller.
                        run_as_user: Some(65534),
                        run_as_group: Some(65534),
                        fs_group: Some(65534),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    termination_grace_period_seconds: Some(10),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn controller_pdb(opts: &Options) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(CONTROLLER, Some(&opts.namespace), "controller"),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(selector("controller")),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn speaker(opts: &Options) -> DaemonSet {
    let secret_file = format!("{MEMBERLIST_MOUNT}/{MEMBERLIST_SECRET_KEY}");
    let container = Container {
        name: "speaker".to_owned(),
        image: Some(opts.image.clone()),
        command: Some(strings(&["/ferrolb-speaker"])),
        // The ops port binds the node's IP (METALLB_HOST below), as MetalLB's speaker does:
        // the pod shares the host's network namespace, where 0.0.0.0 is every interface.
        args: Some(vec![
            format!("--metrics-port={METRICS_PORT}"),
            format!("--memberlist-port={MEMBERLIST_PORT}"),
            format!("--memberlist-secret-file={secret_file}"),
        ]),
        env: Some(vec![
            env_from_field("NODE_NAME", "spec.nodeName"),
            env_from_field("METALLB_NAMESPACE", "metadata.namespace"),
            env_from_field("METALLB_HOST", "status.hostIP"),
            // The owner of the ServiceBGPStatus objects this speaker writes, so they go with it.
            env_from_field("POD_NAME", "metadata.name"),
            env_from_field("POD_UID", "metadata.uid"),
            // The speaker's log filter (tracing EnvFilter syntax).
            EnvVar {
                name: "RUST_LOG".to_owned(),
                value: Some("info".to_owned()),
                ..EnvVar::default()
            },
        ]),
        ports: Some(vec![
            port("monitoring", METRICS_PORT, "TCP"),
            // The liveness gossip is UDP only.
            port("memberlist", MEMBERLIST_PORT, "UDP"),
        ]),
        liveness_probe: Some(http_probe("/healthz")),
        readiness_probe: Some(http_probe("/readyz")),
        // Root in the pod but only NET_RAW (ARP/NDP raw sockets) and NET_ADMIN: no privileged
        // container. Kubernetes gives a non-root user no ambient capabilities, so root it is,
        // said explicitly because the image's default user is nobody (for the controller).
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            ..container_security(&["NET_ADMIN", "NET_RAW"], false)
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "memberlist".to_owned(),
                mount_path: MEMBERLIST_MOUNT.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "state".to_owned(),
                mount_path: SPEAKER_STATE_DIR.to_owned(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let tolerate = |key: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some("NoSchedule".to_owned()),
        ..Toleration::default()
    };
    DaemonSet {
        metadata: meta(SPEAKER, Some(&opts.namespace), "speaker"),
        spec: Some(DaemonSetSpec {
            selector: selector("speaker"),
            // One node at a time, the old Pod gone before the new one starts (no surge: both
            // would run on the host network with the same ports and BGP sessions). With
            // enableGracefulRestart the router keeps the node's routes meanwhile
            // (docs/upgrades.md).
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_metadata("speaker")),
                spec: Some(PodSpec {
                    service_account_name: Some(SPEAKER.to_owned()),
                    host_network: Some(true),
                    containers: vec![container],
                    node_selector: linux_only(),
                    // Control-plane nodes announce too, as with MetalLB's tolerateMaster.
                    tolerations: Some(vec![
                        tolerate("node-role.kubernetes.io/control-plane"),
                        tolerate("node-role.kubernetes.io/master"),
                    ]),
                    // SIGTERM closes every session within 3 s (a Cease, or with Graceful Restart
                    // a close that keeps the routes, docs/upgrades.md); the grace period only
                    // has to cover that, and a short one keeps the restart well inside the
                    // Restart Time (120 s) the router keeps our routes for.
                    termination_grace_period_seconds: Some(5),
                    volumes: Some(vec![
                        Volume {
                            name: "memberlist".to_owned(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(MEMBERLIST_SECRET.to_owned()),
                                default_mode: Some(0o400),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "state".to_owned(),
                            host_path: Some(HostPathVolumeSource {
                                path: SPEAKER_STATE_DIR.to_owned(),
                                type_: Some("DirectoryOrCreate".to_owned()),
                            }),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

fn check(opts: &Options) -> Result<(), ManifestError> {
    // RFC 1123 label: what Kubernetes accepts as a namespace name.
    let ns = opts.namespace.as_str();
    let label_ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if !label_ok {
        return Err(ManifestError::BadOption {
            field: "namespace",
            value: ns.to_owned(),
            reason: "a DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'",
        });
    }
    if opts.image.is_empty() || opts.image.chars().any(char::is_whitespace) {
        return Err(ManifestError::BadOption {
            field: "image",
            value: opts.image.clone(),
            reason: "an image reference such as registry.example/ferrolb:0.1.0",
        });
    }
    Ok(())
}

/// Every object of the install, in apply order.
pub fn objects(opts: &Options) -> Result<Vec<Object>, ManifestError> {
    check(opts)?;
    let ns = opts.namespace.as_str();
    let mut out = vec![Object::Namespace(Box::new(namespace(opts)))];
    out.extend(
        ferrolb_api::crd::manifests::all()
            .into_iter()
            .map(|c| Object::Crd(Box::new(c))),
    );
    for who in [CONTROLLER, SPEAKER] {
        out.push(Object::ServiceAccount(Box::new(ServiceAccount {
            metadata: meta(who, Some(ns), component_of(who)),
            ..ServiceAccount::default()
        })));
    }
    out.extend(rbac(
        opts,
        CONTROLLER,
        CONTROLLER_CLUSTER_RULES,
        CONTROLLER_NAMESPACE_RULES,
    ));
    out.extend(rbac(
        opts,
        SPEAKER,
        SPEAKER_CLUSTER_RULES,
        SPEAKER_NAMESPACE_RULES,
    ));
    for who in [CONTROLLER, SPEAKER] {
        out.push(Object::Service(Box::new(metrics_service(opts, who))));
    }
    out.push(Object::Service(Box::new(webhook_service(opts))));
    out.push(Object::Deployment(Box::new(controller(opts))));
    out.push(Object::PodDisruptionBudget(Box::new(controller_pdb(opts))));
    out.push(Object::DaemonSet(Box::new(speaker(opts))));
    // Last: registered only once the controller that answers it is created.
    out.push(Object::ValidatingWebhookConfiguration(Box::new(
        webhook_configuration(opts),
    )));
    Ok(out)
}

/// The whole install as one multi-document YAML stream.
pub fn to_yaml(opts: &Options) -> Result<String, ManifestError> {
    objects(opts)?.iter().map(Object::to_yaml).collect()
}

/// Runs the command: prints the YAML; returns the process exit code.
pub fn run(opts: &Options) -> anyhow::Result<i32> {
    print!("{}", to_yaml(opts)?);
    Ok(0)
}
