//! `diag collect` as a standalone binary with `-o DIR` for the output directory: used by the
//! fleet tests (run inside a network namespace) and by bench/fleet.sh.

use clap::Parser;

#[derive(Parser)]
#[command(name = "diag-fleet", about = "Collect node snapshots over SSH or SSM")]
struct Cli {
    #[command(flatten)]
    targets: diag::cli::TargetArgs,
    /// Directory for one snapshot per node and `fleet.json`.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "diag-fleet"
    )]
    output: std::path::PathBuf,
    /// Never show the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() {
    let cli = Cli::parse();
    let code = match diag::commands::collect::run(&cli.targets, &cli.output, cli.no_progress) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("diag-fleet: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
