//! Per-Service reports: which peers this node announces a Service to, or why not. Standalone
//! mode writes them as one JSON file (`--status-file`) and a log line per change; Kubernetes mode
//! would write ServiceBGPStatus objects (not done yet, see docs/speaker.md).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::announce::bgp::{ServiceStatus, VipStatus};
use crate::announce::input::ServiceKey;

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

/// The whole status document of node `node`.
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

/// The status document of [`status_json`], serialized one Service at a time: with 10k Services
/// the whole `Value` tree costs ~21 MiB (docs/speaker.md), this costs one Service's worth.
pub struct StatusDoc<'a> {
    pub node: &'a str,
    pub stale: bool,
    pub services: &'a BTreeMap<ServiceKey, ServiceStatus>,
}

/// `services` as a JSON object, each value built only while it is written.
struct Services<'a>(&'a BTreeMap<ServiceKey, ServiceStatus>);

impl Serialize for Services<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(self.0.len()))?;
        for (key, status) in self.0 {
            map.serialize_entry(&key.to_string(), &service_json(status))?;
        }
        map.end()
    }
}

impl Serialize for StatusDoc<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(3))?;
        map.serialize_entry("configStale", &self.stale)?;
        map.serialize_entry("node", self.node)?;
        map.serialize_entry("services", &Services(self.services))?;
        map.end()
    }
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

/// Replaces `path` atomically: writes a sibling temporary file, syncs it, renames it over.
pub fn write_atomically(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "status.json".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    // Buffered: the streamed document would otherwise be many small writes.
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    serde_json::to_writer_pretty(&mut file, value).map_err(std::io::Error::other)?;
    file.write_all(b"\n")?;
    let file = file
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
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

    #[test]
    fn streamed_document_equals_the_value_one() {
        let mut services = BTreeMap::new();
        services.insert(
            ServiceKey::new("default", "a"),
            ServiceStatus::Skipped(SkipReason::NoIpAssigned),
        );
        services.insert(
            ServiceKey::new("other", "b"),
            ServiceStatus::Vips(Default::default()),
        );
        let doc = StatusDoc {
            node: "node-a",
            stale: true,
            services: &services,
        };
        let streamed: Value =
            serde_json::from_slice(&serde_json::to_vec(&doc).expect("ser")).expect("json");
        assert_eq!(streamed, status_json("node-a", true, &services));
    }

    #[test]
    fn status_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        write_atomically(&path, &json!({"a": 1})).expect("write");
        write_atomically(&path, &json!({"b": 2})).expect("write");
        let back: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(back, json!({"b": 2}));
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }
}
