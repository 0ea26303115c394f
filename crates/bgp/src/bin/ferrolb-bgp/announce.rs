//! `ferrolb-bgp announce`: placeholder until the session layer (issue 4) lands and replaces
//! this file.

/// Arguments of `ferrolb-bgp announce` (none yet).
#[derive(Debug, clap::Args)]
pub struct AnnounceArgs {}

/// Runs `announce`: not implemented yet.
pub fn run(_args: AnnounceArgs) -> anyhow::Result<i32> {
    anyhow::bail!("announce: not implemented yet (arrives with the BGP session layer)")
}
