//! Code and docs give the reason itself, never a number of the project's own tracker (the
//! tracker is not in the repository, so a bare number tells a reader nothing). References to
//! other projects' trackers (MetalLB's `#2470`) are fine: they are public.

use std::path::{Path, PathBuf};

/// Files a reader sees: sources, docs, scripts, manifests.
fn is_text(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("rs" | "md" | "sh" | "toml" | "yaml" | "yml" | "json" | "tpl")
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skipped = ["target", "corpus", "artifacts"];
        if name.starts_with('.') || skipped.contains(&name.as_ref()) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if is_text(&path) {
            out.push(path);
        }
    }
}

/// The tracker's word (see [`WORD`]), in any case and optionally plural, then an optional `#`,
/// then a number.
/// Assembled, so that this file does not itself hold what it looks for.
const WORD: &str = concat!("iss", "ue");

fn cites_an_issue_number(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find(WORD) {
        let before = &rest[..at];
        let after = rest[at + WORD.len()..].trim_start_matches('s');
        let after = after.trim_start_matches(' ').trim_start_matches('#');
        let other_project =
            before.trim_end().ends_with("metallb") || before.ends_with("metallb's ");
        if !other_project && after.starts_with(|c: char| c.is_ascii_digit()) {
            return true;
        }
        rest = &rest[at + WORD.len()..];
    }
    false
}

#[test]
fn the_detector_finds_tracker_numbers_and_leaves_prose_alone() {
    let cited = |text: &str| cites_an_issue_number(&text.replace("WORD", WORD));
    assert!(cited("(docs/speaker.md, WORD 7)"));
    assert!(cited("WORD #12: the thing"));
    assert!(cites_an_issue_number(&format!(
        "{}s 3 and 4",
        WORD.to_uppercase()
    )));
    assert!(!cited("a known WORD with the kernel"));
    assert!(!cited("MetalLB WORD 2470 asked for this"));
}

#[test]
fn code_and_docs_cite_no_issue_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["crates", "docs", "e2e", "scripts", "charts", "deploy"] {
        walk(&root.join(dir), &mut files);
    }
    walk_top(&root, &mut files);
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut hits = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if cites_an_issue_number(line) {
                hits.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "say the reason instead of the tracker number:\n{}",
        hits.join("\n")
    );
}

/// The repository's top-level files (README.md, Cargo.toml), not its directories.
fn walk_top(root: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(root) {
        out.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_text(p)),
        );
    }
}
