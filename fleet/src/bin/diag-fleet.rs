//! Standalone fleet collector (`diag collect` without the rest of `diag`): used by the
//! fleet tests (run inside a network namespace) and by bench/fleet.sh.

use clap::Parser;

#[derive(Parser)]
#[command(name = "diag-fleet", about = "Collect node snapshots over SSH or SSM")]
struct Cli {
    #[command(flatten)]
    collect: fleet::CollectArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let code = fleet::cli::run_collect(&cli.collect).await?;
    std::process::exit(code);
}
