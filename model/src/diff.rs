//! What changed between two snapshots of the same node, compared by CONTENT.
//!
//! Lists (iptables rules, ip rules, routes, addresses) are compared as multisets of their
//! rendered text, never by position: a rule inserted at the top of a chain is one added rule,
//! not a shifted list (osquery #5292 shows what the positional diff reports instead). Keyed
//! things (links, CNI env, sysctls) are compared per key.
//!
//! Covered: iptables `AWS-*` and `KUBE-POSTROUTING` chains and every jump into them, ip
//! rules, routes of every table but `local` (the per-ENI tables and the pod routes in
//! `main`), links (added, removed, up/down, MTU), addresses, the CNI env and version, ipamd
//! restarts, the sysctls the snapshot carries (counters excluded), conntrack pressure
//! crossing 50/75/90/100 % of `nf_conntrack_max`, new classes of CNI log errors, and section
//! status transitions (a section that could not be read is not reported as "everything
//! removed").
//!
//! Pure: used by `node-agent serve` for its change history and available to any reader of
//! two snapshots (the TUI's Changes tab, `diag`).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::iptables::{IptRule, IptablesSection};
use crate::net::{Address, IpRule, Link, Route};
use crate::section::Section;
use crate::snapshot::Snapshot;

/// What kind of state changed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A rule in an `AWS-*`/`KUBE-POSTROUTING` chain, or a jump into one.
    IptablesRule,
    /// Such a chain appeared or disappeared.
    IptablesChain,
    IpRule,
    Route,
    Link,
    Address,
    CniEnv,
    CniVersion,
    IpamdRestart,
    Sysctl,
    ConntrackPressure,
    CniLogError,
    SectionStatus,
}

impl ChangeKind {
    pub const ALL: &'static [ChangeKind] = &[
        ChangeKind::IptablesRule,
        ChangeKind::IptablesChain,
        ChangeKind::IpRule,
        ChangeKind::Route,
        ChangeKind::Link,
        ChangeKind::Address,
        ChangeKind::CniEnv,
        ChangeKind::CniVersion,
        ChangeKind::IpamdRestart,
        ChangeKind::Sysctl,
        ChangeKind::ConntrackPressure,
        ChangeKind::CniLogError,
        ChangeKind::SectionStatus,
    ];

    /// The kebab-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::IptablesRule => "iptables-rule",
            ChangeKind::IptablesChain => "iptables-chain",
            ChangeKind::IpRule => "ip-rule",
            ChangeKind::Route => "route",
            ChangeKind::Link => "link",
            ChangeKind::Address => "address",
            ChangeKind::CniEnv => "cni-env",
            ChangeKind::CniVersion => "cni-version",
            ChangeKind::IpamdRestart => "ipamd-restart",
            ChangeKind::Sysctl => "sysctl",
            ChangeKind::ConntrackPressure => "conntrack-pressure",
            ChangeKind::CniLogError => "cni-log-error",
            ChangeKind::SectionStatus => "section-status",
        }
    }
}

/// Added, removed or changed in place.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Added,
    Removed,
    Changed,
}

/// One change, described by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// `collected_at` of the snapshot in which the change was first seen (RFC 3339 UTC).
    pub at: String,
    pub kind: ChangeKind,
    pub op: ChangeOp,
    /// Where: `nat/AWS-SNAT-CHAIN-0`, an interface name, a sysctl or env key.
    pub subject: String,
    /// What: the rule/route text that was added or removed; for `changed`, `before -> after`.
    pub content: String,
}

impl Change {
    /// One line for humans: `nat/AWS-SNAT-CHAIN-0: -[-A AWS-SNAT-CHAIN-0 ! -d 100.64.0.0/16 -j RETURN]`.
    pub fn describe(&self) -> String {
        let sign = match self.op {
            ChangeOp::Added => "+",
            ChangeOp::Removed => "-",
            ChangeOp::Changed => "~",
        };
        format!("{}: {sign}{}", self.subject, self.content)
    }
}

/// Conntrack fill levels (percent of `nf_conntrack_max`) whose crossing is a change.
pub const CONNTRACK_LEVELS: &[u64] = &[50, 75, 90, 100];

/// Sysctls that are counters, not settings.
const SYSCTL_COUNTERS: &[&str] = &["net.netfilter.nf_conntrack_count"];

/// Every change from `old` to `new`, in kind order, each list in content order.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let at = new.collected_at.clone();
    let mut push = |kind, op, subject: String, content: String| {
        out.push(Change {
            at: at.clone(),
            kind,
            op,
            subject,
            content,
        })
    };

    for ((name, so, ro), (_, sn, rn)) in old
        .section_statuses()
        .into_iter()
        .zip(new.section_statuses())
    {
        if so != sn {
            let status = |s: crate::SectionStatus, r: Option<&str>| match r {
                Some(r) => format!("{s:?} ({r})").to_lowercase(),
                None => format!("{s:?}").to_lowercase(),
            };
            push(
                ChangeKind::SectionStatus,
                ChangeOp::Changed,
                name.to_string(),
                format!("{} -> {}", status(so, ro), status(sn, rn)),
            );
        }
    }

    if let (Some(a), Some(b)) = (old.iptables.get(), new.iptables.get()) {
        let (ca, ra) = iptables_items(a);
        let (cb, rb) = iptables_items(b);
        multiset(&ca, &cb, |op, (s, c)| {
            push(ChangeKind::IptablesChain, op, s, c)
        });
        multiset(&ra, &rb, |op, (s, c)| {
            push(ChangeKind::IptablesRule, op, s, c)
        });
    }
    both(&old.rules, &new.rules, |a, b| {
        multiset(&ip_rules(a), &ip_rules(b), |op, (s, c)| {
            push(ChangeKind::IpRule, op, s, c)
        })
    });
    both(&old.routes, &new.routes, |a, b| {
        multiset(&routes(a), &routes(b), |op, (s, c)| {
            push(ChangeKind::Route, op, s, c)
        })
    });
    both(&old.links, &new.links, |a, b| {
        links(a, b, |op, s, c| push(ChangeKind::Link, op, s, c))
    });
    both(&old.addresses, &new.addresses, |a, b| {
        multiset(&addresses(a), &addresses(b), |op, (s, c)| {
            push(ChangeKind::Address, op, s, c)
        })
    });
    both(&old.cni, &new.cni, |a, b| {
        keyed(&a.env, &b.env, |op, k, c| {
            push(ChangeKind::CniEnv, op, k, c)
        });
        if a.version != b.version {
            let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
            push(
                ChangeKind::CniVersion,
                ChangeOp::Changed,
                "aws-node".into(),
                format!("{} -> {}", v(&a.version), v(&b.version)),
            );
        }
    });
    both(&old.cni_logs, &new.cni_logs, |a, b| {
        let starts = |l: &crate::cni::CniLogs| -> BTreeSet<(String, String)> {
            l.events
                .iter()
                .filter(|e| e.kind == Some(crate::cni::LogEventKind::Startup))
                .filter(|e| e.msg.contains("Starting L-IPAMD"))
                .map(|e| (e.ts.clone().unwrap_or_default(), e.msg.clone()))
                .collect()
        };
        let seen = starts(a);
        for (ts, msg) in starts(b).difference(&seen) {
            push(
                ChangeKind::IpamdRestart,
                ChangeOp::Added,
                "ipamd".into(),
                format!("{ts} {msg}").trim().to_string(),
            );
        }
        let seen = error_classes(a);
        for class in error_classes(b).difference(&seen) {
            push(
                ChangeKind::CniLogError,
                ChangeOp::Added,
                "cni-logs".into(),
                class.clone(),
            );
        }
    });
    both(&old.sysctls, &new.sysctls, |a, b| {
        for (k, vb) in &b.values {
            if SYSCTL_COUNTERS.contains(&k.as_str()) {
                continue;
            }
            // Keys that come and go with interfaces are covered by the link changes.
            if let Some(va) = a.values.get(k) {
                if va != vb {
                    push(
                        ChangeKind::Sysctl,
                        ChangeOp::Changed,
                        k.clone(),
                        format!("{va} -> {vb}"),
                    );
                }
            }
        }
    });
    both(&old.conntrack, &new.conntrack, |a, b| {
        let (la, lb) = (conntrack_level(a), conntrack_level(b));
        if la != lb {
            if let (Some(count), Some(max)) = (b.count, b.max) {
                let name = |l: Option<u64>| match l {
                    Some(l) => format!(">= {l}%"),
                    None => format!("< {}%", CONNTRACK_LEVELS[0]),
                };
                push(
                    ChangeKind::ConntrackPressure,
                    ChangeOp::Changed,
                    "nf_conntrack".into(),
                    format!("{} -> {} ({count}/{max})", name(la), name(lb)),
                );
            }
        }
    });
    out
}

fn both<T>(a: &Section<T>, b: &Section<T>, f: impl FnOnce(&T, &T)) {
    if let (Some(a), Some(b)) = (a.get(), b.get()) {
        f(a, b)
    }
}

/// Items present more often in `b` are added, more often in `a` removed (multiset difference,
/// so duplicates count and order does not).
fn multiset<K: Ord + Clone>(a: &[K], b: &[K], mut f: impl FnMut(ChangeOp, K)) {
    fn count<K: Ord>(v: &[K]) -> BTreeMap<&K, usize> {
        let mut m: BTreeMap<&K, usize> = BTreeMap::new();
        for k in v {
            *m.entry(k).or_default() += 1;
        }
        m
    }
    let (ma, mb) = (count(a), count(b));
    for (k, &nb) in &mb {
        let na = ma.get(k).copied().unwrap_or(0);
        for _ in na..nb {
            f(ChangeOp::Added, (*k).clone());
        }
    }
    for (k, &na) in &ma {
        let nb = mb.get(k).copied().unwrap_or(0);
        for _ in nb..na {
            f(ChangeOp::Removed, (*k).clone());
        }
    }
}

fn keyed(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
    mut f: impl FnMut(ChangeOp, String, String),
) {
    for (k, vb) in b {
        match a.get(k) {
            None => f(ChangeOp::Added, k.clone(), format!("{k}={vb}")),
            Some(va) if va != vb => f(ChangeOp::Changed, k.clone(), format!("{va} -> {vb}")),
            Some(_) => {}
        }
    }
    for (k, va) in a {
        if !b.contains_key(k) {
            f(ChangeOp::Removed, k.clone(), format!("{k}={va}"));
        }
    }
}

/// A chain whose content the history follows.
pub fn watched_chain(name: &str) -> bool {
    name.starts_with("AWS-") || name == "KUBE-POSTROUTING"
}

/// The rule as written by `iptables-save`, without its `[packets:bytes]` counters.
pub fn rule_text(rule: &IptRule) -> &str {
    let raw = rule.raw.trim();
    if raw.starts_with('[') {
        if let Some(end) = raw.find(']') {
            return raw[end + 1..].trim_start();
        }
    }
    raw
}

type Item = (String, String);

/// (chains, rules) of the watched chains and the jumps into them, per backend and table.
fn iptables_items(s: &IptablesSection) -> (Vec<Item>, Vec<Item>) {
    let several = s.backends.iter().filter(|b| b.rule_count() > 0).count() > 1;
    let mut chains = Vec::new();
    let mut rules = Vec::new();
    for dump in &s.backends {
        let prefix = if several {
            format!("{} ", dump.backend)
        } else {
            String::new()
        };
        for table in &dump.tables {
            for chain in &table.chains {
                let subject = format!("{prefix}{}/{}", table.name, chain.name);
                let watched = watched_chain(&chain.name);
                if watched {
                    chains.push((format!("{prefix}{}", table.name), chain.name.to_string()));
                }
                for r in &chain.rules {
                    let jumps_in = r.target.as_deref().is_some_and(watched_chain);
                    if watched || jumps_in {
                        rules.push((subject.clone(), rule_text(r).to_string()));
                    }
                }
            }
        }
    }
    (chains, rules)
}

fn ip_rules(v: &[IpRule]) -> Vec<Item> {
    v.iter()
        .map(|r| {
            let family = format!("{:?}", r.family).to_lowercase();
            (format!("rule {family}"), r.to_ip_line().replace('\t', " "))
        })
        .collect()
}

/// `local` (255) only mirrors the addresses, which have their own changes.
const RT_TABLE_LOCAL: u32 = 255;

fn routes(v: &[Route]) -> Vec<Item> {
    v.iter()
        .filter(|r| r.table != RT_TABLE_LOCAL)
        .map(|r| {
            let table = if r.table == crate::net::RT_TABLE_MAIN {
                "main".to_string()
            } else {
                r.table.to_string()
            };
            (format!("table {table}"), r.to_ip_line())
        })
        .collect()
}

fn addresses(v: &[Address]) -> Vec<Item> {
    v.iter()
        .map(|a| (a.ifname.clone(), format!("{}/{}", a.local, a.prefixlen)))
        .collect()
}

fn links(a: &[Link], b: &[Link], mut f: impl FnMut(ChangeOp, String, String)) {
    let by_name = |v: &[Link]| -> BTreeMap<String, (bool, Option<u32>)> {
        v.iter()
            .map(|l| (l.ifname.clone(), (l.is_up(), l.mtu)))
            .collect()
    };
    let (ma, mb) = (by_name(a), by_name(b));
    let state = |up: bool| if up { "up" } else { "down" };
    for (name, &(up_b, mtu_b)) in &mb {
        match ma.get(name) {
            None => f(
                ChangeOp::Added,
                name.clone(),
                format!("link {}", state(up_b)),
            ),
            Some(&(up_a, mtu_a)) => {
                if up_a != up_b {
                    f(
                        ChangeOp::Changed,
                        name.clone(),
                        format!("{} -> {}", state(up_a), state(up_b)),
                    );
                }
                if mtu_a != mtu_b {
                    let m = |m: Option<u32>| m.map(|m| m.to_string()).unwrap_or_else(|| "?".into());
                    f(
                        ChangeOp::Changed,
                        name.clone(),
                        format!("mtu {} -> {}", m(mtu_a), m(mtu_b)),
                    );
                }
            }
        }
    }
    for (name, &(up_a, _)) in &ma {
        if !mb.contains_key(name) {
            f(
                ChangeOp::Removed,
                name.clone(),
                format!("link {}", state(up_a)),
            );
        }
    }
}

/// The highest level of [`CONNTRACK_LEVELS`] reached, if any.
fn conntrack_level(c: &crate::conntrack::ConntrackSection) -> Option<u64> {
    let (count, max) = (c.count?, c.max?);
    if max == 0 {
        return None;
    }
    let pct = count.saturating_mul(100) / max;
    CONNTRACK_LEVELS.iter().rev().find(|&&l| pct >= l).copied()
}

/// Classes of error lines: the classified kind when known, else the message with numbers,
/// addresses and ids blanked, so the same error about another pod is the same class.
fn error_classes(l: &crate::cni::CniLogs) -> BTreeSet<String> {
    l.events
        .iter()
        .filter(|e| {
            matches!(
                e.level.to_ascii_lowercase().as_str(),
                "error" | "fatal" | "panic"
            )
        })
        .map(|e| match e.kind {
            Some(k) => format!("{}: {k:?}", e.level.to_ascii_lowercase()),
            None => format!("{}: {}", e.level.to_ascii_lowercase(), normalise(&e.msg)),
        })
        .collect()
}

fn normalise(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(120));
    for word in msg.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if word.bytes().any(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        if out.len() >= 120 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::iptables::{Backend, IptChain, IptTable, IptablesBackendDump};

    fn rule(chain: &str, text: &str, target: &str) -> IptRule {
        IptRule {
            raw: format!("[1:60] {text}"),
            chain: chain.into(),
            target: Some(target.into()),
            ..Default::default()
        }
    }

    fn snap_with_chain(rules: Vec<IptRule>) -> Snapshot {
        Snapshot {
            iptables: Section::ok(IptablesSection {
                backends: vec![IptablesBackendDump {
                    backend: Backend::Nft,
                    tables: vec![IptTable {
                        name: "nat".into(),
                        chains: vec![
                            IptChain {
                                name: "POSTROUTING".into(),
                                rules: vec![
                                    rule(
                                        "POSTROUTING",
                                        "-A POSTROUTING -j AWS-SNAT-CHAIN-0",
                                        "AWS-SNAT-CHAIN-0",
                                    ),
                                    rule(
                                        "POSTROUTING",
                                        "-A POSTROUTING -j MASQUERADE",
                                        "MASQUERADE",
                                    ),
                                ],
                                ..Default::default()
                            },
                            IptChain {
                                name: "AWS-SNAT-CHAIN-0".into(),
                                rules,
                                ..Default::default()
                            },
                        ],
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn chain_rules(n: usize) -> Vec<IptRule> {
        (0..n)
            .map(|i| {
                rule(
                    "AWS-SNAT-CHAIN-0",
                    &format!("-A AWS-SNAT-CHAIN-0 -d 10.{i}.0.0/16 -j RETURN"),
                    "RETURN",
                )
            })
            .collect()
    }

    #[test]
    fn a_rule_inserted_at_the_top_is_one_change() {
        let old = snap_with_chain(chain_rules(20));
        let mut rules = chain_rules(20);
        rules.insert(
            0,
            rule(
                "AWS-SNAT-CHAIN-0",
                "-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN",
                "RETURN",
            ),
        );
        let mut new = snap_with_chain(rules);
        new.collected_at = "2026-12-01T14:02:11Z".into();
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1, "{changes:#?}");
        let c = &changes[0];
        assert_eq!((c.kind, c.op), (ChangeKind::IptablesRule, ChangeOp::Added));
        assert_eq!(c.subject, "nat/AWS-SNAT-CHAIN-0");
        assert_eq!(c.content, "-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN");
        assert_eq!(c.at, "2026-12-01T14:02:11Z");
        // And removing it again is one removal; counters alone are no change.
        let mut again = snap_with_chain(chain_rules(20));
        for r in &mut again.iptables.data.as_mut().unwrap().backends[0].tables[0].chains[1].rules {
            r.raw = r.raw.replace("[1:60]", "[99:6000]");
        }
        let back = diff(&new, &again);
        assert_eq!(back.len(), 1, "{back:#?}");
        assert_eq!(back[0].op, ChangeOp::Removed);
    }

    #[test]
    fn unwatched_chains_and_reorders_are_not_changes() {
        let old = snap_with_chain(chain_rules(3));
        let mut rules = chain_rules(3);
        rules.reverse();
        let mut new = snap_with_chain(rules);
        new.iptables.data.as_mut().unwrap().backends[0].tables[0].chains[0]
            .rules
            .pop();
        assert!(diff(&old, &new).is_empty(), "{:#?}", diff(&old, &new));
        // The jump into the watched chain is watched.
        new.iptables.data.as_mut().unwrap().backends[0].tables[0].chains[0]
            .rules
            .clear();
        let c = diff(&old, &new);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].describe(),
            "nat/POSTROUTING: --A POSTROUTING -j AWS-SNAT-CHAIN-0"
        );
    }

    #[test]
    fn a_failed_section_is_a_status_change_not_a_mass_removal() {
        let old = snap_with_chain(chain_rules(5));
        let mut new = old.clone();
        new.iptables = Section::failed("iptables-nft-save -c timed out");
        let c = diff(&old, &new);
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].kind, ChangeKind::SectionStatus);
        assert_eq!(
            c[0].content,
            "ok -> failed (iptables-nft-save -c timed out)"
        );
    }

    #[test]
    fn keyed_and_threshold_changes() {
        let mut old = Snapshot::default();
        let mut env = BTreeMap::new();
        env.insert(
            "AWS_VPC_K8S_CNI_EXTERNALSNAT".to_string(),
            "false".to_string(),
        );
        old.cni = Section::ok(crate::cni::CniConfig {
            env: env.clone(),
            version: Some("v1.18.0".into()),
            ..Default::default()
        });
        old.conntrack = Section::ok(crate::conntrack::ConntrackSection {
            count: Some(100),
            max: Some(1000),
            ..Default::default()
        });
        let mut new = old.clone();
        env.insert(
            "AWS_VPC_K8S_CNI_EXTERNALSNAT".to_string(),
            "true".to_string(),
        );
        new.cni.data.as_mut().unwrap().env = env;
        new.cni.data.as_mut().unwrap().version = Some("v1.19.0".into());
        new.conntrack.data.as_mut().unwrap().count = Some(800);
        let c: Vec<String> = diff(&old, &new).iter().map(Change::describe).collect();
        assert_eq!(
            c,
            [
                "AWS_VPC_K8S_CNI_EXTERNALSNAT: ~false -> true",
                "aws-node: ~v1.18.0 -> v1.19.0",
                "nf_conntrack: ~< 50% -> >= 75% (800/1000)"
            ]
        );
    }
}
