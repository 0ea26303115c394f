//! File source: files or directories of multi-document YAML.
//!
//! - A path naming a file is read whatever its extension.
//! - A path naming a directory is walked **recursively**; files ending in `.yaml`, `.yml` or
//!   `.json` are read, in byte-wise path order (so the result does not depend on the file
//!   system's listing order). Hidden entries (names starting with `.`) are skipped, which also
//!   skips the `..data` symlink farms of mounted ConfigMaps and `.name.tmp` files that are
//!   about to be renamed into place.
//! - Paths are processed in the order given; documents in file order. Empty documents are
//!   skipped; a `kind: List` document contributes its `items`.
//! - Documents of unknown kinds are counted in [`Resources::ignored`], not rejected.
//! - Any unreadable file or undecodable document fails the whole load with a [`LoadError`]
//!   naming the file, the 1-based document index and the reason.
//!
//! **Status overlays.** A `kind: Service` document with no `spec` is a *status overlay*, not a
//! Service: the controller's standalone mode writes one per allocated Service into
//! `DIR/ferrolb-allocations.yaml` (apiVersion `v1`, `metadata` with name, namespace and
//! annotations, `status.loadBalancer.ingress`). After every file is read, each overlay is merged
//! into the Service of the same namespace/name defined elsewhere (a missing namespace means
//! `default`): its `status`, when present, replaces the Service's; its annotations are added,
//! overriding the Service's on the same key. Overlays are applied in file order, so of two for
//! one Service the later wins. An overlay with no matching Service is not an error: it is
//! dropped and counted in [`Resources::ignored`] under [`UNMATCHED_OVERLAY`] (the controller
//! may not have seen the Service's removal yet).
//!
//! Watching: [`watch_paths`] (module [`watch`]) hands each new load result to a channel,
//! reacting to inotify events within milliseconds, with a polling fallback. [`FileCache`]
//! (module [`cache`]) re-parses only the files whose [`FileStamp`] changed.
//!
//! **Streaming.** Documents are decoded one at a time and handed to a
//! [`Collect`] sink as [`Object`]s; [`Resources`] is one sink. A
//! consumer that needs a few fields of many objects (the speaker) collects them reduced
//! through its own [`FileModel`] and [`watch_files`], so a load never holds every whole object
//! of a big file at once.

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Service;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::{Collect, Object, Resources};
use crate::crd::bgp_peer_v1beta1;

pub mod cache;
pub mod stamp;
pub mod watch;

pub use cache::{FileCache, FileModel, KeptResources, ReloadStats};
pub use stamp::{fingerprint, FileStamp, Fingerprint};
pub use watch::{watch_files, watch_paths, Loaded, WatchOptions};

/// The [`Resources::ignored`] key counting status overlays that matched no Service.
pub const UNMATCHED_OVERLAY: &str = "v1/Service (status overlay without a Service)";

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

/// Loads every given file or directory into one [`Resources`], status overlays merged.
pub fn load_paths(paths: &[impl AsRef<Path>]) -> Result<Resources, LoadError> {
    let mut res = Resources::default();
    for file in list_files(paths)? {
        load_file_into(&file, &mut res)?;
    }
    merge_status_overlays(&mut res);
    Ok(res)
}

/// Parses one multi-document YAML text (`origin` names it in errors) into a [`Resources`],
/// status overlays merged.
pub fn load_str(text: &str, origin: &Path) -> Result<Resources, LoadError> {
    let mut res = Resources::default();
    load_str_into(text, origin, &mut res)?;
    merge_status_overlays(&mut res);
    Ok(res)
}

/// Reads and parses one file into `res`, one document at a time, overlays left unmerged (they
/// may match a Service of another file): the caller merges them ([`merge_status_overlays`]
/// for a [`Resources`]).
pub fn load_file_into(file: &Path, res: &mut impl Collect) -> Result<(), LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    load_str_into(&text, file, res)
}

/// Whether `svc` is a status overlay (a Service document without `spec`, module doc).
pub fn is_status_overlay(svc: &Service) -> bool {
    svc.spec.is_none()
}

/// Merges every status overlay of `res.services` into its Service and removes it (module doc).
pub fn merge_status_overlays(res: &mut Resources) {
    if !res.services.iter().any(is_status_overlay) {
        return;
    }
    let (overlays, services): (Vec<Service>, Vec<Service>) = std::mem::take(&mut res.services)
        .into_iter()
        .partition(is_status_overlay);
    res.services = services;
    let key = |svc: &Service| {
        (
            svc.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            svc.metadata.name.clone().unwrap_or_default(),
        )
    };
    let index: BTreeMap<(String, String), usize> = res
        .services
        .iter()
        .enumerate()
        .map(|(i, svc)| (key(svc), i))
        .collect();
    for overlay in overlays {
        let Some(svc) = index
            .get(&key(&overlay))
            .and_then(|&i| res.services.get_mut(i))
        else {
            *res.ignored.entry(UNMATCHED_OVERLAY.into()).or_default() += 1;
            continue;
        };
        if overlay.status.is_some() {
            svc.status = overlay.status;
        }
        if let Some(annotations) = overlay.metadata.annotations {
            svc.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(annotations);
        }
    }
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

fn load_str_into(text: &str, origin: &Path, res: &mut impl Collect) -> Result<(), LoadError> {
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
                res.collect(decode_object(item).map_err(|e| err(format!("items[{j}]: {e}")))?);
            }
            continue;
        }
        res.collect(decode_object(value).map_err(err)?);
    }
    Ok(())
}

fn decode_object(mut value: Value) -> Result<Object, String> {
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
    Ok(match (api_version.as_str(), kind.as_str()) {
        ("metallb.io/v1beta1", "IPAddressPool") => Object::IpAddressPool(decode(value)?),
        ("metallb.io/v1beta2", "BGPPeer") => Object::BgpPeer(decode(value)?),
        ("metallb.io/v1beta1", "BGPPeer") => {
            Object::BgpPeer(decode::<bgp_peer_v1beta1::BGPPeer>(value)?.to_v1beta2())
        }
        ("metallb.io/v1beta1", "BGPAdvertisement") => Object::BgpAdvertisement(decode(value)?),
        ("metallb.io/v1beta1", "L2Advertisement") => Object::L2Advertisement(decode(value)?),
        ("metallb.io/v1beta1", "Community") => Object::Community(decode(value)?),
        ("metallb.io/v1beta1", "BFDProfile") => Object::BfdProfile(decode(value)?),
        ("metallb.io/v1beta1", "ServiceL2Status") => Object::ServiceL2Status(decode(value)?),
        ("metallb.io/v1beta1", "ServiceBGPStatus") => Object::ServiceBgpStatus(decode(value)?),
        ("v1", "Secret") => Object::Secret(decode(value)?),
        ("v1", "Namespace") => Object::Namespace(decode(value)?),
        ("v1", "Node") => Object::Node(decode(value)?),
        ("v1", "Service") => Object::Service(decode(value)?),
        ("v1", "ConfigMap") => Object::ConfigMap(decode(value)?),
        ("discovery.k8s.io/v1", "EndpointSlice") => Object::EndpointSlice(decode(value)?),
        _ => Object::Ignored(format!("{api_version}/{kind}")),
    })
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
    // A type error names the field (`spec.holdTime: invalid type: integer `90`, expected a
    // string`), not only the document: the operator has to find it in a long manifest.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("{kind} {name:?}: {inner}")
        } else {
            format!("{kind} {name:?}: {path}: {inner}")
        }
    })
}
