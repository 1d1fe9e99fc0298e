//! The `diag analyze` report contract: what `diag analyze -o json` prints, and what the text
//! and markdown renderers, the TUI and bundles read.
//!
//! The per-node expected-state facts are a type parameter `F`: they are derived by the
//! analysis (`analysis::Facts`, with the provenance of every value), and `model` depends on
//! nothing of ours. `diag` uses `AnalyzeReport<analysis::Facts>`; its JSON Schema is
//! [`crate::schema::report_schema_for`] over that type (`diag schema report`,
//! `model/schema/report.v1.schema.json`).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Finding, NodeReport, SectionStatus, Severity, Snapshot};

/// Most parse warnings kept per section in a [`SectionNote`] (all are in the snapshot).
pub const WARNINGS_SHOWN: usize = 5;

/// Everything `diag analyze` reports. `-o json` is this, serialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyzeReport<F> {
    /// Findings at or above this severity make the exit code 1.
    pub fail_on: Severity,
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSummary>,
    pub nodes: Vec<NodeResult<F>>,
    /// Inputs that could not be read (exit code 2).
    pub input_errors: Vec<InputProblem>,
}

/// An input (file, directory, node of a fleet run) that could not be read, or a problem with
/// part of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InputProblem {
    pub input: String,
    pub error: String,
}

/// One analysed node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeResult<F> {
    pub node: String,
    /// The input it came from.
    pub input: String,
    /// `node-agent 0.1.0`, `diag-capture`, ...
    pub agent: String,
    /// RFC 3339 time the snapshot was collected (absent when unknown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collected_at: String,
    /// Sections whose status is not `ok`.
    pub sections: Vec<SectionNote>,
    /// Problems with parts of this input (unparseable or truncated files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_problems: Vec<String>,
    pub report: NodeReport,
    /// The node's expected state with the provenance of every value (`analysis::Facts`).
    pub facts: F,
    /// Set when the snapshot is the node daemon's latest (`node-agent serve`) rather than a
    /// fresh collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonSource>,
}

/// Where a daemon-served snapshot came from and how old it was when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonSource {
    /// The daemon's unix socket on the node.
    pub socket: String,
    /// Seconds between the snapshot's `collected_at` and the time diag read it.
    pub age_seconds: i64,
}

impl DaemonSource {
    /// For a snapshot served by a daemon (see [`crate::Snapshot::daemon_source`]), its age
    /// at `now`.
    pub fn of(snap: &crate::Snapshot, now_unix: i64, collected_unix: Option<i64>) -> Option<Self> {
        let socket = snap.daemon_source()?;
        Some(DaemonSource {
            socket: socket.to_string(),
            age_seconds: collected_unix.map_or(-1, |c| (now_unix - c).max(0)),
        })
    }
}

/// A section whose status is not `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SectionNote {
    pub section: String,
    pub status: SectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The first [`WARNINGS_SHOWN`] parse warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub warnings_total: usize,
}

impl SectionNote {
    /// The sections of `s` that are not ok, with their first warnings.
    pub fn from_snapshot(s: &Snapshot) -> Vec<SectionNote> {
        let warnings = section_warnings(s);
        s.section_statuses()
            .into_iter()
            .filter(|(_, st, _)| *st != SectionStatus::Ok)
            .map(|(name, status, reason)| {
                let w = warnings.get(name).copied().unwrap_or_default();
                SectionNote {
                    section: name.to_string(),
                    status,
                    reason: reason.map(str::to_string),
                    warnings_total: w.len(),
                    warnings: w.iter().take(WARNINGS_SHOWN).cloned().collect(),
                }
            })
            .collect()
    }
}

fn section_warnings(s: &Snapshot) -> BTreeMap<&'static str, &[String]> {
    BTreeMap::from([
        ("node", s.node.warnings.as_slice()),
        ("links", s.links.warnings.as_slice()),
        ("addresses", s.addresses.warnings.as_slice()),
        ("neighbours", s.neighbours.warnings.as_slice()),
        ("routes", s.routes.warnings.as_slice()),
        ("rules", s.rules.warnings.as_slice()),
        ("iptables", s.iptables.warnings.as_slice()),
        ("conntrack", s.conntrack.warnings.as_slice()),
        ("sysctls", s.sysctls.warnings.as_slice()),
        ("cni", s.cni.warnings.as_slice()),
        ("cni_logs", s.cni_logs.warnings.as_slice()),
    ])
}

/// Nodes × worst severity, counts by rule, and the cross-node findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSummary {
    pub nodes: Vec<FleetRow>,
    pub by_rule: Vec<RuleCount>,
    /// Cross-node findings (`fleet.*` rules, including `fleet.node-unreachable`).
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FleetRow {
    pub node: String,
    /// Highest severity of its findings; `null` when it has none.
    pub worst: Option<Severity>,
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
    /// Sections that are not ok.
    pub degraded_sections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuleCount {
    pub rule: String,
    pub severity: Severity,
    /// Nodes with at least one such finding.
    pub nodes: usize,
}

impl FleetSummary {
    pub fn build<F>(nodes: &[NodeResult<F>], findings: Vec<Finding>) -> FleetSummary {
        let rows = nodes
            .iter()
            .map(|n| {
                let c = |s| n.report.findings.iter().filter(|f| f.severity == s).count();
                FleetRow {
                    node: n.node.clone(),
                    worst: n.report.worst(),
                    errors: c(Severity::Error),
                    warnings: c(Severity::Warning),
                    info: c(Severity::Info),
                    degraded_sections: n.sections.len(),
                }
            })
            .collect();
        let mut counts: BTreeMap<(String, Severity), usize> = BTreeMap::new();
        for n in nodes {
            let mut seen = BTreeSet::new();
            for f in &n.report.findings {
                if seen.insert((f.rule.clone(), f.severity)) {
                    *counts.entry((f.rule.clone(), f.severity)).or_default() += 1;
                }
            }
        }
        let mut by_rule: Vec<RuleCount> = counts
            .into_iter()
            .map(|((rule, severity), nodes)| RuleCount {
                rule,
                severity,
                nodes,
            })
            .collect();
        by_rule.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.nodes.cmp(&a.nodes))
                .then(a.rule.cmp(&b.rule))
        });
        FleetSummary {
            nodes: rows,
            by_rule,
            findings,
        }
    }
}

/// A fact that was guessed from kernel state rather than read (IMDS, ipamd, env), for the
/// "inferred facts" block of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InferredFact {
    /// The fact's name (`primary_ipv4`).
    pub name: String,
    /// Its value, as text (`10.0.1.5`, `10.0.0.0/16, 172.20.0.0/16`).
    pub value: String,
    /// What it was inferred from (`default route src`).
    pub detail: String,
}

/// Facts that can list which of their values were inferred; the renderers read this instead
/// of picking the facts apart by name.
pub trait InferredFacts {
    fn inferred_facts(&self) -> Vec<InferredFact>;
}
