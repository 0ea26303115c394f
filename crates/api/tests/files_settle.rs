//! The watcher's settle window against the real watcher on temp directories: every sample
//! file (MetalLB's config samples, the YAML examples in docs/, a standalone Service with its
//! status and EndpointSlice), rewritten in place cut at every line boundary and completed
//! 100 ms later, and removed then created again after gaps of 0 to 200 ms, never yields a
//! snapshot other than the whole file's: no withdrawal, no Layer 2 gap.
//!
//! Each change is followed by awaiting the one snapshot the watcher hands out once the
//! completed file has settled, so a partial snapshot would be the one received and fail the
//! comparison. The cuts of a file are split over several watchers run concurrently (bounded),
//! each in its own directory, to keep the wall time to seconds.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::source::files::{load_str, watch_paths, Loaded, WatchOptions};
use tokio::sync::{mpsc, Semaphore};

/// Upper bound of one wait for a snapshot; far above the settle window.
const DEADLINE: Duration = Duration::from_secs(30);
/// When a cut file is completed.
const COMPLETED_AFTER: Duration = Duration::from_millis(100);
/// Gaps between removing a file and creating it again.
const GAPS_MS: [u64; 5] = [0, 50, 100, 150, 200];
/// Cuts handled by one watcher.
const CUTS_PER_JOB: usize = 8;
/// Watchers (inotify instances) at once.
const CONCURRENT_JOBS: usize = 16;

const STANDALONE_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  annotations:
    metallb.io/address-pool: lab
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports:
  - port: 80
    protocol: TCP
status:
  loadBalancer:
    ingress:
    - ip: 192.0.2.10
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: demo
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: [10.0.0.5]
  nodeName: node1
  conditions: {ready: true}
ports:
- port: 8080
  protocol: TCP
";

/// Every sample: (name, text), only those that load as a whole.
fn samples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![(
        "standalone Service with status and EndpointSlice".to_string(),
        STANDALONE_SERVICE.to_string(),
    )];
    let metallb = root.join("../../../shared/metallb/configsamples");
    match std::fs::read_dir(&metallb) {
        Ok(entries) => {
            let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            files.sort();
            for f in files {
                out.push((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).unwrap(),
                ));
            }
        }
        Err(_) => eprintln!(
            "SKIPPED the MetalLB samples: {} not found",
            metallb.display()
        ),
    }
    // The project's own examples: the YAML blocks of docs/*.md.
    let docs = root.join("../../docs");
    let mut mds: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    mds.sort();
    for md in mds {
        let text = std::fs::read_to_string(&md).unwrap();
        let mut block: Option<String> = None;
        let mut n = 0;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, "```yaml") => block = Some(String::new()),
                (Some(_), "```") => {
                    n += 1;
                    let b = block.take().unwrap();
                    out.push((format!("{}#yaml{n}", md.display()), b));
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    out.retain(|(name, text)| match load_str(text, Path::new(name)) {
        Ok(res) => res.config_object_count() + res.services.len() + res.ignored_count() > 0,
        Err(e) => {
            eprintln!("not a loadable sample, left out: {e}");
            false
        }
    });
    out
}

/// What one watcher does to its file.
#[derive(Debug, Clone)]
enum Change {
    /// Rewritten in place: truncated, the first `lines` lines written, the rest
    /// [`COMPLETED_AFTER`] later.
    Cut { lines: usize },
    /// Removed, then written again after `ms` milliseconds.
    Recreate { ms: u64 },
}

async fn next(rx: &mut mpsc::Receiver<Loaded>) -> Loaded {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a snapshot within the deadline")
        .expect("watcher still running")
}

/// Runs `changes` on `text` under one watcher; returns a description of each snapshot that
/// differed from the whole file's.
async fn job(name: String, text: String, changes: Vec<Change>) -> Vec<String> {
    let full = load_str(&text, Path::new("s.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, &text).unwrap();
    let (tx, mut rx) = mpsc::channel::<Loaded>(1);
    let watcher = tokio::spawn(watch_paths(
        vec![dir.path().to_path_buf()],
        WatchOptions::default(),
        tx,
    ));
    let mut bad = Vec::new();
    let mut check = |loaded: Loaded, what: &str| match loaded {
        Ok(res) if res == full => {}
        Ok(res) => bad.push(format!(
            "{name}, {what}: a partial snapshot ({} Service(s), {} EndpointSlice(s), {} config \
             object(s), {} ignored; the whole file has {}, {}, {}, {})",
            res.services.len(),
            res.endpoint_slices.len(),
            res.config_object_count(),
            res.ignored_count(),
            full.services.len(),
            full.endpoint_slices.len(),
            full.config_object_count(),
            full.ignored_count(),
        )),
        Err(e) => bad.push(format!("{name}, {what}: an error was handed out: {e}")),
    };
    check(next(&mut rx).await, "first load");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for change in changes {
        match change {
            Change::Cut { lines: k } => {
                let (head, tail) = lines.split_at(k);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .unwrap();
                f.write_all(head.concat().as_bytes()).unwrap();
                // Sleeping produces the gap an editor writing in place leaves.
                tokio::time::sleep(COMPLETED_AFTER).await;
                f.write_all(tail.concat().as_bytes()).unwrap();
                drop(f);
            }
            Change::Recreate { ms } => {
                std::fs::remove_file(&path).unwrap();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                std::fs::write(&path, &text).unwrap();
            }
        }
        // The completed file's new stamp settles and is loaded: exactly one snapshot, which
        // must be the whole file.
        check(next(&mut rx).await, &format!("{change:?}"));
    }
    drop(rx);
    tokio::time::timeout(DEADLINE, watcher)
        .await
        .unwrap()
        .unwrap();
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_rewrites_and_quick_recreations_never_hand_out_a_partial_snapshot() {
    let samples = samples();
    assert!(samples.len() > 3, "samples found: {}", samples.len());
    let permits = Arc::new(Semaphore::new(CONCURRENT_JOBS));
    let mut jobs = tokio::task::JoinSet::new();
    let mut cuts_total = 0;
    for (name, text) in samples {
        let n = text.split_inclusive('\n').count();
        // Every line boundary: 0 lines (empty) to all but the last.
        let cuts: Vec<Change> = (0..n).map(|lines| Change::Cut { lines }).collect();
        cuts_total += cuts.len();
        let mut groups: Vec<Vec<Change>> = cuts.chunks(CUTS_PER_JOB).map(<[_]>::to_vec).collect();
        groups.push(GAPS_MS.iter().map(|&ms| Change::Recreate { ms }).collect());
        for changes in groups {
            let (name, text, permits) = (name.clone(), text.clone(), Arc::clone(&permits));
            jobs.spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                job(name, text, changes).await
            });
        }
    }
    let mut bad = Vec::new();
    while let Some(done) = jobs.join_next().await {
        bad.extend(done.unwrap());
    }
    eprintln!("{cuts_total} cuts and the recreation gaps checked");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
