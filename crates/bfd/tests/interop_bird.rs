//! Interop with BIRD2's `protocol bfd` (RFC 5880/5881 single hop, IPv4 and IPv6), in network
//! namespaces. Needs root and BIRD (`bird`, `birdc`); skips loudly otherwise.
//!
//! ```text
//!   ns "bfd"  ferrolb-bfd (this crate's tool)     ns "bird"  bird
//!     eth0 192.0.2.1/24 fd00:db8::1/64  <-- veth -->  eth0 192.0.2.2/24 fd00:db8::2/64
//! ```
//!
//! BIRD runs 50 ms × 3 on the interface and one `neighbor` per family; assertions read
//! `birdc show bfd sessions` (state, interval, timeout) and our tool's JSON status lines.

use std::process::Command;

use ferrolb_e2e::{require_root_and, wait_until, Daemon, Netns};

mod common;
use common::{start_ours, wait_ours, OURS, THEIRS, WAIT};

fn bird_conf() -> String {
    let mut s =
        String::from("router id 192.0.2.2;\nlog stderr all;\nprotocol device { scan time 60; }\n");
    s.push_str("protocol bfd b1 {\n  interface \"eth0\" { min rx interval 50 ms; min tx interval 50 ms; multiplier 3; };\n");
    for (ours, theirs) in OURS.iter().zip(THEIRS) {
        s.push_str(&format!("  neighbor {ours} local {theirs};\n"));
    }
    s.push_str("}\n");
    s
}

/// One row of `show bfd sessions`: (state, interval s, timeout s).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    state: String,
    interval: String,
    timeout: String,
}

struct BirdBfd {
    ctl: std::path::PathBuf,
    bird: Daemon,
}

impl BirdBfd {
    fn start(ns: &Netns) -> BirdBfd {
        let dir = ns.dir().join("bird");
        std::fs::create_dir_all(&dir).expect("bird dir");
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, bird_conf()).expect("bird.conf");
        let ctl = dir.join("bird.ctl");
        let (conf_s, ctl_s) = (conf.to_string_lossy(), ctl.to_string_lossy());
        let bird = ns
            .spawn("bird", &["bird", "-f", "-c", &conf_s, "-s", &ctl_s])
            .expect("bird starts");
        let b = BirdBfd { ctl, bird };
        wait_until(WAIT, "birdc answers", || b.sessions().is_some(), |ok| *ok);
        b
    }

    fn sessions(&self) -> Option<String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .args(["show", "bfd", "sessions"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// BIRD's row for our address: "IP address  Interface  State  Since  Interval  Timeout".
    fn row(&self, addr: &str) -> Option<Row> {
        let text = self.sessions()?;
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(addr))?;
        let f: Vec<&str> = line.split_whitespace().collect();
        // The Since column is one word (a time of day).
        Some(Row {
            state: f.get(2)?.to_string(),
            interval: f.get(4)?.to_string(),
            timeout: f.get(5)?.to_string(),
        })
    }

    fn wait_row(&self, addr: &str, what: &str, mut done: impl FnMut(&Row) -> bool) -> Row {
        wait_until(
            WAIT,
            what,
            || self.row(addr),
            |r| r.as_ref().is_some_and(&mut done),
        )
        .expect("row")
    }
}

#[test]
fn bird_bfd_interop_up_timers_and_down_both_ways() {
    if !require_root_and(&["bird", "birdc"]) {
        return;
    }
    let (ours_ns, bird_ns) = Netns::pair("bfd", "bird").expect("lab");
    let bird = BirdBfd::start(&bird_ns);
    let mut v4 = start_ours(&ours_ns, 0, &[]);
    let v6 = start_ours(&ours_ns, 1, &[]);

    for (af, d) in [(0, &v4), (1, &v6)] {
        // Both sides poll to 50 ms after Up (RFC 5880 §6.8.3), so wait for the end state:
        // send at max(50, 50), detect after 3 × max(50, 50).
        wait_ours(d, "our session Up at 50 ms", |s| {
            s["state"] == "Up" && s["tx_interval_us"] == 50_000 && s["detection_time_us"] == 150_000
        });
        // BIRD's negotiated transmit interval and detection timeout, in seconds.
        let r = bird.wait_row(OURS[af], "BIRD's session Up at 50 ms", |r| {
            r.state == "Up" && r.interval == "0.050"
        });
        assert_eq!(r.timeout, "0.150", "{r:?}");
    }

    // BIRD stops sending: our sessions go Down with diag 1 (Control Detection Time Expired).
    bird.bird.freeze().expect("SIGSTOP bird");
    for d in [&v4, &v6] {
        let s = wait_ours(d, "our session Down after BIRD froze", |s| {
            s["state"] == "Down"
        });
        assert_eq!(s["local_diag"], 1, "{s}");
    }
    bird.bird.thaw().expect("SIGCONT bird");
    for (af, d) in [(0, &v4), (1, &v6)] {
        wait_ours(d, "our session Up again", |s| s["state"] == "Up");
        bird.wait_row(OURS[af], "BIRD's session Up again", |r| r.state == "Up");
    }

    // We stop sending: BIRD's session leaves Up on its detection timer.
    v6.freeze().expect("SIGSTOP ferrolb-bfd");
    bird.wait_row(OURS[1], "BIRD's session Down after we froze", |r| {
        r.state == "Down"
    });
    v6.thaw().expect("SIGCONT ferrolb-bfd");
    bird.wait_row(OURS[1], "BIRD's session Up again", |r| r.state == "Up");

    // Dropping our session sends AdminDown: BIRD's session goes Down.
    v4.stop();
    bird.wait_row(OURS[0], "BIRD's session Down after our AdminDown", |r| {
        r.state == "Down"
    });
}
