//! File source: files or directories of multi-document YAML.
//!
//! - A path naming a file is read whatever its extension.
//! - A path naming a directory is walked **recursively**; files ending in `.yaml`, `.yml` or
//!   `.json` are read, in byte-wise path order (so the result does not depend on the file
//!   system's listing order). Hidden entries (names starting with `.`) are skipped, which also
//!   skips the `..data` symlink farms of mounted ConfigMaps.
//! - Paths are processed in the order given; documents in file order. Empty documents are
//!   skipped; a `kind: List` document contributes its `items`.
//! - Documents of unknown kinds are counted in [`Resources::ignored`], not rejected.
//! - Any unreadable file or undecodable document fails the whole load with a [`LoadError`]
//!   naming the file, the 1-based document index and the reason.
//!
//! [`watch_paths`] polls the files and publishes a new snapshot when they change ("reloaded
//! on change" without an inotify dependency; a period of a few seconds is plenty for config).

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::Resources;
use crate::crd::bgp_peer_v1beta1;

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A document is not valid YAML or does not match its kind's schema.
    #[error("{path}: document {document}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based index of the document within the file.
        document: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Directory nesting deeper than this is refused (guards against symlink loops).
const MAX_DEPTH: usize = 16;

/// Loads every given file or directory into one [`Resources`].
pub fn load_paths(paths: &[impl AsRef<Path>]) -> Result<Resources, LoadError> {
    let mut res = Resources::default();
    for file in list_files(paths)? {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
            path: file.clone(),
            source,
        })?;
        load_str_into(&text, &file, &mut res)?;
    }
    Ok(res)
}

/// Parses one multi-document YAML text (`origin` names it in errors) into a [`Resources`].
pub fn load_str(text: &str, origin: &Path) -> Result<Resources, LoadError> {
    let mut res = Resources::default();
    load_str_into(text, origin, &mut res)?;
    Ok(res)
}

/// The files [`load_paths`] reads, in the order it reads them.
pub fn list_files(paths: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|source| LoadError::Io {
            path: p.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, 0, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.to_path_buf());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if depth > MAX_DEPTH {
        return Err(io(std::io::Error::other(format!(
            "directories nested deeper than {MAX_DEPTH} levels"
        ))));
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn load_str_into(text: &str, origin: &Path, res: &mut Resources) -> Result<(), LoadError> {
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let err = |reason: String| LoadError::Parse {
            path: origin.to_path_buf(),
            document,
            reason,
        };
        let value =
            <Value as serde::Deserialize>::deserialize(doc).map_err(|e| err(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            // `kubectl get -o yaml` output: one level of items, no nested Lists.
            let items = value
                .get("items")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for (j, item) in items.into_iter().enumerate() {
                add_object(item, res).map_err(|e| err(format!("items[{j}]: {e}")))?;
            }
            continue;
        }
        add_object(value, res).map_err(err)?;
    }
    Ok(())
}

fn add_object(mut value: Value, res: &mut Resources) -> Result<(), String> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or("missing apiVersion")?
        .to_string();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("missing kind")?
        .to_string();
    // MetalLB's schemas require `spec` only for IPAddressPool; our derived types always have
    // one, so an omitted spec of another metallb.io kind means the empty spec.
    if api_version.starts_with("metallb.io/") && kind != "IPAddressPool" {
        if let Some(map) = value.as_mapping_mut() {
            let spec = map.entry(Value::from("spec")).or_insert(Value::Null);
            if spec.is_null() {
                *spec = Value::Mapping(Default::default());
            }
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("metallb.io/v1beta1", "IPAddressPool") => res.ip_address_pools.push(decode(value)?),
        ("metallb.io/v1beta2", "BGPPeer") => res.bgp_peers.push(decode(value)?),
        ("metallb.io/v1beta1", "BGPPeer") => res
            .bgp_peers
            .push(decode::<bgp_peer_v1beta1::BGPPeer>(value)?.to_v1beta2()),
        ("metallb.io/v1beta1", "BGPAdvertisement") => res.bgp_advertisements.push(decode(value)?),
        ("metallb.io/v1beta1", "L2Advertisement") => res.l2_advertisements.push(decode(value)?),
        ("metallb.io/v1beta1", "Community") => res.communities.push(decode(value)?),
        ("metallb.io/v1beta1", "BFDProfile") => res.bfd_profiles.push(decode(value)?),
        ("metallb.io/v1beta1", "ServiceL2Status") => res.service_l2_statuses.push(decode(value)?),
        ("metallb.io/v1beta1", "ServiceBGPStatus") => res.service_bgp_statuses.push(decode(value)?),
        ("v1", "Secret") => res.secrets.push(decode(value)?),
        ("v1", "Namespace") => res.namespaces.push(decode(value)?),
        ("v1", "Node") => res.nodes.push(decode(value)?),
        ("v1", "Service") => res.services.push(decode(value)?),
        ("v1", "ConfigMap") => res.config_maps.push(decode(value)?),
        ("discovery.k8s.io/v1", "EndpointSlice") => res.endpoint_slices.push(decode(value)?),
        _ => {
            *res.ignored
                .entry(format!("{api_version}/{kind}"))
                .or_default() += 1
        }
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    serde_yaml_ng::from_value(value).map_err(|e| format!("{kind} {name:?}: {e}"))
}

/// What changes when a watched file changes: the file list with each file's length and mtime.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The current [`Fingerprint`] of `paths`.
pub fn fingerprint(paths: &[impl AsRef<Path>]) -> Result<Fingerprint, LoadError> {
    list_files(paths)?
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).map_err(|source| LoadError::Io {
                path: p.clone(),
                source,
            })?;
            Ok((p, meta.len(), meta.modified().ok()))
        })
        .collect()
}

/// One published load result.
pub type Snapshot = std::sync::Arc<Result<Resources, LoadError>>;

/// Reloads `paths` whenever their [`Fingerprint`] changes, checking every `period`, and sends
/// each new load result on `tx` (the first immediately). Returns when every receiver is gone.
/// File reads run on the blocking pool.
pub async fn watch_paths(
    paths: Vec<PathBuf>,
    period: Duration,
    tx: tokio::sync::watch::Sender<Snapshot>,
) {
    let mut last: Option<Result<Fingerprint, String>> = None;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = tx.closed() => return,
        }
        // Only the cheap metadata walk runs every period; the files are read and parsed again
        // only when the fingerprint moved (a full parse of thousands of objects every 250 ms
        // would otherwise be the daemon's main cost).
        let p = paths.clone();
        let Ok(fp) =
            tokio::task::spawn_blocking(move || fingerprint(&p).map_err(|e| e.to_string())).await
        else {
            return;
        };
        if last.as_ref() == Some(&fp) {
            continue;
        }
        let p = paths.clone();
        let Ok(loaded) = tokio::task::spawn_blocking(move || load_paths(&p)).await else {
            return;
        };
        last = Some(fp);
        if tx.send(std::sync::Arc::new(loaded)).is_err() {
            return;
        }
    }
}
