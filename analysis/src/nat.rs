//! The observed AWS iptables state of one backend: the SNAT and connmark chains, the jumps into
//! them and the mangle rules, plus a small evaluator that walks the SNAT chains for a
//! destination the way netfilter would (for the matches the CNI uses).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use model::netfilter::{
    self, CHAIN_POSTROUTING, CHAIN_PREROUTING, TABLE_MANGLE, TABLE_NAT, TARGET_CONNMARK,
    TARGET_RETURN, TARGET_SNAT,
};
use model::vpccni;
use model::{Backend, Evidence, EvidenceKind, IptRule, IptablesBackendDump};
use serde::Serialize;

use crate::facts::parse_net;

/// A rule with where it sits.
#[derive(Debug, Clone, Copy)]
pub struct RuleRef<'a> {
    pub rule: &'a IptRule,
    pub backend: Backend,
    pub table: &'a str,
    /// 1-based position in its chain.
    pub index: usize,
}

impl<'a> RuleRef<'a> {
    /// `nft nat AWS-SNAT-CHAIN-0 #2`.
    pub fn location(&self) -> String {
        format!(
            "{} {} {} #{}",
            self.backend, self.table, self.rule.chain, self.index
        )
    }

    pub fn evidence(&self) -> Evidence {
        Evidence::new(EvidenceKind::Iptables, self.rule.evidence_line()).at(self.location())
    }

    pub fn target(&self) -> &'a str {
        self.rule.target.as_deref().unwrap_or("")
    }

    /// (cidr, negated) of `-d`.
    pub fn dst(&self) -> Option<(Option<Ipv4Net>, bool)> {
        self.rule
            .arg("-d")
            .map(|a| (a.values.first().and_then(|v| parse_net(v)), a.negated))
    }
}

/// What happened to a destination walking the SNAT chains.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// Source-NATed by this rule.
    Snat(RuleRef<'a>),
    /// Returned by this rule (or fell off the end of a chain: `None`).
    Return(Option<RuleRef<'a>>),
    /// Evaluation gave up (loop, unknown match).
    Unknown,
}

/// Packet counters of a rule, for views.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Counters {
    pub location: String,
    pub line: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl<'a> From<&RuleRef<'a>> for Counters {
    fn from(r: &RuleRef<'a>) -> Self {
        Counters {
            location: r.location(),
            line: r.rule.evidence_line(),
            packets: r.rule.packets,
            bytes: r.rule.bytes,
        }
    }
}

/// AWS state of one backend.
#[derive(Debug, Clone)]
pub struct AwsNat<'a> {
    pub dump: &'a IptablesBackendDump,
    pub backend: Backend,
    /// nat POSTROUTING rules jumping to `AWS-SNAT-CHAIN-0`.
    pub postrouting_jumps: Vec<RuleRef<'a>>,
    /// Names of the `AWS-SNAT-CHAIN-*` chains, in dump order.
    pub snat_chains: Vec<&'a str>,
    pub connmark_chains: Vec<&'a str>,
    /// Every rule inside an `AWS-SNAT-CHAIN-*` chain.
    pub snat_chain_rules: Vec<RuleRef<'a>>,
    /// Every nat rule with target SNAT and comment `AWS, SNAT`, wherever it is.
    pub snat_rules: Vec<RuleRef<'a>>,
    /// nat PREROUTING `-j AWS-CONNMARK-CHAIN-0`.
    pub connmark_jumps: Vec<RuleRef<'a>>,
    /// nat PREROUTING `"AWS, CONNMARK" -j CONNMARK --restore-mark`.
    pub connmark_restores: Vec<RuleRef<'a>>,
    /// Every rule inside an `AWS-CONNMARK-CHAIN-*` chain.
    pub connmark_chain_rules: Vec<RuleRef<'a>>,
    /// mangle PREROUTING `"AWS, primary ENI"` rules.
    pub mangle_rules: Vec<RuleRef<'a>>,
    /// Pasted command lines that filtered the dump (`iptables -t nat -nvL | grep AWS`), with
    /// the table they name (`None`: every table), from the capture's `filtered paste`
    /// warnings ([`AwsNat::with_paste_filters`]).
    pub paste_filters: Vec<(Option<String>, String)>,
}

/// `filtered paste: `<cmd>` shows …` warnings of the iptables section: (table, command).
pub fn paste_filters(s: &model::Snapshot) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for w in &s.iptables.warnings {
        let Some(i) = w.find("filtered paste: `") else {
            continue;
        };
        let rest = &w[i + "filtered paste: `".len()..];
        let Some(end) = rest.find('`') else { continue };
        let cmd = rest[..end].to_string();
        let mut words = cmd.split('|').next().unwrap_or("").split_whitespace();
        let mut table = None;
        while let Some(x) = words.next() {
            if x == "-t" || x == "--table" {
                table = words.next().map(str::to_string);
            } else if let Some(t) = x.strip_prefix("--table=") {
                table = Some(t.to_string());
            } else if let Some(t) = x
                .strip_prefix("-t")
                .filter(|t| !t.is_empty() && !x.starts_with("--"))
            {
                table = Some(t.to_string());
            }
        }
        if !out.iter().any(|(t, c)| t == &table && c == &cmd) {
            out.push((table, cmd));
        }
    }
    out
}

impl<'a> AwsNat<'a> {
    /// The snapshot's pasted-filter command lines apply to this dump.
    pub fn with_paste_filters(mut self, s: &model::Snapshot) -> Self {
        self.paste_filters = paste_filters(s);
        self
    }

    pub fn from_dump(dump: &'a IptablesBackendDump) -> AwsNat<'a> {
        let backend = dump.backend;
        let mut n = AwsNat {
            dump,
            backend,
            postrouting_jumps: Vec::new(),
            snat_chains: Vec::new(),
            connmark_chains: Vec::new(),
            snat_chain_rules: Vec::new(),
            snat_rules: Vec::new(),
            connmark_jumps: Vec::new(),
            connmark_restores: Vec::new(),
            connmark_chain_rules: Vec::new(),
            mangle_rules: Vec::new(),
            paste_filters: Vec::new(),
        };
        if let Some(nat) = dump.table(TABLE_NAT) {
            for c in &nat.chains {
                let is_snat = c.name.starts_with(vpccni::SNAT_CHAIN_PREFIX);
                let is_cm = c.name.starts_with(vpccni::CONNMARK_CHAIN_PREFIX);
                if is_snat {
                    n.snat_chains.push(&c.name);
                }
                if is_cm {
                    n.connmark_chains.push(&c.name);
                }
                for (i, r) in c.rules.iter().enumerate() {
                    let rr = RuleRef {
                        rule: r,
                        backend,
                        table: &nat.name,
                        index: i + 1,
                    };
                    let target = r.target.as_deref().unwrap_or("");
                    if is_snat {
                        n.snat_chain_rules.push(rr);
                    }
                    if is_cm {
                        n.connmark_chain_rules.push(rr);
                    }
                    if target == TARGET_SNAT && r.comment() == Some(vpccni::COMMENT_SNAT_RULE) {
                        n.snat_rules.push(rr);
                    }
                    if c.name == CHAIN_POSTROUTING && target == vpccni::SNAT_CHAIN_0 {
                        n.postrouting_jumps.push(rr);
                    }
                    if c.name == CHAIN_PREROUTING && target == vpccni::CONNMARK_CHAIN_0 {
                        n.connmark_jumps.push(rr);
                    }
                    if c.name == CHAIN_PREROUTING
                        && target == TARGET_CONNMARK
                        && r.comment() == Some(vpccni::COMMENT_CONNMARK)
                    {
                        n.connmark_restores.push(rr);
                    }
                }
            }
        }
        if let Some(mangle) = dump.table(TABLE_MANGLE) {
            if let Some(c) = mangle.chain(CHAIN_PREROUTING) {
                for (i, r) in c.rules.iter().enumerate() {
                    if r.comment() == Some(vpccni::COMMENT_PRIMARY_ENI) {
                        n.mangle_rules.push(RuleRef {
                            rule: r,
                            backend,
                            table: &mangle.name,
                            index: i + 1,
                        });
                    }
                }
            }
        }
        n
    }

    /// Why `table` of this dump cannot prove that a rule is absent, if it cannot: a complete
    /// `iptables-save`, `-S` or `-L` of a table always shows its built-in chains with their
    /// policy (`:POSTROUTING ACCEPT`, `-P POSTROUTING ACCEPT`, `Chain POSTROUTING (policy …)`).
    /// A table whose built-in chains all lack a policy was filtered (`| grep`, one chain
    /// listed, a cut paste). `None` when the table is absent (callers handle that) or complete.
    /// The pasted command line that filtered `table` (`… | grep …`), if any.
    pub fn paste_filter_for(&self, table: &str) -> Option<&str> {
        self.paste_filters
            .iter()
            .find(|(t, _)| t.as_deref().is_none_or(|t| t == table))
            .map(|(_, c)| c.as_str())
    }

    pub fn filtered_table(&self, table: &str) -> Option<String> {
        let t = self.dump.table(table)?;
        if let Some(cmd) = self.paste_filter_for(table) {
            return Some(format!(
                "the {} {table} capture is a filtered paste (`{cmd}`): rules the filter hides are not missing; the unfiltered output would let it run",
                self.backend
            ));
        }
        let builtin = netfilter::builtin_chains(table);
        let with_policy = t
            .chains
            .iter()
            .any(|c| builtin.contains(&c.name.as_str()) && c.policy.is_some());
        (!with_policy).then(|| {
            format!(
                "the {} {table} capture is partial (no built-in chain with its policy: filtered with grep, a single chain listed, or cut): absent rules cannot be told from rules left out of the paste",
                self.backend
            )
        })
    }

    pub fn has_snat_chain0(&self) -> bool {
        self.snat_chains.contains(&vpccni::SNAT_CHAIN_0)
    }

    /// Rules of one nat chain, as refs.
    pub fn chain_rules(&self, chain: &str) -> Vec<RuleRef<'a>> {
        self.snat_chain_rules
            .iter()
            .chain(self.connmark_chain_rules.iter())
            .filter(|r| r.rule.chain == chain)
            .copied()
            .collect()
    }

    /// Walk `AWS-SNAT-CHAIN-0` for an outbound packet from a pod (not to a vlan, to a
    /// non-local address) with destination `dst`.
    pub fn evaluate(&self, dst: Ipv4Addr) -> Verdict<'a> {
        self.walk(vpccni::SNAT_CHAIN_0, dst, 0)
    }

    fn walk(&self, chain: &str, dst: Ipv4Addr, depth: usize) -> Verdict<'a> {
        if depth > 64 {
            return Verdict::Unknown;
        }
        for r in self.chain_rules(chain) {
            match matches(r.rule, dst) {
                Some(true) => {}
                Some(false) => continue,
                None => continue,
            }
            let t = r.target();
            if t == TARGET_RETURN {
                return Verdict::Return(Some(r));
            }
            if t == TARGET_SNAT {
                return Verdict::Snat(r);
            }
            if t.starts_with(vpccni::SNAT_CHAIN_PREFIX) {
                let v = self.walk(t, dst, depth + 1);
                match v {
                    // Falling off the end of the called chain continues here.
                    Verdict::Return(None) => continue,
                    Verdict::Return(Some(rr)) if rr.rule.chain == t => continue,
                    other => return other,
                }
            }
        }
        Verdict::Return(None)
    }

    /// The CIDRs the SNAT chain returns as it stands (healthy forms only: `-d X -j RETURN` and
    /// the chained `! -d X -j AWS-SNAT-CHAIN-n`).
    pub fn returned_cidrs(&self) -> Vec<(Ipv4Net, RuleRef<'a>)> {
        let mut out = Vec::new();
        for r in &self.snat_chain_rules {
            let t = r.target();
            if let Some((Some(c), neg)) = r.dst() {
                if (t == TARGET_RETURN && !neg) || (t.starts_with(vpccni::SNAT_CHAIN_PREFIX) && neg)
                {
                    out.push((c, *r));
                }
            } else if t == TARGET_RETURN
                && r.rule.comment() == Some(vpccni::COMMENT_SNAT_EXCLUSION)
                && r.rule.arg("-d").is_none()
            {
                // v1.23 renders an exclusion of 0.0.0.0/0 without `-d` (#3658).
                if let Ok(all) = "0.0.0.0/0".parse() {
                    out.push((all, *r));
                }
            }
        }
        out
    }

    /// The exclusions as programmed: [`Self::returned_cidrs`] of rules commented
    /// `AWS SNAT CHAIN EXCLUSION` (`AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS` as the CNI wrote it).
    pub fn excluded_cidrs(&self) -> Vec<(Ipv4Net, RuleRef<'a>)> {
        self.returned_cidrs()
            .into_iter()
            .filter(|(_, r)| r.rule.comment() == Some(vpccni::COMMENT_SNAT_EXCLUSION))
            .collect()
    }
}

/// Does this rule's match part apply to a pod's outbound packet to `dst`? `None` when a
/// match the evaluator does not model is present.
fn matches(r: &IptRule, dst: Ipv4Addr) -> Option<bool> {
    let mut ok = true;
    for a in &r.matches {
        match (a.module.as_deref(), a.option.as_str()) {
            (_, "-d") => {
                let net = a.values.first().and_then(|v| parse_net(v))?;
                let inside = net.contains(&dst);
                ok &= inside != a.negated;
            }
            // `! -o vlan+`: pod traffic leaves via the primary IF, not a vlan.
            (_, "-o") => {
                let v = a.values.first().map(|v| v.as_str()).unwrap_or("");
                let is_vlan = v.starts_with("vlan");
                ok &= is_vlan == a.negated;
            }
            // `-m addrtype ! --dst-type LOCAL`: the destination is remote.
            (_, "--dst-type") => {
                let local = a.values.first().is_some_and(|v| v == "LOCAL");
                ok &= local == a.negated;
            }
            (_, "--comment") | (_, "-m") => {}
            (Some("comment"), _) => {}
            _ => return None,
        }
    }
    Some(ok)
}
