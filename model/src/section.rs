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
