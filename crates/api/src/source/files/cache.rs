//! Incremental loading: re-parse only the files whose [`FileStamp`] changed.
//!
//! What is kept of a file and how files combine into a load's result is the [`FileModel`]'s
//! business. The model both daemons' full loads use is [`Resources`], described below; the
//! speaker has its own (`ferrolb_speaker::daemon::inputs`) that keeps only the few fields of
//! Services and EndpointSlices it reads, reduced as each document is decoded.
//!
//! Parsing YAML into k8s-openapi objects is the slow part of a load (about 0.5 s for 10k
//! Services with their EndpointSlices, 4.6 MB of YAML, docs/speaker.md), and keeping the parsed
//! objects costs about 31 MiB at that size. [`FileCache`] keeps instead, per file, its objects
//! re-encoded as compact JSON (about the size of the YAML text) and decodes that again for the
//! files that did not change; serde_json decodes typed objects several times faster than the
//! YAML path (YAML text → `Value` → typed). So adding one Service file next to a big one parses
//! one small file, and the result is still a whole [`Resources`] handed off and dropped by the
//! consumer.
//!
//! *Guarantees*: [`FileCache::load`] returns exactly what [`super::load_paths`] would for the
//! same files, status overlays merged (the test `cached_reload_equals_a_fresh_load` checks it).
//! *Caveats*: a file changed between [`super::fingerprint`] and its read is cached under the
//! older stamp, so the next load parses it once more (never a stale result).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{load_file_limited, merge_status_overlays, FileStamp, Fingerprint, Limits, LoadError};
use crate::source::{Collect, Resources};

/// How a load's result is built from files: what a file's documents are collected into, what
/// [`FileCache`] keeps of a file between loads, and how the files' parts combine.
pub trait FileModel: Sized {
    /// A file's objects, collected as its documents are decoded (overlays unmerged).
    type Collected: Collect + Default;
    /// What the cache keeps of a file between loads.
    type Kept;
    /// A file's contribution to one load's result.
    type Part;
    /// Splits a freshly parsed file into what is kept and this load's part.
    fn keep(collected: Self::Collected) -> (Self::Kept, Self::Part);
    /// This load's part of an unchanged file; `None` parses the file again.
    fn reuse(kept: &Self::Kept) -> Option<Self::Part>;
    /// The load's result from every file's part, in file order.
    fn merge(parts: Vec<Self::Part>) -> Self;
    /// Bytes a kept file holds, as far as cheaply known, for [`ReloadStats::cached_bytes`].
    fn kept_bytes(_kept: &Self::Kept) -> usize {
        0
    }
}

/// What the cache keeps of a file for a [`Resources`] load.
#[derive(Debug)]
pub enum KeptResources {
    /// The file's objects as compact JSON (the usual case).
    Json(Box<[u8]>),
    /// The objects themselves, when they would not encode (never seen; a fallback).
    Plain(Box<Resources>),
}

impl KeptResources {
    fn len(&self) -> usize {
        match self {
            KeptResources::Json(json) => json.len(),
            KeptResources::Plain(_) => 0,
        }
    }
}

impl FileModel for Resources {
    type Collected = Resources;
    type Kept = KeptResources;
    type Part = Resources;

    fn keep(collected: Resources) -> (KeptResources, Resources) {
        let kept = match serde_json::to_vec(&collected) {
            Ok(json) => KeptResources::Json(json.into_boxed_slice()),
            Err(_) => KeptResources::Plain(Box::new(collected.clone())),
        };
        (kept, collected)
    }

    fn reuse(kept: &KeptResources) -> Option<Resources> {
        match kept {
            KeptResources::Json(json) => serde_json::from_slice(json).ok(),
            KeptResources::Plain(res) => Some((**res).clone()),
        }
    }

    fn merge(parts: Vec<Resources>) -> Resources {
        let mut all = Resources::default();
        for part in parts {
            all.append(part);
        }
        merge_status_overlays(&mut all);
        all
    }

    fn kept_bytes(kept: &KeptResources) -> usize {
        kept.len()
    }
}

/// Per-file parse results of earlier loads.
#[derive(Debug)]
pub struct FileCache<M: FileModel = Resources> {
    entries: BTreeMap<PathBuf, Entry<M::Kept>>,
    last: ReloadStats,
    limits: Limits,
}

impl<M: FileModel> Default for FileCache<M> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            last: ReloadStats::default(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug)]
struct Entry<K> {
    stamp: FileStamp,
    kept: K,
}

/// What the last [`FileCache::load`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Files read and parsed from YAML.
    pub parsed: usize,
    /// Files decoded from the cache.
    pub reused: usize,
    /// Bytes the cache holds after the load, as far as the model knows ([`FileModel::kept_bytes`]).
    pub cached_bytes: usize,
}

impl FileCache<Resources> {
    /// An empty cache for [`Resources`] loads: the first load parses every file.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<M: FileModel> FileCache<M> {
    /// An empty cache whose loads stay within `limits` (the default: [`Limits::default`]).
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The stamp of every file the cache holds.
    pub fn stamps(&self) -> BTreeMap<PathBuf, FileStamp> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.clone(), entry.stamp))
            .collect()
    }

    /// What the last load did.
    pub fn last_stats(&self) -> ReloadStats {
        self.last
    }

    /// Loads the files of `fingerprint` in its order, parsing only those whose stamp differs
    /// from the cached one. Entries of files no longer listed are dropped. On an error the
    /// entries of the files that did load are kept, so fixing the broken file re-parses only
    /// that file, and so is the older entry of the file that failed (the watcher may still
    /// hand that version out while a new one settles). The [`Limits`] are checked on the
    /// stamps before any file is read.
    pub fn load(&mut self, fingerprint: &Fingerprint) -> Result<M, LoadError> {
        let mut kept = BTreeMap::new();
        let mut stats = ReloadStats::default();
        let result = self.load_into(fingerprint, &mut kept, &mut stats);
        if result.is_err() {
            kept.append(&mut self.entries);
        }
        self.entries = kept;
        stats.cached_bytes = self.entries.values().map(|e| M::kept_bytes(&e.kept)).sum();
        self.last = stats;
        result
    }

    fn load_into(
        &mut self,
        fingerprint: &Fingerprint,
        kept: &mut BTreeMap<PathBuf, Entry<M::Kept>>,
        stats: &mut ReloadStats,
    ) -> Result<M, LoadError> {
        let no_roots: &[PathBuf] = &[];
        self.limits.check(no_roots, fingerprint)?;
        let mut parts = Vec::with_capacity(fingerprint.len());
        for (path, stamp) in fingerprint {
            let old = self.entries.remove(path);
            let cached = match old {
                Some(entry) if entry.stamp == *stamp => match M::reuse(&entry.kept) {
                    Some(part) => Ok((part, entry)),
                    None => Err(Some(entry)),
                },
                other => Err(other),
            };
            let (part, entry) = match cached {
                Ok(hit) => {
                    stats.reused += 1;
                    hit
                }
                Err(old) => {
                    let mut collected = M::Collected::default();
                    if let Err(e) = load_file_limited(path, &mut collected, &self.limits) {
                        // Put the older version back: `load` keeps it after an error.
                        if let Some(old) = old {
                            self.entries.insert(path.clone(), old);
                        }
                        return Err(e);
                    }
                    stats.parsed += 1;
                    let (k, part) = M::keep(collected);
                    (
                        part,
                        Entry {
                            stamp: *stamp,
                            kept: k,
                        },
                    )
                }
            };
            kept.insert(path.clone(), entry);
            parts.push(part);
        }
        Ok(M::merge(parts))
    }
}
