//! `ferrolb-controller validate PATH...`: validates manifests offline.
//!
//! Reads files or directories (recursively) of multi-document YAML, validates every metallb.io
//! object with the same function the daemons use, and prints each error on its own line on
//! stdout (`Kind namespace/name: path = "value": reason`). Other kinds (Secret, Namespace,
//! Node, Service, ...) are read for references and otherwise ignored.
//!
//! Exit code: 0 when valid, 1 on any error (including unreadable files, and files over
//! `--max-file-bytes` or adding up to more than `--max-dir-bytes`, checked before reading). References to
//! Secrets that are not among the given files are only warnings (stderr): Secrets usually
//! live only in the cluster, and MetalLB treats a missing one as transient too.

use ferrolb_api::source::files::{load_paths_limited, Limits};
use ferrolb_api::validate::validate;

/// Runs the command within the default [`Limits`]; returns the process exit code.
pub fn run(paths: &[String]) -> anyhow::Result<i32> {
    run_limited(paths, &Limits::default())
}

/// Runs the command, reading no more than `limits`; returns the process exit code.
pub fn run_limited(paths: &[String], limits: &Limits) -> anyhow::Result<i32> {
    if paths.is_empty() {
        eprintln!("validate: give at least one file or directory");
        return Ok(1);
    }
    let res = match load_paths_limited(paths, limits) {
        Ok(r) => r,
        Err(e) => {
            println!("{e}");
            return Ok(1);
        }
    };
    let summary = format!(
        "{} IPAddressPool(s), {} BGPPeer(s), {} BGPAdvertisement(s), {} L2Advertisement(s), \
         {} Community(ies), {} BFDProfile(s); {} other document(s) ignored",
        res.ip_address_pools.len(),
        res.bgp_peers.len(),
        res.bgp_advertisements.len(),
        res.l2_advertisements.len(),
        res.communities.len(),
        res.bfd_profiles.len(),
        res.ignored_count(),
    );
    match validate(&res) {
        Ok(_) => {
            eprintln!("valid: {summary}");
            Ok(0)
        }
        Err(errors) => {
            let (warnings, hard): (Vec<_>, Vec<_>) = errors.iter().partition(|e| e.is_transient());
            for w in &warnings {
                eprintln!("warning: {w} (not among the given files; checked in the cluster)");
            }
            for e in &hard {
                println!("{e}");
            }
            if hard.is_empty() {
                eprintln!("valid: {summary}");
                Ok(0)
            } else {
                eprintln!("invalid: {} error(s) in {summary}", hard.len());
                Ok(1)
            }
        }
    }
}
