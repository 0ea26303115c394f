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
    /// Preview allocation offline: one JSON line per LoadBalancer Service, sorted.
    Allocate {
        /// Directory of YAML files with the config CRs, Namespaces and Services.
        #[arg(long)]
        config_dir: std::path::PathBuf,
        /// Handle Services of this loadBalancerClass (default: Services without a class).
        #[arg(long)]
        load_balancer_class: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { paths } => ferrolb_controller::cmd::validate::run(&paths)?,
        Command::Convert { file } => ferrolb_controller::cmd::convert::run(&[file])?,
        Command::Crds => ferrolb_controller::cmd::crds::run(&[])?,
        Command::Allocate {
            config_dir,
            load_balancer_class,
        } => ferrolb_controller::cmd::allocate::run(&config_dir, load_balancer_class)?,
    };
    std::process::exit(code);
}
