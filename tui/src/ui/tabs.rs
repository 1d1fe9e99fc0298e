//! Content of the node view's SNAT, Routing, Conntrack and Logs tabs, built from
//! `analysis::views` (the same data as `diag snat` / `diag routes`) and the snapshot.

use std::collections::HashSet;

use analysis::facts::{Provenance, Randomize, SnatLayout};
use analysis::views::{route_view, snat_view, SnatMode};
use model::{NodeReport, Snapshot};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::Theme;
use crate::app::LogLevel;
use crate::sanitize::owned as clean;

fn section(title: &str, theme: Theme) -> Line<'static> {
    Line::from(Span::styled(title.to_string(), theme.title()))
}

fn ok_mark(ok: Option<bool>, theme: Theme) -> Span<'static> {
    match ok {
        Some(true) => Span::styled("ok", theme.good()),
        Some(false) => Span::styled("MISMATCH", theme.bad()),
        None => Span::styled("not compared", theme.dim()),
    }
}

fn provenance(p: Provenance) -> &'static str {
    match p {
        Provenance::Imds => "imds",
        Provenance::Ipamd => "ipamd",
        Provenance::Env => "env",
        Provenance::Inferred => "inferred",
        Provenance::Default => "default",
    }
}

fn randomize(r: Randomize) -> &'static str {
    match r {
        Randomize::Prng => "prng (--random-fully)",
        Randomize::Hashrandom => "hashrandom (--random)",
        Randomize::None => "none",
    }
}

/// Evidence texts of the findings whose rule starts with one of `prefixes`: lines equal to
/// one of them are "offending" and highlighted.
fn offending(r: &NodeReport, prefixes: &[&str]) -> HashSet<String> {
    r.findings
        .iter()
        .filter(|f| prefixes.iter().any(|p| f.rule.starts_with(p)))
        .flat_map(|f| f.evidence.iter())
        .flat_map(|e| e.text.lines().map(|l| l.trim().to_string()))
        .collect()
}

fn is_offending(set: &HashSet<String>, raw: &str, evidence: &str) -> bool {
    set.contains(raw.trim()) || set.contains(evidence.trim())
}

/// nat POSTROUTING → AWS-SNAT-CHAIN-* with counters, expected vs actual beside it.
pub fn snat(s: &Snapshot, r: &NodeReport, theme: Theme) -> Vec<Line<'static>> {
    let v = snat_view(s, r);
    let mut out = Vec::new();
    let mode = match v.mode {
        SnatMode::Snat => "snat (the CNI SNATs non-VPC egress to the primary IP)",
        SnatMode::ExternalSnat => "external-snat (a NAT gateway does it; no SNAT rule expected)",
        SnatMode::Ipv6 => "ipv6 (no SNAT chain)",
        SnatMode::Unknown => "unknown (AWS_VPC_K8S_CNI_EXTERNALSNAT not known)",
    };
    let layout = match v.layout {
        SnatLayout::Single => "single AWS-SNAT-CHAIN-0",
        SnatLayout::Chained => "chained AWS-SNAT-CHAIN-0..N",
        SnatLayout::None => "no AWS-SNAT-CHAIN",
    };
    out.push(Line::from(vec![
        Span::styled("mode      ", theme.dim()),
        Span::raw(mode),
    ]));
    out.push(Line::from(vec![
        Span::styled("layout    ", theme.dim()),
        Span::raw(format!(
            "{layout}   backend {}{}",
            v.backend
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            v.cni_version
                .as_deref()
                .map(|x| format!("   cni {}", clean(x)))
                .unwrap_or_default()
        )),
    ]));
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(
        format!("{:<12}{:<34}{:<34}", "", "EXPECTED", "ACTUAL"),
        theme.title(),
    )));
    let primary = v
        .primary_ipv4
        .as_ref()
        .map(|k| format!("{} ({})", k.value, provenance(k.source)))
        .unwrap_or_else(|| "primary IP unknown".into());
    let to_source = if v.to_source.is_empty() {
        "(no SNAT rule)".to_string()
    } else {
        clean(&v.to_source.join(", "))
    };
    out.push(Line::from(vec![
        Span::styled(format!("{:<12}", "--to-source"), theme.dim()),
        Span::raw(format!("{primary:<34}{to_source:<34}")),
        ok_mark(v.to_source_ok, theme),
    ]));
    let rexp = v
        .random_expected
        .as_ref()
        .map(|k| format!("{} ({})", randomize(k.value), provenance(k.source)))
        .unwrap_or_else(|| "unknown".into());
    let ract = v
        .random_flag
        .as_deref()
        .map(clean)
        .unwrap_or_else(|| "(no SNAT rule)".into());
    out.push(Line::from(vec![
        Span::styled(format!("{:<12}", "random"), theme.dim()),
        Span::raw(format!("{rexp:<34}{ract:<34}")),
        ok_mark(v.random_ok, theme),
    ]));
    out.push(Line::from(""));
    out.push(section("CIDRs not SNATed (RETURN)", theme));
    for c in &v.cidrs {
        let (mark, style) = match (c.expected_as, c.returned) {
            (Some(_), true) => ("ok", theme.good()),
            (Some(_), false) => ("MISSING", theme.bad()),
            (None, true) => ("UNEXPECTED", theme.bad()),
            (None, false) => ("-", Style::default()),
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                "  {:<20}{:<12}{:<10}",
                c.cidr.to_string(),
                c.expected_as.unwrap_or("not expected"),
                if c.returned { "RETURN" } else { "absent" }
            )),
            Span::styled(mark, style),
        ]));
    }
    if v.cidrs.is_empty() {
        out.push(Line::from(Span::styled("  (none)", theme.dim())));
    }
    out.push(Line::from(""));
    out.push(section(
        "nat POSTROUTING → AWS-SNAT-CHAIN-*  [packets:bytes]",
        theme,
    ));
    let bad = offending(r, &["snat.", "connmark."]);
    let dump = analysis::facts::analysed_dump(s);
    match dump.and_then(|d| d.table("nat")) {
        Some(nat) => {
            let chains = nat
                .chains
                .iter()
                .filter(|c| c.name == "POSTROUTING" || c.name.starts_with("AWS-SNAT-CHAIN"));
            for c in chains {
                out.push(Line::from(Span::styled(
                    format!(
                        "  {}{}",
                        clean(&c.name),
                        c.policy
                            .as_deref()
                            .map(|p| format!(" (policy {})", clean(p)))
                            .unwrap_or_default()
                    ),
                    theme.title(),
                )));
                if c.rules.is_empty() {
                    out.push(Line::from(Span::styled("    (empty)", theme.bad())));
                }
                for rule in &c.rules {
                    let text = rule.evidence_line();
                    if is_offending(&bad, &rule.raw, &text) {
                        out.push(Line::from(Span::styled(
                            format!("  > {}", clean(&text)),
                            theme.bad(),
                        )));
                    } else {
                        out.push(Line::from(format!("    {}", clean(&text))));
                    }
                }
            }
        }
        None => out.push(Line::from(Span::styled(
            "  no nat table in the snapshot",
            theme.dim(),
        ))),
    }
    let c = &v.connmark;
    out.push(Line::from(""));
    out.push(section("connmark", theme));
    out.push(Line::from(format!(
        "  mark {}   PREROUTING jump {}   restore {}   set-mark {}   mangle rules {}",
        c.mark
            .as_ref()
            .map(|k| format!("{:#x}", k.value))
            .unwrap_or_else(|| "0x80?".into()),
        yes(c.nat_prerouting_jump),
        yes(c.nat_restore),
        yes(c.chain_set_mark),
        c.mangle_rules
            .map_or_else(|| "? (no mangle table)".to_string(), |n| n.to_string())
    )));
    out.push(Line::from(format!(
        "  fwmark rule {}",
        c.fwmark_rule
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "(none found)".into())
    )));
    if let Some(n) = &c.note {
        out.push(Line::from(Span::styled(
            format!("  note: {}", clean(n)),
            theme.dim(),
        )));
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn status(ok: Option<bool>, label: &str, theme: Theme) -> Span<'static> {
    match ok {
        Some(true) => Span::styled(format!("{label} ok  "), theme.good()),
        Some(false) => Span::styled(format!("{label} BAD  "), theme.bad()),
        None => Span::styled(format!("{label} ?  "), theme.dim()),
    }
}

/// ip rules by priority, per-ENI tables, each pod's veth / rules / route.
pub fn routing(s: &Snapshot, r: &NodeReport, theme: Theme) -> Vec<Line<'static>> {
    let v = route_view(s, r);
    let bad = offending(r, &["route.", "routing.", "rule.", "policy."]);
    let mut out = vec![section("ip rules (by priority)", theme)];
    let mut rules: Vec<&model::IpRule> = s
        .rules
        .get()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    rules.sort_by_key(|r| r.priority);
    for rule in &rules {
        let line = rule.to_ip_line();
        if bad.contains(line.trim()) {
            out.push(Line::from(Span::styled(
                format!("> {}", clean(&line)),
                theme.bad(),
            )));
        } else {
            out.push(Line::from(format!("  {}", clean(&line))));
        }
    }
    if rules.is_empty() {
        out.push(Line::from(Span::styled(
            "  (no rules in the snapshot)",
            theme.dim(),
        )));
    }
    out.push(Line::from(""));
    out.push(section("ENI route tables", theme));
    for e in &v.enis {
        out.push(Line::from(Span::styled(
            format!(
                "  table {}  {}{}  device {}  card {}{}",
                e.table,
                e.interface
                    .as_deref()
                    .map(clean)
                    .unwrap_or_else(|| "?".into()),
                e.eni
                    .as_deref()
                    .map(|x| format!(" ({})", clean(x)))
                    .unwrap_or_default(),
                e.device_number,
                e.network_card,
                if e.primary { "  primary" } else { "" }
            ),
            theme.title(),
        )));
        for route in &e.routes {
            out.push(Line::from(format!("    {}", clean(route))));
        }
        for p in &e.problems {
            out.push(Line::from(Span::styled(
                format!("  > {}", clean(p)),
                theme.bad(),
            )));
        }
    }
    if v.enis.is_empty() {
        out.push(Line::from(Span::styled("  (no ENI facts)", theme.dim())));
    }
    out.push(Line::from(""));
    out.push(section("pods", theme));
    for p in &v.pods {
        let veth_ok = match (p.veth_exists, p.veth_up) {
            (Some(true), Some(true)) => Some(true),
            (Some(false), _) | (_, Some(false)) => Some(false),
            _ => None,
        };
        let expect_1536 = p.table.is_some_and(|t| t != 254);
        let r1536_ok = Some(!expect_1536 || !p.rule_1536.is_empty());
        out.push(Line::from(vec![
            Span::raw(format!(
                "  {:<16}{:<28}{:<16}",
                p.ip.to_string(),
                p.pod.as_deref().map(clean).unwrap_or_else(|| "-".into()),
                p.veth.as_deref().map(clean).unwrap_or_else(|| "-".into()),
            )),
            status(veth_ok, "veth", theme),
            status(Some(!p.rule_512.is_empty()), "512", theme),
            status(r1536_ok, "1536", theme),
            status(Some(p.main_route.is_some()), "route", theme),
        ]));
    }
    if v.pods.is_empty() {
        out.push(Line::from(Span::styled("  (no pods known)", theme.dim())));
    }
    out
}

/// Count vs max, insert_failed, SNATed flows by pod, top destinations, contradicting flows.
pub fn conntrack(s: &Snapshot, r: &NodeReport, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(ct) = s.conntrack.get() else {
        out.push(Line::from(Span::styled(
            format!(
                "no conntrack section ({})",
                s.conntrack
                    .reason
                    .as_deref()
                    .map(clean)
                    .unwrap_or_else(|| "not collected".into())
            ),
            theme.dim(),
        )));
        return out;
    };
    let fill = match (ct.count, ct.max) {
        (Some(c), Some(m)) if m > 0 => format!("{c} / {m} ({:.0}%)", c as f64 * 100.0 / m as f64),
        (Some(c), _) => format!("{c} / ?"),
        _ => "unknown".into(),
    };
    let stats = model::conntrack::sum_stats(&ct.stats);
    let insert_failed = stats.get("insert_failed").copied().unwrap_or(0);
    let drop = stats.get("drop").copied().unwrap_or(0);
    out.push(Line::from(vec![
        Span::styled("entries        ", theme.dim()),
        Span::raw(fill),
    ]));
    out.push(Line::from(vec![
        Span::styled("insert_failed  ", theme.dim()),
        Span::styled(
            insert_failed.to_string(),
            if insert_failed > 0 {
                theme.bad()
            } else {
                Style::default()
            },
        ),
        Span::styled("   drop ", theme.dim()),
        Span::raw(drop.to_string()),
        Span::styled(
            format!(
                "   source {}   summary: {} flows, {} SNAT, {} DNAT, {} unreplied",
                clean(&ct.source),
                ct.summary.total,
                ct.summary.snat,
                ct.summary.dnat,
                ct.summary.unreplied
            ),
            theme.dim(),
        ),
    ]));
    let v = snat_view(s, r);
    if let Some(c) = &v.conntrack {
        out.push(Line::from(""));
        out.push(section(
            &format!(
                "{:<18}{:>8}{:>10}{:>10}{:>10}  NAT SOURCES",
                "SOURCE POD", "FLOWS", "EXTERNAL", "SNATED", "INT-SNAT"
            ),
            theme,
        ));
        for p in &c.by_pod {
            let bad_row = p.internal_snat_flows > 0
                || p.external_snat_flows < p.external_flows && v.mode == SnatMode::Snat;
            let srcs: Vec<String> = p.nat_sources.iter().map(|a| a.to_string()).collect();
            let line = format!(
                "{:<18}{:>8}{:>10}{:>10}{:>10}  {}",
                p.pod.to_string(),
                p.flows,
                p.external_flows,
                p.external_snat_flows,
                p.internal_snat_flows,
                srcs.join(", ")
            );
            out.push(Line::from(Span::styled(
                line,
                if bad_row {
                    theme.bad()
                } else {
                    Style::default()
                },
            )));
        }
        for (title, rows) in [
            (
                "SNATed although the destination is in the VPC / excluded",
                &c.unexpected_snat,
            ),
            ("not SNATed although SNAT is expected", &c.missing_snat),
        ] {
            if rows.is_empty() {
                continue;
            }
            out.push(Line::from(""));
            out.push(Line::from(Span::styled(
                format!("contradicting flows: {title}"),
                theme.bad(),
            )));
            for f in rows {
                out.push(Line::from(format!(
                    "  {} → {}{}  ×{}   {}",
                    f.src,
                    f.dst,
                    f.nat_source.map(|a| format!(" as {a}")).unwrap_or_default(),
                    f.flows,
                    clean(&f.example)
                )));
            }
        }
    }
    out.push(Line::from(""));
    out.push(section("top destinations", theme));
    for d in ct.summary.by_destination.iter().take(15) {
        out.push(Line::from(format!(
            "  {:<40}{:>8} flows {:>8} SNAT",
            d.addr.to_string(),
            d.flows,
            d.snat
        )));
    }
    if ct.summary.by_destination.is_empty() {
        out.push(Line::from(Span::styled("  (none)", theme.dim())));
    }
    out
}

/// Classified ipamd / plugin events, newest first, at or above the chosen level.
pub fn logs(s: &Snapshot, level: LogLevel, theme: Theme) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled(
        format!("level {} (v cycles)   newest first", level.name()),
        theme.dim(),
    ))];
    let Some(logs) = s.cni_logs.get() else {
        out.push(Line::from(Span::styled(
            format!(
                "no CNI logs ({})",
                s.cni_logs
                    .reason
                    .as_deref()
                    .map(clean)
                    .unwrap_or_else(|| "not collected".into())
            ),
            theme.dim(),
        )));
        return out;
    };
    let mut n = 0;
    for e in logs.events.iter().rev().filter(|e| level.admits(&e.level)) {
        n += 1;
        let lvl = e.level.to_ascii_lowercase();
        let style = match lvl.as_str() {
            "error" | "fatal" | "panic" => theme.bad(),
            "warn" | "warning" => theme.health(crate::app::Health::Warning),
            _ => Style::default(),
        };
        let kind = e
            .kind
            .map(|k| format!("[{}] ", kind_name(k)))
            .unwrap_or_default();
        out.push(Line::from(vec![
            Span::styled(
                format!(
                    "{} {:<5} ",
                    e.ts.as_deref().map(clean).unwrap_or_else(|| "-".into()),
                    clean(&lvl)
                ),
                style,
            ),
            Span::styled(kind, theme.title()),
            Span::raw(clean(&e.msg)),
            Span::styled(
                format!(
                    "  {}{}",
                    clean(&e.file),
                    e.line.map(|l| format!(":{l}")).unwrap_or_default()
                ),
                theme.dim(),
            ),
        ]));
    }
    if n == 0 {
        out.push(Line::from(Span::styled(
            "(no events at this level)",
            theme.dim(),
        )));
    }
    out
}

fn kind_name(k: model::LogEventKind) -> &'static str {
    use model::LogEventKind as K;
    match k {
        K::IpExhaustion => "ip-exhaustion",
        K::Ec2Throttling => "ec2-throttling",
        K::EniAttachFailure => "eni-attach-failure",
        K::NotReady => "not-ready",
        K::MissingIamPermission => "missing-iam",
        K::EniConfigMissing => "eniconfig-missing",
        K::Startup => "startup",
        K::PodAdd => "pod-add",
        K::PodDel => "pod-del",
        K::ReconcileDrift => "reconcile-drift",
    }
}

/// The Changes tab: the node daemon's change log, newest first, by content.
pub fn changes(log: Option<&crate::event::ChangeLog>, theme: Theme) -> Vec<Line<'static>> {
    use crate::event::ChangeLog;
    use model::diff::ChangeOp;
    let dim = |t: String| vec![Line::from(Span::styled(t, theme.dim()))];
    match log {
        None => {
            dim("no change log: not read from a node (live targets with node-agent serve)".into())
        }
        Some(ChangeLog::NoDaemon) => {
            dim("no daemon on this node (node-agent serve keeps the change log)".into())
        }
        Some(ChangeLog::Failed(why)) => dim(format!("change log unavailable: {}", clean(why))),
        Some(ChangeLog::Changes { since, changes }) => {
            let mut out = vec![Line::from(Span::styled(
                format!(
                    "{} change(s) since {}   newest first   from the node's daemon",
                    changes.len(),
                    clean(since)
                ),
                theme.dim(),
            ))];
            if changes.is_empty() {
                out.push(Line::from(Span::styled("(no changes)", theme.dim())));
            }
            for c in changes.iter().rev() {
                let (sign, style) = match c.op {
                    ChangeOp::Added => ("+", theme.good()),
                    ChangeOp::Removed => ("-", theme.bad()),
                    ChangeOp::Changed => ("~", theme.health(crate::app::Health::Warning)),
                };
                out.push(Line::from(vec![
                    Span::styled(format!("{} ", clean(&c.at)), theme.dim()),
                    Span::styled(format!("{:<18} ", c.kind.as_str()), theme.title()),
                    Span::raw(format!("{}: ", clean(&c.subject))),
                    Span::styled(format!("{sign}{}", clean(&c.content)), style),
                ]));
            }
            out
        }
    }
}
