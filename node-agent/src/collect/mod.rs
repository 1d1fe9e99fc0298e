//! Runs the collectors concurrently, each under its own time limit, and assembles the
//! snapshot.
//!
//! Time budget: the whole collection gets `--timeout` (default 10 s). Every section gets
//! `min(its cap, budget) - GRACE` for its own work (commands and requests use the remaining
//! part of that as their timeouts), and is cut off hard at `min(its cap, budget)` by
//! `tokio::time::timeout`. So a hanging tool is reported with its own message and whatever
//! was salvaged, and the process still returns within the budget.

pub mod cni;
pub mod cnilogs;
pub mod conntrack;
pub mod iptables;
pub mod netlink;
pub mod node;
pub mod sysctl;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use model::{AgentInfo, Section, Snapshot, SECTION_NAMES};

/// Default IMDS endpoint (IPv4 link-local).
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// Default ipamd introspection endpoint (`INTROSPECTION_BIND_ADDRESS`).
pub const DEFAULT_IPAMD_ENDPOINT: &str = "http://127.0.0.1:61679";
pub const DEFAULT_LOG_DIR: &str = model::vpccni::CNI_LOG_DIR;
pub const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNTRACK_SAMPLE: usize = 200;

/// Time kept between a collector's own deadline and the hard cut-off, so that its own
/// timeout messages (and salvaged data) win over the generic one.
const GRACE: Duration = Duration::from_millis(300);

/// Per-section caps (the budget applies on top).
const CAP_NETLINK: Duration = Duration::from_secs(8);
const CAP_NODE: Duration = Duration::from_secs(6);
const CAP_SYSCTLS: Duration = Duration::from_secs(5);
const CAP_CNI: Duration = Duration::from_secs(8);

/// What to collect and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sections to collect (names from [`SECTION_NAMES`]); others are `skipped`.
    pub sections: BTreeSet<String>,
    /// Drop CNI log events older than this.
    pub since: Option<Duration>,
    pub log_dir: PathBuf,
    pub log_budget: cnilogs::Budget,
    pub conntrack_sample: usize,
    /// Whole-collection budget.
    pub timeout: Duration,
    pub imds_endpoint: String,
    pub no_imds: bool,
    pub ipamd_endpoint: String,
    pub cni_env: Option<PathBuf>,
    pub cni_conf_dir: PathBuf,
    /// The command line, recorded in `agent.inputs`.
    pub inputs: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sections: SECTION_NAMES.iter().map(|s| s.to_string()).collect(),
            since: None,
            log_dir: PathBuf::from(DEFAULT_LOG_DIR),
            log_budget: cnilogs::Budget::default(),
            conntrack_sample: DEFAULT_CONNTRACK_SAMPLE,
            timeout: DEFAULT_TIMEOUT,
            imds_endpoint: DEFAULT_IMDS_ENDPOINT.to_string(),
            no_imds: false,
            ipamd_endpoint: DEFAULT_IPAMD_ENDPOINT.to_string(),
            cni_env: None,
            cni_conf_dir: PathBuf::from(DEFAULT_CNI_CONF_DIR),
            inputs: Vec::new(),
        }
    }
}

impl Options {
    pub fn wants(&self, section: &str) -> bool {
        self.sections.contains(section)
    }
}

/// Deadline of one collector's own work.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + d,
        }
    }

    /// Time left (at least 1 ms, so a timeout still fires as a timeout).
    pub fn remaining(&self) -> Duration {
        self.at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// `d`, but no later than this deadline.
    pub fn cap(&self, d: Duration) -> Duration {
        d.min(self.remaining())
    }
}

/// Limits of one section: its hard cut-off and its own (earlier) deadline.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    hard: Duration,
}

impl Limit {
    pub fn new(budget: Duration, cap: Option<Duration>) -> Limit {
        let hard = match cap {
            Some(c) => c.min(budget),
            None => budget,
        };
        Limit { hard }
    }

    /// What is left of this limit `start.elapsed()` after `start` (for steps run one after
    /// the other under one limit).
    pub fn left_since(&self, start: Instant) -> Limit {
        Limit {
            hard: self
                .hard
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(1)),
        }
    }

    pub fn deadline(&self) -> Deadline {
        Deadline::after(
            self.hard
                .saturating_sub(GRACE)
                .max(self.hard / 2)
                .max(Duration::from_millis(50)),
        )
    }
}

/// Run one section's collector under its hard limit and stamp its duration.
pub(crate) async fn timed<T, F>(name: &str, limit: Limit, f: F) -> Section<T>
where
    F: Future<Output = Section<T>>,
{
    timed_with(name, limit, async { (f.await, ()) }).await.0
}

/// [`timed`] for a collector that also returns something beside its section (`E::default()`
/// when it timed out).
pub(crate) async fn timed_with<T, E, F>(name: &str, limit: Limit, f: F) -> (Section<T>, E)
where
    E: Default,
    F: Future<Output = (Section<T>, E)>,
{
    let start = Instant::now();
    let (mut s, extra) = match tokio::time::timeout(limit.hard, f).await {
        Ok(r) => r,
        Err(_) => (
            Section::failed(format!(
                "{name}: timed out after {}",
                crate::duration::format(limit.hard)
            )),
            E::default(),
        ),
    };
    s.duration_ms = start.elapsed().as_millis() as u64;
    (s, extra)
}

fn skipped<T>() -> Section<T> {
    Section::skipped("not requested (--sections)")
}

fn pick<T>(want: bool, s: Section<T>) -> Section<T> {
    if want {
        s
    } else {
        skipped()
    }
}

/// Collect a snapshot. Never fails: every problem ends up in a section's status.
pub async fn collect(opts: &Options) -> Snapshot {
    collect_with(opts, false).await.0
}

/// [`collect`] for writing out: with `defer_iptables`, big iptables dumps are kept as text
/// plus an index (see [`iptables::collect`]) and must be written with
/// [`crate::snapshot_out::write`], which parses their rules as it goes.
pub async fn collect_with(
    opts: &Options,
    defer_iptables: bool,
) -> (Snapshot, iptables::DeferredTexts) {
    let started = Instant::now();
    let mut snap = Snapshot::new(AgentInfo {
        name: "node-agent".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: opts.inputs.clone(),
    });
    snap.collected_at = crate::duration::rfc3339(SystemTime::now());
    snap.hostname = node::read_hostname().unwrap_or_default();

    let budget = opts.timeout;
    let want_node = opts.wants("node");
    let net_needs = netlink::Wanted {
        links: opts.wants("links") || want_node,
        addresses: opts.wants("addresses") || want_node,
        neighbours: opts.wants("neighbours"),
        routes: opts.wants("routes") || want_node,
        rules: opts.wants("rules"),
    };

    let net_fut = async {
        if net_needs.any() {
            let limit = Limit::new(budget, Some(CAP_NETLINK));
            netlink::collect(net_needs, limit).await
        } else {
            netlink::NetSections::default()
        }
    };
    let imds_fut = async {
        if want_node {
            let limit = Limit::new(budget, Some(CAP_NODE));
            let start = Instant::now();
            let r = match tokio::time::timeout(limit.hard, node::imds(opts, limit.deadline())).await
            {
                Ok(r) => r,
                Err(_) => node::ImdsResult::failed(format!(
                    "IMDS: timed out after {}",
                    crate::duration::format(limit.hard)
                )),
            };
            Some((r, start.elapsed()))
        } else {
            None
        }
    };
    let ipt_fut = async {
        if opts.wants("iptables") {
            let limit = Limit::new(budget, None);
            timed_with(
                "iptables",
                limit,
                iptables::collect(limit.deadline(), defer_iptables),
            )
            .await
        } else {
            (skipped(), Vec::new())
        }
    };
    let ct_fut = async {
        if opts.wants("conntrack") {
            let limit = Limit::new(budget, None);
            timed(
                "conntrack",
                limit,
                conntrack::collect(opts.conntrack_sample, limit.deadline()),
            )
            .await
        } else {
            skipped()
        }
    };
    let sys_fut = async {
        if opts.wants("sysctls") {
            let limit = Limit::new(budget, Some(CAP_SYSCTLS));
            timed("sysctls", limit, sysctl::collect(limit.deadline())).await
        } else {
            skipped()
        }
    };
    let cni_fut = async {
        if opts.wants("cni") {
            let limit = Limit::new(budget, Some(CAP_CNI));
            timed("cni", limit, cni::collect(opts, limit.deadline())).await
        } else {
            skipped()
        }
    };
    let logs_fut = async {
        if opts.wants("cni_logs") {
            let limit = Limit::new(budget, None);
            timed("cni_logs", limit, cnilogs::collect(opts, limit.deadline())).await
        } else {
            skipped()
        }
    };

    let (net, imds, ipt, ct, sys, cni, logs) =
        tokio::join!(net_fut, imds_fut, ipt_fut, ct_fut, sys_fut, cni_fut, logs_fut);

    snap.node = match imds {
        Some((r, took)) => {
            let mut s = node::assemble(r, &net);
            s.duration_ms = took.as_millis() as u64;
            s
        }
        None => skipped(),
    };
    snap.links = pick(opts.wants("links"), net.links);
    snap.addresses = pick(opts.wants("addresses"), net.addresses);
    snap.neighbours = pick(opts.wants("neighbours"), net.neighbours);
    snap.routes = pick(opts.wants("routes"), net.routes);
    snap.rules = pick(opts.wants("rules"), net.rules);
    let (ipt, ipt_texts) = ipt;
    snap.iptables = ipt;
    snap.conntrack = ct;
    snap.sysctls = sys;
    snap.cni = cni;
    snap.cni_logs = logs;
    cni::version_from_logs(&mut snap.cni, &snap.cni_logs);
    snap.duration_ms = started.elapsed().as_millis() as u64;
    (snap, ipt_texts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use model::SectionStatus;

    /// IMDS and ipamd that accept connections and never answer: the collection still ends
    /// within the budget, and says which request timed out.
    #[tokio::test]
    async fn silent_endpoints_do_not_exceed_the_budget() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let logs = tempfile::tempdir().unwrap();
        let conf = tempfile::tempdir().unwrap();
        let opts = Options {
            sections: ["node", "cni", "cni_logs"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            timeout: Duration::from_millis(1500),
            imds_endpoint: format!("http://{addr}"),
            ipamd_endpoint: format!("http://{addr}"),
            log_dir: logs.path().to_path_buf(),
            cni_conf_dir: conf.path().to_path_buf(),
            ..Default::default()
        };
        let start = Instant::now();
        let snap = collect(&opts).await;
        let took = start.elapsed();
        server.abort();
        assert!(took < Duration::from_millis(3500), "took {took:?}");
        assert!(snap.duration_ms < 3500);
        assert_eq!(snap.schema_version, model::SCHEMA_VERSION);
        assert_eq!(snap.links.status, SectionStatus::Skipped);
        assert_eq!(snap.iptables.status, SectionStatus::Skipped);
        assert_eq!(snap.cni_logs.status, SectionStatus::Ok);
        let node_reason = snap.node.reason.clone().unwrap_or_default();
        assert!(node_reason.contains("timed out"), "{node_reason}");
        assert!(
            snap.cni
                .warnings
                .iter()
                .chain(snap.cni.reason.iter())
                .any(|w| w.contains("timed out")),
            "{:?} {:?}",
            snap.cni.reason,
            snap.cni.warnings
        );
    }

    #[test]
    fn limits_leave_grace_for_own_timeouts() {
        let l = Limit::new(Duration::from_secs(10), Some(Duration::from_secs(6)));
        assert_eq!(l.hard, Duration::from_secs(6));
        let d = l.deadline().remaining();
        assert!(
            d <= Duration::from_millis(5700) && d > Duration::from_millis(5000),
            "{d:?}"
        );
        let tiny = Limit::new(Duration::from_millis(200), None);
        assert!(tiny.deadline().remaining() <= Duration::from_millis(200));
    }
}
