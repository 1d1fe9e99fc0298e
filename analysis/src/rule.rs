//! Shared plumbing for rules: the context they read and a finding builder.

use model::{Evidence, EvidenceKind, Finding, Severity, Snapshot};

use crate::facts::Facts;
use crate::nat::AwsNat;

/// `Ok(findings)` when evaluated (possibly none), `Err(reason)` when skipped.
pub(crate) type RuleResult = Result<Vec<Finding>, String>;

/// What a rule may read.
pub(crate) struct Ctx<'a> {
    pub s: &'a Snapshot,
    pub f: &'a Facts,
    pub node: String,
    /// The AWS nat/mangle state of the analysed backend, when iptables was collected.
    pub nat: Option<&'a AwsNat<'a>>,
}

impl<'a> Ctx<'a> {
    /// The context over one prepared snapshot (facts and nat state already derived).
    pub fn new(p: &'a crate::Prepared<'a>) -> Self {
        Ctx {
            s: p.snapshot,
            f: &p.facts,
            node: p.snapshot.display_name(),
            nat: p.nat.as_ref(),
        }
    }

    pub fn finding(&self, rule: &str, severity: Severity, summary: impl Into<String>) -> Fb {
        Fb(Finding {
            rule: rule.to_string(),
            severity,
            node: self.node.clone(),
            summary: summary.into(),
            evidence: Vec::new(),
            explanation: String::new(),
            remedy: String::new(),
            inferred: Vec::new(),
        })
    }

    /// The iptables dump, or the reason the rule must be skipped.
    pub fn need_nat(&self) -> Result<&AwsNat<'a>, String> {
        if let Some(n) = self.nat {
            return Ok(n);
        }
        Err(section_reason(
            "iptables",
            self.s.iptables.status,
            self.s.iptables.reason.as_deref(),
        ))
    }

    pub fn need_routes(&self) -> Result<&'a [model::Route], String> {
        self.s.routes.get().map(Vec::as_slice).ok_or_else(|| {
            section_reason(
                "routes",
                self.s.routes.status,
                self.s.routes.reason.as_deref(),
            )
        })
    }

    pub fn need_rules(&self) -> Result<&'a [model::IpRule], String> {
        self.s.rules.get().map(Vec::as_slice).ok_or_else(|| {
            section_reason("rules", self.s.rules.status, self.s.rules.reason.as_deref())
        })
    }

    pub fn need_conntrack(&self) -> Result<&'a model::ConntrackSection, String> {
        self.s.conntrack.get().ok_or_else(|| {
            section_reason(
                "conntrack",
                self.s.conntrack.status,
                self.s.conntrack.reason.as_deref(),
            )
        })
    }

    pub fn need_sysctls(&self) -> Result<&'a model::Sysctls, String> {
        self.s.sysctls.get().ok_or_else(|| {
            section_reason(
                "sysctls",
                self.s.sysctls.status,
                self.s.sysctls.reason.as_deref(),
            )
        })
    }

    /// IPv6 clusters have no SNAT/connmark rules (groundtruth §1.2 H).
    pub fn skip_if_ipv6(&self) -> Result<(), String> {
        if self.f.ipv6.value {
            let why = match &self.f.ipv6.detail {
                Some(d) if self.f.ipv6.is_inferred() => format!("inferred: {d}"),
                _ => "ENABLE_IPv6=true".to_string(),
            };
            Err(format!(
                "IPv6 cluster ({why}): the CNI programs no SNAT/connmark rules"
            ))
        } else {
            Ok(())
        }
    }
}

pub(crate) fn section_reason(
    name: &str,
    status: model::SectionStatus,
    reason: Option<&str>,
) -> String {
    match reason {
        Some(r) => format!("section {name} is {status}: {r}"),
        None => format!("section {name} is {status}"),
    }
}

/// Finding builder.
pub(crate) struct Fb(Finding);

impl Fb {
    pub fn ev(
        mut self,
        kind: EvidenceKind,
        location: Option<String>,
        text: impl Into<String>,
    ) -> Self {
        let mut e = Evidence::new(kind, text);
        e.location = location;
        self.0.evidence.push(e);
        self
    }

    pub fn evs(mut self, evidence: impl IntoIterator<Item = Evidence>) -> Self {
        self.0.evidence.extend(evidence);
        self
    }

    pub fn note(self, text: impl Into<String>) -> Self {
        self.ev(EvidenceKind::Note, None, text)
    }

    pub fn explain(mut self, text: impl Into<String>) -> Self {
        self.0.explanation = text.into();
        self
    }

    pub fn remedy(mut self, text: impl Into<String>) -> Self {
        self.0.remedy = text.into();
        self
    }

    pub fn inferred(mut self, names: Vec<String>) -> Self {
        for n in names {
            if !self.0.inferred.contains(&n) {
                self.0.inferred.push(n);
            }
        }
        self
    }

    pub fn done(self) -> Finding {
        self.0
    }
}

/// Route evidence.
pub(crate) fn route_ev(r: &model::Route) -> Evidence {
    Evidence::new(EvidenceKind::Route, r.to_ip_line())
        .at(format!("table {}", model::net::table_name(r.table)))
}

/// `ip rule` evidence.
pub(crate) fn rule_ev(r: &model::IpRule) -> Evidence {
    Evidence::new(EvidenceKind::Rule, r.to_ip_line()).at("ip rule")
}

/// sysctl evidence.
pub(crate) fn sysctl_ev(key: &str, value: &str) -> Evidence {
    Evidence::new(EvidenceKind::Sysctl, format!("{key} = {value}")).at("sysctl")
}

/// env evidence.
pub(crate) fn config_ev(text: impl Into<String>) -> Evidence {
    Evidence::new(EvidenceKind::Config, text)
}
