//! `ferrolb-controller crds`: prints every CRD manifest (the content of `deploy/crds/`) as
//! one multi-document YAML stream, ready for `kubectl apply -f -`.

/// Runs the command; returns the process exit code.
pub fn run(_args: &[String]) -> anyhow::Result<i32> {
    print!("{}", ferrolb_api::crd::manifests::all_yaml()?);
    Ok(0)
}
