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
//! **Size limits** ([`Limits`]). A file longer than [`Limits::max_file_bytes`], or files whose
//! lengths add up to more than [`Limits::max_dir_bytes`], fail the load with
//! [`LoadError::FileTooLarge`] / [`LoadError::DirTooLarge`] before anything is read: the length
//! comes from the file's metadata. Reading is bounded too, so a file that grows while it is
//! read fails the same way instead of being read to its end.
//!
//! **Symlink loops.** A symlink that resolves to itself (`ELOOP`), or a directory symlink to
//! one of its own ancestors, is skipped and reported in [`Scan::loops`]; [`list_files`] logs
//! each at WARN, the watcher once per path until the link changes.
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
pub use stamp::{fingerprint, fingerprint_scan, FileStamp, Fingerprint};
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
    /// A file is longer than [`Limits::max_file_bytes`] (from its metadata, or while reading
    /// it: it grew).
    #[error(
        "{path}: {len} bytes, more than the limit of {limit} bytes per file (--max-file-bytes)"
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its length in bytes (while reading: the bytes read so far, limit + 1).
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The files of a load add up to more than [`Limits::max_dir_bytes`].
    #[error(
        "{path}: the files add up to {total} bytes, more than the limit of {limit} bytes \
         per directory (--max-dir-bytes); the file reaching it is {largest}"
    )]
    DirTooLarge {
        /// The watched path (directory) the file that reached the limit is under.
        path: PathBuf,
        /// The file whose length took the sum over the limit.
        largest: PathBuf,
        /// The sum of the lengths of every file of the load.
        total: u64,
        /// The limit.
        limit: u64,
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

/// How much configuration input a load may read.
///
/// The defaults are about 3.5x (per file) and 14x (in all) the 10k-Service test set (4.6 MB of
/// YAML, docs/speaker.md): far above a real configuration, far below what would exhaust a
/// node's memory while parsing (a YAML `Value` costs several times its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest file read, in bytes.
    pub max_file_bytes: u64,
    /// The most bytes read by one load, all files together.
    pub max_dir_bytes: u64,
}

impl Limits {
    /// Default of [`Limits::max_file_bytes`]: 16 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;
    /// Default of [`Limits::max_dir_bytes`]: 64 MiB.
    pub const DEFAULT_MAX_DIR_BYTES: u64 = 64 << 20;

    /// Checks the lengths of `files` (from their stamps) against the limits, before reading.
    /// `roots` are the watched paths, one of which a [`LoadError::DirTooLarge`] names (else the
    /// file's directory).
    pub fn check(
        &self,
        roots: &[impl AsRef<Path>],
        files: &[(PathBuf, FileStamp)],
    ) -> Result<(), LoadError> {
        let mut total: u64 = 0;
        for (path, stamp) in files {
            if stamp.len > self.max_file_bytes {
                return Err(LoadError::FileTooLarge {
                    path: path.clone(),
                    len: stamp.len,
                    limit: self.max_file_bytes,
                });
            }
            total = total.saturating_add(stamp.len);
            if total > self.max_dir_bytes {
                let root = roots
                    .iter()
                    .map(AsRef::as_ref)
                    .find(|r| path.starts_with(r))
                    .or_else(|| path.parent())
                    .unwrap_or(path.as_path());
                return Err(LoadError::DirTooLarge {
                    path: root.to_path_buf(),
                    largest: path.clone(),
                    total: files
                        .iter()
                        .map(|(_, s)| s.len)
                        .fold(0, u64::saturating_add),
                    limit: self.max_dir_bytes,
                });
            }
        }
        Ok(())
    }

    /// The most bytes one file may be read to: both limits bound it.
    fn read_bound(&self) -> u64 {
        self.max_file_bytes.min(self.max_dir_bytes)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_dir_bytes: Self::DEFAULT_MAX_DIR_BYTES,
        }
    }
}

/// Directory nesting deeper than this is refused (guards against symlink loops).
const MAX_DEPTH: usize = 16;

/// Loads every given file or directory into one [`Resources`], status overlays merged, within
/// the default [`Limits`].
pub fn load_paths(paths: &[impl AsRef<Path>]) -> Result<Resources, LoadError> {
    load_paths_limited(paths, &Limits::default())
}

/// [`load_paths`] within `limits`: every file's length is checked before any is read.
pub fn load_paths_limited(
    paths: &[impl AsRef<Path>],
    limits: &Limits,
) -> Result<Resources, LoadError> {
    let fp = fingerprint(paths)?;
    limits.check(paths, &fp)?;
    let mut res = Resources::default();
    for (file, _) in &fp {
        load_file_limited(file, &mut res, limits)?;
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
    load_file_limited(file, res, &Limits::default())
}

/// [`load_file_into`] reading at most [`Limits::max_file_bytes`] (and
/// [`Limits::max_dir_bytes`]): a longer file, even one that grows while it is read, is
/// [`LoadError::FileTooLarge`] and is not parsed.
pub fn load_file_limited(
    file: &Path,
    res: &mut impl Collect,
    limits: &Limits,
) -> Result<(), LoadError> {
    use std::io::Read as _;
    let io = |source| LoadError::Io {
        path: file.to_path_buf(),
        source,
    };
    let bound = limits.read_bound();
    let f = std::fs::File::open(file).map_err(io)?;
    let hint = f.metadata().map(|m| m.len()).unwrap_or(0).min(bound);
    let mut text = String::with_capacity(usize::try_from(hint).unwrap_or(0));
    // One byte past the bound tells "exactly at the limit" from "longer".
    f.take(bound.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(io)?;
    let read = u64::try_from(text.len()).unwrap_or(u64::MAX);
    if read > bound {
        return Err(LoadError::FileTooLarge {
            path: file.to_path_buf(),
            len: read,
            limit: bound,
        });
    }
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

/// A symlink skipped because it leads back to itself or to an ancestor directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkLoop {
    /// The symlink.
    pub path: PathBuf,
    /// What it points to (as written in the link), so a changed link is told apart.
    pub target: PathBuf,
}

/// What a walk of the watched paths found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The files a load reads, in the order it reads them.
    pub files: Vec<PathBuf>,
    /// Symlinks skipped because they loop.
    pub loops: Vec<SymlinkLoop>,
}

/// The files [`load_paths`] reads, in the order it reads them. Skipped symlink loops are
/// logged at WARN (each call: this is for one-shot loads; the watcher uses [`scan`] through [`fingerprint_scan`]).
pub fn list_files(paths: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>, LoadError> {
    let scan = scan(paths)?;
    for l in &scan.loops {
        warn_loop(l);
    }
    Ok(scan.files)
}

/// Logs a skipped symlink loop.
pub(crate) fn warn_loop(l: &SymlinkLoop) {
    tracing::warn!(
        path = %l.path.display(),
        target = %l.target.display(),
        "symlink loop in the configuration directory: skipped"
    );
}

/// [`list_files`] without logging: the files, and the symlink loops skipped.
pub fn scan(paths: &[impl AsRef<Path>]) -> Result<Scan, LoadError> {
    let mut out = Scan::default();
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|source| LoadError::Io {
            path: p.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Scan::default();
            let mut ancestors = vec![dir_id(&meta)];
            walk(p, &mut ancestors, &mut found)?;
            found.files.sort();
            out.files.extend(found.files);
            out.loops.extend(found.loops);
        } else {
            out.files.push(p.to_path_buf());
        }
    }
    Ok(out)
}

/// Identifies a directory (device, inode) to recognise an ancestor reached again via a
/// symlink; `None` off Unix, where only [`MAX_DEPTH`] guards.
fn dir_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Whether `error` says a symlink chain loops (`ELOOP`, "Too many levels of symbolic links").
fn is_loop(error: &std::io::Error) -> bool {
    // ELOOP is 40 on Linux (asm-generic/errno.h); std has no stable ErrorKind for it.
    cfg!(target_os = "linux") && error.raw_os_error() == Some(40)
}

fn walk(
    dir: &Path,
    ancestors: &mut Vec<Option<(u64, u64)>>,
    out: &mut Scan,
) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if ancestors.len() > MAX_DEPTH + 1 {
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
        let looped = || SymlinkLoop {
            target: std::fs::read_link(&path).unwrap_or_default(),
            path: path.clone(),
        };
        match std::fs::metadata(&path) {
            Err(e) if is_loop(&e) => out.loops.push(looped()),
            Ok(meta) if meta.is_dir() => {
                let id = dir_id(&meta);
                if id.is_some() && ancestors.contains(&id) {
                    // A symlink to an ancestor: walking it would list the same files again
                    // until MAX_DEPTH.
                    out.loops.push(looped());
                    continue;
                }
                ancestors.push(id);
                let walked = walk(&path, ancestors, out);
                ancestors.pop();
                walked?;
            }
            _ => {
                if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                ) {
                    out.files.push(path);
                }
            }
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
