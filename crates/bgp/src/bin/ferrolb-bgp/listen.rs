//! `ferrolb-bgp listen`: placeholder until the session layer (issue 4) lands and replaces
//! this file.

/// Arguments of `ferrolb-bgp listen` (none yet).
#[derive(Debug, clap::Args)]
pub struct ListenArgs {}

/// Runs `listen`: not implemented yet.
pub fn run(_args: ListenArgs) -> anyhow::Result<i32> {
    anyhow::bail!("listen: not implemented yet (arrives with the BGP session layer)")
}
