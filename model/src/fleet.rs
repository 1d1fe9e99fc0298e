//! Per-node outcome of a fleet run (`fleet.json`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Exactly one per selected node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    /// A snapshot arrived but some sections failed.
    Partial,
    Unreachable,
    AuthFailed,
    HostkeyMismatch,
    /// Host key not in known_hosts (strict checking).
    HostkeyUnknown,
    Timeout,
    AgentMissing,
    AgentError,
    SsmUndeliverable,
    SsmFailed,
    /// Output arrived cut (e.g. SSM's 24,000-character limit) and could not be completed.
    Truncated,
    /// The output was not a snapshot.
    InvalidOutput,
}

impl Outcome {
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Partial)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Unreachable => "unreachable",
            Outcome::AuthFailed => "auth-failed",
            Outcome::HostkeyMismatch => "hostkey-mismatch",
            Outcome::HostkeyUnknown => "hostkey-unknown",
            Outcome::Timeout => "timeout",
            Outcome::AgentMissing => "agent-missing",
            Outcome::AgentError => "agent-error",
            Outcome::SsmUndeliverable => "ssm-undeliverable",
            Outcome::SsmFailed => "ssm-failed",
            Outcome::Truncated => "truncated",
            Outcome::InvalidOutput => "invalid-output",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node's result in a fleet run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeOutcome {
    /// Display name: private DNS name or host.
    pub name: String,
    /// Address connected to (host[:port]) or instance id.
    #[serde(default)]
    pub target: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// stderr excerpt of a failing agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default)]
    pub connect_ms: u64,
    #[serde(default)]
    pub total_ms: u64,
    /// File the snapshot was written to, relative to the output dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Sections that were not ok (name: reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_sections: Vec<String>,
}

/// `fleet.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct FleetReport {
    pub started_at: String,
    pub duration_ms: u64,
    pub transport: String,
    pub nodes: Vec<NodeOutcome>,
}
