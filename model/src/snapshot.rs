//! The per-node snapshot document.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cni::{CniConfig, CniLogs};
use crate::conntrack::ConntrackSection;
use crate::iptables::IptablesSection;
use crate::net::{Address, IpRule, Link, Neighbour, Route};
use crate::node::NodeIdentity;
use crate::section::{Section, SectionName};
use crate::sysctl::Sysctls;

/// Names of the sections, as used by `node-agent collect --sections` and in messages.
pub const SECTION_NAMES: &[&str] = &{
    let mut names = [""; SectionName::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = SectionName::ALL[i].as_str();
        i += 1;
    }
    names
};

/// [`AgentInfo::name`] of a snapshot rebuilt from saved command output (capture directories,
/// eks-log-collector archives): evidence from a paste, not a live collection.
pub const CAPTURE_AGENT_NAME: &str = "diag-capture";

/// Who produced the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct AgentInfo {
    /// `node-agent`, or `diag-agentless` / `diag-capture` when rebuilt from command output.
    pub name: String,
    pub version: String,
    /// The command line or input paths the snapshot was built from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

/// One node's network state. Every section carries its own status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Snapshot {
    pub schema_version: u32,
    #[serde(default)]
    pub agent: AgentInfo,
    /// RFC 3339 UTC time the collection started.
    #[serde(default)]
    pub collected_at: String,
    /// Total wall time of the collection.
    #[serde(default)]
    pub duration_ms: u64,
    /// Hostname of the node (the display name unless the fleet runner names it otherwise).
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub node: Section<NodeIdentity>,
    #[serde(default)]
    pub links: Section<Vec<Link>>,
    #[serde(default)]
    pub addresses: Section<Vec<Address>>,
    #[serde(default)]
    pub neighbours: Section<Vec<Neighbour>>,
    /// Routes of every table, IPv4 and IPv6.
    #[serde(default)]
    pub routes: Section<Vec<Route>>,
    /// Policy-routing rules, IPv4 and IPv6.
    #[serde(default)]
    pub rules: Section<Vec<IpRule>>,
    #[serde(default)]
    pub iptables: Section<IptablesSection>,
    /// IPv6 rules (`ip6tables-save`), when a capture holds them. Not one of
    /// [`SECTION_NAMES`]: a collection without it is not missing anything it reports.
    #[serde(default, skip_serializing_if = "section_untouched")]
    pub ip6tables: Section<IptablesSection>,
    #[serde(default)]
    pub conntrack: Section<ConntrackSection>,
    #[serde(default)]
    pub sysctls: Section<Sysctls>,
    #[serde(default)]
    pub cni: Section<CniConfig>,
    #[serde(default)]
    pub cni_logs: Section<CniLogs>,
}

/// A section nobody filled (the default): left out of the JSON.
fn section_untouched<T>(s: &Section<T>) -> bool {
    s.status == crate::SectionStatus::Skipped
        && s.data.is_none()
        && s.reason.is_none()
        && s.sources.is_empty()
        && s.warnings.is_empty()
}

/// Prefix of the `agent.inputs` entry that `node-agent collect --from-daemon` adds when it
/// printed the running daemon's latest snapshot instead of collecting: `daemon:<socket>`.
pub const DAEMON_INPUT_PREFIX: &str = "daemon:";

impl Snapshot {
    /// The daemon socket this snapshot was read from, when `node-agent collect
    /// --from-daemon` served the daemon's latest snapshot (see [`DAEMON_INPUT_PREFIX`]).
    pub fn daemon_source(&self) -> Option<&str> {
        self.agent
            .inputs
            .iter()
            .find_map(|i| i.strip_prefix(DAEMON_INPUT_PREFIX))
    }

    /// An empty snapshot of the current schema version; every section `skipped`.
    pub fn new(agent: AgentInfo) -> Self {
        Snapshot {
            schema_version: crate::SCHEMA_VERSION,
            agent,
            ..Default::default()
        }
    }

    /// The name to show for this node: hostname, else instance id, else `unknown`.
    pub fn display_name(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        if let Some(id) = self.node.get().and_then(|n| n.instance_id.clone()) {
            return id;
        }
        "unknown".to_string()
    }

    /// (section name, status, reason) for every section, in [`SECTION_NAMES`] order.
    pub fn section_statuses(&self) -> Vec<(&'static str, crate::SectionStatus, Option<&str>)> {
        self.sections()
            .into_iter()
            .map(|(n, st, r)| (n.as_str(), st, r))
            .collect()
    }

    /// (section, status, reason) for every section, in [`SectionName::ALL`] order.
    pub fn sections(&self) -> Vec<(SectionName, crate::SectionStatus, Option<&str>)> {
        fn row<T>(
            n: SectionName,
            s: &Section<T>,
        ) -> (SectionName, crate::SectionStatus, Option<&str>) {
            (n, s.status, s.reason.as_deref())
        }
        vec![
            row(SectionName::Node, &self.node),
            row(SectionName::Links, &self.links),
            row(SectionName::Addresses, &self.addresses),
            row(SectionName::Neighbours, &self.neighbours),
            row(SectionName::Routes, &self.routes),
            row(SectionName::Rules, &self.rules),
            row(SectionName::Iptables, &self.iptables),
            row(SectionName::Conntrack, &self.conntrack),
            row(SectionName::Sysctls, &self.sysctls),
            row(SectionName::Cni, &self.cni),
            row(SectionName::CniLogs, &self.cni_logs),
        ]
    }

    /// Parse a snapshot document, checking the schema version. Unknown fields are ignored.
    ///
    /// The text is parsed once, straight into the types; only when that fails is it looked
    /// at again, to say why (not a snapshot, a newer schema version, a broken section).
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotReadError> {
        match serde_json::from_str::<Snapshot>(text) {
            Ok(s) if s.schema_version == crate::SCHEMA_VERSION => Ok(s),
            Ok(s) => Err(SnapshotReadError::UnsupportedVersion(u64::from(
                s.schema_version,
            ))),
            Err(e) if e.is_data() => {
                Err(diagnose(text).unwrap_or(SnapshotReadError::Json(e.to_string())))
            }
            Err(e) => Err(SnapshotReadError::Json(e.to_string())),
        }
    }
}

/// Why well-formed JSON is not a readable snapshot, if the reason is its kind or version.
fn diagnose(text: &str) -> Option<SnapshotReadError> {
    #[derive(Deserialize)]
    struct Probe {
        schema_version: Option<serde_json::Value>,
    }
    let probe: Probe = match serde_json::from_str(text) {
        Ok(p) => p,
        // Not an object at all (an array, a number).
        Err(_) => return Some(SnapshotReadError::NotASnapshot),
    };
    match probe.schema_version.as_ref().and_then(|v| v.as_u64()) {
        None => Some(SnapshotReadError::NotASnapshot),
        Some(v) if v != u64::from(crate::SCHEMA_VERSION) => {
            Some(SnapshotReadError::UnsupportedVersion(v))
        }
        Some(_) => None,
    }
}

/// Why a document could not be read as a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotReadError {
    Json(String),
    NotASnapshot,
    UnsupportedVersion(u64),
}

impl std::fmt::Display for SnapshotReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotReadError::Json(e) => write!(f, "invalid snapshot JSON: {e}"),
            SnapshotReadError::NotASnapshot => {
                write!(
                    f,
                    "not an eks-diag snapshot (no numeric \"schema_version\" field)"
                )
            }
            SnapshotReadError::UnsupportedVersion(v) => write!(
                f,
                "snapshot schema_version {v} is not supported (this build reads version {})",
                crate::SCHEMA_VERSION
            ),
        }
    }
}

impl std::error::Error for SnapshotReadError {}
