//! `ferrolb-controller`: the FerroLB controller binary and its offline tools.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrolb-controller", version, about = "FerroLB controller")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate manifests offline (files or directories of multi-document YAML).
    Validate { paths: Vec<String> },
    /// Convert a legacy MetalLB v0.12 ConfigMap into metallb.io CRs.
    Convert { file: String },
    /// Print the CRD manifests.
    Crds,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { paths } => ferrolb_controller::cmd::validate::run(&paths)?,
        Command::Convert { file } => ferrolb_controller::cmd::convert::run(&[file])?,
        Command::Crds => ferrolb_controller::cmd::crds::run(&[])?,
    };
    std::process::exit(code);
}
