//! What one remote run meant, shared by the runners and the agentless mode (below both, so
//! neither imports the other): [`Classified`], [`failed_sections`] and the remote `timeout`
//! wrapper with the `sudo -n` prefix.

use model::{Outcome, SectionStatus, Snapshot};

/// Grace the remote `timeout` gives the command after TERM before KILL.
pub const KILL_AFTER_SECS: u64 = 3;

/// What one agent run meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub outcome: Outcome,
    pub error: Option<String>,
    pub stderr: Option<String>,
    pub failed_sections: Vec<String>,
    pub snapshot: Option<Snapshot>,
}

/// Sections that are not fine (`failed` or `partial`), as `name: reason (status)`.
pub fn failed_sections(s: &Snapshot) -> Vec<String> {
    s.sections()
        .into_iter()
        .filter(|(_, st, _)| matches!(st, SectionStatus::Failed | SectionStatus::Partial))
        .map(|(n, st, r)| format!("{n}: {} ({st})", r.unwrap_or("no reason given")))
        .collect()
}

/// `sudo -n` when asked and the login user is not root.
pub fn sudo_prefix(sudo: bool, user: &str) -> Vec<String> {
    if sudo && user != "root" {
        vec!["sudo".into(), "-n".into()]
    } else {
        Vec::new()
    }
}

/// `sh -c <wrapper> sh SECS`: argv that, followed by a command's argv, runs the command under
/// the node's `timeout` (TERM after SECS, KILL [`KILL_AFTER_SECS`] later) when it has one.
pub fn with_timeout(timeout: std::time::Duration) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("t=$1; shift; if command -v timeout >/dev/null 2>&1; then exec timeout -k {KILL_AFTER_SECS} \"$t\" \"$@\"; else exec \"$@\"; fi"),
        "sh".into(),
        timeout.as_secs().max(1).to_string(),
    ]
}
