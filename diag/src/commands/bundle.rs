//! `diag bundle TARGETS | --local | --from PATH...`: an incident bundle per invocation (one
//! archive; several nodes go into one fleet archive, or one archive each with `--per-node`).
//! The writer lives in the `bundle` crate (node-agent and the TUI use it too).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueHint};

use crate::cli::{Format, InputOpts, SourceArgs};

use super::{emit, load, source_inputs, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK};

pub const BUNDLE_HELP: &str = "\
The archive (eks-diag_<node|name|fleet>_<YYYY-MM-DD_HHMMSS>-UTC.tar.gz, written into -d DIR)
has eks-log-collector's layout (networking/iptables-save.txt, iprule.txt, iproute.txt,
conntrack.txt, sysctls/, var_log/aws-routed-eni/, system/…) plus ipaddr.txt, ipneigh.txt, both
iptables backends when both hold rules, snapshot.json, findings.json, report.md (paste it into
the ticket) and manifest.json (source, exit code, duration, bytes, sha256 of every file).
Several nodes: one archive with nodes/<node>/ each and the fleet report at the top
(--per-node: one archive per node). A node that could not be collected is in the bundle as
failed, with the reason.

Redaction is on by default: IPv4/IPv6 addresses (prefix-preserving: subnets, VPC CIDRs and
exclusions keep their lengths and nesting, so the analysis gives the same findings), MACs,
instance/ENI/subnet/VPC/SG ids, ARNs, account ids, host names and --redact-keyword words get
consistent pseudonyms. 169.254.169.254, 169.254.1.1, 0.0.0.0/0, loopback and the private
ranges themselves stay. The private map (<archive name>.private_map.json, mode 0600) is
written beside the archive, never inside it; --map-file continues it, so two bundles of one
incident share pseudonyms.

Examples:
  diag bundle --local -d /tmp
  diag bundle --hosts nodes.txt -d ticket-1234/ --redact-keyword acme
  diag bundle --from out/fleet/ --map-file ticket-1234/eks-diag_fleet_….private_map.json
  diag analyze eks-diag_ip-10-77-3-9.ec2.internal_2026-12-01_101500-UTC.tar.gz

Exit codes: 0 written and every node collected, 1 written but some node failed,
2 nothing written (no input, bad arguments, write error).";

#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Directory to write the archive (and the private map) into; created if missing.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".", value_hint = ValueHint::DirPath)]
    pub dir: PathBuf,

    /// Write the raw values: no pseudonyms, no map.
    #[arg(long)]
    pub no_redact: bool,

    /// Continue this private map (same key, same pseudonyms as the bundle it came with).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub map_file: Option<PathBuf>,

    /// Also replace this word (case-insensitive, whole words); repeatable.
    #[arg(long = "redact-keyword", value_name = "WORD")]
    pub redact_keyword: Vec<String>,

    /// Cap on the bundle's content before compression (e.g. 50M, 1G): CNI logs lose their
    /// oldest lines first; every cut is listed in manifest.json.
    #[arg(long, value_name = "SIZE", value_parser = bundle::parse_size)]
    pub max_size: Option<u64>,

    /// Drop CNI log lines older than this (e.g. 2h, 1d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// One archive per node instead of one fleet archive.
    #[arg(long)]
    pub per_node: bool,

    /// Name of a fleet archive (e.g. the cluster); default `fleet`.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub input: InputOpts,
}

pub fn run(args: BundleArgs, out: Out) -> anyhow::Result<i32> {
    let since = match &args.since {
        Some(s) => {
            let d =
                crate::cli::parse_duration(s).map_err(|e| anyhow::anyhow!("--since {s}: {e}"))?;
            let d = jiff::SignedDuration::try_from(d).context("--since")?;
            let cutoff = jiff::Timestamp::now()
                .checked_sub(d)
                .context("--since reaches before the epoch")?;
            Some((cutoff, s.clone()))
        }
        None => None,
    };
    let map = match &args.map_file {
        Some(p) => Some(
            bundle::PrivateMap::read_file(p)
                .with_context(|| format!("--map-file {}", p.display()))?,
        ),
        None => None,
    };
    let started = jiff::Timestamp::now();
    let sources = source_inputs(&args.source, &args.input, out, &mut None)?;
    let loaded = load(sources.inputs, &args.input);
    if loaded.is_empty() {
        anyhow::bail!("nothing to bundle");
    }
    let nodes: Vec<bundle::NodeInput> = loaded
        .into_iter()
        .map(|l| match l.outcome {
            Ok(s) => bundle::NodeInput {
                label: l.label,
                snapshot: Some(s),
                problems: l.problems,
                ..Default::default()
            },
            Err(e) => bundle::NodeInput {
                label: l.label,
                error: Some(e.to_string()),
                problems: l.problems,
                ..Default::default()
            },
        })
        .collect();
    let failed = nodes.iter().filter(|n| n.snapshot.is_none()).count();
    let mut opts = bundle::Options::new(env!("CARGO_PKG_VERSION"), std::env::args().collect());
    opts.redact = !args.no_redact;
    opts.map = map;
    opts.keywords = args.redact_keyword.clone();
    opts.max_size = args.max_size;
    opts.since = since;
    opts.name = args.name.clone();
    opts.started = started;

    let groups: Vec<Vec<bundle::NodeInput>> = if args.per_node {
        nodes.into_iter().map(|n| vec![n]).collect()
    } else {
        vec![nodes]
    };
    let mut written = Vec::new();
    for g in groups {
        let w = bundle::write(&args.dir, g, &opts)
            .with_context(|| format!("writing the bundle into {}", args.dir.display()))?;
        // The next archive of the same incident continues this map.
        if let Some(p) = &w.map_file {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading back {}", p.display()))?;
            opts.map = Some(bundle::PrivateMap::from_json(&text)?);
        }
        written.push(w);
    }
    for w in &written {
        if let Some(r) = &w.manifest.redaction {
            for warn in &r.warnings {
                eprintln!("diag: redaction: {warn}");
            }
        }
        if let Some(m) = &w.map_file {
            if !out.quiet {
                eprintln!(
                    "diag: private map (keep it out of the ticket): {}",
                    m.display()
                );
            }
        }
        for n in w.manifest.nodes.iter().filter(|n| n.status == "failed") {
            eprintln!(
                "diag: node {} not collected: {}",
                n.name,
                n.reasons.join("; ")
            );
        }
    }
    let text = match out.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = written
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "archive": w.archive,
                        "map_file": w.map_file,
                        "manifest": w.manifest,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&v)? + "\n"
        }
        _ => written
            .iter()
            .map(|w| format!("{}\n", w.archive.display()))
            .collect(),
    };
    emit(&text)?;
    Ok(if written.is_empty() {
        EXIT_BAD_INPUT
    } else if failed > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
