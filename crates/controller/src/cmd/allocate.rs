//! `ferrolb-controller allocate --config-dir DIR`: preview allocation offline.
//!
//! Reads the config CRs, Namespaces and Services from the YAML files under `DIR`, runs the same
//! [`PoolAllocator`] as the controller and prints, on stdout, one JSON object per LoadBalancer
//! Service it handles, sorted by namespace/name:
//!
//! ```text
//! {"namespace":"ns","name":"web","ips":["10.0.0.1"],"pool":"default"}
//! {"namespace":"ns","name":"db","error":"no free IPv4 address in pool(s) default"}
//! ```
//!
//! Services are served in file order (first come, first served) after every Service whose
//! `status.loadBalancer.ingress` holds a still-valid IP has adopted it. Exit code 0 whatever the
//! allocation outcome; an unreadable directory or an invalid configuration is an error (stderr,
//! exit 1) because there is nothing meaningful to preview. Events that a controller would emit
//! for dropped status IPs go to stderr, so stdout stays machine-readable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ferrolb_api::selector::Labels;
use serde::Serialize;

use ferrolb_allocator::from_k8s::{key_of, service_from_k8s};
use ferrolb_allocator::{Event, PoolAllocator, ServiceKey, ServiceState};

/// One output line. Field order is the documented contract.
#[derive(Debug, Serialize)]
struct Line {
    namespace: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ips: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs the command; returns the process exit code.
pub fn run(config_dir: &Path, load_balancer_class: Option<String>) -> anyhow::Result<i32> {
    let res = ferrolb_api::source::files::load_paths(&[config_dir])
        .with_context(|| format!("reading {}", config_dir.display()))?;
    let config = match ferrolb_api::validate::validate(&res) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            anyhow::bail!("the configuration in {} is invalid", config_dir.display());
        }
    };

    let ns_labels: BTreeMap<String, Labels> = res
        .namespaces
        .iter()
        .filter_map(|ns| {
            let name = ns.metadata.name.clone()?;
            Some((name, ns.metadata.labels.clone().unwrap_or_default()))
        })
        .collect();
    let no_labels = Labels::new();

    let mut lines: BTreeMap<ServiceKey, Line> = BTreeMap::new();
    let mut services = Vec::with_capacity(res.services.len());
    for raw in &res.services {
        let Some(key) = key_of(raw) else {
            eprintln!("warning: skipping a Service without metadata.name");
            continue;
        };
        let labels = ns_labels.get(key.namespace.as_str()).unwrap_or(&no_labels);
        match service_from_k8s(raw, labels) {
            Ok(svc) => services.push(svc),
            Err(e) => {
                // Only a Service we would handle gets an error line; others are not ours.
                let spec = raw.spec.as_ref();
                let is_lb = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
                let class = spec.and_then(|s| s.load_balancer_class.clone());
                if is_lb && class == load_balancer_class {
                    lines.insert(key.clone(), error_line(&key, e.to_string()));
                }
            }
        }
    }

    let mut allocator = PoolAllocator::new(load_balancer_class);
    allocator.set_config(&config);
    for decision in allocator.resync(services) {
        for event in &decision.events {
            if matches!(event, Event::Released { .. }) {
                eprintln!("{}: {}: {event}", decision.service, event.reason());
            }
        }
        let key = decision.service;
        let line = match decision.state {
            ServiceState::Assigned(a) => Line {
                namespace: key.namespace.to_string(),
                name: key.name.to_string(),
                ips: Some(a.ips.iter().map(ToString::to_string).collect()),
                pool: Some(a.pool),
                error: None,
            },
            ServiceState::Failed(e) => error_line(&key, e.to_string()),
            ServiceState::NotHandled(_) => continue,
        };
        lines.insert(key, line);
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in lines.values() {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(0)
}

fn error_line(key: &ServiceKey, error: String) -> Line {
    Line {
        namespace: key.namespace.to_string(),
        name: key.name.to_string(),
        ips: None,
        pool: None,
        error: Some(error),
    }
}
