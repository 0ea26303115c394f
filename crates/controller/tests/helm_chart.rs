//! charts/ferrolb rendered without the helm binary: its templates are Go text/template run by
//! `gtmpl`, plus the four sprig functions they use (`toYaml`, `nindent`, `default`, `quote`) and
//! helm's `fail`, implemented below. With the default values the chart must give exactly the
//! objects of deploy/ferrolb.yaml, less the Namespace (`helm install --create-namespace` makes it).
//!
//! Before rendering, the merged values are checked against values.schema.json as helm does
//! (`type`, `additionalProperties: false`: the subset the schema uses).
//!
//! The templates stay inside that plain subset on purpose: no `include`, `tpl`, `lookup` or
//! `required`, so this test renders what helm renders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gtmpl::{Context, FuncError, Template, Value};
use serde_yaml_ng::Value as Yaml;

#[path = "support/exported.rs"]
mod exported;

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/ferrolb")
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to_gtmpl(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Nil,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_gtmpl).collect()),
        Yaml::Mapping(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), to_gtmpl(v)))
                .collect(),
        ),
        Yaml::Tagged(t) => to_gtmpl(&t.value),
    }
}

fn to_yaml(v: &Value) -> Yaml {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::from(i),
            None => Yaml::from(n.as_f64().unwrap_or_default()),
        },
        Value::Array(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        Value::Map(m) | Value::Object(m) => {
            // Sorted keys, as helm's toYaml (Go's yaml marshals maps in key order).
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            Yaml::Mapping(
                keys.into_iter()
                    .map(|k| (Yaml::String(k.clone()), to_yaml(&m[k])))
                    .collect(),
            )
        }
    }
}

/// sprig `toYaml`: the value as YAML, without the trailing newline.
fn to_yaml_fn(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("toYaml".into(), 1));
    };
    let text =
        serde_yaml_ng::to_string(&to_yaml(v)).map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(Value::String(text.trim_end().to_owned()))
}

/// sprig `nindent N TEXT`: a newline, then TEXT with every line indented by N spaces.
fn nindent_fn(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Number(n), Value::String(text)] = args else {
        return Err(FuncError::Generic(format!("nindent N TEXT, got {args:?}")));
    };
    let pad = " ".repeat(n.as_u64().unwrap_or_default() as usize);
    let body: Vec<String> = text.lines().map(|l| format!("{pad}{l}")).collect();
    Ok(Value::String(format!("\n{}", body.join("\n"))))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Function(_) => false,
    }
}

/// sprig `default DEFAULT VALUE`: VALUE unless it is empty.
fn default_fn(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [d] => Ok(d.clone()),
        [d, v] => Ok(if is_empty(v) { d.clone() } else { v.clone() }),
        _ => Err(FuncError::AtLeastXArgs("default".into(), 1)),
    }
}

/// sprig `quote`: the value as a double-quoted string.
fn quote_fn(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("quote".into(), 1));
    };
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(Value::String(format!("{s:?}")))
}

/// helm `fail MESSAGE`: stops the render.
fn fail_fn(args: &[Value]) -> Result<Value, FuncError> {
    Err(FuncError::Generic(format!("fail: {args:?}")))
}

/// Test double for `helm template`: values.yaml merged with `overrides` (top-level keys of
/// `overrides` replace nested maps key by key), `.Release.Namespace` = `namespace`. Returns every
/// rendered document of templates/ and crds/, or the first render error.
fn render(overrides: &str, namespace: &str) -> Result<Vec<Yaml>, String> {
    let dir = chart_dir();
    let mut values: Yaml = serde_yaml_ng::from_str(&read(&dir.join("values.yaml"))).unwrap();
    let over: Yaml = serde_yaml_ng::from_str(overrides).unwrap();
    merge(&mut values, over);
    let schema: serde_json::Value =
        serde_json::from_str(&read(&dir.join("values.schema.json"))).expect("values.schema.json");
    let mut problems = Vec::new();
    check_schema(&values, &schema, "(root)", &mut problems);
    if !problems.is_empty() {
        // helm's wording for a values.schema.json violation.
        return Err(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\nferrolb:\n- {}",
            problems.join("\n- ")
        ));
    }
    let chart: Yaml = serde_yaml_ng::from_str(&read(&dir.join("Chart.yaml"))).unwrap();
    let mut chart_ctx = HashMap::new();
    for (helm, ours) in [
        ("Name", "name"),
        ("Version", "version"),
        ("AppVersion", "appVersion"),
    ] {
        chart_ctx.insert(helm.to_owned(), to_gtmpl(&chart[ours]));
    }
    let release = HashMap::from([
        ("Namespace".to_owned(), Value::from(namespace.to_owned())),
        ("Name".to_owned(), Value::from("ferrolb".to_owned())),
        ("Service".to_owned(), Value::from("Helm".to_owned())),
    ]);
    let root = Value::Map(HashMap::from([
        ("Values".to_owned(), to_gtmpl(&values)),
        ("Chart".to_owned(), Value::Map(chart_ctx)),
        ("Release".to_owned(), Value::Map(release)),
    ]));
    let mut out = Vec::new();
    for file in sorted_files(&dir.join("templates")) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // NOTES.txt is rendered (a template error there fails `helm install`) but printed, not
        // applied.
        let is_notes = name == "NOTES.txt";
        if !name.ends_with(".yaml") && !is_notes {
            continue;
        }
        let mut t = Template::default();
        t.add_funcs(&[
            ("toYaml", to_yaml_fn as gtmpl::Func),
            ("nindent", nindent_fn as gtmpl::Func),
            ("default", default_fn as gtmpl::Func),
            ("quote", quote_fn as gtmpl::Func),
            ("fail", fail_fn as gtmpl::Func),
        ]);
        t.parse(read(&file))
            .map_err(|e| format!("{name}: parse: {e}"))?;
        let text = t
            .render(&Context::from(root.clone()))
            .map_err(|e| format!("{name}: render: {e}"))?;
        assert!(
            !text.contains("<no value>"),
            "{name} refers to a value that does not exist:\n{text}"
        );
        if is_notes {
            assert!(text.contains(namespace), "{text}");
            continue;
        }
        out.extend(parse_docs(&text, name));
    }
    for file in sorted_files(&dir.join("crds")) {
        out.extend(parse_docs(&read(&file), "crds"));
    }
    Ok(out)
}

/// The part of JSON Schema that charts/ferrolb/values.schema.json uses, checked as helm does
/// before rendering: `type` and `additionalProperties: false` with `properties`.
fn check_schema(v: &Yaml, schema: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
    let type_ok = match schema["type"].as_str() {
        Some("object") => v.is_mapping(),
        Some("array") => v.is_sequence(),
        Some("string") => v.is_string(),
        Some("integer") => v.as_i64().is_some(),
        Some("boolean") => v.is_bool(),
        _ => true,
    };
    if !type_ok {
        problems.push(format!(
            "{path}: Invalid type. Expected: {}",
            schema["type"].as_str().unwrap_or_default()
        ));
        return;
    }
    let Some(map) = v.as_mapping() else { return };
    let props = &schema["properties"];
    for (k, child) in map {
        let key = k.as_str().unwrap_or_default();
        match props.get(key) {
            Some(s) => check_schema(
                child,
                s,
                &format!("{path}.{key}").replace("(root).", ""),
                problems,
            ),
            None if schema["additionalProperties"] == false => {
                problems.push(format!("{path}: Additional property {key} is not allowed"))
            }
            None => {}
        }
    }
}

fn merge(into: &mut Yaml, over: Yaml) {
    match (into, over) {
        (Yaml::Mapping(a), Yaml::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

fn parse_docs(text: &str, origin: &str) -> Vec<Yaml> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| {
            serde::Deserialize::deserialize(d)
                .unwrap_or_else(|e| panic!("{origin} renders invalid YAML: {e}\n{text}"))
        })
        .filter(|d: &Yaml| !d.is_null())
        .collect()
}

fn key(doc: &Yaml) -> (String, String) {
    let s = |v: &Yaml| v.as_str().unwrap_or_default().to_owned();
    (s(&doc["kind"]), s(&doc["metadata"]["name"]))
}

fn by_key(mut docs: Vec<Yaml>) -> Vec<Yaml> {
    docs.sort_by_key(key);
    docs
}

#[test]
fn default_values_render_exactly_deploy_ferrolb_yaml_without_its_namespace() {
    let rendered = by_key(render("{}", "metallb-system").expect("renders"));
    let manifest = by_key(
        parse_docs(&read(&deploy_dir().join("ferrolb.yaml")), "deploy")
            .into_iter()
            .filter(|d| d["kind"] != "Namespace")
            .collect(),
    );
    let keys = |d: &[Yaml]| d.iter().map(key).collect::<Vec<_>>();
    assert_eq!(keys(&rendered), keys(&manifest));
    for (r, m) in rendered.iter().zip(&manifest) {
        assert!(
            r == m,
            "{:?} differs.\nchart:\n{}\nmanifest:\n{}",
            key(r),
            serde_yaml_ng::to_string(r).unwrap_or_default(),
            serde_yaml_ng::to_string(m).unwrap_or_default()
        );
    }
}

#[test]
fn chart_crds_are_the_committed_crds_byte_for_byte() {
    let chart = sorted_files(&chart_dir().join("crds"));
    let deploy = sorted_files(&deploy_dir().join("crds"));
    let names = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.file_name().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&chart), names(&deploy));
    for (c, d) in chart.iter().zip(&deploy) {
        assert!(
            read(c) == read(d),
            "{} is stale: cp deploy/crds/*.yaml charts/ferrolb/crds/",
            c.display()
        );
    }
}

#[test]
fn overrides_reach_the_objects() {
    let docs = render(
        r#"
loadBalancerClass: example.com/lb
image: {repository: registry.test/ferrolb, tag: "9.9.9", pullPolicy: Always}
prometheus: {serviceMonitor: {enabled: true, interval: 30s}}
controller: {logLevel: debug, replicas: 3, nodeSelector: {zone: a}}
speaker:
  tolerateMaster: false
  ignoreExcludeLB: true
  tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]
"#,
        "lb",
    )
    .expect("renders");
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} rendered"))
            .clone()
    };
    let d = find("Deployment", "ferrolb-controller");
    assert_eq!(d["spec"]["replicas"], Yaml::from(3));
    assert_eq!(d["metadata"]["namespace"], "lb");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["zone"], "a");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.test/ferrolb:9.9.9");
    assert_eq!(c["imagePullPolicy"], "Always");
    let args: Vec<_> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(args.contains(&"--log-level=debug"), "{args:?}");
    assert!(args.contains(&"--namespace=lb"), "{args:?}");
    assert!(
        args.contains(&"--load-balancer-class=example.com/lb"),
        "{args:?}"
    );

    let ds = find("DaemonSet", "ferrolb-speaker");
    let pod = &ds["spec"]["template"]["spec"];
    let tolerations = pod["tolerations"].as_sequence().expect("tolerations");
    assert_eq!(tolerations.len(), 1, "only the user's toleration");
    assert_eq!(tolerations[0]["key"], "dedicated");
    let args: Vec<_> = pod["containers"][0]["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(args.contains(&"--lb-class=example.com/lb"), "{args:?}");
    assert!(args.contains(&"--ignore-exclude-lb"), "{args:?}");

    for name in ["ferrolb-controller", "ferrolb-speaker"] {
        let sm = find("ServiceMonitor", name);
        assert_eq!(sm["spec"]["endpoints"][0]["interval"], "30s");
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "monitoring");
        // The ServiceMonitor selects the metrics Service of the same component.
        let svc = find("Service", &format!("{name}-metrics"));
        assert_eq!(
            sm["spec"]["selector"]["matchLabels"],
            svc["metadata"]["labels"]
        );
    }
}

#[test]
fn frr_modes_fail_the_render_instead_of_being_ignored() {
    for values in ["speaker: {frr: {enabled: true}}", "frrk8s: {enabled: true}"] {
        let err = render(values, "metallb-system").expect_err(values);
        assert!(err.contains("speaker.yaml"), "{err}");
        assert!(err.contains("FerroLB speaks BGP itself"), "{err}");
    }
}

#[test]
fn rbac_create_false_renders_no_rbac() {
    let docs = render("rbac: {create: false}", "metallb-system").expect("renders");
    assert!(docs
        .iter()
        .all(|d| !d["kind"].as_str().unwrap_or_default().contains("Role")));
    assert!(docs.iter().any(|d| d["kind"] == "DaemonSet"));
}

#[test]
fn memberlist_disabled_drops_the_secret_and_turns_the_gossip_off() {
    let docs =
        render("speaker: {memberlist: {enabled: false}}", "metallb-system").expect("renders");
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    // Only the state hostPath (the restart marker) is left.
    let names = |v: &Yaml| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names(&pod["volumes"]), ["state"], "{:?}", pod["volumes"]);
    let c = &pod["containers"][0];
    assert_eq!(names(&c["volumeMounts"]), ["state"]);
    let args: Vec<_> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(args.contains(&"--memberlist-port=0"), "{args:?}");
    assert!(!args
        .iter()
        .any(|a| a.starts_with("--memberlist-secret-file")));
    let ports = c["ports"].as_sequence().expect("ports");
    assert_eq!(ports.len(), 1, "only the metrics port: {ports:?}");
}

/// A values key the chart does not know (a typo, or a MetalLB key FerroLB does not implement)
/// fails the render with its name and place, as helm does with values.schema.json; wrong
/// types too. Every key of values.yaml is in the schema (the default render passes).
#[test]
fn unknown_values_keys_fail_the_render_with_their_name() {
    for (values, needle) in [
        (
            "controller: {replicaz: 3}",
            "controller: Additional property replicaz is not allowed",
        ),
        (
            "speakr: {logLevel: debug}",
            "(root): Additional property speakr is not allowed",
        ),
        (
            "prometheus: {serviceMonitor: {controller: {extraLabels: {}}}}",
            "prometheus.serviceMonitor.controller: Additional property extraLabels is not allowed",
        ),
        (
            "controller: {replicas: two}",
            "controller.replicas: Invalid type",
        ),
    ] {
        let err = render(values, "metallb-system").expect_err(values);
        assert!(err.contains(needle), "{values}: {err}");
        assert!(
            err.contains("values don't meet the specifications"),
            "{err}"
        );
    }
    // Free-form maps stay free-form.
    render(
        "controller: {resources: {limits: {cpu: 100m}}, nodeSelector: {a: b}, podAnnotations: {x: y}}",
        "metallb-system",
    )
    .expect("free-form maps accept any key");
}

/// MetalLB's `prometheus.podMonitor` and `prometheus.prometheusRule` values: PodMonitors for
/// both daemons, and MetalLB's alerts with MetalLB's metric names, thresholds and extra alerts
/// included; off by default.
#[test]
fn pod_monitors_and_metallbs_alert_rules_render_when_enabled() {
    let off = render("{}", "metallb-system").expect("renders");
    assert!(!off
        .iter()
        .any(|d| d["kind"] == "PodMonitor" || d["kind"] == "PrometheusRule"));
    let docs = render(
        r#"
prometheus:
  podMonitor: {enabled: true, interval: 15s, additionalLabels: {release: prom}}
  prometheusRule:
    enabled: true
    bgpSessionDown: {enabled: false}
    extraAlerts: [{alert: Custom, expr: vector(1)}]
"#,
        "lb",
    )
    .expect("renders");
    let monitors: Vec<&Yaml> = docs.iter().filter(|d| d["kind"] == "PodMonitor").collect();
    assert_eq!(monitors.len(), 2);
    for (m, component) in monitors.iter().zip(["controller", "speaker"]) {
        assert_eq!(m["metadata"]["namespace"], "lb");
        assert_eq!(m["metadata"]["labels"]["release"], "prom");
        assert_eq!(
            m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
            component
        );
        assert_eq!(m["spec"]["podMetricsEndpoints"][0]["port"], "monitoring");
        assert_eq!(m["spec"]["podMetricsEndpoints"][0]["interval"], "15s");
    }
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "MetalLBStaleConfig",
            "MetalLBConfigNotLoaded",
            "MetalLBAddressPoolExhausted",
            "MetalLBAddressPoolUsage75Percent",
            "MetalLBAddressPoolUsage85Percent",
            "MetalLBAddressPoolUsage95Percent",
            "Custom",
        ]
    );
    let rules = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .expect("rules");
    // MetalLB's expressions on MetalLB's metric names, which both daemons export.
    assert_eq!(
        rules[0]["expr"],
        "metallb_k8s_client_config_stale_bool == 1"
    );
    assert_eq!(rules[0]["labels"]["severity"], "warning");
    assert_eq!(
        rules[1]["expr"],
        "metallb_k8s_client_config_loaded_bool == 0"
    );
    assert_eq!(rules[1]["labels"]["severity"], "warning");
    assert!(rules[5]["expr"].as_str().unwrap_or("").ends_with("> 95"));
    // The alert text keeps Prometheus' own templating for Alertmanager to fill in.
    assert!(
        rules[0]["annotations"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("{{ $labels.pod }}")),
        "{:?}",
        rules[0]
    );
    let session_down = render(
        "prometheus: {prometheusRule: {enabled: true}}",
        "metallb-system",
    )
    .expect("renders");
    let rule = session_down
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let down = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .expect("rules")
        .iter()
        .find(|r| r["alert"] == "MetalLBBGPSessionDown")
        .expect("MetalLBBGPSessionDown by default");
    assert_eq!(down["expr"], "metallb_bgp_session_up == 0");
    let none = render(
        "prometheus: {prometheusRule: {enabled: true, configNotLoaded: {enabled: false}}}",
        "metallb-system",
    )
    .expect("renders");
    assert!(!serde_yaml_ng::to_string(&none)
        .expect("yaml")
        .contains("MetalLBConfigNotLoaded"));
}

/// MetalLB's `serviceAccount` and probe values: a named existing ServiceAccount is used by the
/// pods and the RBAC bindings and not created; probes take their settings or go away.
#[test]
fn service_account_and_probe_values_reach_the_pods_and_bindings() {
    let docs = render(
        r#"
controller:
  serviceAccount: {create: false, name: my-controller}
  livenessProbe: {enabled: false}
  readinessProbe: {periodSeconds: 30, successThreshold: 2}
speaker:
  serviceAccount: {annotations: {team: net}}
"#,
        "metallb-system",
    )
    .expect("renders");
    let accounts: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceAccount")
        .collect();
    assert_eq!(accounts.len(), 1, "only the speaker's is created");
    assert_eq!(accounts[0]["metadata"]["name"], "ferrolb-speaker");
    assert_eq!(accounts[0]["metadata"]["annotations"]["team"], "net");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "my-controller");
    let c = &pod["containers"][0];
    assert!(c["livenessProbe"].is_null(), "{c:?}");
    assert_eq!(c["readinessProbe"]["periodSeconds"], 30);
    assert_eq!(c["readinessProbe"]["successThreshold"], 2);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let bound: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        .filter(|d| {
            d["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .ends_with("ferrolb-controller")
        })
        .collect();
    assert_eq!(bound.len(), 2);
    for b in bound {
        assert_eq!(b["subjects"][0]["name"], "my-controller");
    }
}

/// MetalLB's `networkpolicies` values: the controller's policy opens the API server port out
/// and its metrics and webhook ports in (the container ports of those names exist).
#[test]
fn network_policies_open_the_controllers_ports() {
    let off = render("{}", "metallb-system").expect("renders");
    assert!(!off.iter().any(|d| d["kind"] == "NetworkPolicy"));
    let docs = render(
        "networkpolicies: {enabled: true, defaultDeny: true, apiPort: 443}",
        "lb",
    )
    .expect("renders");
    let policies: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(policies.len(), 2);
    let ctl = policies
        .iter()
        .find(|p| p["metadata"]["name"] == "ferrolb-controller")
        .expect("the controller's policy");
    assert_eq!(ctl["spec"]["egress"][0]["ports"][0]["port"], 443);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    let ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_sequence()
        .expect("ports")
        .clone();
    for p in ctl["spec"]["ingress"][0]["ports"]
        .as_sequence()
        .expect("ports")
    {
        assert!(
            ports.iter().any(|c| c["name"] == p["port"]),
            "{:?} is no container port",
            p["port"]
        );
    }
}

/// MetalLB's per-daemon `controller.image` / `speaker.image` override the shared `image` key
/// by key; unset keys fall back to it (and the tag to the chart's appVersion).
#[test]
fn per_daemon_image_keys_override_the_shared_image() {
    let docs = render(
        r#"
image: {repository: registry.test/ferrolb, tag: "1.0.0", pullPolicy: IfNotPresent}
controller: {image: {tag: "1.0.1-fix"}}
speaker: {image: {repository: mirror.test/ferrolb, pullPolicy: Always}}
"#,
        "metallb-system",
    )
    .expect("renders");
    let container = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .map(|d| d["spec"]["template"]["spec"]["containers"][0].clone())
            .unwrap_or_else(|| panic!("{kind}"))
    };
    let c = container("Deployment");
    assert_eq!(c["image"], "registry.test/ferrolb:1.0.1-fix");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    let s = container("DaemonSet");
    assert_eq!(s["image"], "mirror.test/ferrolb:1.0.0");
    assert_eq!(s["imagePullPolicy"], "Always");
}

/// Every metric the chart's alert rules query (all of them enabled) is one the daemons export:
/// the controller's always, the speaker's when its binary is built.
#[test]
fn alert_rules_query_only_exported_metrics() {
    let docs = render(
        "prometheus: {prometheusRule: {enabled: true}}",
        "metallb-system",
    )
    .expect("renders");
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let used: std::collections::BTreeSet<String> = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .expect("rules")
        .iter()
        .filter_map(|r| r["expr"].as_str())
        .flat_map(exported::metric_names)
        .collect();
    assert!(
        used.contains("metallb_k8s_client_config_loaded_bool"),
        "{used:?}"
    );
    let (mut known, speaker) = exported::exported_families();
    match speaker {
        Some(s) => known.extend(s),
        None => {
            eprintln!("SKIP (speaker half): ferrolb-speaker is not built; only the controller's metrics are checked");
            let unknown: Vec<_> = used.difference(&known).collect();
            assert!(
                unknown.iter().all(|m| m.starts_with("metallb_bgp_")),
                "{unknown:?}"
            );
            return;
        }
    }
    let unknown: Vec<_> = used.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "the alert rules query unexported metrics: {unknown:?}"
    );
}
