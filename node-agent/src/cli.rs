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
use crate::serve;
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
    /// Run as a daemon: a snapshot every --interval, a change history, findings, a local API.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Ask a running `node-agent serve` over its unix socket (no curl needed on the node):
    /// prints the body; exit 1 unless the answer is 2xx, 3 when no daemon listens.
    Api {
        /// Path and query, e.g. /v1/changes?since=2026-12-01T14:00:00Z
        #[arg(value_name = "PATH")]
        target: String,
        /// The daemon's socket.
        #[arg(long, default_value = serve::DEFAULT_SOCKET, env = "NODE_AGENT_SOCKET", value_name = "PATH")]
        socket: PathBuf,
        /// Give up after this long.
        #[arg(long, default_value = "10s", value_parser = parse_timeout, value_name = "DUR")]
        timeout: Duration,
    },
    /// Collect, then write an incident bundle (.tar.gz in eks-log-collector's layout with
    /// manifest, report and findings) into DIR and print its path.
    #[command(after_help = BUNDLE_HELP)]
    Bundle(BundleArgs),
    /// Write the man pages (node-agent.1 and one per subcommand).
    Man {
        /// Directory to write them to (created); without it, node-agent.1 goes to stdout.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

const SERVE_HELP: &str = "\
API (unix socket, root only; optionally --listen on loopback):
  GET /v1/snapshot                 latest snapshot (JSON)
  GET /v1/findings                 findings of the latest round (held for --hold rounds)
  GET /v1/changes?since=RFC3339    change history, by content
  GET /v1/health                   200 while the loop is alive, 503 when it stalled
  GET /metrics                     Prometheus / OpenMetrics text

Example:
  node-agent serve --interval 30s --state-dir /var/lib/eks-diag
  curl --unix-socket /run/eks-diag/agent.sock 'http://x/v1/changes?since=2026-12-01T14:00:00Z'

SIGTERM or SIGINT stops it after flushing the history.";

#[derive(Args, Debug)]
struct CollectArgs {
    /// Pretty-print the JSON.
    #[arg(long, env = "NODE_AGENT_PRETTY")]
    pretty: bool,

    /// Print the running daemon's latest snapshot (asked on --socket) instead of
    /// collecting, marked `daemon:<socket>` in agent.inputs; collect afresh when no daemon
    /// answers with one. `diag` uses this over SSH/SSM unless given --no-daemon.
    #[arg(long)]
    from_daemon: bool,

    /// The daemon's socket, for --from-daemon.
    #[arg(long, default_value = serve::DEFAULT_SOCKET, env = "NODE_AGENT_SOCKET", value_name = "PATH")]
    socket: PathBuf,

    #[command(flatten)]
    source: SourceArgs,
}

const BUNDLE_HELP: &str = "\
The archive eks-diag_<node>_<YYYY-MM-DD_HHMMSS>-UTC.tar.gz holds the collected sections as the
commands print them (networking/iptables-save.txt, iprule.txt, iproute.txt, ipaddr.txt,
conntrack.txt, sysctls/, system/), the CNI log files copied from --log-dir (.gz ones
decompressed, --since applied), snapshot.json, findings.json, report.md and manifest.json
(source, bytes, sha256 of every file). Nothing is run beyond `collect`'s read-only set.

--redact replaces addresses (prefix-preserving), MACs, AWS ids, ARNs, account ids and host
names with consistent pseudonyms and writes the private map beside the archive (mode 0600).

Example:
  node-agent bundle -d /tmp --redact --since 2h";

#[derive(Args, Debug)]
struct BundleArgs {
    /// Directory to write the archive into (created if missing).
    #[arg(short = 'd', long = "dir", default_value = ".", value_name = "DIR")]
    dir: PathBuf,

    /// Redact the bundle (pseudonyms; the private map goes beside the archive).
    #[arg(long)]
    redact: bool,

    /// Continue this private map (implies --redact).
    #[arg(long, value_name = "FILE")]
    map_file: Option<PathBuf>,

    /// Also replace this word (implies --redact); repeatable.
    #[arg(long = "redact-keyword", value_name = "WORD")]
    redact_keyword: Vec<String>,

    /// Cap on the content before compression (50M, 1G): CNI logs lose their oldest lines first.
    #[arg(long, value_name = "SIZE", value_parser = bundle::parse_size)]
    max_size: Option<u64>,

    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Time between snapshots (each wait is jittered by ±10%).
    #[arg(long, default_value = "30s", value_parser = parse_interval, env = "NODE_AGENT_INTERVAL", value_name = "DUR")]
    interval: Duration,

    /// Change history and the last snapshots live here.
    #[arg(long, default_value = serve::DEFAULT_STATE_DIR, env = "NODE_AGENT_STATE_DIR", value_name = "DIR")]
    state_dir: PathBuf,

    /// Unix socket of the API (mode 0600; root or the daemon's own user only).
    #[arg(long, default_value = serve::DEFAULT_SOCKET, env = "NODE_AGENT_SOCKET", value_name = "PATH")]
    socket: PathBuf,

    /// Also serve the API on this loopback address (e.g. 127.0.0.1:9870).
    #[arg(long, env = "NODE_AGENT_LISTEN", value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,

    /// Rounds a finding must hold before it is reported (it clears at the first round
    /// without it).
    #[arg(long, default_value_t = 1, env = "NODE_AGENT_HOLD", value_name = "N")]
    hold: u32,

    /// Changes kept in the history (oldest dropped first).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_changes: usize,

    /// Changes older than this are dropped.
    #[arg(long, default_value = "7d", value_parser = parse_duration, value_name = "DUR")]
    max_age: Duration,

    /// Full snapshots kept (one is written only when something changed).
    #[arg(long, default_value_t = 3, value_name = "N")]
    keep_snapshots: usize,

    /// Jitter of each wait, in percent of --interval (0 to 50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=50), value_name = "PCT")]
    jitter_pct: u8,

    /// Stop after N rounds (benchmarks, tests).
    #[arg(long, value_name = "N")]
    rounds: Option<u64>,

    /// Collect the expensive sections (iptables, conntrack) at most once per DUR; the rounds
    /// in between carry their last collection forward. Default: every round.
    #[arg(long, value_parser = parse_interval, env = "NODE_AGENT_SLOW_INTERVAL", value_name = "DUR")]
    slow_interval: Option<Duration>,

    /// Also write the metrics every round to DIR/eks-diag.prom for node_exporter's textfile
    /// collector (temporary file + rename).
    #[arg(long, env = "NODE_AGENT_TEXTFILE_DIR", value_name = "DIR")]
    textfile_dir: Option<PathBuf>,

    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Args, Debug)]
struct SourceArgs {
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

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(200) {
        return Err("the interval must be at least 200ms".to_string());
    }
    Ok(d)
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
            let no_daemon = matches!(
                e.downcast_ref::<serve::api::ClientError>(),
                Some(serve::api::ClientError::Connect { .. })
            );
            ExitCode::from(if no_daemon { EXIT_NO_DAEMON } else { 1 })
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
            let opts = options(&args.source);
            let rt = one_shot_runtime()?;
            if args.from_daemon {
                match rt.block_on(daemon_snapshot(&args.socket)) {
                    Ok(snap) => {
                        rt.shutdown_background();
                        return write_json(&snap, args.pretty);
                    }
                    Err(why) => eprintln!("node-agent: {why}; collecting afresh"),
                }
            }
            // Big iptables dumps stay text until written (see snapshot_out).
            let (snap, texts) = rt.block_on(collect::collect_with(&opts, true));
            // Do not wait for blocking readers that a timeout abandoned.
            rt.shutdown_background();
            write_snapshot(snap, &texts, args.pretty)
        }
        Command::Serve(args) => {
            let opts = options(&args.source);
            let budget = opts.timeout;
            let cfg = serve::ServeConfig {
                interval: args.interval,
                jitter: f64::from(args.jitter_pct) / 100.0,
                state_dir: args.state_dir,
                socket: args.socket,
                listen: args.listen,
                hold: args.hold,
                caps: serve::history::Caps {
                    max_changes: args.max_changes,
                    max_age: args.max_age,
                    keep_snapshots: args.keep_snapshots,
                },
                rounds: args.rounds,
                textfile_dir: args.textfile_dir,
            };
            let rt = runtime()?;
            let r = rt.block_on(serve::run(
                serve::AgentSource::new(opts, args.slow_interval),
                cfg,
                budget,
            ));
            rt.shutdown_background();
            r.context("node-agent serve")
        }
        Command::Bundle(args) => {
            let started = jiff::Timestamp::now();
            let opts = options(&args.source);
            let rt = one_shot_runtime()?;
            // ipamd's answers as served, beside the collection (same client, same timeouts).
            let (snap, ipamd) = rt.block_on(async {
                futures::join!(
                    collect::collect(&opts),
                    collect::cni::introspection_raw(
                        &opts.ipamd_endpoint,
                        collect::Deadline::after(std::time::Duration::from_secs(10)),
                    )
                )
            });
            rt.shutdown_background();
            let path = crate::bundle::write(&args_to_bundle(&args, started)?, &opts, snap, ipamd)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", path.display())
                .and_then(|_| out.flush())
                .context("writing to stdout")
        }
        Command::Man { out } => man(out),
        Command::Api {
            target,
            socket,
            timeout,
        } => {
            let rt = one_shot_runtime()?;
            let r = rt.block_on(serve::api::get_unix(&socket, &target, timeout));
            rt.shutdown_background();
            let (status, body) = r?;
            let mut out = std::io::stdout().lock();
            out.write_all(&body)
                .and_then(|_| out.flush())
                .context("writing to stdout")?;
            if !(200..300).contains(&status) {
                anyhow::bail!("GET {target}: HTTP {status}");
            }
            Ok(())
        }
    }
}

/// The daemon's latest snapshot, marked with where it came from.
async fn daemon_snapshot(socket: &std::path::Path) -> Result<model::Snapshot, String> {
    let (status, body) = serve::api::get_unix(socket, "/v1/snapshot", Duration::from_secs(5))
        .await
        .map_err(|e| format!("no daemon snapshot: {e}"))?;
    if status != 200 {
        return Err(format!(
            "no daemon snapshot: {} answered HTTP {status}",
            socket.display()
        ));
    }
    let mut snap: model::Snapshot = serde_json::from_slice(&body)
        .map_err(|e| format!("the daemon's snapshot does not parse: {e}"))?;
    snap.agent.inputs.push(format!(
        "{}{}",
        model::snapshot::DAEMON_INPUT_PREFIX,
        socket.display()
    ));
    Ok(snap)
}

/// Exit status of `node-agent api` when no daemon answers on the socket (not running).
pub const EXIT_NO_DAEMON: u8 = 3;

fn args_to_bundle(
    a: &BundleArgs,
    started: jiff::Timestamp,
) -> anyhow::Result<crate::bundle::Request> {
    let map = match &a.map_file {
        Some(p) => Some(
            bundle::PrivateMap::read_file(p)
                .with_context(|| format!("--map-file {}", p.display()))?,
        ),
        None => None,
    };
    let mut o = bundle::Options::new(env!("CARGO_PKG_VERSION"), std::env::args().collect());
    o.redact = a.redact || map.is_some() || !a.redact_keyword.is_empty();
    o.map = map;
    o.keywords = a.redact_keyword.clone();
    o.max_size = a.max_size;
    o.started = started;
    if let Some(d) = a.source.since {
        let d = jiff::SignedDuration::try_from(d).context("--since")?;
        if let Ok(cutoff) = started.checked_sub(d) {
            o.since = Some((
                cutoff,
                crate::duration::format(a.source.since.unwrap_or_default()),
            ));
        }
    }
    Ok(crate::bundle::Request {
        dir: a.dir.clone(),
        options: o,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The runtime of a one-shot command (`collect`, `bundle`, `api`): one thread. A collection
/// joins its sections in one task (`tokio::join!`), so worker threads added nothing but their
/// start-up and cross-thread wake-ups (futex) on every node of a fleet; blocking readers
/// (sysctls, logs, /proc) still run on the blocking pool. `serve` keeps the multi-threaded
/// runtime: its API answers while a round is collected. Measured in bench/README.md
/// ("Per-node cost").
fn one_shot_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn man(out: Option<PathBuf>) -> anyhow::Result<()> {
    let cmd = command();
    let Some(dir) = out else {
        let mut stdout = std::io::stdout().lock();
        clap_mangen::Man::new(cmd)
            .render(&mut stdout)
            .context("writing the man page to stdout")?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("node-agent".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("node-agent-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("node-agent {}", sub.get_name()));
        pages.push((name, page));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.clone())
            .render(&mut buf)
            .with_context(|| format!("rendering {name}.1"))?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("{}", path.display());
    }
    Ok(())
}

fn options(a: &SourceArgs) -> Options {
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

/// [`write_json`] for a freshly collected snapshot whose iptables dumps may be deferred.
fn write_snapshot(
    snap: model::Snapshot,
    texts: &collect::iptables::DeferredTexts,
    pretty: bool,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    crate::snapshot_out::write(&mut out, snap, texts, pretty)
        .context("writing the snapshot to stdout")?;
    out.write_all(b"\n")
        .and_then(|_| out.flush())
        .context("writing to stdout")?;
    Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn man_pages_for_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        man(Some(dir.path().to_path_buf())).unwrap();
        let serve = std::fs::read_to_string(dir.path().join("node-agent-serve.1")).unwrap();
        assert!(serve.contains("node\\-agent\\-serve"), "{serve}");
        assert!(serve.contains("\\-\\-state\\-dir"), "{serve}");
        for sub in ["collect", "schema", "api", "man"] {
            assert!(
                dir.path().join(format!("node-agent-{sub}.1")).is_file(),
                "{sub}"
            );
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }
}
