//! The `node-agent` command line: `collect` (one JSON snapshot), `schema`, `serve` (the
//! daemon) and `man`. `main.rs` only calls [`main`].
//!
//! Exit codes: 0 when a snapshot was printed (even if every section failed: failures are
//! data), 2 on usage errors, 1 when stdout could not be written.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::collect::{self, Options};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use model::SECTION_NAMES;

const AFTER_HELP: &str = "\
Examples:
  node-agent collect --pretty
      Everything, with the defaults (10 s budget, IMDS at 169.254.169.254).
  node-agent collect --sections routes,rules,iptables --pretty
      Only policy routing and iptables; the other sections are \"skipped\".
  node-agent collect --since 2h --log-dir /var/log/aws-routed-eni
      CNI log events of the last two hours.
  ip netns exec pod-ns node-agent collect --no-imds
      Collect another network namespace (netlink, iptables, conntrack and /proc/sys/net
      are per namespace).
  node-agent schema > snapshot.schema.json
      The JSON Schema of the output.

Sections: node, links, addresses, neighbours, routes, rules, iptables, conntrack, sysctls,
cni, cni_logs. Each carries status ok | partial | unavailable | failed | skipped, a reason,
its duration and sources.

Read-only: the agent dumps netlink, runs only iptables-*-save / iptables --version /
conntrack -L/-S, reads files and queries IMDS and ipamd introspection. It never changes
routes, rules, iptables, sysctls or interfaces.

Exit status: 0 when a snapshot was printed (even if sections failed), 2 on usage errors,
1 when stdout could not be written.";

#[derive(Parser, Debug)]
#[command(
    name = "node-agent",
    version,
    about = "Read-only collector of an EKS worker node's pod-networking state (VPC CNI) into one JSON snapshot",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Collect a snapshot and print it as JSON on stdout.
    #[command(after_help = AFTER_HELP)]
    Collect(CollectArgs),
    /// Print the JSON Schema of the snapshot.
    Schema {
        /// Pretty-print.
        #[arg(long)]
        pretty: bool,
    },
}

#[derive(Args, Debug)]
struct CollectArgs {
    /// Pretty-print the JSON.
    #[arg(long, env = "NODE_AGENT_PRETTY")]
    pretty: bool,

    /// Comma-separated sections to collect; the others are reported as "skipped".
    #[arg(long, value_delimiter = ',', value_parser = parse_section, env = "NODE_AGENT_SECTIONS", value_name = "LIST")]
    sections: Option<Vec<String>>,

    /// Keep only CNI log events newer than this (e.g. 30m, 2h, 1d).
    #[arg(long, value_parser = parse_duration, env = "NODE_AGENT_SINCE", value_name = "DUR")]
    since: Option<Duration>,

    /// Directory of the CNI logs.
    #[arg(long, default_value = collect::DEFAULT_LOG_DIR, env = "NODE_AGENT_LOG_DIR", value_name = "DIR")]
    log_dir: PathBuf,

    /// Number of conntrack entries kept verbatim as a sample (all are summarised).
    #[arg(long, default_value_t = collect::DEFAULT_CONNTRACK_SAMPLE, env = "NODE_AGENT_CONNTRACK_SAMPLE", value_name = "N")]
    conntrack_sample: usize,

    /// Budget for the whole collection (sections run concurrently, each capped by it).
    #[arg(long, default_value = "10s", value_parser = parse_timeout, env = "NODE_AGENT_TIMEOUT", value_name = "DUR")]
    timeout: Duration,

    /// IMDS endpoint (IP literal only).
    #[arg(long, default_value = collect::DEFAULT_IMDS_ENDPOINT, env = "AWS_EC2_METADATA_SERVICE_ENDPOINT", value_name = "URL")]
    imds_endpoint: String,

    /// Do not query IMDS (the node section then infers what it can from the kernel).
    #[arg(long, env = "AWS_EC2_METADATA_DISABLED")]
    no_imds: bool,

    /// ipamd introspection endpoint.
    #[arg(long, default_value = collect::DEFAULT_IPAMD_ENDPOINT, env = "NODE_AGENT_IPAMD_ENDPOINT", value_name = "URL")]
    ipamd_endpoint: String,

    /// KEY=VALUE file of CNI env vars applied on top of what ipamd reports.
    #[arg(long, env = "NODE_AGENT_CNI_ENV", value_name = "FILE")]
    cni_env: Option<PathBuf>,

    /// Directory holding 10-aws.conflist.
    #[arg(long, default_value = collect::DEFAULT_CNI_CONF_DIR, env = "NODE_AGENT_CNI_CONF_DIR", value_name = "DIR")]
    cni_conf_dir: PathBuf,
}

fn parse_section(s: &str) -> Result<String, String> {
    let s = s.trim();
    if SECTION_NAMES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown section `{s}` (known: {})",
            SECTION_NAMES.join(", ")
        ))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err("the timeout must be at least 100ms".to_string());
    }
    Ok(d)
}

/// Parse the command line, run it and map the outcome to the documented exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help/--version print and exit 0; real usage errors exit 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Schema { pretty } => {
            let schema = model::schema::snapshot_schema();
            write_json(&schema, pretty)
        }
        Command::Collect(args) => {
            let opts = options(&args);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let snap = rt.block_on(collect::collect(&opts));
            // Do not wait for blocking readers that a timeout abandoned.
            rt.shutdown_background();
            write_json(&snap, args.pretty)
        }
    }
}

fn options(a: &CollectArgs) -> Options {
    let sections: BTreeSet<String> = match &a.sections {
        Some(list) => list.iter().cloned().collect(),
        None => SECTION_NAMES.iter().map(|s| s.to_string()).collect(),
    };
    Options {
        sections,
        since: a.since,
        log_dir: a.log_dir.clone(),
        log_budget: collect::cnilogs::Budget::default(),
        conntrack_sample: a.conntrack_sample,
        timeout: a.timeout,
        imds_endpoint: a.imds_endpoint.clone(),
        no_imds: a.no_imds,
        ipamd_endpoint: a.ipamd_endpoint.clone(),
        cni_env: a.cni_env.clone(),
        cni_conf_dir: a.cni_conf_dir.clone(),
        inputs: std::env::args().collect(),
    }
}

fn write_json<T: serde::Serialize>(value: &T, pretty: bool) -> anyhow::Result<()> {
    // Streamed through a buffer: a snapshot with 100k iptables rules is tens of MB of JSON,
    // which should not be held in memory a second time as one string.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    }
    .context("writing the snapshot to stdout")?;
    out.write_all(b"\n")
        .and_then(|_| out.flush())
        .context("writing to stdout")?;
    Ok(())
}
