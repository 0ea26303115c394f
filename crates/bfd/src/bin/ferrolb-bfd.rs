//! `ferrolb-bfd`: runs one BFD session and prints its status as JSON lines on stdout, one
//! line per change. For interop tests and for trying the crate against a router by hand.
//!
//! ```text
//! ferrolb-bfd --local 192.0.2.1 --peer 192.0.2.2 --rx-ms 50 --tx-ms 50 --mult 3
//! ```
//!
//! Signals: SIGTERM / SIGINT drop the session (one AdminDown packet) and exit; SIGUSR1
//! switches to the `--usr1-*` timers (a live profile change); SIGUSR2 prints the counters.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferrolb_bfd::{Bfd, BfdProfile, BfdSession, SessionConfig, SessionStatus};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(about = "Run one BFD session and print its status as JSON lines")]
struct Args {
    /// Our address (source of packets, the receive socket's address).
    #[arg(long)]
    local: IpAddr,
    /// The peer's address.
    #[arg(long)]
    peer: IpAddr,
    /// Bind to this device.
    #[arg(long)]
    device: Option<String>,
    /// RFC 5883 multihop instead of RFC 5881 single hop.
    #[arg(long)]
    multihop: bool,
    /// receiveInterval, ms.
    #[arg(long, default_value_t = 300)]
    rx_ms: u64,
    /// transmitInterval, ms.
    #[arg(long, default_value_t = 300)]
    tx_ms: u64,
    /// detectMultiplier.
    #[arg(long, default_value_t = 3)]
    mult: u8,
    /// passiveMode.
    #[arg(long)]
    passive: bool,
    /// minimumTtl (multihop).
    #[arg(long, default_value_t = 254)]
    min_ttl: u8,
    /// receiveInterval after SIGUSR1, ms.
    #[arg(long)]
    usr1_rx_ms: Option<u64>,
    /// transmitInterval after SIGUSR1, ms.
    #[arg(long)]
    usr1_tx_ms: Option<u64>,
}

fn line(s: &SessionStatus) -> String {
    serde_json::json!({
        "state": s.state.to_string(),
        "local_diag": s.local_diag.0,
        "remote_state": s.remote_state.to_string(),
        "remote_diag": s.remote_diag.0,
        "local_discr": s.local_discr,
        "remote_discr": s.remote_discr,
        "tx_interval_us": s.tx_interval.as_micros() as u64,
        "detection_time_us": s.detection_time.map(|d| d.as_micros() as u64),
        "up_events": s.up_events,
        "down_events": s.down_events,
    })
    .to_string()
}

fn counters_line(s: &BfdSession, bfd: &Bfd) -> String {
    let c = s.counters();
    let drops: serde_json::Map<String, serde_json::Value> = bfd
        .drops()
        .into_iter()
        .map(|(l, n)| (l.to_owned(), n.into()))
        .collect();
    serde_json::json!({
        "counters": {
            "control_packet_input": c.control_packet_input,
            "control_packet_output": c.control_packet_output,
            "echo_packet_input": c.echo_packet_input,
            "echo_packet_output": c.echo_packet_output,
            "session_up_events": c.session_up_events,
            "session_down_events": c.session_down_events,
            "session_up": c.session_up,
        },
        "drops": drops,
    })
    .to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let profile = BfdProfile {
        receive_interval: Duration::from_millis(a.rx_ms),
        transmit_interval: Duration::from_millis(a.tx_ms),
        detect_multiplier: a.mult,
        passive_mode: a.passive,
        minimum_ttl: a.min_ttl,
        ..BfdProfile::default()
    };
    let bfd = Bfd::new();
    let mut session = bfd
        .add_session(SessionConfig {
            peer: a.peer,
            local: a.local,
            device: a.device.clone(),
            multihop: a.multihop,
            profile,
        })
        .await
        .context("starting the session")?;
    let mut status = session.watch();
    let mut term = signal(SignalKind::terminate())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    println!("{}", line(&status.borrow_and_update()));
    loop {
        tokio::select! {
            r = status.changed() => {
                if r.is_err() { break; }
                println!("{}", line(&status.borrow_and_update()));
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = usr1.recv() => {
                let p = BfdProfile {
                    receive_interval: Duration::from_millis(a.usr1_rx_ms.unwrap_or(a.rx_ms)),
                    transmit_interval: Duration::from_millis(a.usr1_tx_ms.unwrap_or(a.tx_ms)),
                    ..profile
                };
                session.set_profile(p).await?;
                println!("{}", serde_json::json!({"profile_changed": true}));
            }
            _ = usr2.recv() => println!("{}", counters_line(&session, &bfd)),
        }
    }
    println!("{}", counters_line(&session, &bfd));
    session.shutdown().await;
    Ok(())
}
