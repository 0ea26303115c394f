//! The standalone status file (`--status-file`): one JSON document with every protocol's
//! per-Service reports, `{"node", "configStale", "services": {BGP}, "l2": {Layer 2}}`, each
//! protocol's section under its [`Protocol::status_file_key`]. Kubernetes mode writes status
//! objects instead (`kube_status`).

use std::io::Write as _;
use std::path::Path;

use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;

use crate::protocol::Protocol;

/// The status document, serialized one Service at a time: with 10k Services a whole
/// `serde_json::Value` tree costs ~21 MiB (docs/speaker.md), this costs one Service's worth.
pub struct StatusDoc<'a> {
    /// This node.
    pub node: &'a str,
    /// `configStale`: the newest configuration is rejected or the source unreadable.
    pub stale: bool,
    /// Every protocol, each written under its own key.
    pub protocols: &'a [Box<dyn Protocol>],
}

/// One protocol's reports as a JSON object, each value built only while it is written.
struct Section<'a>(&'a dyn Protocol);

impl Serialize for Section<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for (key, value) in self.0.status_entries() {
            map.serialize_entry(&key, &value)?;
        }
        map.end()
    }
}

impl Serialize for StatusDoc<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(2 + self.protocols.len()))?;
        map.serialize_entry("configStale", &self.stale)?;
        map.serialize_entry("node", self.node)?;
        for p in self.protocols {
            map.serialize_entry(p.status_file_key(), &Section(p.as_ref()))?;
        }
        map.end()
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
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::advertiser::testing::FakeAdvertiser;
    use crate::announce::bgp::ServiceStatus;
    use crate::announce::input::ServiceKey;
    use crate::announce::reason::SkipReason;
    use crate::announce::SpeakerOptions;
    use crate::protocol::bgp::{status_json, BgpProtocol};

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
        let bgp = BgpProtocol::with_statuses(
            SpeakerOptions::for_node("node-a"),
            FakeAdvertiser::default(),
            services.clone(),
        );
        let protocols: Vec<Box<dyn Protocol>> = vec![Box::new(bgp)];
        let doc = StatusDoc {
            node: "node-a",
            stale: true,
            protocols: &protocols,
        };
        let streamed: Value =
            serde_json::from_slice(&serde_json::to_vec(&doc).expect("ser")).expect("json");
        assert_eq!(streamed, status_json("node-a", true, &services));
    }

    #[test]
    fn the_l2_report_is_added_next_to_the_bgp_document_and_absent_without_l2() {
        use crate::l2::election::L2ServiceStatus;
        use crate::protocol::l2::L2Protocol;
        let opts = SpeakerOptions::for_node("a");
        let bgp = || {
            Box::new(BgpProtocol::with_statuses(
                opts.clone(),
                FakeAdvertiser::default(),
                BTreeMap::new(),
            )) as Box<dyn Protocol>
        };
        let l2 = L2Protocol::with_statuses(
            opts.clone(),
            FakeAdvertiser::default(),
            BTreeMap::from([(
                ServiceKey::new("ns", "web"),
                L2ServiceStatus::Skipped(SkipReason::NoEndpoints),
            )]),
        );
        let doc = |protocols: &[Box<dyn Protocol>]| -> Value {
            let doc = StatusDoc {
                node: "a",
                stale: false,
                protocols,
            };
            serde_json::from_slice(&serde_json::to_vec(&doc).expect("ser")).expect("json")
        };
        let with = doc(&[bgp(), Box::new(l2)]);
        assert_eq!(with["node"], "a");
        assert_eq!(with["l2"]["ns/web"]["reasonCode"], "noEndpoints");
        let without = doc(&[bgp()]);
        assert_eq!(
            without,
            json!({"node": "a", "configStale": false, "services": {}})
        );
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
