//! `node-agent serve`: a snapshot every `--interval` (jittered), a content-based change
//! history on disk, findings recomputed every round (held for `--hold` rounds, cleared when
//! the fault clears), and a local API with Prometheus metrics.
//!
//! The loop is generic over a [`SnapshotSource`], so the history, the findings and the API
//! are tested without root with scripted snapshots; the real source is
//! [`crate::collect::collect`], tested in network namespaces.
//!
//! Cadence: every section runs every round, except `iptables` and `conntrack` with
//! `--slow-interval DUR` ([`SLOW_SECTIONS`]): those two (the dumps that grow with a big
//! node's 100k rules and 250k flows) are then collected at most once per DUR, and the rounds
//! in between carry the last collection of them forward (with a warning saying from when),
//! so they are neither diffed as "gone" nor re-dumped every 30 s. Conntrack entries are also
//! streamed into a bounded summary plus a `--conntrack-sample` sample, and CNI logs are read
//! backwards within byte budgets (see bench/README.md).

pub mod api;
pub mod findings;
pub mod history;
pub mod metrics;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use model::diff::ChangeKind;
use model::{Finding, Snapshot};
use rand::Rng;

use crate::collect::Options;

/// Where snapshots come from: the real collectors, or a script in tests.
pub trait SnapshotSource {
    fn snapshot(&self) -> impl Future<Output = Snapshot>;
}

/// The sections `--slow-interval` puts on their own cadence.
pub const SLOW_SECTIONS: [&str; 2] = ["iptables", "conntrack"];

/// The last collection of the slow sections, carried into the rounds in between.
#[derive(Debug, Clone)]
struct SlowCarry {
    at: std::time::Instant,
    collected_at: String,
    iptables: model::Section<model::IptablesSection>,
    conntrack: model::Section<model::ConntrackSection>,
}

/// The real collectors.
pub struct AgentSource {
    pub opts: Options,
    /// Collect [`SLOW_SECTIONS`] at most once per this (None: every round).
    pub slow_interval: Option<Duration>,
    slow: Mutex<Option<SlowCarry>>,
}

impl AgentSource {
    pub fn new(opts: Options, slow_interval: Option<Duration>) -> Self {
        AgentSource {
            opts,
            slow_interval,
            slow: Mutex::new(None),
        }
    }

    fn carry(&self) -> std::sync::MutexGuard<'_, Option<SlowCarry>> {
        self.slow.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SnapshotSource for AgentSource {
    async fn snapshot(&self) -> Snapshot {
        let Some(every) = self.slow_interval else {
            return crate::collect::collect(&self.opts).await;
        };
        let carried = self.carry().clone().filter(|c| c.at.elapsed() < every);
        let Some(c) = carried else {
            let snap = crate::collect::collect(&self.opts).await;
            *self.carry() = Some(SlowCarry {
                at: std::time::Instant::now(),
                collected_at: snap.collected_at.clone(),
                iptables: snap.iptables.clone(),
                conntrack: snap.conntrack.clone(),
            });
            return snap;
        };
        let mut opts = self.opts.clone();
        let wanted = |s: &str| self.opts.sections.contains(s);
        let (ipt, ct) = (wanted("iptables"), wanted("conntrack"));
        for s in SLOW_SECTIONS {
            opts.sections.remove(s);
        }
        let mut snap = crate::collect::collect(&opts).await;
        let note = format!(
            "carried over from the collection at {} (--slow-interval {})",
            c.collected_at,
            crate::duration::format(every)
        );
        if ipt {
            snap.iptables = c.iptables;
            snap.iptables.warnings.push(note.clone());
        }
        if ct {
            snap.conntrack = c.conntrack;
            snap.conntrack.warnings.push(note);
        }
        snap
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub interval: Duration,
    /// Each wait is `interval * (1 ± jitter)`, so a fleet does not collect in lockstep.
    pub jitter: f64,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub listen: Option<std::net::SocketAddr>,
    /// Rounds a finding must hold before it is reported.
    pub hold: u32,
    pub caps: history::Caps,
    /// Stop after this many rounds (benchmarks and tests); `None` runs until SIGTERM.
    pub rounds: Option<u64>,
    /// Also write the metrics to `DIR/eks-diag.prom` every round (node_exporter's textfile
    /// collector), atomically (temporary file + rename).
    pub textfile_dir: Option<PathBuf>,
}

/// File name under `--textfile-dir`.
pub const TEXTFILE: &str = "eks-diag.prom";

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_STATE_DIR: &str = "/var/lib/eks-diag";
pub const DEFAULT_SOCKET: &str = "/run/eks-diag/agent.sock";

/// State shared between the loop and the API.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<State>,
}

/// What the API and `/metrics` read.
#[derive(Debug)]
pub struct State {
    pub latest: Option<Arc<Snapshot>>,
    pub findings: Vec<Finding>,
    pub pending: usize,
    pub hold_rounds: u32,
    pub rounds: u64,
    pub last_success: Option<Timestamp>,
    pub last_tick: Timestamp,
    /// Longest expected gap between rounds (interval + jitter + collection budget).
    pub max_gap: Duration,
    pub history: history::History,
    pub changes_by_kind: BTreeMap<ChangeKind, u64>,
    /// The last error storing history or snapshots, if the last round had one.
    pub store_error: Option<String>,
}

impl State {
    /// The loop ticked recently enough (liveness: the loop, not the node's health).
    pub fn fresh(&self) -> bool {
        let age = Timestamp::now().duration_since(self.last_tick);
        age.as_secs_f64() <= self.max_gap.as_secs_f64() * 3.0
    }
}

impl Shared {
    /// A fixed state, as if one round had collected `snapshot` and the history held
    /// `changes`: no collector, no state directory, no root. The API is then served over
    /// it by [`api::serve_connection`] (the daemon-HTTP fuzz target and its tests).
    pub fn fixed(snapshot: Snapshot, changes: Vec<model::diff::Change>) -> Arc<Shared> {
        let now = Timestamp::now();
        let findings = analysis::analyze(&snapshot).findings;
        Arc::new(Shared {
            inner: Mutex::new(State {
                latest: Some(Arc::new(snapshot)),
                findings,
                pending: 0,
                hold_rounds: 1,
                rounds: 1,
                last_success: Some(now),
                last_tick: now,
                max_gap: DEFAULT_INTERVAL,
                history: history::History::in_memory(
                    // Fixed means fixed: nothing ages out of it.
                    history::Caps {
                        max_age: Duration::MAX,
                        ..history::Caps::default()
                    },
                    changes,
                    now,
                ),
                changes_by_kind: BTreeMap::new(),
                store_error: None,
            }),
        })
    }

    /// The state; a poisoned lock (a panic elsewhere) still yields the data.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("state directory: {0}")]
    History(#[from] history::HistoryError),
    #[error("API: {0}")]
    Api(#[from] api::ApiError),
    #[error("installing the signal handler: {0}")]
    Signal(std::io::Error),
}

fn jittered(interval: Duration, jitter: f64) -> Duration {
    let j = jitter.clamp(0.0, 0.5);
    if j == 0.0 {
        return interval;
    }
    let f = rand::thread_rng().gen_range(1.0 - j..=1.0 + j);
    interval.mul_f64(f)
}

/// Run until SIGTERM/SIGINT (or `rounds`), then flush the history.
pub async fn run<S: SnapshotSource>(
    source: S,
    cfg: ServeConfig,
    collect_budget: Duration,
) -> Result<(), ServeError> {
    let (hist, last) = history::History::open(&cfg.state_dir, cfg.caps)?;
    for p in &hist.problems {
        eprintln!("node-agent serve: {p}");
    }
    let shared = Arc::new(Shared {
        inner: Mutex::new(State {
            latest: None,
            findings: Vec::new(),
            pending: 0,
            hold_rounds: cfg.hold.max(1),
            rounds: 0,
            last_success: None,
            last_tick: Timestamp::now(),
            max_gap: cfg.interval.mul_f64(1.0 + cfg.jitter.clamp(0.0, 0.5)) + collect_budget,
            history: hist,
            changes_by_kind: BTreeMap::new(),
            store_error: None,
        }),
    });
    let ctx = api::Ctx::new(shared.clone(), metrics::registry(shared.clone()));
    let unix = api::bind_unix(&cfg.socket)?;
    let mut servers = vec![tokio::spawn(api::serve_unix(unix, ctx.clone()))];
    if let Some(addr) = cfg.listen {
        let tcp = api::bind_tcp(addr).await?;
        servers.push(tokio::spawn(api::serve_tcp(tcp, ctx.clone())));
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    eprintln!(
        "node-agent serve: every {} on {}{}, state in {}",
        crate::duration::format(cfg.interval),
        cfg.socket.display(),
        cfg.listen.map(|a| format!(" and {a}")).unwrap_or_default(),
        cfg.state_dir.display()
    );

    let mut previous = last.map(Arc::new);
    let mut hold = findings::Hold::new(cfg.hold);
    let mut stop = false;
    while !stop {
        let snap = tokio::select! {
            s = source.snapshot() => s,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        round(&shared, &mut hold, &mut previous, snap);
        if let Some(dir) = &cfg.textfile_dir {
            if let Err(e) = write_textfile(dir, &ctx.registry) {
                eprintln!("node-agent serve: textfile: {e}");
            }
        }
        let done = {
            let st = shared.lock();
            cfg.rounds.is_some_and(|n| st.rounds >= n)
        };
        if done {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(cfg.interval, cfg.jitter)) => {}
            _ = term.recv() => stop = true,
            _ = int.recv() => stop = true,
        }
    }
    for s in &servers {
        s.abort();
    }
    let mut st = shared.lock();
    let flushed = st.history.flush();
    let _ = std::fs::remove_file(&cfg.socket);
    flushed?;
    eprintln!(
        "node-agent serve: stopped after {} rounds; history flushed ({} changes)",
        st.rounds,
        st.history.len()
    );
    Ok(())
}

/// The metrics as `DIR/eks-diag.prom`, replaced atomically.
pub fn write_textfile(
    dir: &std::path::Path,
    registry: &prometheus_client::registry::Registry,
) -> Result<(), String> {
    let text = metrics::render(registry).map_err(|e| format!("encoding the metrics: {e}"))?;
    history::write_atomic(&dir.join(TEXTFILE), text.as_bytes()).map_err(|e| e.to_string())
}

/// One round: diff, history, findings, publish.
pub fn round(
    shared: &Shared,
    hold: &mut findings::Hold,
    previous: &mut Option<Arc<Snapshot>>,
    snap: Snapshot,
) {
    let now = Timestamp::now();
    let changes = match previous.as_deref() {
        Some(p) => model::diff::diff(p, &snap),
        None => Vec::new(),
    };
    let report = analysis::analyze(&snap);
    let (reported, pending) = hold.update(report.findings);
    let first = previous.is_none();
    let snap = Arc::new(snap);
    let mut st = shared.lock();
    for c in &changes {
        *st.changes_by_kind.entry(c.kind).or_default() += 1;
    }
    let changed = !changes.is_empty();
    st.history.record(changes, now);
    let mut stored = st.history.flush();
    if stored.is_ok() && (changed || first) {
        stored = st.history.save_snapshot(&snap);
    }
    match stored {
        Ok(()) => {
            st.store_error = None;
            st.last_success = Some(now);
        }
        Err(e) => {
            eprintln!("node-agent serve: {e}");
            st.store_error = Some(e.to_string());
        }
    }
    st.findings = reported;
    st.pending = pending;
    st.rounds += 1;
    st.last_tick = now;
    st.latest = Some(snap.clone());
    drop(st);
    *previous = Some(snap);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::cell::Cell;

    /// Snapshots with `net.ipv4.ip_forward` taken from a script, one per round.
    struct Scripted {
        forward: Vec<&'static str>,
        next: Cell<usize>,
    }

    impl SnapshotSource for Scripted {
        fn snapshot(&self) -> impl Future<Output = Snapshot> {
            let i = self.next.get();
            self.next.set(i + 1);
            let v = self.forward[i.min(self.forward.len() - 1)];
            let mut values = BTreeMap::new();
            values.insert("net.ipv4.ip_forward".to_string(), v.to_string());
            let snap = Snapshot {
                schema_version: model::SCHEMA_VERSION,
                hostname: "n1".into(),
                collected_at: crate::duration::rfc3339_ts(Timestamp::now()),
                sysctls: model::Section::ok(model::Sysctls { values }),
                ..Default::default()
            };
            std::future::ready(snap)
        }
    }

    #[tokio::test]
    async fn a_fault_is_recorded_reported_and_cleared_without_root() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ServeConfig {
            interval: Duration::from_millis(10),
            jitter: 0.0,
            state_dir: dir.path().join("state"),
            socket: dir.path().join("s.sock"),
            listen: None,
            hold: 2,
            caps: history::Caps::default(),
            rounds: Some(5),
            textfile_dir: Some(dir.path().join("textfile")),
        };
        std::fs::create_dir_all(dir.path().join("textfile")).unwrap();
        let source = Scripted {
            forward: vec!["1", "0", "0", "1", "1"],
            next: Cell::new(0),
        };
        run(source, cfg.clone(), Duration::from_secs(1))
            .await
            .unwrap();
        assert!(!cfg.socket.exists(), "socket removed on exit");
        let prom = std::fs::read_to_string(dir.path().join("textfile").join(TEXTFILE)).unwrap();
        assert!(prom.contains("eksdiag_rounds_total 5"), "{prom}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("textfile"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
        let text = std::fs::read_to_string(cfg.state_dir.join(history::CHANGES_FILE)).unwrap();
        let changes: Vec<model::diff::Change> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let described: Vec<String> = changes.iter().map(|c| c.describe()).collect();
        assert_eq!(
            described,
            [
                "net.ipv4.ip_forward: ~1 -> 0",
                "net.ipv4.ip_forward: ~0 -> 1"
            ]
        );

        // The hold, round by round, on the same script.
        let shared = Shared {
            inner: Mutex::new(State {
                latest: None,
                findings: vec![],
                pending: 0,
                hold_rounds: 2,
                rounds: 0,
                last_success: None,
                last_tick: Timestamp::now(),
                max_gap: Duration::from_secs(1),
                history: history::History::open(&dir.path().join("s2"), history::Caps::default())
                    .unwrap()
                    .0,
                changes_by_kind: BTreeMap::new(),
                store_error: None,
            }),
        };
        let source = Scripted {
            forward: vec!["1", "0", "0", "1"],
            next: Cell::new(0),
        };
        let mut hold = findings::Hold::new(2);
        let mut prev = None;
        let mut seen = vec![];
        for _ in 0..4 {
            round(&shared, &mut hold, &mut prev, source.snapshot().await);
            let st = shared.lock();
            seen.push((
                st.findings
                    .iter()
                    .any(|f| f.rule == "sysctl.ip-forward-disabled"),
                st.pending,
            ));
        }
        assert_eq!(seen, [(false, 0), (false, 1), (true, 0), (false, 0)]);
        assert_eq!(shared.lock().changes_by_kind[&ChangeKind::Sysctl], 2);
    }
}
