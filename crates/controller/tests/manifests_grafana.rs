//! docs/grafana/ferrolb.json is valid JSON, and every metric its queries name is one the
//! daemons export: the controller's from its `Metrics` renderer, the speaker's from a running
//! `ferrolb-speaker` (standalone mode on loopback; every family prints its HELP line even with
//! no series).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "support/exported.rs"]
mod exported;

use exported::{exported, metric_names, speaker_metrics};

fn dashboard() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/ferrolb.json");
    let text = std::fs::read_to_string(&path).expect("docs/grafana/ferrolb.json");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
        _ => {}
    }
}

#[test]
fn dashboard_queries_name_only_exported_metrics() {
    let mut all = Vec::new();
    exprs(&dashboard(), &mut all);
    assert!(all.len() >= 10, "only {} queries", all.len());
    let used: BTreeSet<String> = all.iter().flat_map(|e| metric_names(e)).collect();

    // Every panel that is not a row has a query.
    let panels = dashboard()["panels"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert!(
            p["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            p["title"]
        );
    }

    let controller = ferrolb_controller::daemon::metrics::Metrics::default();
    let mut known = exported(&controller.render());
    assert!(
        known.contains("metallb_allocator_addresses_total"),
        "{known:?}"
    );

    let speaker =
        PathBuf::from(env!("CARGO_BIN_EXE_ferrolb-controller")).with_file_name("ferrolb-speaker");
    if speaker.exists() {
        let text = speaker_metrics(&speaker);
        let from_speaker = exported(&text);
        assert!(from_speaker.contains("ferrolb_bgp_session_up"), "{text}");
        known.extend(from_speaker);
    } else {
        eprintln!(
            "SKIP (speaker half): {} is not built; only the controller's metrics are checked",
            speaker.display()
        );
        let controller_only = |m: &String| {
            m.starts_with("metallb_allocator")
                || m.starts_with("ferrolb_allocation")
                || m == "ferrolb_leader"
        };
        let used: Vec<_> = used.iter().filter(|m| controller_only(m)).collect();
        assert!(
            used.iter().all(|m| known.contains(*m)),
            "{used:?} vs {known:?}"
        );
        return;
    }
    let unknown: Vec<_> = used.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries unexported metrics: {unknown:?}"
    );
}
