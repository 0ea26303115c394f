//! `ferrolb-controller`: the FerroLB controller binary and its offline tools.

use clap::{Parser, Subcommand};

mod run;
use run::RunArgs;

#[derive(Parser)]
#[command(
    name = "ferrolb-controller",
    version,
    about = "FerroLB controller",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Without a subcommand: run the controller (Kubernetes mode, or standalone with --config-dir).
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the same as no subcommand).
    Run(Box<RunArgs>),
    /// Validate manifests offline (files or directories of multi-document YAML).
    Validate {
        paths: Vec<String>,
        /// The largest file read, bytes.
        #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_FILE_BYTES)]
        max_file_bytes: u64,
        /// The most bytes read, all files together.
        #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_DIR_BYTES)]
        max_dir_bytes: u64,
    },
    /// Convert a legacy MetalLB v0.12 ConfigMap into metallb.io CRs.
    Convert { file: String },
    /// Print the CRD manifests.
    Crds,
    /// Print the whole install (deploy/ferrolb.yaml): CRDs, RBAC, Deployment, DaemonSet.
    Manifests {
        /// Namespace of both daemons and of the metallb.io objects.
        #[arg(long, default_value = ferrolb_controller::cmd::manifests::DEFAULT_NAMESPACE)]
        namespace: String,
        /// Image holding both daemons, REPOSITORY:TAG.
        #[arg(long, default_value = ferrolb_controller::cmd::manifests::DEFAULT_IMAGE)]
        image: String,
    },
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
    let Some(command) = cli.command else {
        return run::run(cli.run);
    };
    let code =
        match command {
            Command::Run(args) => return run::run(*args),
            Command::Validate {
                paths,
                max_file_bytes,
                max_dir_bytes,
            } => ferrolb_controller::cmd::validate::run_limited(
                &paths,
                &ferrolb_api::source::files::Limits {
                    max_file_bytes,
                    max_dir_bytes,
                },
            )?,
            Command::Convert { file } => ferrolb_controller::cmd::convert::run(&[file])?,
            Command::Crds => ferrolb_controller::cmd::crds::run(&[])?,
            Command::Manifests { namespace, image } => ferrolb_controller::cmd::manifests::run(
                &ferrolb_controller::cmd::manifests::Options { namespace, image },
            )?,
            Command::Allocate {
                config_dir,
                load_balancer_class,
            } => ferrolb_controller::cmd::allocate::run(&config_dir, load_balancer_class)?,
        };
    std::process::exit(code);
}
