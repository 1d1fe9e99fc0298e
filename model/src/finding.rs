//! Findings of the analysis rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "unknown severity '{other}' (expected info, warning or error)"
            )),
        }
    }
}

/// What kind of kernel/log object a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    Iptables,
    Route,
    Rule,
    Link,
    Address,
    Neighbour,
    Conntrack,
    Sysctl,
    Log,
    Config,
    Imds,
    Note,
}

/// One exact piece of evidence (a rule line with counters, a route, a flow, a log line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Where it is (`nft nat AWS-SNAT-CHAIN-0 #2`, `table 2`, `ipamd.log:1234`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub text: String,
}

impl Evidence {
    pub fn new(kind: EvidenceKind, text: impl Into<String>) -> Self {
        Evidence {
            kind,
            location: None,
            text: text.into(),
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

/// One problem found on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Stable rule id (`snat.chain-missing`).
    pub rule: String,
    pub severity: Severity,
    /// Node display name.
    pub node: String,
    /// One line.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// Why it breaks traffic, and which traffic.
    pub explanation: String,
    /// The command or setting that fixes it.
    pub remedy: String,
    /// Facts the finding relied on that were inferred rather than known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inferred: Vec<String>,
}

/// A rule that could not be evaluated, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedCheck {
    pub rule: String,
    pub reason: String,
}

/// The analysis result for one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct NodeReport {
    pub node: String,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub skipped: Vec<SkippedCheck>,
    /// Rule ids that were evaluated.
    #[serde(default)]
    pub evaluated: Vec<String>,
    /// The CNI version and rule layout the node was judged by (`CNI v1.5.5: chained …`), or
    /// the layout inferred from the rules present when the version is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
}

impl NodeReport {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn count_at_least(&self, sev: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= sev).count()
    }
}
