//! The eks-diag JSON contract.
//!
//! One [`Snapshot`] per node, collected by `node-agent` (or rebuilt by `diag` from captured
//! command output), a list of [`Finding`]s per node produced by the analysis rules, and the
//! per-node outcome of a fleet run. This crate has no I/O: it is serde types, small pure helpers
//! and the published JSON Schema.
//!
//! Compatibility: readers accept unknown fields (a newer agent may add them) and missing
//! optional fields; `schema_version` changes only on breaking changes.

pub mod cni;
pub mod conntrack;
pub mod diff;
pub mod finding;
pub mod fleet;
pub mod iptables;
pub mod name;
pub mod net;
pub mod netfilter;
pub mod node;
pub mod report;
pub mod sanitize;
pub mod schema;
pub mod section;
pub mod snapshot;
pub mod sysctl;
pub mod trace;
pub mod vpccni;

pub use cni::{CniConfig, CniLogs, IpamdEnis, LogEvent, LogEventKind, LogFile};
pub use conntrack::{
    ConntrackEntry, ConntrackSection, ConntrackStats, ConntrackSummary, SummaryBuilder, Tuple,
};
pub use finding::{Evidence, EvidenceKind, Finding, NodeReport, Severity, SkippedCheck};
pub use fleet::{FleetReport, NodeOutcome, Outcome};
pub use iptables::{
    Backend, IptArg, IptChain, IptRule, IptTable, IptablesBackendDump, IptablesSection,
};
pub use net::{Address, Family, IpRule, Link, Neighbour, Route};
pub use node::{Eni, NodeIdentity};
pub use section::{Section, SectionName, SectionStatus, UnknownSection};
pub use snapshot::{AgentInfo, Snapshot, SECTION_NAMES};
pub use sysctl::Sysctls;

/// Version of the snapshot document. Bumped only on breaking changes.
pub const SCHEMA_VERSION: u32 = 1;
