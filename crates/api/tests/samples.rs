//! Every MetalLB config sample (`../shared/metallb/configsamples/`, except the deployment
//! manifests) loads and validates. Missing Secrets are allowed (MetalLB calls them transient;
//! the samples reference Secrets that live only in a cluster).

use std::path::Path;

use ferrolb_api::source::files::load_paths;
use ferrolb_api::validate::validate;

#[test]
fn metallb_config_samples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/metallb/configsamples");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED metallb_config_samples_are_valid: {} not found (expected beside the \
             repository at ../shared/metallb)",
            dir.display()
        );
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".yaml") && !name.starts_with("deployment_")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "found only {files:?}");
    for f in &files {
        let res = load_paths(&[f]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            res.config_object_count() > 0,
            "{}: no config objects",
            f.display()
        );
        assert_eq!(res.ignored_count(), 0, "{}: {:?}", f.display(), res.ignored);
        if let Err(errs) = validate(&res) {
            let hard: Vec<String> = errs
                .iter()
                .filter(|e| !e.is_transient())
                .map(|e| e.to_string())
                .collect();
            assert!(hard.is_empty(), "{}:\n{}", f.display(), hard.join("\n"));
        }
    }
}

#[test]
fn all_samples_together_are_valid_once_names_are_distinct() {
    // Loading the whole directory at once: the samples reuse names ("peer", "example") and
    // addresses across files, as they are meant to be applied one at a time, so this must
    // report duplicates — and only duplicates, overlaps, identical specs or missing Secrets.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/metallb/configsamples");
    if !dir.is_dir() {
        eprintln!("SKIPPED all_samples_together_are_valid_once_names_are_distinct: no samples");
        return;
    }
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("deployment_")
        })
        .collect();
    let res = load_paths(&files).unwrap();
    let errs = validate(&res).unwrap_err();
    for e in &errs {
        assert!(
            matches!(
                e.reason.metric_label(),
                "duplicate_name" | "overlap" | "identical" | "missing_secret" | "duplicate_peer"
            ),
            "unexpected: {e}"
        );
    }
}
