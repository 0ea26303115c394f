//! `ferrolb-bgp`: FerroLB's BGP tool for operators.
//!
//! - `decode`: BGP messages (hex lines or raw bytes) to one JSON object per message; the JSON
//!   contract is documented in `crates/bgp/README.md` and checked by `tests/cli_decode.rs`.
//! - `announce`, `listen`: BGP sessions (the session layer, issue 4).
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
    #[command(subcommand)]
    command: Command,
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
