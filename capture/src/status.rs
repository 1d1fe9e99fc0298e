//! The section-status policy, in one place, for both kinds of raw input:
//!
//! | what happened to a source | captured file ([`SectionBuilder`]) | live command ([`from_command`]) |
//! |---|---|---|
//! | absent | no section (caller: `skipped`, "no ip-rule.txt in …") | `unavailable` (command not found, file absent on the node) |
//! | parsed, no warnings | `ok` | `ok` |
//! | parsed with warnings | `partial` ("N parse warning(s)[; input truncated]") | `ok`, warnings listed (as the agent does) |
//! | truncated input | `partial` and an input problem | (the command's own status) |
//! | unparseable / failed | `failed` (with others: `partial`) and an input problem | `failed` with the exit code and stderr |
//!
//! A pasted file with skipped lines is incomplete evidence, hence `partial`; a live command
//! whose output had an odd line is still the complete state, hence `ok` like the agent.

use model::Section;
use parsers::Parsed;

use crate::Problem;

/// Accumulates one section from several captured files.
pub struct SectionBuilder<T> {
    data: Option<T>,
    sources: Vec<String>,
    warnings: Vec<String>,
    failures: Vec<String>,
    truncated: bool,
}

impl<T> Default for SectionBuilder<T> {
    fn default() -> Self {
        SectionBuilder {
            data: None,
            sources: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
            truncated: false,
        }
    }
}

impl<T> SectionBuilder<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file parsed (possibly with warnings). A truncation warning is also an input
    /// problem, once per file.
    pub fn add_parsed(
        &mut self,
        file: &str,
        p: Parsed<T>,
        merge: impl FnOnce(&mut T, T),
        loc: &str,
        problems: &mut Vec<Problem>,
    ) {
        self.sources.push(format!("file:{file}"));
        let mut reported = false;
        for w in &p.warnings {
            if w.is_truncation() {
                self.truncated = true;
                if !reported {
                    problems.push(Problem {
                        location: loc.to_string(),
                        message: w.to_string(),
                    });
                    reported = true;
                }
            }
            self.warnings.push(format!("{file}: {w}"));
        }
        match &mut self.data {
            Some(d) => merge(d, p.value),
            None => self.data = Some(p.value),
        }
    }

    /// A truncation found by the section builder itself (e.g. tables without COMMIT).
    pub fn note_truncation(&mut self, file: &str, message: String) {
        self.truncated = true;
        self.warnings.push(format!("{file}: {message}"));
    }

    /// A file that could not be used at all.
    pub fn fail(&mut self, file: &str, message: String, loc: &str, problems: &mut Vec<Problem>) {
        self.sources.push(format!("file:{file}"));
        self.failures.push(format!("{file}: {message}"));
        problems.push(Problem {
            location: loc.to_string(),
            message,
        });
    }

    /// None when no file fed this section.
    pub fn finish(self) -> Option<Section<T>> {
        if self.sources.is_empty() {
            return None;
        }
        let mut sec = match self.data {
            Some(d) if self.failures.is_empty() && self.warnings.is_empty() => Section::ok(d),
            Some(d) => {
                let reason = if self.failures.is_empty() {
                    format!(
                        "{} parse warning(s){}",
                        self.warnings.len(),
                        if self.truncated {
                            "; input truncated"
                        } else {
                            ""
                        }
                    )
                } else {
                    self.failures.join("; ")
                };
                Section::partial(d, reason)
            }
            None => Section::failed(self.failures.join("; ")),
        };
        sec.sources = self.sources;
        sec.warnings = self.warnings;
        Some(sec)
    }
}

/// How one live command ended (agentless mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    /// The output stopped before the command finished (timeout, cut stream).
    Unfinished,
    /// The command is not installed on the node (exit 127 of the probe).
    NoCommand,
    /// The file the command reads does not exist on the node (checked before running it).
    NoFile,
    Exit(i32),
}

/// The section a command that did not succeed stands for; None when it succeeded.
/// `what` names the command in the reason.
pub fn from_command<T>(end: Option<CommandEnd>, stderr: &str, what: &str) -> Option<Section<T>> {
    match end {
        None => Some(Section::failed(format!(
            "{what}: no output (the script stopped before it)"
        ))),
        Some(CommandEnd::Unfinished) => Some(Section::failed(format!(
            "{what}: output ended before the command finished"
        ))),
        Some(CommandEnd::NoCommand) | Some(CommandEnd::Exit(127)) => Some(Section::unavailable(
            format!("{what}: command not found on the node"),
        )),
        Some(CommandEnd::NoFile) => Some(Section::unavailable(format!(
            "{what}: no such file on the node"
        ))),
        Some(CommandEnd::Exit(0)) => None,
        Some(CommandEnd::Exit(rc)) => {
            let e = stderr.trim();
            Some(Section::failed(if e.is_empty() {
                format!("{what}: exit {rc}")
            } else {
                format!("{what}: exit {rc}: {e}")
            }))
        }
    }
}
