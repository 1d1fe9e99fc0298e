//! Expected state: what the VPC CNI *should* have programmed on this node, derived from IMDS,
//! ipamd introspection, the CNI env and (when those are missing) inferred from kernel state.
//!
//! Every fact carries its [`Provenance`] so a finding can say which of its inputs were guessed.
//! Defaults and parsing follow aws/amazon-vpc-cni-k8s `pkg/networkutils/network.go`
//! (`New()`, `parseCIDRString`, `typeOfSNAT`, `GetConnmark`); see
//! `shared/docs/vpc-cni-groundtruth.md` §5.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use model::vpccni::{self, env};
use model::{Backend, IptablesBackendDump, Snapshot};
use schemars::JsonSchema;
use serde::Serialize;

/// Where a fact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Instance metadata (the node section).
    Imds,
    /// ipamd introspection (`/v1/enis`, `/v1/*-env-settings`).
    Ipamd,
    /// The CNI env (DaemonSet / process env / env endpoints).
    Env,
    /// Guessed from kernel state (iptables rules, routes); may be wrong.
    Inferred,
    /// The CNI default, because the env was read and the variable is unset.
    Default,
}

/// A known fact with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Known<T> {
    pub value: T,
    pub source: Provenance,
    /// Where exactly (`env AWS_VPC_K8S_CNI_EXTERNALSNAT=true`, `default route src`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl<T> Known<T> {
    pub fn new(value: T, source: Provenance) -> Self {
        Known {
            value,
            source,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn is_inferred(&self) -> bool {
        self.source == Provenance::Inferred
    }
}

/// `AWS_VPC_K8S_CNI_RANDOMIZESNAT`: one vocabulary with the programmed rule's flag.
pub use model::netfilter::Randomize;

/// Layout of the AWS SNAT chains found in the analysed backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SnatLayout {
    /// `AWS-SNAT-CHAIN-0` with `-d CIDR -j RETURN` rules (v1.16.2+).
    Single,
    /// `AWS-SNAT-CHAIN-0..N` linked by `! -d CIDR -j AWS-SNAT-CHAIN-(i+1)` (≤ v1.16.0).
    Chained,
    /// No `AWS-SNAT-CHAIN-*` chain at all.
    None,
}

/// One ENI the CNI manages (or should).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EniFact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Kernel interface (`eth1`, `ens6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub device_number: u32,
    pub network_card: u32,
    pub is_primary: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_trunk: bool,
    /// The table its pods' `1536` rules should look up (`main` = 254 for the primary ENI).
    pub expected_table: u32,
    /// The ENI's own primary IPv4 (IMDS `local-ipv4s[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_ip: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_cidr: Option<Ipv4Net>,
    /// Listed by ipamd `/v1/enis` (so the CNI manages its table).
    pub managed: bool,
    pub source: Provenance,
}

/// One pod IP as ipamd and the main table see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PodFact {
    pub ip: IpAddr,
    /// Host-side veth from the main-table `<ip> dev <veth>` route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_veth: Option<String>,
    /// ENI id from `/v1/enis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_number: Option<u32>,
    /// Table its `1536` rule should look up; `Some(254)` means no 1536 rule is expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Listed as assigned in `/v1/enis`.
    pub in_ipamd: bool,
    /// Has a main-table host route through a veth.
    pub has_route: bool,
    /// `ipamd` when known from `/v1/enis`, `inferred` when only a host route says so.
    pub source: Provenance,
    /// Inferred from log: the CNI/ipamd log line that handed this IP to the pod (and no
    /// later line took it back), `ipamd.log:12 <ts>: Send AddNetworkReply: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_log: Option<String>,
}

/// Expected-state inputs and derived expectations for one node.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Facts {
    /// The CNI env was available (cni section with data).
    pub env_known: bool,
    pub ipv6: Known<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_snat: Option<Known<bool>>,
    pub exclude_snat_cidrs: Known<Vec<Ipv4Net>>,
    /// Entries of `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS` the CNI ignores (invalid or IPv6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_snat_ignored: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub randomize: Option<Known<Randomize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port_support: Option<Known<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connmark: Option<Known<u32>>,
    pub veth_prefix: Known<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_networking: Option<Known<bool>>,
    pub external_service_cidrs: Known<Vec<Ipv4Net>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_cidrs: Option<Known<Vec<Ipv4Net>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_ipv4: Option<Known<Ipv4Addr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_interface: Option<Known<String>>,
    pub enis: Vec<EniFact>,
    pub pods: Vec<PodFact>,
    /// Pods known only from CNI/ipamd log events (inferred from log; not in `pods`, which
    /// the other rules read as the node's pods): an ADD with no later DEL for its IP or
    /// sandbox. The pod may have gone after the log's last line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_pods: Vec<PodFact>,
    pub snat_layout: SnatLayout,
    /// Backends whose dump holds AWS chains or rules.
    pub aws_backends: Vec<Backend>,
    /// Backend holding `KUBE-KUBELET-CANARY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_backend: Option<Backend>,
    /// The backend the iptables rules are analysed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysed_backend: Option<Backend>,
    /// CNI version string (`v1.21.2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// The CNI rule layout whose expectations apply: from the version when known (`env`),
    /// else inferred from the layout present in the analysed dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub era: Option<Known<RuleEraFact>>,
}

/// [`vpccni::RuleEra`] for serialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuleEraFact {
    SingleRule,
    ChainedMangleOnly,
    Chained,
    SingleChain,
    NftConnmark,
}

impl From<vpccni::RuleEra> for RuleEraFact {
    fn from(e: vpccni::RuleEra) -> Self {
        match e {
            vpccni::RuleEra::SingleRule => RuleEraFact::SingleRule,
            vpccni::RuleEra::ChainedMangleOnly => RuleEraFact::ChainedMangleOnly,
            vpccni::RuleEra::Chained => RuleEraFact::Chained,
            vpccni::RuleEra::SingleChain => RuleEraFact::SingleChain,
            vpccni::RuleEra::NftConnmark => RuleEraFact::NftConnmark,
        }
    }
}

impl RuleEraFact {
    pub fn era(self) -> vpccni::RuleEra {
        match self {
            RuleEraFact::SingleRule => vpccni::RuleEra::SingleRule,
            RuleEraFact::ChainedMangleOnly => vpccni::RuleEra::ChainedMangleOnly,
            RuleEraFact::Chained => vpccni::RuleEra::Chained,
            RuleEraFact::SingleChain => vpccni::RuleEra::SingleChain,
            RuleEraFact::NftConnmark => vpccni::RuleEra::NftConnmark,
        }
    }
}

impl Facts {
    /// Derive the facts from a snapshot. Never fails: what is unknown stays `None`.
    pub fn from_snapshot(s: &Snapshot) -> Facts {
        let cni = s.cni.get();
        let env_known = cni.map(|c| !c.env.is_empty()).unwrap_or(false);
        let get =
            |k: &str| -> Option<&str> { cni.and_then(|c| c.get(k)).filter(|v| !v.is_empty()) };
        let env_src = |k: &str| -> Provenance {
            match cni.and_then(|c| c.env_sources.get(k)) {
                Some(src) if src.starts_with("ipamd") => Provenance::Ipamd,
                _ => Provenance::Env,
            }
        };

        let bool_fact = |k: &str, default: bool| -> Option<Known<bool>> {
            match get(k) {
                Some(v) => match parse_bool(v) {
                    Some(b) => Some(Known::new(b, env_src(k)).with_detail(format!("{k}={v}"))),
                    None => Some(
                        Known::new(default, Provenance::Default)
                            .with_detail(format!("{k}={v} is not a boolean; CNI default")),
                    ),
                },
                None if env_known => Some(
                    Known::new(default, Provenance::Default)
                        .with_detail(format!("{k} unset; CNI default {default}")),
                ),
                None => None,
            }
        };

        let ipv6 = match get(env::ENABLE_IPV6).and_then(parse_bool) {
            Some(b) => Known::new(b, env_src(env::ENABLE_IPV6)),
            // No env (e.g. an eks-log-collector archive: ipamd's env endpoints do not list
            // ENABLE_IPv6): an IPv6 cluster shows itself by its pods' addresses.
            None => match infer_ipv6(s) {
                Some(detail) => Known::new(true, Provenance::Inferred).with_detail(detail),
                None => Known::new(false, Provenance::Default),
            },
        };

        let (exclude, exclude_ignored) = match get(env::EXCLUDE_SNAT_CIDRS) {
            Some(v) => {
                let (c, bad) = parse_cidr_list(v);
                (
                    Known::new(c, env_src(env::EXCLUDE_SNAT_CIDRS))
                        .with_detail(format!("{}={v}", env::EXCLUDE_SNAT_CIDRS)),
                    bad,
                )
            }
            None => (Known::new(Vec::new(), Provenance::Default), Vec::new()),
        };
        let external_service = match get(env::EXTERNAL_SERVICE_CIDRS) {
            Some(v) => Known::new(parse_cidr_list(v).0, env_src(env::EXTERNAL_SERVICE_CIDRS)),
            None => Known::new(Vec::new(), Provenance::Default),
        };

        let randomize = match get(env::RANDOMIZESNAT) {
            Some(v) => Some(
                Known::new(parse_randomize(v), env_src(env::RANDOMIZESNAT))
                    .with_detail(format!("{}={v}", env::RANDOMIZESNAT)),
            ),
            None if env_known => Some(
                Known::new(Randomize::Prng, Provenance::Default)
                    .with_detail("RANDOMIZESNAT unset; CNI default prng"),
            ),
            None => None,
        };
        let connmark = match get(env::CONNMARK) {
            Some(v) => Some(match parse_u32(v).filter(|m| *m > 0) {
                Some(m) => Known::new(m, env_src(env::CONNMARK))
                    .with_detail(format!("{}={v}", env::CONNMARK)),
                None => Known::new(vpccni::DEFAULT_CONNMARK, Provenance::Default).with_detail(
                    format!("{}={v} out of range; the CNI uses 0x80", env::CONNMARK),
                ),
            }),
            None if env_known => Some(Known::new(vpccni::DEFAULT_CONNMARK, Provenance::Default)),
            None => None,
        };
        let veth_prefix = match get(env::VETHPREFIX) {
            Some(v) => Known::new(v.to_string(), env_src(env::VETHPREFIX)),
            None => Known::new(vpccni::DEFAULT_VETH_PREFIX.to_string(), Provenance::Default),
        };

        let dump = analysed_dump(s);
        let external_snat = bool_fact(env::EXTERNALSNAT, false).or_else(|| {
            // No env: infer from the rules. An AWS SNAT rule means EXTERNALSNAT=false.
            dump.filter(|d| has_aws_snat_rule(d)).map(|_| {
                Known::new(false, Provenance::Inferred)
                    .with_detail("an \"AWS, SNAT\" rule is present")
            })
        });

        let node = s.node.get();
        let node_inferred = |field: &str| -> bool {
            node.map(|n| n.inferred.iter().any(|f| f == field))
                .unwrap_or(false)
        };
        let routes = s.routes.get().map(Vec::as_slice).unwrap_or(&[]);
        let main_default = routes.iter().find(|r| {
            r.table == model::net::RT_TABLE_MAIN
                && r.family == model::Family::Inet
                && r.is_default()
                && r.route_type == "unicast"
        });

        let vpc_cidrs = match node.filter(|n| !n.vpc_cidrs.is_empty()) {
            Some(n) => Some(Known::new(
                n.vpc_cidrs.clone(),
                if node_inferred("vpc_cidrs") {
                    Provenance::Inferred
                } else {
                    Provenance::Imds
                },
            )),
            None => dump.and_then(|d| {
                let c = inferred_vpc_cidrs(d);
                (!c.is_empty()).then(|| {
                    Known::new(c, Provenance::Inferred)
                        .with_detail("from the VPC-CIDR RETURN rules of AWS-SNAT-CHAIN-0")
                })
            }),
        };

        let primary_ipv4 = match node.and_then(|n| n.primary_ipv4) {
            Some(ip) => Some(Known::new(
                ip,
                if node_inferred("primary_ipv4") {
                    Provenance::Inferred
                } else {
                    Provenance::Imds
                },
            )),
            None => infer_primary_ipv4(s, main_default),
        };

        let primary_interface = match node.and_then(|n| n.primary_interface.clone()) {
            Some(i) => Some(Known::new(
                i,
                if node_inferred("primary_interface") {
                    Provenance::Inferred
                } else {
                    Provenance::Imds
                },
            )),
            None => main_default.and_then(|r| r.dev.clone()).map(|d| {
                Known::new(d, Provenance::Inferred).with_detail("device of the default route")
            }),
        };

        let enis = build_enis(s);
        let pods = build_pods(s, &enis, &veth_prefix.value);

        let (aws_backends, kubelet_backend) = backends(s);
        // The version from the aws-node image, else from ipamd's newest `Starting L-IPAMD
        // vX.Y.Z  ...` line (every version since v1.0 logs it at start).
        let (cni_version, version_src) = match cni.and_then(|c| c.version.clone()) {
            Some(v) => (Some(v), Provenance::Env),
            None => (version_from_logs(s), Provenance::Ipamd),
        };
        let era = match cni_version.as_deref().and_then(parse_version) {
            Some(v) => Some(
                Known::new(vpccni::RuleEra::of_version(v).into(), version_src).with_detail(
                    if version_src == Provenance::Ipamd {
                        format!("ipamd log: Starting L-IPAMD v{}.{}.{}", v.0, v.1, v.2)
                    } else {
                        format!("CNI v{}.{}.{}", v.0, v.1, v.2)
                    },
                ),
            ),
            None => dump.and_then(infer_era),
        };

        let version = cni_version.as_deref().and_then(parse_version);
        let mut pods = pods;
        let log_pods = merge_log_pods(s, &mut pods, version);

        Facts {
            env_known,
            ipv6,
            external_snat,
            exclude_snat_cidrs: exclude,
            exclude_snat_ignored: exclude_ignored,
            randomize,
            node_port_support: bool_fact(env::NODE_PORT_SUPPORT, true),
            connmark,
            veth_prefix,
            custom_networking: bool_fact(env::CUSTOM_NETWORK_CFG, false),
            external_service_cidrs: external_service,
            vpc_cidrs,
            primary_ipv4,
            primary_interface,
            enis,
            pods,
            log_pods,
            snat_layout: dump.map(snat_layout).unwrap_or(SnatLayout::None),
            aws_backends,
            kubelet_backend,
            analysed_backend: dump.map(|d| d.backend),
            cni_version,
            era,
        }
    }

    /// CNI version as (major, minor, patch), when known.
    pub fn version(&self) -> Option<(u32, u32, u32)> {
        self.cni_version.as_deref().and_then(parse_version)
    }

    /// True when the CNI version is known and at least `v`.
    pub fn version_at_least(&self, v: (u32, u32, u32)) -> bool {
        self.version().map(|have| have >= v).unwrap_or(false)
    }

    /// The rule era whose expectations apply, when known or inferred.
    pub fn rule_era(&self) -> Option<vpccni::RuleEra> {
        self.era.as_ref().map(|k| k.value.era())
    }

    /// One line for reports: the CNI version, or the layout the rules were judged by.
    pub fn layout_line(&self) -> Option<String> {
        let e = self.era.as_ref()?;
        Some(match (&self.cni_version, e.source) {
            (Some(v), Provenance::Env | Provenance::Ipamd) => {
                format!("CNI {v}: {}", e.value.era().describe())
            }
            _ => format!(
                "CNI version unknown; inferred layout: {}{}",
                e.value.era().describe(),
                e.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        })
    }

    /// A check that only exists from version `v` on applies to this node: the version is at
    /// least `v`, or, with the version unknown, the era's oldest version is at least `v`.
    /// With neither known, it applies (today's expectations).
    pub fn expects_since(&self, v: (u32, u32, u32)) -> bool {
        match (self.version(), self.rule_era()) {
            (Some(have), _) => have >= v,
            (None, Some(era)) => era.version_range().0 >= v,
            (None, None) => true,
        }
    }

    /// VPC CIDRs plus the (effective) exclusions: every destination the SNAT chain must RETURN.
    pub fn expected_returns(&self) -> Option<Vec<Ipv4Net>> {
        let mut v = self.vpc_cidrs.as_ref()?.value.clone();
        for c in &self.exclude_snat_cidrs.value {
            if !v.contains(c) {
                v.push(*c);
            }
        }
        Some(v)
    }

    /// Is `ip` inside a VPC CIDR or an exclusion (traffic that must not be SNATed)?
    pub fn is_no_snat_destination(&self, ip: &IpAddr) -> Option<bool> {
        let IpAddr::V4(v4) = ip else {
            return Some(true);
        };
        let returns = self.expected_returns()?;
        Some(returns.iter().any(|c| c.contains(v4)))
    }

    /// Is `ip` a pod IP known from ipamd or a host route?
    pub fn pod(&self, ip: &IpAddr) -> Option<&PodFact> {
        self.pods.iter().find(|p| &p.ip == ip)
    }

    /// Names of the inferred facts among those listed (for `Finding.inferred`).
    pub fn inferred_names(&self, names: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for n in names {
            let inferred = match *n {
                "vpc_cidrs" => self.vpc_cidrs.as_ref().is_some_and(Known::is_inferred),
                "primary_ipv4" => self.primary_ipv4.as_ref().is_some_and(Known::is_inferred),
                "primary_interface" => self
                    .primary_interface
                    .as_ref()
                    .is_some_and(Known::is_inferred),
                "external_snat" => self.external_snat.as_ref().is_some_and(Known::is_inferred),
                "pods" => self.pods.iter().any(|p| p.source == Provenance::Inferred),
                _ => false,
            };
            if inferred {
                let detail = match *n {
                    "vpc_cidrs" => self.vpc_cidrs.as_ref().and_then(|k| k.detail.clone()),
                    "primary_ipv4" => self.primary_ipv4.as_ref().and_then(|k| k.detail.clone()),
                    "primary_interface" => self
                        .primary_interface
                        .as_ref()
                        .and_then(|k| k.detail.clone()),
                    "external_snat" => self.external_snat.as_ref().and_then(|k| k.detail.clone()),
                    "pods" => Some("some pods known only from main-table host routes".into()),
                    _ => None,
                };
                out.push(match detail {
                    Some(d) => format!("{n} ({d})"),
                    None => n.to_string(),
                });
            }
        }
        out
    }
}

/// Primary IPv4 without IMDS: the default route's `src`, else the first global IPv4 of its
/// device, else the `local` route of that device.
fn infer_primary_ipv4(s: &Snapshot, default: Option<&model::Route>) -> Option<Known<Ipv4Addr>> {
    let default = default?;
    if let Some(IpAddr::V4(ip)) = default.prefsrc {
        return Some(Known::new(ip, Provenance::Inferred).with_detail("default route src"));
    }
    let dev = default.dev.as_deref()?;
    if let Some(a) = s.addresses.get().and_then(|addrs| {
        addrs.iter().find(|a| {
            a.ifname == dev
                && a.scope == "global"
                && !a.flags.iter().any(|f| f == "secondary")
                && a.local.is_ipv4()
        })
    }) {
        if let IpAddr::V4(ip) = a.local {
            return Some(Known::new(ip, Provenance::Inferred).with_detail(format!(
                "first address of {dev}, the default route's device"
            )));
        }
    }
    let routes = s.routes.get()?;
    routes
        .iter()
        .find(|r| {
            r.table == model::net::RT_TABLE_LOCAL
                && r.route_type == "local"
                && r.dev.as_deref() == Some(dev)
                && r.dst.addr().is_ipv4()
        })
        .and_then(|r| match r.dst.addr() {
            IpAddr::V4(ip) => Some(Known::new(ip, Provenance::Inferred).with_detail(format!(
                "local address of {dev}, the default route's device"
            ))),
            IpAddr::V6(_) => None,
        })
}

/// The version in ipamd's newest `Starting L-IPAMD v1.5.5  ...` log line.
fn version_from_logs(s: &Snapshot) -> Option<String> {
    let logs = s.cni_logs.get()?;
    logs.events.iter().rev().find_map(|e| {
        let rest = e.msg.split("Starting L-IPAMD").nth(1)?;
        let tok = rest.split_whitespace().next()?;
        parse_version(tok).map(|_| tok.to_string())
    })
}

/// Go `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Decimal or `0x` hex.
pub fn parse_u32(v: &str) -> Option<u32> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

/// `RANDOMIZESNAT`: names, or the numeric `snatType` from introspection (2/1/0). Anything else
/// falls back to prng like the CNI.
pub fn parse_randomize(v: &str) -> Randomize {
    match v.trim().to_ascii_lowercase().as_str() {
        "none" | "0" => Randomize::None,
        "hashrandom" | "1" => Randomize::Hashrandom,
        _ => Randomize::Prng,
    }
}

/// Like the CNI's `parseCIDRString`: split on commas, trim, skip invalid and IPv6 entries,
/// store the canonical network. Returns (valid, ignored entries).
pub fn parse_cidr_list(v: &str) -> (Vec<Ipv4Net>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for part in v.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        match p.parse::<IpNet>() {
            Ok(IpNet::V4(n)) => {
                let n = n.trunc();
                if !good.contains(&n) {
                    good.push(n);
                }
            }
            Ok(IpNet::V6(_)) => bad.push(format!("{p} (IPv6, skipped by the CNI)")),
            Err(_) => bad.push(format!("{p} (not a valid CIDR, skipped by the CNI)")),
        }
    }
    (good, bad)
}

/// `v1.21.2`, `1.16.0-eksbuild.1`, `amazon-k8s-cni:v1.19.0` → (1, 21, 2).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    // The first `N.N[.N]` token; `k8s` in an image name is not a version.
    v.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|tok| {
            let mut it = tok.split('.').filter(|s| !s.is_empty());
            let a = it.next()?.parse().ok()?;
            let b = it.next()?.parse().ok()?;
            let c = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            Some((a, b, c))
        })
}

fn is_aws_chain(name: &str) -> bool {
    name.starts_with(vpccni::SNAT_CHAIN_PREFIX) || name.starts_with(vpccni::CONNMARK_CHAIN_PREFIX)
}

/// True when the rule is one the CNI writes (by comment or jump target).
pub(crate) fn is_aws_rule(r: &model::IptRule) -> bool {
    is_aws_chain(&r.chain)
        || r.target.as_deref().is_some_and(is_aws_chain)
        || r.comment().is_some_and(|c| c.starts_with("AWS"))
}

/// The dump holds AWS chains or rules.
pub(crate) fn has_aws_state(d: &IptablesBackendDump) -> bool {
    d.tables.iter().any(|t| {
        t.chains
            .iter()
            .any(|c| is_aws_chain(&c.name) || c.rules.iter().any(is_aws_rule))
    })
}

fn has_aws_snat_rule(d: &IptablesBackendDump) -> bool {
    d.table("nat").is_some_and(|t| {
        t.chains.iter().any(|c| {
            c.rules.iter().any(|r| {
                r.comment() == Some(vpccni::COMMENT_SNAT_RULE)
                    && r.target.as_deref() == Some("SNAT")
            })
        })
    })
}

fn has_canary(d: &IptablesBackendDump) -> bool {
    d.tables
        .iter()
        .any(|t| t.chain(vpccni::KUBELET_CANARY).is_some())
}

fn backends(s: &Snapshot) -> (Vec<Backend>, Option<Backend>) {
    let Some(ipt) = s.iptables.get() else {
        return (Vec::new(), None);
    };
    let aws = ipt
        .backends
        .iter()
        .filter(|d| has_aws_state(d))
        .map(|d| d.backend)
        .collect();
    let kubelet = ipt
        .backends
        .iter()
        .find(|d| has_canary(d))
        .map(|d| d.backend);
    (aws, kubelet)
}

/// The dump to analyse: the kubelet's backend when it holds AWS state, else the one holding
/// AWS state, else the kubelet's, else the PATH default, else the only dump.
pub fn analysed_dump(s: &Snapshot) -> Option<&IptablesBackendDump> {
    let ipt = s.iptables.get()?;
    let aws_rules = |d: &IptablesBackendDump| -> usize {
        d.tables
            .iter()
            .flat_map(|t| t.chains.iter())
            .flat_map(|c| c.rules.iter())
            .filter(|r| is_aws_rule(r))
            .count()
    };
    let kubelet = ipt.backends.iter().find(|d| has_canary(d));
    if let Some(k) = kubelet.filter(|d| aws_rules(d) > 0) {
        return Some(k);
    }
    // Else the dump with the most AWS rules (empty AWS chains left in the other backend are
    // noise), else one with AWS chains at all.
    let with_rules = ipt
        .backends
        .iter()
        .filter(|d| aws_rules(d) > 0)
        .max_by_key(|d| aws_rules(d));
    with_rules
        .or_else(|| kubelet.filter(|d| has_aws_state(d)))
        .or_else(|| ipt.backends.iter().find(|d| has_aws_state(d)))
        .or(kubelet)
        .or_else(|| ipt.default_backend.and_then(|b| ipt.backend(b)))
        .or_else(|| ipt.backends.iter().find(|d| !d.tables.is_empty()))
        .or_else(|| ipt.backends.first())
}

/// The rule era a dump's AWS layout belongs to, when the CNI version is unknown (inferred).
pub fn infer_era(d: &IptablesBackendDump) -> Option<Known<RuleEraFact>> {
    use vpccni::RuleEra;
    let nat = d.table("nat")?;
    let inferred = |e: RuleEra, why: &str| {
        Some(Known::new(e.into(), Provenance::Inferred).with_detail(why.to_string()))
    };
    let has_cm_chain = nat
        .chains
        .iter()
        .any(|c| c.name.starts_with(vpccni::CONNMARK_CHAIN_PREFIX));
    let typo = nat
        .chains
        .iter()
        .flat_map(|c| c.rules.iter())
        .any(|r| r.comment() == Some(vpccni::COMMENT_SNAT_CHAN_TYPO));
    match snat_layout(d) {
        SnatLayout::Single if has_cm_chain => inferred(
            RuleEra::SingleChain,
            "AWS-SNAT-CHAIN-0 holds RETURN rules and the SNAT rule",
        ),
        SnatLayout::Single if d.backend == Backend::Nft => inferred(
            RuleEra::NftConnmark,
            "single AWS-SNAT-CHAIN-0 on the nft backend without AWS-CONNMARK-CHAIN",
        ),
        SnatLayout::Single => inferred(
            RuleEra::SingleChain,
            "AWS-SNAT-CHAIN-0 holds RETURN rules and the SNAT rule",
        ),
        SnatLayout::Chained if typo => inferred(
            RuleEra::ChainedMangleOnly,
            "chained AWS-SNAT-CHAIN-* with the \"AWS SNAT CHAN\" comment of v1.3–v1.5",
        ),
        SnatLayout::Chained if has_cm_chain => inferred(
            RuleEra::Chained,
            "chained AWS-SNAT-CHAIN-* and AWS-CONNMARK-CHAIN-* (v1.8.0+)",
        ),
        SnatLayout::Chained => {
            // Without the nat connmark chain: v1.3–v1.7, unless the paste hid it.
            let complete = nat
                .chains
                .iter()
                .any(|c| c.name == "PREROUTING" && c.policy.is_some());
            if complete {
                inferred(
                    RuleEra::ChainedMangleOnly,
                    "chained AWS-SNAT-CHAIN-* and no nat AWS-CONNMARK-CHAIN (before v1.8.0)",
                )
            } else {
                inferred(RuleEra::Chained, "chained AWS-SNAT-CHAIN-*")
            }
        }
        SnatLayout::None => {
            let legacy = nat.chain("POSTROUTING").is_some_and(|c| {
                c.rules.iter().any(|r| {
                    r.comment() == Some(vpccni::COMMENT_SNAT_RULE)
                        && r.target.as_deref() == Some("SNAT")
                })
            });
            if legacy {
                inferred(
                    RuleEra::SingleRule,
                    "one \"AWS, SNAT\" rule directly in POSTROUTING, no AWS-SNAT-CHAIN (v1.0–v1.2)",
                )
            } else {
                None
            }
        }
    }
}

/// Layout of the AWS SNAT chains in a dump.
pub fn snat_layout(d: &IptablesBackendDump) -> SnatLayout {
    let Some(nat) = d.table("nat") else {
        return SnatLayout::None;
    };
    let Some(c0) = nat.chain(vpccni::SNAT_CHAIN_0) else {
        return if nat
            .chains
            .iter()
            .any(|c| c.name.starts_with(vpccni::SNAT_CHAIN_PREFIX))
        {
            SnatLayout::Chained
        } else {
            SnatLayout::None
        };
    };
    let chained = c0.rules.iter().any(|r| {
        r.target
            .as_deref()
            .is_some_and(|t| t.starts_with(vpccni::SNAT_CHAIN_PREFIX))
    });
    if chained {
        SnatLayout::Chained
    } else {
        SnatLayout::Single
    }
}

/// VPC CIDRs as the rules say: `-d X … "AWS SNAT CHAIN" -j RETURN` (single) or
/// `! -d X … "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-n` (chained). Exclusions are not included.
fn inferred_vpc_cidrs(d: &IptablesBackendDump) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    let Some(nat) = d.table("nat") else {
        return out;
    };
    // v1.0–v1.2: `! -d <VPC> … "AWS, SNAT" -j SNAT` directly in POSTROUTING.
    if let Some(post) = nat.chain("POSTROUTING") {
        for r in &post.rules {
            if r.comment() == Some(vpccni::COMMENT_SNAT_RULE) && r.target.as_deref() == Some("SNAT")
            {
                if let Some(a) = r.arg("-d").filter(|a| a.negated) {
                    if let Some(n) = a.values.first().and_then(|v| parse_net(v)) {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
            }
        }
    }
    for c in nat
        .chains
        .iter()
        .filter(|c| c.name.starts_with(vpccni::SNAT_CHAIN_PREFIX))
    {
        for r in &c.rules {
            if r.comment() != Some(vpccni::COMMENT_SNAT_VPC)
                && r.comment() != Some(vpccni::COMMENT_SNAT_CHAN_TYPO)
            {
                continue;
            }
            let Some(a) = r.arg("-d") else { continue };
            let jump_next = r
                .target
                .as_deref()
                .is_some_and(|t| t.starts_with(vpccni::SNAT_CHAIN_PREFIX));
            let ret = r.target.as_deref() == Some("RETURN");
            // Only the healthy forms; an inverted rule must not define the VPC.
            if (ret && !a.negated) || (jump_next && a.negated) {
                if let Some(n) = a.values.first().and_then(|v| parse_net(v)) {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
        }
    }
    out
}

/// `10.0.0.0/8` or a bare address (= /32), canonicalised.
pub fn parse_net(v: &str) -> Option<Ipv4Net> {
    let v = v.trim();
    if let Ok(n) = v.parse::<Ipv4Net>() {
        return Some(n.trunc());
    }
    v.parse::<Ipv4Addr>()
        .ok()
        .and_then(|a| Ipv4Net::new(a, 32).ok())
}

fn build_enis(s: &Snapshot) -> Vec<EniFact> {
    let mut out: Vec<EniFact> = Vec::new();
    if let Some(n) = s.node.get() {
        for e in &n.enis {
            let d = e.device_number.unwrap_or(0);
            let card = e.network_card.unwrap_or(0);
            let is_primary = n
                .primary_mac
                .as_deref()
                .map(|m| m.eq_ignore_ascii_case(&e.mac))
                .unwrap_or(d == 0 && card == 0);
            if e.device_number.is_none() {
                continue;
            }
            out.push(EniFact {
                id: e.interface_id.clone(),
                mac: Some(e.mac.clone()),
                interface: e.interface.clone(),
                device_number: d,
                network_card: card,
                is_primary,
                is_trunk: false,
                expected_table: vpccni::eni_route_table(d, card),
                primary_ip: e.ipv4_addresses.first().copied(),
                subnet_cidr: e.subnet_cidr,
                managed: false,
                source: Provenance::Imds,
            });
        }
    }
    if let Some(ip) = s.cni.get().and_then(|c| c.ipamd_enis.as_ref()) {
        for card in &ip.network_cards {
            for e in &card.enis {
                let table = e
                    .route_table_id
                    .unwrap_or_else(|| vpccni::eni_route_table(e.device_number, card.index));
                if let Some(existing) = out.iter_mut().find(|x| {
                    x.id.as_deref() == Some(e.id.as_str())
                        || (x.device_number == e.device_number && x.network_card == card.index)
                }) {
                    if existing.id.is_none() {
                        existing.id = Some(e.id.clone());
                    }
                    existing.is_trunk = e.is_trunk;
                    existing.managed = true;
                    existing.is_primary = existing.is_primary || e.is_primary;
                    existing.expected_table = table;
                } else {
                    out.push(EniFact {
                        id: Some(e.id.clone()),
                        mac: None,
                        interface: None,
                        device_number: e.device_number,
                        network_card: card.index,
                        is_primary: e.is_primary,
                        is_trunk: e.is_trunk,
                        expected_table: table,
                        primary_ip: None,
                        subnet_cidr: None,
                        managed: true,
                        source: Provenance::Ipamd,
                    });
                }
            }
        }
    }
    out.sort_by_key(|e| (e.network_card, e.device_number));
    out
}

/// Comment of the filter FORWARD REJECT of 169.254.172.0/22 that IPv6 mode adds
/// (`setupRuleToBlockNodeLocalAccess`, pkg/networkutils/network.go v1.10.0+).
const COMMENT_BLOCK_NODE_LOCAL_V4: &str = "Block Node Local Pod access via IPv4";

/// IPv6 mode without an `ENABLE_IPv6` env: every pod address ipamd assigns is IPv6 (its /80
/// prefixes, `IPv6Cidrs`), or, without `/v1/enis`, every main-table host route through a
/// default-prefix host veth is a /128 (groundtruth §2.1 "IPv6 clusters").
fn infer_ipv6(s: &Snapshot) -> Option<String> {
    if let Some(enis) = s.cni.get().and_then(|c| c.ipamd_enis.as_ref()) {
        let (mut v4, mut v6) = (0usize, 0usize);
        for a in enis
            .network_cards
            .iter()
            .flat_map(|c| &c.enis)
            .flat_map(|e| &e.cidrs)
            .flat_map(|c| &c.addresses)
            .filter(|a| a.assigned)
        {
            if a.address.is_ipv6() {
                v6 += 1;
            } else {
                v4 += 1;
            }
        }
        return (v6 > 0 && v4 == 0).then(|| {
            format!("ipamd /v1/enis assigns only IPv6 pod addresses ({v6}), no IPv4 ones")
        });
    }
    let (mut v4, mut v6) = (0usize, 0usize);
    for r in pod_routes(s, vpccni::DEFAULT_VETH_PREFIX) {
        if r.dst.addr().is_ipv6() {
            v6 += 1;
        } else {
            v4 += 1;
        }
    }
    if v6 > 0 && v4 == 0 {
        return Some(format!(
            "all {v6} pod host routes (`<addr> dev eni…`) are IPv6, none IPv4"
        ));
    }
    if v4 > 0 {
        return None;
    }
    // IPv6 mode programs one IPv4 rule of its own: filter FORWARD `-d 169.254.172.0/22 …
    // "Block Node Local Pod access via IPv4" -j REJECT` (`enableIPv6` in
    // pkg/networkutils/network.go, v1.10.0+); an IPv4 node has its IPv6 twin in ip6tables
    // instead (with ENABLE_V6_EGRESS).
    let block = s.iptables.get().is_some_and(|ipt| {
        ipt.backends
            .iter()
            .filter_map(|d| d.table("filter"))
            .flat_map(|t| t.chains.iter())
            .flat_map(|c| c.rules.iter())
            .any(|r| r.comment() == Some(COMMENT_BLOCK_NODE_LOCAL_V4))
    });
    block.then(|| {
        format!(
            "filter FORWARD has the \"{}\" REJECT rule, which the CNI programs only in IPv6 mode",
            COMMENT_BLOCK_NODE_LOCAL_V4
        )
    })
}

fn build_pods(s: &Snapshot, enis: &[EniFact], veth_prefix: &str) -> Vec<PodFact> {
    let mut pods: Vec<PodFact> = Vec::new();
    if let Some(ip) = s.cni.get().and_then(|c| c.ipamd_enis.as_ref()) {
        for card in &ip.network_cards {
            for e in &card.enis {
                let table = enis
                    .iter()
                    .find(|x| x.id.as_deref() == Some(e.id.as_str()))
                    .map(|x| x.expected_table)
                    .unwrap_or_else(|| vpccni::eni_route_table(e.device_number, card.index));
                for cidr in &e.cidrs {
                    for a in cidr.addresses.iter().filter(|a| a.assigned) {
                        if pods.iter().any(|p| p.ip == a.address) {
                            continue;
                        }
                        pods.push(PodFact {
                            ip: a.address,
                            host_veth: None,
                            eni: Some(e.id.clone()),
                            device_number: Some(e.device_number),
                            table: Some(table),
                            namespace: a.pod_namespace.clone(),
                            name: a.pod_name.clone(),
                            in_ipamd: true,
                            has_route: false,
                            source: Provenance::Ipamd,
                            from_log: None,
                        });
                    }
                }
            }
        }
    }
    for r in pod_routes(s, veth_prefix) {
        let ip = r.dst.addr();
        let dev = r.dev.clone();
        if let Some(p) = pods.iter_mut().find(|p| p.ip == ip) {
            p.has_route = true;
            if p.host_veth.is_none() {
                p.host_veth = dev;
            }
        } else {
            pods.push(PodFact {
                ip,
                host_veth: dev,
                eni: None,
                device_number: None,
                table: None,
                namespace: None,
                name: None,
                in_ipamd: false,
                has_route: true,
                source: Provenance::Inferred,
                from_log: None,
            });
        }
    }
    pods.sort_by_key(|p| p.ip);
    pods
}

/// The 1536 table of a pod on ENI `device` as the plugin of that version programs it: the
/// device number itself up to v1.7.4, `device + 1` from v1.7.5 (the plugin's
/// `rtTable = deviceNumber + 1`), `main` for the primary ENI.
fn log_pod_table(p: &crate::podlog::LogPod, version: Option<(u32, u32, u32)>) -> Option<u32> {
    let d = p.device_number?;
    if d == 0 && p.network_card.unwrap_or(0) == 0 {
        return Some(model::net::RT_TABLE_MAIN);
    }
    if let Some(t) = p.route_table {
        return Some(t);
    }
    if version.is_some_and(|v| v < (1, 7, 5)) {
        return Some(d);
    }
    Some(vpccni::eni_route_table(d, p.network_card.unwrap_or(0)))
}

/// Pods from the CNI log events: those already known (ipamd, host routes) get the log's
/// device number when they have none; the others are returned as log-only pods.
fn merge_log_pods(
    s: &Snapshot,
    pods: &mut [PodFact],
    version: Option<(u32, u32, u32)>,
) -> Vec<PodFact> {
    let Some(logs) = s.cni_logs.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for lp in crate::podlog::live_pods(&logs.events) {
        let ip = IpAddr::V4(lp.ip);
        let table = log_pod_table(&lp, version);
        if let Some(p) = pods.iter_mut().find(|p| p.ip == ip) {
            if p.table.is_none() && !p.in_ipamd {
                p.table = table;
                p.device_number = lp.device_number;
            }
            p.namespace = p.namespace.take().or(lp.namespace);
            p.name = p.name.take().or(lp.name);
            p.from_log = Some(lp.evidence);
            continue;
        }
        out.push(PodFact {
            ip,
            host_veth: None,
            eni: None,
            device_number: lp.device_number,
            table,
            namespace: lp.namespace,
            name: lp.name,
            in_ipamd: false,
            has_route: false,
            source: Provenance::Inferred,
            from_log: Some(lp.evidence),
        });
    }
    out
}

/// Main-table host routes through a host veth: `<ip> dev <prefix>… scope link`.
pub fn pod_routes<'a>(
    s: &'a Snapshot,
    veth_prefix: &'a str,
) -> impl Iterator<Item = &'a model::Route> + 'a {
    s.routes
        .get()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(move |r| {
            r.table == model::net::RT_TABLE_MAIN
                && r.dst.prefix_len() == r.dst.max_prefix_len()
                && r.dev.as_deref().is_some_and(|d| {
                    !veth_prefix.is_empty()
                        && d.starts_with(veth_prefix)
                        && d.len() > veth_prefix.len()
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_list_is_canonicalised_like_the_cni() {
        let (good, bad) = parse_cidr_list(" 10.1.2.3/8 ,172.16.0.0/12,, fd00::/8, nope,10.0.0.0/8");
        assert_eq!(
            good,
            vec![
                "10.0.0.0/8".parse::<Ipv4Net>().unwrap_or_default(),
                "172.16.0.0/12".parse::<Ipv4Net>().unwrap_or_default()
            ]
        );
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn randomize_accepts_names_and_numbers() {
        assert_eq!(parse_randomize("2"), Randomize::Prng);
        assert_eq!(parse_randomize("prng"), Randomize::Prng);
        assert_eq!(parse_randomize("1"), Randomize::Hashrandom);
        assert_eq!(parse_randomize("hashrandom"), Randomize::Hashrandom);
        assert_eq!(parse_randomize("0"), Randomize::None);
        assert_eq!(parse_randomize("none"), Randomize::None);
        assert_eq!(parse_randomize("bogus"), Randomize::Prng);
    }

    #[test]
    fn versions_and_marks() {
        assert_eq!(parse_version("v1.21.2"), Some((1, 21, 2)));
        assert_eq!(
            parse_version("amazon-k8s-cni:v1.16.0-eksbuild.1"),
            Some((1, 16, 0))
        );
        assert_eq!(parse_u32("0x80"), Some(128));
        assert_eq!(parse_u32("128"), Some(128));
    }
}
