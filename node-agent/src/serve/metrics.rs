//! `/metrics`: derived at scrape time from the latest round, encoded by `prometheus-client`.
//!
//! Names follow node_exporter where it has them (`node_nf_conntrack_entries`,
//! `node_nf_conntrack_entries_limit`, `node_nf_conntrack_stat_*`); everything else is
//! `eksdiag_*`. Finding gauges exist for every catalogued rule, so they drop back to 0 when
//! a fault clears instead of disappearing.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use model::diff::ChangeKind;
use model::SectionStatus;

use super::Shared;
use std::sync::Arc;

/// node_exporter's conntrack stat names (collector/conntrack_linux.go), in its order.
const CONNTRACK_STATS: &[&str] = &[
    "found",
    "invalid",
    "ignore",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "search_restart",
];

const STATUSES: &[(SectionStatus, &str)] = &[
    (SectionStatus::Ok, "ok"),
    (SectionStatus::Partial, "partial"),
    (SectionStatus::Unavailable, "unavailable"),
    (SectionStatus::Failed, "failed"),
    (SectionStatus::Skipped, "skipped"),
];

#[derive(Debug)]
struct RoundCollector {
    shared: Arc<Shared>,
}

type Labels = Vec<(&'static str, String)>;

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for RoundCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let st = self.shared.lock();
        counter(
            &mut enc,
            "eksdiag_rounds",
            "Snapshot rounds completed since the daemon started.",
            &[(vec![], st.rounds)],
        )?;
        if let Some(t) = st.last_success {
            gauge(
                &mut enc,
                "eksdiag_last_successful_round_timestamp_seconds",
                "Unix time of the last round whose snapshot and history were stored.",
                &[(vec![], t.as_second() as f64)],
            )?;
        }
        let kinds: Vec<(Labels, u64)> = ChangeKind::ALL
            .iter()
            .map(|k| {
                let n = st.changes_by_kind.get(k).copied().unwrap_or(0);
                (vec![("kind", k.as_str().to_string())], n)
            })
            .collect();
        counter(
            &mut enc,
            "eksdiag_changes",
            "Changes recorded in the history since the daemon started, by kind.",
            &kinds,
        )?;
        gauge(
            &mut enc,
            "eksdiag_history_problems",
            "Unreadable history files or lines skipped when the state directory was loaded.",
            &[(vec![], st.history.problems.len() as f64)],
        )?;
        // Every catalogued rule at its default severity, plus whatever is reported now.
        let mut findings: std::collections::BTreeMap<(String, String), f64> = analysis::catalogue()
            .iter()
            .map(|r| ((r.id.to_string(), r.default_severity.to_string()), 0.0))
            .collect();
        for f in &st.findings {
            *findings
                .entry((f.rule.clone(), f.severity.to_string()))
                .or_default() += 1.0;
        }
        let rows: Vec<(Labels, f64)> = findings
            .into_iter()
            .map(|((rule, severity), n)| (vec![("rule", rule), ("severity", severity)], n))
            .collect();
        gauge(
            &mut enc,
            "eksdiag_findings",
            "Findings reported in the latest round (held for --hold rounds), by rule and severity.",
            &rows,
        )?;
        gauge(
            &mut enc,
            "eksdiag_findings_pending",
            "Findings seen but not yet held for --hold consecutive rounds.",
            &[(vec![], st.pending as f64)],
        )?;
        let Some(snap) = st.latest.clone() else {
            return Ok(());
        };
        drop(st);
        let mut dur = Vec::new();
        let mut status = Vec::new();
        let durations = [
            ("node", snap.node.duration_ms),
            ("links", snap.links.duration_ms),
            ("addresses", snap.addresses.duration_ms),
            ("neighbours", snap.neighbours.duration_ms),
            ("routes", snap.routes.duration_ms),
            ("rules", snap.rules.duration_ms),
            ("iptables", snap.iptables.duration_ms),
            ("conntrack", snap.conntrack.duration_ms),
            ("sysctls", snap.sysctls.duration_ms),
            ("cni", snap.cni.duration_ms),
            ("cni_logs", snap.cni_logs.duration_ms),
        ];
        for ((name, s, _), (_, ms)) in snap.section_statuses().into_iter().zip(durations) {
            dur.push((vec![("section", name.to_string())], ms as f64 / 1000.0));
            for (v, label) in STATUSES {
                let on = if *v == s { 1.0 } else { 0.0 };
                status.push((
                    vec![("section", name.to_string()), ("status", label.to_string())],
                    on,
                ));
            }
        }
        gauge(
            &mut enc,
            "eksdiag_section_collection_duration_seconds",
            "Wall time of each section in the latest round.",
            &dur,
        )?;
        gauge(
            &mut enc,
            "eksdiag_section_status",
            "1 for the status each section had in the latest round.",
            &status,
        )?;
        gauge(
            &mut enc,
            "eksdiag_round_duration_seconds",
            "Wall time of the latest collection.",
            &[(vec![], snap.duration_ms as f64 / 1000.0)],
        )?;
        if let Some(ct) = snap.conntrack.get() {
            if let Some(c) = ct.count {
                gauge(
                    &mut enc,
                    "node_nf_conntrack_entries",
                    "Number of currently allocated flow entries for connection tracking.",
                    &[(vec![], c as f64)],
                )?;
            }
            if let Some(m) = ct.max {
                gauge(
                    &mut enc,
                    "node_nf_conntrack_entries_limit",
                    "Maximum size of connection tracking table.",
                    &[(vec![], m as f64)],
                )?;
            }
            let totals = if ct.totals.is_empty() {
                model::conntrack::sum_stats(&ct.stats)
            } else {
                ct.totals.clone()
            };
            for stat in CONNTRACK_STATS {
                if let Some(v) = totals.get(*stat) {
                    let mut help = String::new();
                    let _ = write!(help, "Conntrack statistic `{stat}`, summed over CPUs.");
                    gauge(
                        &mut enc,
                        &format!("node_nf_conntrack_stat_{stat}"),
                        &help,
                        &[(vec![], *v as f64)],
                    )?;
                }
            }
        }
        if let Some(ipt) = snap.iptables.get() {
            let mut packets = Vec::new();
            let mut bytes = Vec::new();
            for dump in &ipt.backends {
                for table in dump.tables.iter().filter(|t| t.name == "nat") {
                    for chain in table
                        .chains
                        .iter()
                        .filter(|c| c.name.starts_with(model::vpccni::SNAT_CHAIN_PREFIX))
                    {
                        for r in &chain.rules {
                            let labels: Labels = vec![
                                ("backend", dump.backend.to_string()),
                                ("chain", chain.name.to_string()),
                                ("rule", model::diff::rule_text(r).to_string()),
                            ];
                            if let Some(p) = r.packets {
                                packets.push((labels.clone(), p));
                            }
                            if let Some(b) = r.bytes {
                                bytes.push((labels, b));
                            }
                        }
                    }
                }
            }
            counter(
                &mut enc,
                "eksdiag_snat_rule_packets",
                "Packets matched by each rule of the AWS-SNAT-CHAIN-* chains (iptables counters).",
                &packets,
            )?;
            counter(
                &mut enc,
                "eksdiag_snat_rule_bytes",
                "Bytes matched by each rule of the AWS-SNAT-CHAIN-* chains (iptables counters).",
                &bytes,
            )?;
        }
        Ok(())
    }
}

/// The registry served at `/metrics`.
pub fn registry(shared: Arc<Shared>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(RoundCollector { shared }));
    r
}

/// OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}
