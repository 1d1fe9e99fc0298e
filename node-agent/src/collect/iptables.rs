//! iptables rules of both backends, from the `*-save -c` binaries.
//!
//! Only `iptables-nft-save`, `iptables-legacy-save`, `iptables-save` and `iptables --version`
//! are ever run. Never `iptables -L`/`-S`: on the legacy backend listing a table that does
//! not exist yet makes the kernel load its module (`iptable_nat`, ...) and create the table,
//! which changes the node. The `*-save` tools only dump tables that already exist.
//!
//! Both backends are dumped when both tools exist: on EKS the AWS rules live in the backend
//! the kubelet uses (nft on AL2023, legacy on AL2), and rules split across backends is itself
//! a finding. An empty legacy dump on an nft host is normal.

use model::{Backend, IptablesBackendDump, IptablesSection, Section};

use super::Deadline;
use crate::exec::{self, ExecError};

struct Tool {
    binary: &'static str,
    backend: Backend,
}

const NFT: Tool = Tool {
    binary: "iptables-nft-save",
    backend: Backend::Nft,
};
const LEGACY: Tool = Tool {
    binary: "iptables-legacy-save",
    backend: Backend::Legacy,
};
const PLAIN: Tool = Tool {
    binary: "iptables-save",
    backend: Backend::Unknown,
};

/// The text of each dump that was indexed rather than parsed (see [`collect`]'s `defer`), in
/// the order of the section's `backends`: `Some(text)` where that dump's chains hold
/// `rule_lines` instead of rules.
pub type DeferredTexts = Vec<Option<std::sync::Arc<String>>>;

/// The iptables section. With `defer`, a dump that indexes cleanly keeps its text and only
/// where each chain's rules are (`parsers::iptables::index_save`) instead of every parsed
/// rule; [`crate::snapshot_out`] parses them again, chain by chain, as it writes the
/// snapshot. A 100,000-rule node then costs its dump's text, not ~8x that in parsed rules.
pub async fn collect(deadline: Deadline, defer: bool) -> (Section<IptablesSection>, DeferredTexts) {
    let mut tools: Vec<&Tool> = [&NFT, &LEGACY]
        .into_iter()
        .filter(|t| exec::which(t.binary).is_some())
        .collect();
    if tools.is_empty() {
        if exec::which(PLAIN.binary).is_none() {
            return (
                Section::unavailable(
                    "iptables-nft-save not found on PATH (nor iptables-legacy-save, iptables-save)",
                ),
                Vec::new(),
            );
        }
        tools.push(&PLAIN);
    }
    let version_fut = default_backend(deadline);
    let dumps_fut = futures::future::join_all(tools.iter().map(|t| dump(t, deadline, defer)));
    let (default_backend, results) = tokio::join!(version_fut, dumps_fut);

    let mut section = IptablesSection {
        backends: Vec::new(),
        default_backend: default_backend.as_ref().ok().copied().flatten(),
    };
    let mut warnings = Vec::new();
    if let Err(w) = default_backend {
        warnings.push(w);
    }
    let mut sources = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut timed_out = false;
    let mut parse_warnings = 0;
    let mut texts: DeferredTexts = Vec::new();
    for r in results {
        sources.push(r.command.clone());
        parse_warnings += r.parse_warnings;
        warnings.extend(r.warnings);
        match r.outcome {
            Ok(dumps) => {
                // Every dump of an indexed text points into that text (one text can hold
                // several dumps only when backends are concatenated, never from one tool).
                let n = dumps.len();
                section.backends.extend(dumps);
                let text = r.text.map(std::sync::Arc::new);
                texts.extend((0..n).map(|_| text.clone()));
            }
            Err(e) => {
                timed_out |= e.is_timeout();
                errors.push(e.to_string());
            }
        }
    }
    let ok_count = section.backends.len();
    let mut s = if errors.is_empty() {
        if parse_warnings > 0 {
            Section::partial(
                section,
                format!("{parse_warnings} iptables-save lines could not be parsed"),
            )
        } else {
            Section::ok(section)
        }
    } else if timed_out || ok_count == 0 {
        // A hang is a failure even when the other backend answered; keep what we got.
        let mut s = Section::failed(errors.join("; "));
        if ok_count > 0 {
            s.data = Some(section);
        }
        s
    } else {
        Section::partial(section, errors.join("; "))
    };
    for src in sources {
        s = s.with_source(src);
    }
    if texts.iter().all(Option::is_none) {
        texts.clear();
    }
    (s.with_warnings(warnings), texts)
}

struct DumpResult {
    command: String,
    outcome: Result<Vec<IptablesBackendDump>, ExecError>,
    warnings: Vec<String>,
    parse_warnings: usize,
    /// The dump's text when its dumps were indexed, not parsed.
    text: Option<String>,
}

async fn dump(tool: &Tool, deadline: Deadline, defer: bool) -> DumpResult {
    let command = format!("{} -c", tool.binary);
    let out = match exec::run(tool.binary, &["-c"], deadline.remaining()).await {
        Ok(o) => o,
        Err(e) => {
            return DumpResult {
                command,
                outcome: Err(e),
                warnings: Vec::new(),
                parse_warnings: 0,
                text: None,
            }
        }
    };
    let mut warnings = Vec::new();
    let mut out = match out.check() {
        Ok(o) => o,
        Err(e) => {
            return DumpResult {
                command,
                outcome: Err(e),
                warnings,
                parse_warnings: 0,
                text: None,
            }
        }
    };
    let stderr = out.stderr_excerpt();
    if !stderr.is_empty() {
        warnings.push(format!("{command}: stderr: {stderr}"));
    }
    let text = out.take_stdout();
    // Indexed when asked and clean (a dump with warnings is parsed as usual: the index only
    // promises parse_save's structure for a clean dump).
    let indexed = if defer {
        parsers::iptables::index_save(&text).filter(|p| p.warnings.is_empty())
    } else {
        None
    };
    let (parsed, text) = match indexed {
        Some(p) => (p, Some(text)),
        None => (parsers::iptables::parse_save(&text), None),
    };
    let parse_warnings = parsed.warnings.len();
    warnings.extend(
        parsed
            .warning_strings()
            .into_iter()
            .map(|w| format!("{command}: {w}")),
    );
    let mut dumps = parsed.value;
    if dumps.is_empty() {
        // Nothing dumped: no table exists in this backend (normal for legacy on nft hosts).
        dumps.push(IptablesBackendDump {
            backend: tool.backend,
            command: command.clone(),
            version: None,
            has_counters: false,
            tables: Vec::new(),
        });
    }
    for d in &mut dumps {
        d.command = command.clone();
        if tool.backend != Backend::Unknown {
            d.backend = tool.backend;
        }
    }
    DumpResult {
        command,
        outcome: Ok(dumps),
        warnings,
        parse_warnings,
        text,
    }
}

/// Backend of the `iptables` on PATH from `iptables --version` (`iptables v1.8.9
/// (nf_tables)` / `(legacy)`). `Ok(None)` when iptables is not installed.
async fn default_backend(deadline: Deadline) -> Result<Option<Backend>, String> {
    match exec::run("iptables", &["--version"], deadline.remaining()).await {
        Ok(out) => {
            let text = format!(
                "{}{}",
                out.stdout_string(),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(backend_from_version(&text))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("default backend unknown: {e}")),
    }
}

pub fn backend_from_version(text: &str) -> Option<Backend> {
    Backend::from_version_output(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_suffix_names_the_backend() {
        assert_eq!(
            backend_from_version("iptables v1.8.9 (nf_tables)\n"),
            Some(Backend::Nft)
        );
        assert_eq!(
            backend_from_version("iptables v1.8.4 (legacy)\n"),
            Some(Backend::Legacy)
        );
        assert_eq!(
            backend_from_version("iptables v1.6.1\n"),
            Some(Backend::Legacy)
        );
        assert_eq!(backend_from_version("garbage"), None);
    }
}
