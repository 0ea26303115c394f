//! `ferrolb-controller validate`: not implemented yet.

pub fn run(_args: &[String]) -> anyhow::Result<i32> {
    anyhow::bail!("'validate' is not implemented yet")
}
