//! `ferrolb-bgp`: FerroLB's BGP tool for operators.
//!
//! - `decode`: BGP messages (hex lines or raw bytes) to one JSON object per message; the JSON
//!   contract is documented in `crates/bgp/README.md` and checked by `tests/cli_decode.rs`.
//! - `announce`, `listen`: BGP sessions (the session layer).
//!
//! Logs (`tracing`: state changes, NOTIFICATIONs, stalled writes) go to stderr through a
//! subscriber filtered by `--log-level` (a `tracing` filter such as `info` or
//! `ferrolb_bgp=debug`), else `RUST_LOG`, else `warn`: by default only warnings join the
//! documented progress lines on stderr, and stdout (JSON lines) never carries logs.
//!
//! Exit status: 0 on success; 1 when `decode` met a malformed message; 2 for bad usage or input
//! that is not BGP at all (not hex, unreadable file).

mod announce;
mod decode;
mod json;
mod listen;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ferrolb-bgp", version, about = "FerroLB's BGP-4 tool")]
struct Cli {
    /// Log filter for stderr (e.g. `info`, `ferrolb_bgp=debug`); default: $RUST_LOG, else `warn`.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Installs the stderr log subscriber; a bad filter is a usage error.
fn init_logging(level: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| anyhow::anyhow!("--log-level {l:?}: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode BGP messages from stdin (hex, one message per line; or raw with --binary) into one
    /// JSON object per message.
    Decode(decode::DecodeArgs),
    /// Open a BGP session and announce routes.
    Announce(announce::AnnounceArgs),
    /// Accept BGP sessions and print what peers announce.
    Listen(listen::ListenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_level.as_deref()) {
        eprintln!("ferrolb-bgp: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Announce(args) => announce::run(args),
        Command::Listen(args) => listen::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("ferrolb-bgp: {e:#}");
            ExitCode::from(2)
        }
    }
}
