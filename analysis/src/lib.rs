//! Analysis: the expected state of the Amazon VPC CNI on a node ([`facts`]) and one rule per
//! module ([`rules`]) comparing it with a [`model::Snapshot`].
//!
//! Rules are pure functions. A rule whose inputs are unknown is reported in
//! [`NodeReport::skipped`] with the reason rather than guessing; a rule that relied on an
//! inferred fact lists it in [`Finding::inferred`]. Healthy nodes of every supported layout
//! produce no warning or error: when in doubt a rule says `info`.

use model::{Finding, NodeReport, Severity, SkippedCheck, Snapshot};

pub mod facts;
pub mod nat;
pub mod podlog;
pub mod programmed;
pub mod rules;
pub mod trace;
pub mod unreachable;
pub mod views;

mod rule;

pub use facts::Facts;

use nat::AwsNat;

/// One snapshot with what every consumer derives from it, computed once: the expected-state
/// [`Facts`] and the AWS nat/mangle state of the analysed iptables backend. The rules, the
/// `snat`/`routes` views and `diag check` all read this instead of rebuilding it.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    pub snapshot: &'a Snapshot,
    pub facts: Facts,
    /// `None` when the snapshot has no usable iptables dump.
    pub nat: Option<AwsNat<'a>>,
}

impl<'a> Prepared<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Prepared<'a> {
        Prepared::with_facts(snapshot, Facts::from_snapshot(snapshot))
    }

    /// With facts the caller already derived.
    pub fn with_facts(snapshot: &'a Snapshot, facts: Facts) -> Prepared<'a> {
        Prepared {
            snapshot,
            facts,
            nat: facts::analysed_dump(snapshot)
                .map(|d| AwsNat::from_dump(d).with_paste_filters(snapshot)),
        }
    }
}

/// What a rule checks, for `diag rules` and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    /// Stable id (`snat.chain-missing`).
    pub id: &'static str,
    /// The severity it usually reports (a finding may be lower, e.g. info on a v1.23 node).
    pub default_severity: Severity,
    pub title: &'static str,
    /// What is compared with what.
    pub checks: &'static str,
    /// Snapshot sections it needs (see [`model::SECTION_NAMES`]).
    pub needs: &'static [&'static str],
}

/// Every rule, node-level first, then fleet rules.
pub fn catalogue() -> &'static [RuleInfo] {
    rules::CATALOGUE
}

/// Run every node-level rule over one snapshot.
pub fn analyze(snapshot: &Snapshot) -> NodeReport {
    analyze_prepared(&Prepared::new(snapshot))
}

/// Run every node-level rule with precomputed facts.
pub fn analyze_with(snapshot: &Snapshot, facts: &Facts) -> NodeReport {
    analyze_prepared(&Prepared::with_facts(snapshot, facts.clone()))
}

/// Run every node-level rule over a prepared snapshot.
pub fn analyze_prepared(p: &Prepared<'_>) -> NodeReport {
    let ctx = rule::Ctx::new(p);
    let mut report = NodeReport {
        node: p.snapshot.display_name(),
        layout: p.facts.layout_line(),
        ..Default::default()
    };
    for (id, check) in rules::NODE_RULES {
        match check(&ctx) {
            Ok(findings) => {
                report.evaluated.push(id.to_string());
                report.findings.extend(findings);
            }
            Err(reason) => report.skipped.push(SkippedCheck {
                rule: id.to_string(),
                reason,
            }),
        }
    }
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
    });
    report
}

/// Cross-node rules: `fleet.config-drift`, `fleet.duplicate-pod-ip`.
pub fn analyze_fleet(snapshots: &[&Snapshot]) -> Vec<Finding> {
    rules::fleet::check(snapshots)
}
