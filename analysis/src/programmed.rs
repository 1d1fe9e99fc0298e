//! What the VPC CNI actually programmed for SNAT, read from the kernel state of the analysed
//! iptables backend (not from the env): does nat POSTROUTING jump to the SNAT chain, which
//! CIDRs are excluded, which random flag and `--to-source` the SNAT rule carries, and whether
//! AWS SNAT rules also sit in another backend (aws/amazon-vpc-cni-k8s#1847).
//!
//! `diag check` compares these with the operator's assertions; the wording of pass/fail stays
//! there, the reading of the rules is here, next to [`crate::nat`].

use std::collections::BTreeSet;

use ipnet::Ipv4Net;
use model::netfilter::{Randomize, OPT_TO_SOURCE, TABLE_NAT};
use model::{Backend, Evidence, IptablesBackendDump, SectionStatus, Snapshot};

use crate::nat::{AwsNat, RuleRef};

/// Why the programmed state cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No usable iptables dump: the section's status and reason.
    NoIptables {
        status: SectionStatus,
        reason: Option<String>,
    },
    /// The analysed backend has no nat table; `source` as in [`Programmed::source`].
    NoNatTable { source: String },
}

/// How the CNI handles pod egress, as programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgrammedEgress {
    /// nat POSTROUTING jumps to `AWS-SNAT-CHAIN-0` and the `AWS, SNAT` rule exists.
    Snat,
    /// No jump: the CNI does not SNAT (EXTERNALSNAT=true, or IPv6).
    NoSnat,
    /// The jump exists but no `AWS, SNAT` rule: SNAT is half programmed.
    Incomplete,
}

/// The programmed SNAT state of one snapshot's analysed backend.
#[derive(Debug, Clone)]
pub struct Programmed<'a> {
    pub dump: &'a IptablesBackendDump,
    pub nat: AwsNat<'a>,
    /// Other backends holding AWS SNAT jumps or rules (not evaluated).
    pub other_backends: Vec<Backend>,
}

impl<'a> Programmed<'a> {
    /// Read the analysed backend of `snap`; `nat` is its [`AwsNat`] when the caller already
    /// built it (so a snapshot's rules are walked once), else it is built here.
    pub fn read(
        snap: &'a Snapshot,
        nat: Option<&AwsNat<'a>>,
    ) -> Result<Programmed<'a>, Unavailable> {
        let Some(dump) = crate::facts::analysed_dump(snap) else {
            return Err(Unavailable::NoIptables {
                status: snap.iptables.status,
                reason: snap.iptables.reason.clone(),
            });
        };
        let other_backends = other_aws_backends(snap, dump);
        let p = Programmed {
            dump,
            nat: match nat {
                Some(n) if std::ptr::eq(n.dump, dump) => n.clone(),
                _ => AwsNat::from_dump(dump),
            },
            other_backends,
        };
        if dump.table(TABLE_NAT).is_none() {
            return Err(Unavailable::NoNatTable { source: p.source() });
        }
        Ok(p)
    }

    /// Where the rules were read: `nft backend, iptables-nft-save`, and a note when AWS SNAT
    /// rules also sit in another backend.
    pub fn source(&self) -> String {
        let mut source = if self.dump.command.is_empty() {
            format!("{} backend", self.dump.backend)
        } else {
            format!("{} backend, {}", self.dump.backend, self.dump.command)
        };
        if !self.other_backends.is_empty() {
            let names: Vec<String> = self
                .other_backends
                .iter()
                .map(ToString::to_string)
                .collect();
            source.push_str(&format!(
                "; AWS SNAT rules also in the {} backend, not checked",
                names.join(", ")
            ));
        }
        source
    }

    /// nat POSTROUTING jumps to `AWS-SNAT-CHAIN-0`.
    pub fn jumped(&self) -> bool {
        !self.nat.postrouting_jumps.is_empty()
    }

    pub fn egress(&self) -> ProgrammedEgress {
        match (self.jumped(), self.nat.snat_rules.is_empty()) {
            (false, _) => ProgrammedEgress::NoSnat,
            (true, true) => ProgrammedEgress::Incomplete,
            (true, false) => ProgrammedEgress::Snat,
        }
    }

    /// The POSTROUTING jumps and the SNAT rules, as evidence.
    pub fn egress_evidence(&self) -> Vec<Evidence> {
        self.nat
            .postrouting_jumps
            .iter()
            .chain(self.nat.snat_rules.iter())
            .map(RuleRef::evidence)
            .collect()
    }

    /// The programmed exclusions (`AWS SNAT CHAIN EXCLUSION` rules) and their rules as
    /// evidence, one entry per rule.
    pub fn exclusions(&self) -> (BTreeSet<Ipv4Net>, Vec<Evidence>) {
        let mut set = BTreeSet::new();
        let mut evidence = Vec::new();
        for (cidr, r) in self.nat.excluded_cidrs() {
            set.insert(cidr);
            evidence.push(r.evidence());
        }
        (set, evidence)
    }

    /// The random mode of every `AWS, SNAT` rule, in dump order.
    pub fn random_modes(&self) -> Vec<Randomize> {
        self.nat
            .snat_rules
            .iter()
            .map(|r| Randomize::of_rule(r.rule))
            .collect()
    }

    /// The `--to-source` value of every `AWS, SNAT` rule (`None` when it has none).
    pub fn to_sources(&self) -> Vec<Option<String>> {
        self.nat
            .snat_rules
            .iter()
            .map(|r| {
                r.rule
                    .target_arg(OPT_TO_SOURCE)
                    .and_then(|t| t.values.first().map(|v| v.to_string()))
            })
            .collect()
    }

    /// The SNAT rules, as evidence.
    pub fn snat_rule_evidence(&self) -> Vec<Evidence> {
        self.nat.snat_rules.iter().map(RuleRef::evidence).collect()
    }
}

/// Backends other than `analysed` whose dump holds an AWS SNAT jump or rule.
pub fn other_aws_backends(snap: &Snapshot, analysed: &IptablesBackendDump) -> Vec<Backend> {
    snap.iptables
        .get()
        .map(|i| {
            i.backends
                .iter()
                .filter(|d| !std::ptr::eq(*d, analysed))
                .filter(|d| {
                    let n = AwsNat::from_dump(d);
                    !n.postrouting_jumps.is_empty() || !n.snat_rules.is_empty()
                })
                .map(|d| d.backend)
                .collect()
        })
        .unwrap_or_default()
}

/// The address part of a `--to-source` value (`10.0.0.5:1024-65535` → `10.0.0.5`).
pub fn to_source_address(v: &str) -> &str {
    v.split([':', '-']).next().unwrap_or(v)
}
