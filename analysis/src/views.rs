//! Per-node views for `diag snat` and `diag routes`: the observed state next to the expected
//! state, plus the findings of the rules about it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use model::{netfilter, vpccni};
use model::{Backend, Finding, NodeReport, Snapshot};
use serde::Serialize;

use crate::facts::{Facts, Known, Randomize, SnatLayout};
use crate::nat::Counters;

/// How the node is expected to handle pod egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnatMode {
    /// The CNI SNATs non-VPC traffic to the primary IP (EXTERNALSNAT=false).
    Snat,
    /// EXTERNALSNAT=true: a NAT gateway does it.
    ExternalSnat,
    /// IPv6 cluster: no SNAT chain.
    Ipv6,
    Unknown,
}

/// One CIDR the SNAT chain returns or should return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CidrRow {
    pub cidr: Ipv4Net,
    /// `vpc`, `exclusion`, or absent when neither (unexpected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_as: Option<&'static str>,
    /// A RETURN for it is present.
    pub returned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Connmark plumbing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnmarkState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<Known<u32>>,
    pub nat_prerouting_jump: bool,
    pub nat_restore: bool,
    /// `--set-xmark <mark>/<mark>` present in an AWS-CONNMARK-CHAIN.
    pub chain_set_mark: bool,
    /// `"AWS, primary ENI"` rules in mangle PREROUTING; `None` when the dump has no mangle
    /// table (not collected or not pasted), which is not the same as none programmed.
    pub mangle_rules: Option<usize>,
    /// The `fwmark <mark>/<mark> lookup main` rule, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// SNAT as seen by one source pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodSnat {
    pub pod: IpAddr,
    pub flows: u64,
    /// Flows to destinations outside the VPC and exclusions.
    pub external_flows: u64,
    /// Of those, source-NATed.
    pub external_snat_flows: u64,
    /// Flows to VPC/excluded destinations that were source-NATed.
    pub internal_snat_flows: u64,
    pub nat_sources: Vec<IpAddr>,
}

/// A conntrack flow aggregate worth showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRow {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_source: Option<IpAddr>,
    pub flows: u64,
    pub example: String,
}

/// Conntrack part of the SNAT view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ConntrackView {
    pub by_pod: Vec<PodSnat>,
    /// Pod → VPC/excluded destination, source-NATed.
    pub unexpected_snat: Vec<FlowRow>,
    /// Pod → outside destination, not source-NATed while SNAT is expected.
    pub missing_snat: Vec<FlowRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_failed: Option<u64>,
}

/// Everything `diag snat` prints for one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnatView {
    pub node: String,
    pub mode: SnatMode,
    pub layout: SnatLayout,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// `--to-source` of each "AWS, SNAT" rule.
    pub to_source: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_ipv4: Option<Known<Ipv4Addr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_source_ok: Option<bool>,
    pub cidrs: Vec<CidrRow>,
    pub missing_cidrs: Vec<Ipv4Net>,
    pub unexpected_cidrs: Vec<Ipv4Net>,
    /// `--random-fully`, `--random` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_expected: Option<Known<Randomize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_ok: Option<bool>,
    pub connmark: ConnmarkState,
    /// Hit counters of the POSTROUTING jump and the SNAT rule(s).
    pub counters: Vec<Counters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackView>,
    pub findings: Vec<Finding>,
}

/// One pod's routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRoute {
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veth_exists: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veth_up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
    /// Expected table of its 1536 rule (254 = main = none expected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    pub in_ipamd: bool,
    pub rule_512: Vec<String>,
    pub rule_1536: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_route: Option<String>,
}

/// One ENI's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EniTable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub device_number: u32,
    pub network_card: u32,
    pub primary: bool,
    pub table: u32,
    pub routes: Vec<String>,
    pub problems: Vec<String>,
}

/// Everything `diag routes` prints for one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteView {
    pub node: String,
    pub pods: Vec<PodRoute>,
    pub enis: Vec<EniTable>,
    pub findings: Vec<Finding>,
}

fn findings_with_prefix(r: &NodeReport, prefixes: &[&str]) -> Vec<Finding> {
    r.findings
        .iter()
        .filter(|f| prefixes.iter().any(|p| f.rule.starts_with(p)))
        .cloned()
        .collect()
}

/// Build the SNAT view of one node.
pub fn snat_view(s: &Snapshot, r: &NodeReport) -> SnatView {
    snat_view_of(&crate::Prepared::new(s), r)
}

/// Build the SNAT view of one prepared node (facts and nat state derived once).
pub fn snat_view_of(p: &crate::Prepared<'_>, r: &NodeReport) -> SnatView {
    let s = p.snapshot;
    let f = &p.facts;
    let nat = p.nat.as_ref();
    let mode = if f.ipv6.value {
        SnatMode::Ipv6
    } else {
        match f.external_snat.as_ref().map(|k| k.value) {
            Some(true) => SnatMode::ExternalSnat,
            Some(false) => SnatMode::Snat,
            None => SnatMode::Unknown,
        }
    };
    let mut v = SnatView {
        node: s.display_name(),
        mode,
        layout: f.snat_layout,
        backend: f.analysed_backend,
        cni_version: f.cni_version.clone(),
        to_source: Vec::new(),
        primary_ipv4: f.primary_ipv4.clone(),
        to_source_ok: None,
        cidrs: Vec::new(),
        missing_cidrs: Vec::new(),
        unexpected_cidrs: Vec::new(),
        random_flag: None,
        random_expected: f.randomize.clone(),
        random_ok: None,
        connmark: ConnmarkState {
            mark: f.connmark.clone(),
            nat_prerouting_jump: false,
            nat_restore: false,
            chain_set_mark: false,
            mangle_rules: None,
            fwmark_rule: None,
            note: None,
        },
        counters: Vec::new(),
        conntrack: None,
        findings: findings_with_prefix(r, &["snat.", "connmark.", "conntrack."]),
    };
    let mark = f
        .connmark
        .as_ref()
        .map(|k| k.value)
        .unwrap_or(vpccni::DEFAULT_CONNMARK);
    if let Some(rules) = s.rules.get() {
        v.connmark.fwmark_rule = rules
            .iter()
            .find(|x| x.fwmark == Some(mark) && x.fwmask.unwrap_or(u32::MAX) & mark == mark)
            .map(|x| x.to_ip_line());
    }
    if let Some(nat) = &nat {
        for j in &nat.postrouting_jumps {
            v.counters.push(Counters::from(j));
        }
        for sr in &nat.snat_rules {
            v.counters.push(Counters::from(sr));
            if let Some(ts) = sr
                .rule
                .target_arg(netfilter::OPT_TO_SOURCE)
                .and_then(|a| a.values.first())
            {
                v.to_source.push(ts.to_string());
            }
        }
        if let (Some(p), false) = (&f.primary_ipv4, v.to_source.is_empty()) {
            v.to_source_ok = Some(v.to_source.iter().all(|t| to_source_ip(t) == Some(p.value)));
        }
        if let Some(sr) = nat.snat_rules.last() {
            let have = Randomize::of_rule(sr.rule);
            v.random_ok = f.randomize.as_ref().map(|k| k.value == have);
            v.random_flag = Some(have.flag_or_none().to_string());
        }
        let returned = nat.returned_cidrs();
        let vpc: Vec<Ipv4Net> = f
            .vpc_cidrs
            .as_ref()
            .map(|k| k.value.clone())
            .unwrap_or_default();
        let excl = &f.exclude_snat_cidrs.value;
        let mut rows: Vec<CidrRow> = Vec::new();
        for (c, rr) in &returned {
            if rows.iter().any(|x| x.cidr == *c) {
                continue;
            }
            let expected_as = if vpc.contains(c) {
                Some("vpc")
            } else if excl.contains(c) {
                Some("exclusion")
            } else {
                None
            };
            if expected_as.is_none() && f.vpc_cidrs.is_some() {
                v.unexpected_cidrs.push(*c);
            }
            rows.push(CidrRow {
                cidr: *c,
                expected_as,
                returned: true,
                location: Some(rr.location()),
            });
        }
        if mode == SnatMode::Snat {
            for (c, kind) in vpc
                .iter()
                .map(|c| (c, "vpc"))
                .chain(excl.iter().map(|c| (c, "exclusion")))
            {
                if !rows.iter().any(|x| x.cidr == *c) {
                    v.missing_cidrs.push(*c);
                    rows.push(CidrRow {
                        cidr: *c,
                        expected_as: Some(kind),
                        returned: false,
                        location: None,
                    });
                }
            }
        }
        v.cidrs = rows;
        v.connmark.nat_prerouting_jump = !nat.connmark_jumps.is_empty();
        v.connmark.nat_restore = !nat.connmark_restores.is_empty();
        v.connmark.chain_set_mark = nat.connmark_chain_rules.iter().any(|r| {
            r.target() == netfilter::TARGET_CONNMARK
                && r.rule.has_target_option(netfilter::OPT_SET_XMARK)
                || r.rule.has_target_option(netfilter::OPT_SET_MARK)
        });
        v.connmark.mangle_rules = nat
            .dump
            .table(netfilter::TABLE_MANGLE)
            .map(|_| nat.mangle_rules.len());
        if !v.connmark.nat_prerouting_jump
            && f.version_at_least((1, 23, 0))
            && nat.backend == Backend::Nft
        {
            v.connmark.note = Some(
                "CNI v1.23+ on the nft backend keeps connmark in native nftables (table ip aws-cni), not in iptables".into(),
            );
        }
    }
    v.conntrack = conntrack_view(s, f);
    v
}

/// `192.168.1.251` or `192.168.1.251-192.168.1.251` / with a port.
pub(crate) fn to_source_ip(v: &str) -> Option<Ipv4Addr> {
    let first = v.split(['-', ':']).next().unwrap_or(v);
    first.trim().parse().ok()
}

fn conntrack_view(s: &Snapshot, f: &Facts) -> Option<ConntrackView> {
    let ct = s.conntrack.get()?;
    let mut v = ConntrackView {
        insert_failed: if ct.totals.is_empty() {
            model::conntrack::sum_stats(&ct.stats)
                .get("insert_failed")
                .copied()
        } else {
            ct.totals.get("insert_failed").copied()
        },
        ..Default::default()
    };
    let snat_expected = f.external_snat.as_ref().map(|k| !k.value) == Some(true) && !f.ipv6.value;
    let mut by_pod: BTreeMap<IpAddr, PodSnat> = BTreeMap::new();
    for p in &ct.summary.pairs {
        if f.pod(&p.src).is_none() {
            continue;
        }
        // Service traffic: SNAT is decided on the translated destination (and by kube-proxy).
        let dnat = is_dnat(p);
        let e = by_pod.entry(p.src).or_insert_with(|| PodSnat {
            pod: p.src,
            flows: 0,
            external_flows: 0,
            external_snat_flows: 0,
            internal_snat_flows: 0,
            nat_sources: Vec::new(),
        });
        e.flows += p.flows;
        if let Some(ns) = p.nat_source {
            if !e.nat_sources.contains(&ns) {
                e.nat_sources.push(ns);
            }
        }
        let row = || FlowRow {
            src: p.src,
            dst: p.dst,
            nat_source: p.nat_source,
            flows: p.flows,
            example: p.example.clone(),
        };
        match f.is_no_snat_destination(&p.dst) {
            _ if dnat => {}
            Some(true) if p.nat_source.is_some() && !is_pod_or_local(f, &p.dst) => {
                e.internal_snat_flows += p.flows;
                v.unexpected_snat.push(row());
            }
            Some(true) => {}
            Some(false) => {
                e.external_flows += p.flows;
                if p.nat_source.is_some() {
                    e.external_snat_flows += p.flows;
                } else if snat_expected {
                    v.missing_snat.push(row());
                }
            }
            None => {}
        }
    }
    v.by_pod = by_pod.into_values().collect();
    Some(v)
}

/// Reply-direction source from a `conntrack -L` line: `... src=A dst=B ... src=C dst=D ...` → C.
pub(crate) fn reply_src(example: &str) -> Option<IpAddr> {
    example
        .split_whitespace()
        .filter_map(|t| t.strip_prefix("src="))
        .nth(1)
        .and_then(|v| v.parse().ok())
}

/// The flow was destination-NATed (a service): the reply comes from another address.
pub(crate) fn is_dnat(p: &model::conntrack::FlowPair) -> bool {
    reply_src(&p.example).is_some_and(|r| r != p.dst)
}

fn is_pod_or_local(f: &Facts, ip: &IpAddr) -> bool {
    f.pod(ip).is_some()
}

/// Build the routing view of one node.
pub fn route_view(s: &Snapshot, r: &NodeReport) -> RouteView {
    route_view_of(&crate::Prepared::new(s), r)
}

/// Build the routing view of one prepared node.
pub fn route_view_of(p: &crate::Prepared<'_>, r: &NodeReport) -> RouteView {
    let s = p.snapshot;
    let f = &p.facts;
    let rules = s.rules.get().map(Vec::as_slice).unwrap_or(&[]);
    let routes = s.routes.get().map(Vec::as_slice).unwrap_or(&[]);
    let links = s.links.get();
    let mut pods = Vec::new();
    for p in &f.pods {
        let route = routes.iter().find(|x| {
            x.table == model::net::RT_TABLE_MAIN
                && x.dst.prefix_len() == x.dst.max_prefix_len()
                && x.dst.addr() == p.ip
        });
        let veth = p.host_veth.clone();
        let link = veth
            .as_deref()
            .and_then(|v| links.and_then(|l| l.iter().find(|x| x.ifname == v)));
        pods.push(PodRoute {
            ip: p.ip,
            pod: match (&p.namespace, &p.name) {
                (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
                (None, Some(n)) => Some(n.clone()),
                _ => None,
            },
            veth_exists: veth.as_ref().and(links.map(|_| link.is_some())),
            veth_up: link.map(model::Link::is_up),
            veth,
            eni: p.eni.clone(),
            table: p.table,
            in_ipamd: p.in_ipamd,
            rule_512: rules
                .iter()
                .filter(|x| x.priority == vpccni::PRIO_TO_POD && host_net(&x.dst) == Some(p.ip))
                .map(model::IpRule::to_ip_line)
                .collect(),
            rule_1536: rules
                .iter()
                .filter(|x| x.priority == vpccni::PRIO_FROM_POD && host_net(&x.src) == Some(p.ip))
                .map(model::IpRule::to_ip_line)
                .collect(),
            main_route: route.map(model::Route::to_ip_line),
        });
    }
    let route_findings = findings_with_prefix(r, &["route."]);
    let mut enis = Vec::new();
    for e in &f.enis {
        let table_routes: Vec<String> = routes
            .iter()
            .filter(|x| x.table == e.expected_table && !e.is_primary)
            .map(model::Route::to_ip_line)
            .collect();
        let problems = route_findings
            .iter()
            .filter(|x| {
                x.rule == "route.eni-table-broken" || x.rule == "route.subnet-route-in-main"
            })
            .filter(|x| {
                let words: Vec<&str> = x
                    .summary
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                    .collect();
                e.interface.as_deref().is_some_and(|i| words.contains(&i))
                    || e.id.as_deref().is_some_and(|i| words.contains(&i))
                    || x.summary.contains(&format!("table {} ", e.expected_table))
            })
            .map(|x| x.summary.clone())
            .collect();
        enis.push(EniTable {
            eni: e.id.clone(),
            interface: e.interface.clone(),
            device_number: e.device_number,
            network_card: e.network_card,
            primary: e.is_primary,
            table: e.expected_table,
            routes: table_routes,
            problems,
        });
    }
    RouteView {
        node: s.display_name(),
        pods,
        enis,
        findings: route_findings,
    }
}

/// The address of a host (/32 or /128) selector.
pub(crate) fn host_net(n: &Option<ipnet::IpNet>) -> Option<IpAddr> {
    n.as_ref()
        .filter(|n| n.prefix_len() == n.max_prefix_len())
        .map(|n| n.addr())
}

/// The facts whose source is `inferred`, in field order, with their value as text.
impl model::report::InferredFacts for Facts {
    fn inferred_facts(&self) -> Vec<model::report::InferredFact> {
        let mut out = Vec::new();
        let mut add = |name: &str, k: Option<&dyn KnownText>| {
            if let Some(k) = k.filter(|k| k.inferred()) {
                out.push(model::report::InferredFact {
                    name: name.to_string(),
                    value: k.value_text(),
                    detail: k.detail_text(),
                });
            }
        };
        add("ipv6", Some(&self.ipv6));
        add("external_snat", opt(&self.external_snat));
        add("exclude_snat_cidrs", Some(&self.exclude_snat_cidrs));
        add("randomize", opt(&self.randomize));
        add("node_port_support", opt(&self.node_port_support));
        add("connmark", opt(&self.connmark));
        add("veth_prefix", Some(&self.veth_prefix));
        add("custom_networking", opt(&self.custom_networking));
        add("external_service_cidrs", Some(&self.external_service_cidrs));
        add("vpc_cidrs", opt(&self.vpc_cidrs));
        add("primary_ipv4", opt(&self.primary_ipv4));
        add("primary_interface", opt(&self.primary_interface));
        add("era", opt(&self.era));
        out
    }
}

fn opt<T: Serialize>(k: &Option<Known<T>>) -> Option<&dyn KnownText> {
    k.as_ref().map(|k| k as &dyn KnownText)
}

/// A [`Known`] value as report text: a list joined with `, `, anything else as it prints.
trait KnownText {
    fn inferred(&self) -> bool;
    fn value_text(&self) -> String;
    fn detail_text(&self) -> String;
}

impl<T: Serialize> KnownText for Known<T> {
    fn inferred(&self) -> bool {
        self.is_inferred()
    }

    fn value_text(&self) -> String {
        fn one(v: &serde_json::Value) -> String {
            match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        }
        match serde_json::to_value(&self.value) {
            Ok(serde_json::Value::Array(a)) => a.iter().map(one).collect::<Vec<_>>().join(", "),
            Ok(v) => one(&v),
            Err(_) => String::new(),
        }
    }

    fn detail_text(&self) -> String {
        self.detail.clone().unwrap_or_default()
    }
}
