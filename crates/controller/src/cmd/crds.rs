//! `ferrolb-controller crds`: not implemented yet.

pub fn run(_args: &[String]) -> anyhow::Result<i32> {
    anyhow::bail!("'crds' is not implemented yet")
}
