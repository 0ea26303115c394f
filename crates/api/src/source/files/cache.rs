//! Incremental loading: re-parse only the files whose [`FileStamp`] changed.
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

use super::{apply_status_overlays, load_file_into, FileStamp, Fingerprint, LoadError};
use crate::source::Resources;

/// Per-file parse results of earlier loads.
#[derive(Debug, Default)]
pub struct FileCache {
    entries: BTreeMap<PathBuf, Entry>,
    last: ReloadStats,
}

#[derive(Debug)]
struct Entry {
    stamp: FileStamp,
    /// The file's [`Resources`] (overlays unmerged) as JSON.
    json: Box<[u8]>,
}

/// What the last [`FileCache::load`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Files read and parsed from YAML.
    pub parsed: usize,
    /// Files decoded from the cache.
    pub reused: usize,
    /// Bytes the cache holds after the load.
    pub cached_bytes: usize,
}

impl FileCache {
    /// An empty cache: the first load parses every file.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the last load did.
    pub fn last_stats(&self) -> ReloadStats {
        self.last
    }

    /// Loads the files of `fingerprint` in its order, parsing only those whose stamp differs
    /// from the cached one, and merges status overlays. Entries of files no longer listed are
    /// dropped. On an error the entries of the files that did load are kept, so fixing the
    /// broken file re-parses only that file.
    pub fn load(&mut self, fingerprint: &Fingerprint) -> Result<Resources, LoadError> {
        let mut kept = BTreeMap::new();
        let mut stats = ReloadStats::default();
        let result = self.load_into(fingerprint, &mut kept, &mut stats);
        if result.is_err() {
            kept.append(&mut self.entries);
        }
        self.entries = kept;
        stats.cached_bytes = self.entries.values().map(|e| e.json.len()).sum();
        self.last = stats;
        result
    }

    fn load_into(
        &mut self,
        fingerprint: &Fingerprint,
        kept: &mut BTreeMap<PathBuf, Entry>,
        stats: &mut ReloadStats,
    ) -> Result<Resources, LoadError> {
        let mut all = Resources::default();
        for (path, stamp) in fingerprint {
            let cached = self
                .entries
                .remove(path)
                .filter(|entry| entry.stamp == *stamp)
                .and_then(|entry| {
                    let res = serde_json::from_slice::<Resources>(&entry.json).ok()?;
                    Some((entry, res))
                });
            let (entry, res) = match cached {
                Some(hit) => {
                    stats.reused += 1;
                    hit
                }
                None => {
                    let mut res = Resources::default();
                    load_file_into(path, &mut res)?;
                    stats.parsed += 1;
                    // Encoding our own typed objects cannot fail in practice; if it did, the
                    // file is simply parsed again next time.
                    let Ok(json) = serde_json::to_vec(&res) else {
                        append(&mut all, res);
                        continue;
                    };
                    let entry = Entry {
                        stamp: *stamp,
                        json: json.into_boxed_slice(),
                    };
                    (entry, res)
                }
            };
            kept.insert(path.clone(), entry);
            append(&mut all, res);
        }
        apply_status_overlays(&mut all);
        Ok(all)
    }
}

/// Appends every object of `other` after those of `into`, keeping file order.
fn append(into: &mut Resources, other: Resources) {
    // Destructured whole so a new field of `Resources` fails to compile here until handled.
    let Resources {
        ip_address_pools,
        bgp_peers,
        bgp_advertisements,
        l2_advertisements,
        communities,
        bfd_profiles,
        service_l2_statuses,
        service_bgp_statuses,
        secrets,
        namespaces,
        nodes,
        services,
        endpoint_slices,
        config_maps,
        ignored,
    } = other;
    into.ip_address_pools.extend(ip_address_pools);
    into.bgp_peers.extend(bgp_peers);
    into.bgp_advertisements.extend(bgp_advertisements);
    into.l2_advertisements.extend(l2_advertisements);
    into.communities.extend(communities);
    into.bfd_profiles.extend(bfd_profiles);
    into.service_l2_statuses.extend(service_l2_statuses);
    into.service_bgp_statuses.extend(service_bgp_statuses);
    into.secrets.extend(secrets);
    into.namespaces.extend(namespaces);
    into.nodes.extend(nodes);
    into.services.extend(services);
    into.endpoint_slices.extend(endpoint_slices);
    into.config_maps.extend(config_maps);
    for (kind, n) in ignored {
        *into.ignored.entry(kind).or_default() += n;
    }
}
