//! `ferrolb-speaker demo` as a newcomer runs it: the binary, its output and its exit status.

use std::process::Command;

#[test]
fn demo_announces_three_services_then_withdraws_the_deleted_one_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"))
        .arg("demo")
        .output()
        .expect("run ferrolb-speaker demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let announces: Vec<&str> = stdout.lines().filter(|l| l.contains("ANNOUNCE")).collect();
    assert_eq!(announces.len(), 3, "{stdout}");
    for line in &announces {
        assert!(line.contains("/32"), "{line}");
        assert!(line.contains("next-hop 127.0.0.1"), "{line}");
        assert!(
            line.contains("64500:100") && line.contains("64500:7:1"),
            "{line}"
        );
    }
    let withdraws: Vec<&str> = stdout.lines().filter(|l| l.contains("WITHDRAW")).collect();
    assert_eq!(withdraws.len(), 1, "{stdout}");
    // The withdrawn prefix is the deleted Service's (the first allocated, demo/web).
    let web = stdout
        .lines()
        .find(|l| l.starts_with("controller: demo/web"))
        .and_then(|l| l.split('[').nth(1))
        .and_then(|l| l.split(']').next())
        .expect("web's IP in the output");
    assert!(withdraws[0].contains(&format!("{web}/32")), "{stdout}");
    assert!(stdout.contains("demo: done"));
}
