//! Code and docs give the reason itself, never a number of the project's issue tracker (the
//! tracker is not in the repository, so "see issue 7" tells a reader nothing). References to
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
        // This file spells out what it looks for.
        let skipped = ["target", "corpus", "artifacts", "repo_hygiene.rs"];
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

/// `issue 7`, `Issue #7`, `issues 3`: the word then (after an optional `#`) a number.
fn cites_an_issue_number(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("issue") {
        let before = &rest[..at];
        let after = rest[at + "issue".len()..].trim_start_matches('s');
        let after = after.trim_start_matches(' ').trim_start_matches('#');
        let other_project =
            before.trim_end().ends_with("metallb") || before.ends_with("metallb's ");
        if !other_project && after.starts_with(|c: char| c.is_ascii_digit()) {
            return true;
        }
        rest = &rest[at + "issue".len()..];
    }
    false
}

#[test]
fn the_detector_finds_tracker_numbers_and_leaves_prose_alone() {
    assert!(cites_an_issue_number("(docs/speaker.md, issue 7)"));
    assert!(cites_an_issue_number("Issue #12: the thing"));
    assert!(!cites_an_issue_number("a known issue with the kernel"));
    assert!(!cites_an_issue_number("MetalLB issue 2470 asked for this"));
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
