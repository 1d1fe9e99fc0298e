//! `manifest.json`: what is in the bundle and where each file came from (in the spirit of
//! sos's `sos_reports/manifest.json`). It is always the archive's first member, which is how
//! readers tell an eks-diag bundle from an eks-log-collector one without decompressing it all.

use serde::{Deserialize, Serialize};

use crate::redact::RedactionStats;
use crate::render::{Omitted, Source};

/// `tool` of every manifest.
pub const TOOL: &str = "eks-diag";
/// Version of the layout and of this document.
pub const BUNDLE_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub tool: String,
    /// Version of the tool that wrote the bundle.
    pub version: String,
    pub bundle_format: u32,
    /// The command line (redacted like everything else).
    pub cmdline: Vec<String>,
    /// RFC 3339 UTC.
    pub start_time: String,
    pub end_time: String,
    pub run_time_ms: u64,
    /// The node (or, for a fleet bundle, the name given with `--name`, else `fleet`).
    pub node: String,
    /// One directory per node under `nodes/` plus the fleet report at the top.
    #[serde(default)]
    pub fleet: bool,
    pub redacted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// `--since` as given: CNI log lines older than it were dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub nodes: Vec<NodeEntry>,
    /// Every member but this manifest, in archive order.
    pub files: Vec<FileEntry>,
    /// ELC files this bundle does not have, and why.
    #[serde(default)]
    pub omitted: Vec<Omitted>,
    /// What `--max-size` / `--since` cut.
    #[serde(default)]
    pub cuts: Vec<Cut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RedactionInfo {
    /// Entries rewritten per kind (sos: `cleaner.parsers.<name>.entries`).
    pub parsers: RedactionStats,
    /// File name of the private map written beside the archive (never inside it).
    pub map_file: String,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeEntry {
    pub name: String,
    /// Directory of the node inside the bundle (`.` for a one-node bundle).
    pub dir: String,
    /// `complete`, `partial` (some sections not ok, or input problems) or `failed` (no
    /// snapshot: the reason is in `reasons` and `error.txt`).
    pub status: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileEntry {
    /// Path inside the bundle, below the top directory.
    pub path: String,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Bytes in the archive.
    pub bytes: u64,
    /// SHA-256 of the bytes in the archive (after redaction).
    pub sha256: String,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub timed_out: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cut {
    pub path: String,
    pub reason: String,
    pub bytes_before: u64,
    pub bytes_after: u64,
}
