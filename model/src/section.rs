//! A snapshot section: the data of one source plus how collecting it went.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How collecting (or parsing) one section went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SectionStatus {
    /// Complete.
    Ok,
    /// Data is present but incomplete (some sub-source failed, input truncated, lines skipped).
    Partial,
    /// The source does not exist here (no IMDS, tool not installed, file absent). Not an error.
    Unavailable,
    /// The source exists but collecting it failed (timeout, permission, parse error).
    Failed,
    /// Not requested (`--sections`) or not present in the input.
    #[default]
    Skipped,
}

impl SectionStatus {
    /// True when the section carries usable data.
    pub fn has_data(self) -> bool {
        matches!(self, SectionStatus::Ok | SectionStatus::Partial)
    }

    /// The word used in the JSON contract (`ok`, `partial`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SectionStatus::Ok => "ok",
            SectionStatus::Partial => "partial",
            SectionStatus::Unavailable => "unavailable",
            SectionStatus::Failed => "failed",
            SectionStatus::Skipped => "skipped",
        }
    }
}

/// The one way a status becomes a word: the same as its JSON form.
impl std::fmt::Display for SectionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sections of a [`crate::Snapshot`], by their JSON field names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SectionName {
    Node,
    Links,
    Addresses,
    Neighbours,
    Routes,
    Rules,
    Iptables,
    Conntrack,
    Sysctls,
    Cni,
    CniLogs,
}

impl SectionName {
    /// Every section, in snapshot order.
    pub const ALL: [SectionName; 11] = [
        SectionName::Node,
        SectionName::Links,
        SectionName::Addresses,
        SectionName::Neighbours,
        SectionName::Routes,
        SectionName::Rules,
        SectionName::Iptables,
        SectionName::Conntrack,
        SectionName::Sysctls,
        SectionName::Cni,
        SectionName::CniLogs,
    ];

    /// The snapshot's JSON field name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SectionName::Node => "node",
            SectionName::Links => "links",
            SectionName::Addresses => "addresses",
            SectionName::Neighbours => "neighbours",
            SectionName::Routes => "routes",
            SectionName::Rules => "rules",
            SectionName::Iptables => "iptables",
            SectionName::Conntrack => "conntrack",
            SectionName::Sysctls => "sysctls",
            SectionName::Cni => "cni",
            SectionName::CniLogs => "cni_logs",
        }
    }
}

impl std::fmt::Display for SectionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a snapshot section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSection(pub String);

impl std::fmt::Display for UnknownSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = SectionName::ALL.iter().map(|n| n.as_str()).collect();
        write!(
            f,
            "unknown section '{}' (expected one of {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownSection {}

impl std::str::FromStr for SectionName {
    type Err = UnknownSection;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SectionName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| UnknownSection(s.to_string()))
    }
}

/// One section of a snapshot. `data` is present for `ok` and `partial`, and may be present
/// for `failed` when something was salvaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Section<T> {
    pub status: SectionStatus,
    /// Why the section is not `ok` (which command, which error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall time spent collecting this section.
    #[serde(default)]
    pub duration_ms: u64,
    /// Where the data came from: `netlink`, `iptables-nft-save -c`, `/proc/net/nf_conntrack`,
    /// `file:ip-rule.txt`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Non-fatal problems: skipped lines (with line number and text), fallbacks taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            status: SectionStatus::Skipped,
            reason: None,
            duration_ms: 0,
            sources: Vec::new(),
            warnings: Vec::new(),
            data: None,
        }
    }
}

impl<T> Section<T> {
    /// A complete section.
    pub fn ok(data: T) -> Self {
        Section {
            status: SectionStatus::Ok,
            data: Some(data),
            ..Default::default()
        }
    }

    /// Data with problems; `reason` says what is missing.
    pub fn partial(data: T, reason: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::Partial,
            reason: Some(reason.into()),
            data: Some(data),
            ..Default::default()
        }
    }

    /// The source does not exist on this node.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::Unavailable,
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    /// The source exists but collection failed.
    pub fn failed(reason: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::Failed,
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    /// Not requested / not in the input.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::Skipped,
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.sources.push(source.into());
        self
    }

    pub fn with_duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(warnings);
        self
    }

    /// The same status, reason, duration, sources and warnings over other data (e.g. the
    /// addresses half of a parsed `ip addr`).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Section<U> {
        Section {
            status: self.status,
            reason: self.reason,
            duration_ms: self.duration_ms,
            sources: self.sources,
            warnings: self.warnings,
            data: self.data.map(f),
        }
    }

    /// The data when the status says it is usable.
    pub fn get(&self) -> Option<&T> {
        if self.status.has_data() {
            self.data.as_ref()
        } else {
            None
        }
    }

    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.status.has_data() {
            self.data.as_mut()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses_are_their_json_words() {
        for n in SectionName::ALL {
            let json = serde_json::to_string(&n).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", n.as_str()));
            assert_eq!(n.as_str().parse::<SectionName>(), Ok(n));
            assert_eq!(n.to_string(), n.as_str());
        }
        assert!("bogus".parse::<SectionName>().is_err());
        for st in [
            SectionStatus::Ok,
            SectionStatus::Partial,
            SectionStatus::Unavailable,
            SectionStatus::Failed,
            SectionStatus::Skipped,
        ] {
            let json = serde_json::to_string(&st).unwrap_or_default();
            assert_eq!(json, format!("\"{st}\""));
        }
    }

    #[test]
    fn map_keeps_status_and_provenance() {
        let s = Section::partial((1, "a"), "cut")
            .with_source("file:x")
            .with_warnings(vec!["w".into()])
            .with_duration_ms(7);
        let m = s.map(|(n, _)| n);
        assert_eq!(m.status, SectionStatus::Partial);
        assert_eq!(m.reason.as_deref(), Some("cut"));
        assert_eq!(m.sources, vec!["file:x".to_string()]);
        assert_eq!(m.warnings, vec!["w".to_string()]);
        assert_eq!(m.duration_ms, 7);
        assert_eq!(m.data, Some(1));
    }
}
