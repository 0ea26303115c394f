//! Runs the real `ferrolb-controller --config-dir DIR` (standalone mode) on temporary directories:
//! it writes `DIR/ferrolb-allocations.yaml`, follows file changes, keeps the last good config
//! when a new one is invalid, and a restart moves no IP even when a new Service comes first.
//!
//! The controller has no event to await from outside, so the tests poll the allocations file
//! (and read its log lines) with a deadline, as the e2e harness does for routers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrolb_e2e::logged::{spawn_logged, wait_line, write_atomic, KillOnDrop};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);
const ALLOCATIONS: &str = "ferrolb-allocations.yaml";

const POOL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [192.0.2.0/29]
"#;

fn svc(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    )
}

/// The running controller; killed on drop, also when a test panics.
struct Controller {
    daemon: KillOnDrop,
    log: mpsc::Receiver<String>,
}

impl Controller {
    fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
        cmd.args(args).arg("--poll-ms").arg("50");
        let (daemon, log) = spawn_logged(cmd, "controller");
        Self { daemon, log }
    }

    fn in_dir(dir: &Path) -> Self {
        Self::start(&["--config-dir".as_ref(), dir.as_os_str()])
    }

    /// Waits for a log line containing `text`.
    fn wait_log(&self, text: &str) -> String {
        wait_line(&self.log, text, DEADLINE)
    }

    fn stop(mut self) {
        // SIGTERM, then wait: the controller exits on it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.daemon.0.id().to_string())
            .status();
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.daemon.0.try_wait() {
                assert!(status.success(), "controller exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("controller did not exit on SIGTERM within {DEADLINE:?}");
    }
}

/// `namespace/name -> (ips, pool)` from an allocations file.
fn allocations(path: &Path) -> Option<BTreeMap<String, (Vec<String>, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = BTreeMap::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).ok()?;
        if v.is_null() {
            continue;
        }
        assert_eq!(v["apiVersion"], "v1", "{v}");
        assert_eq!(v["kind"], "Service", "{v}");
        assert!(v.get("spec").is_none(), "status-only documents: {v}");
        let key = format!(
            "{}/{}",
            v["metadata"]["namespace"].as_str()?,
            v["metadata"]["name"].as_str()?
        );
        let pool = v["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"]
            .as_str()?
            .to_string();
        let ips = v["status"]["loadBalancer"]["ingress"]
            .as_array()?
            .iter()
            .map(|i| {
                assert_eq!(i["ipMode"], "VIP", "{i}");
                i["ip"].as_str().map(str::to_string)
            })
            .collect::<Option<Vec<_>>>()?;
        out.insert(key, (ips, pool));
    }
    Some(out)
}

/// Polls the allocations file until `pred` holds.
fn wait_allocations(
    path: &Path,
    what: &str,
    pred: impl Fn(&BTreeMap<String, (Vec<String>, String)>) -> bool,
) -> BTreeMap<String, (Vec<String>, String)> {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(a) = allocations(path) {
            if pred(&a) {
                return a;
            }
            last = Some(a);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}; last allocations: {last:?}");
}

fn ips(a: &BTreeMap<String, (Vec<String>, String)>, key: &str) -> Vec<String> {
    a.get(key).map(|(ips, _)| ips.clone()).unwrap_or_default()
}

#[test]
fn allocates_follows_changes_and_a_restart_moves_no_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let path = d.join(ALLOCATIONS);
    write_atomic(d, "10-pool.yaml", POOL);
    write_atomic(d, "20-services.yaml", &format!("{}{}", svc("a"), svc("b")));

    let ctl = Controller::in_dir(d);
    let first = wait_allocations(&path, "a and b allocated", |a| a.len() == 2);
    assert_eq!(ips(&first, "web/a"), vec!["192.0.2.0"]);
    assert_eq!(ips(&first, "web/b"), vec!["192.0.2.1"]);
    assert_eq!(first["web/a"].1, "lab");

    // A Service removed from the files releases its IP; a new one gets the lowest free IP.
    write_atomic(d, "20-services.yaml", &format!("{}{}", svc("a"), svc("c")));
    let second = wait_allocations(&path, "b gone, c allocated", |a| {
        a.contains_key("web/c") && !a.contains_key("web/b")
    });
    assert_eq!(ips(&second, "web/a"), vec!["192.0.2.0"]);
    assert_eq!(ips(&second, "web/c"), vec!["192.0.2.1"]);

    // An invalid pool keeps the last good configuration: d still gets an IP from it.
    write_atomic(
        d,
        "10-pool.yaml",
        &POOL.replace("192.0.2.0/29", "not-a-cidr"),
    );
    ctl.wait_log("configuration rejected");
    write_atomic(
        d,
        "20-services.yaml",
        &format!("{}{}{}", svc("a"), svc("c"), svc("d")),
    );
    let third = wait_allocations(&path, "d allocated from the last good pool", |a| {
        a.contains_key("web/d")
    });
    assert_eq!(ips(&third, "web/d"), vec!["192.0.2.2"]);
    assert_eq!(ips(&third, "web/a"), vec!["192.0.2.0"]);
    ctl.stop();

    // Restart with a valid pool and a new Service listed first: the IPs written before are
    // adopted before anything new is allocated, so "new" cannot take 192.0.2.0.
    write_atomic(d, "10-pool.yaml", POOL);
    write_atomic(
        d,
        "20-services.yaml",
        &format!("{}{}{}{}", svc("new"), svc("d"), svc("c"), svc("a")),
    );
    let ctl = Controller::in_dir(d);
    let after = wait_allocations(&path, "new allocated after restart", |a| {
        a.contains_key("web/new")
    });
    for key in ["web/a", "web/c", "web/d"] {
        assert_eq!(ips(&after, key), ips(&third, key), "{key} moved on restart");
    }
    assert_eq!(ips(&after, "web/new"), vec!["192.0.2.3"]);
    ctl.stop();
}

#[test]
fn allocations_file_can_live_outside_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg: PathBuf = dir.path().join("cfg");
    std::fs::create_dir(&cfg).expect("mkdir");
    let out = dir.path().join("state").join("alloc.yaml");
    std::fs::create_dir(out.parent().expect("parent")).expect("mkdir");
    write_atomic(&cfg, "10-pool.yaml", POOL);
    write_atomic(&cfg, "20-services.yaml", &svc("a"));
    let args = [
        "--config-dir".as_ref(),
        cfg.as_os_str(),
        "--allocations-file".as_ref(),
        out.as_os_str(),
    ];
    let ctl = Controller::start(&args);
    let first = wait_allocations(&out, "a allocated", |a| a.contains_key("web/a"));
    assert!(!cfg.join(ALLOCATIONS).exists());
    ctl.stop();

    // On restart the file outside the directory is read too: "z" listed first cannot take a's IP.
    write_atomic(
        &cfg,
        "20-services.yaml",
        &format!("{}{}", svc("z"), svc("a")),
    );
    let ctl = Controller::start(&args);
    let after = wait_allocations(&out, "z allocated", |a| a.contains_key("web/z"));
    assert_eq!(ips(&after, "web/a"), ips(&first, "web/a"));
    assert_eq!(ips(&after, "web/z"), vec!["192.0.2.1"]);
    ctl.stop();
}
