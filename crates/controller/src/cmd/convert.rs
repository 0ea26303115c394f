//! `ferrolb-controller convert`: not implemented yet.

pub fn run(_args: &[String]) -> anyhow::Result<i32> {
    anyhow::bail!("'convert' is not implemented yet")
}
