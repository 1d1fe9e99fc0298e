//! Inputs: everything `diag` can turn into [`model::Snapshot`]s.
//!
//! One [`Input`] may yield several snapshots (a JSON array, a `diag collect` directory, a
//! directory of bundles). Each yields a [`Loaded`] entry carrying either the snapshot or the
//! reason it could not be read, so one bad input never hides the others. Snapshots produced
//! elsewhere (the fleet runner) plug in as [`Input::Provided`].

pub mod bundle;
pub mod capture;
pub mod elc;
pub mod local;
pub mod snapshot_json;

/// The table of capture kinds and file names lives in the `capture` crate.
pub use ::capture::kind as names;

use std::path::{Path, PathBuf};

use model::Snapshot;

/// Largest single file read into memory (snapshot JSON, a capture, an archive member).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// One thing to read.
#[derive(Debug)]
pub enum Input {
    /// A file or directory on disk (kind detected).
    Path(PathBuf),
    /// A snapshot (or array of snapshots) on standard input: `-`.
    Stdin,
    /// Run `node-agent collect` on this machine.
    Local { agent_path: Option<PathBuf> },
    /// A snapshot (or failure) obtained elsewhere, e.g. by the fleet runner (see
    /// [`Input::from_fleet`]).
    Provided {
        label: String,
        outcome: Box<Result<Snapshot, InputError>>,
    },
}

impl Input {
    /// One result of the fleet runner (`fleet::cli::gather` yields `(NodeOutcome,
    /// Option<Snapshot>)`): the snapshot when the node delivered one, else why not.
    pub fn from_fleet(node: &model::NodeOutcome, snapshot: Option<Snapshot>) -> Input {
        let outcome = match snapshot {
            Some(s) if node.outcome.is_success() => Ok(s),
            _ => Err(snapshot_json::fleet_failure(node)),
        };
        Input::Provided {
            label: node.name.clone(),
            outcome: Box::new(outcome),
        }
    }

    /// `-` is stdin, anything else a path.
    pub fn from_arg(p: &Path) -> Input {
        if p.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path(p.to_path_buf())
        }
    }
}

/// Why an input could not be turned into a snapshot. Every message names the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {message}")]
    BadSnapshot { path: String, message: String },
    #[error("{path}: empty directory (expected snapshot JSON, fleet.json, capture files such as iptables-save.txt or ip-rule.txt, or eks_i-*.tar.gz bundles)")]
    EmptyDir { path: String },
    #[error("{path}: no recognised input in this directory (found {found}; expected snapshot JSON, fleet.json, capture files such as iptables-save.txt or ip-rule.txt, or eks_i-*.tar.gz bundles; see `diag analyze --help`, or --map NAME=FILE)")]
    Unrecognised { path: String, found: String },
    #[error("{path}: not an eks-log-collector bundle: {message}")]
    NotElc { path: String, message: String },
    #[error("{path}: {message}")]
    Capped { path: String, message: String },
    #[error("{path}: {size} bytes is over the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: not a recognised input (expected snapshot JSON, a capture directory or an eks_i-*.tar.gz bundle)")]
    UnknownFile { path: String },
    #[error("node {node}: {message}")]
    Fleet { node: String, message: String },
    #[error("local collection: {message}")]
    Agent { message: String },
    #[error("--map {arg}: {message}")]
    BadMap { arg: String, message: String },
}

/// One node's worth of input.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from (path, `path#2`, `stdin`, `local`).
    pub label: String,
    pub outcome: Result<Snapshot, InputError>,
    /// Problems with part of a readable input (an unparseable or truncated file); they make
    /// the exit code 2 but the snapshot is still analysed.
    pub problems: Vec<String>,
}

impl Loaded {
    pub fn ok(label: impl Into<String>, snapshot: Snapshot) -> Self {
        Loaded {
            label: label.into(),
            outcome: Ok(snapshot),
            problems: Vec::new(),
        }
    }

    pub fn err(label: impl Into<String>, e: InputError) -> Self {
        Loaded {
            label: label.into(),
            outcome: Err(e),
            problems: Vec::new(),
        }
    }
}

/// Options for reading inputs.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--map NAME=FILE` overrides for capture directories.
    pub map: Vec<(names::Kind, String)>,
    /// Conntrack entries kept as a sample per node.
    pub conntrack_sample: usize,
}

impl LoadOptions {
    /// Parse `--map` arguments.
    pub fn new(map_args: &[String]) -> Result<Self, InputError> {
        let mut map = Vec::new();
        for arg in map_args {
            let (name, file) = arg.split_once('=').ok_or_else(|| InputError::BadMap {
                arg: arg.clone(),
                message: "expected NAME=FILE, e.g. ip-rule.txt=rules.out".into(),
            })?;
            let kind = names::classify_capture(name.trim())
                .or_else(|| names::classify_capture(&format!("{}.txt", name.trim())))
                .ok_or_else(|| InputError::BadMap {
                    arg: arg.clone(),
                    message: format!(
                        "unknown capture name '{name}' (see the table in `diag analyze --help`)"
                    ),
                })?;
            if file.trim().is_empty() {
                return Err(InputError::BadMap {
                    arg: arg.clone(),
                    message: "FILE is empty".into(),
                });
            }
            map.push((kind, file.trim().to_string()));
        }
        Ok(LoadOptions {
            map,
            conntrack_sample: 200,
        })
    }
}

/// Read every input, in order. Never fails as a whole.
pub fn load_all(inputs: Vec<Input>, opts: &LoadOptions) -> Vec<Loaded> {
    let mut out = Vec::new();
    for input in inputs {
        match input {
            Input::Path(p) => load_path(&p, opts, &mut out, 0),
            Input::Stdin => out.extend(snapshot_json::load_stdin()),
            Input::Local { agent_path } => out.push(local::collect(agent_path.as_deref())),
            Input::Provided { label, outcome } => out.push(Loaded {
                label,
                outcome: *outcome,
                problems: Vec::new(),
            }),
        }
    }
    out
}

/// Detect what a path is and read it.
fn load_path(path: &Path, opts: &LoadOptions, out: &mut Vec<Loaded>, depth: usize) {
    let label = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            out.push(Loaded::err(
                label.clone(),
                InputError::Io {
                    path: label,
                    message: e.to_string(),
                },
            ));
            return;
        }
    };
    if meta.is_dir() {
        load_dir(path, opts, out, depth);
        return;
    }
    let lower = file_name(path).to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        // An eks-diag bundle (manifest.json first) carries its snapshots; anything else is
        // read as an eks-log-collector bundle.
        match bundle::load(path) {
            Some(nodes) => out.extend(nodes),
            None => out.push(elc::load(path, opts)),
        }
    } else if lower == "fleet.json" {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        out.extend(snapshot_json::load_collect_dir(dir));
    } else if lower.ends_with(".json") || looks_like_json(path) {
        out.extend(snapshot_json::load_file(path));
    } else {
        out.push(Loaded::err(
            label.clone(),
            InputError::UnknownFile { path: label },
        ));
    }
}

fn load_dir(dir: &Path, opts: &LoadOptions, out: &mut Vec<Loaded>, depth: usize) {
    let label = dir.display().to_string();
    let listing = match list_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.push(Loaded::err(label, e));
            return;
        }
    };
    let capped = |message: String| {
        Loaded::err(
            label.clone(),
            InputError::Capped {
                path: label.clone(),
                message,
            },
        )
    };
    let entries = &listing.entries;
    if entries.is_empty() {
        out.push(Loaded::err(
            label.clone(),
            InputError::EmptyDir { path: label },
        ));
        return;
    }
    let names: Vec<String> = entries.iter().map(|p| file_name(p)).collect();
    if names.iter().any(|n| n == "fleet.json") {
        out.extend(snapshot_json::load_collect_dir(dir));
        return;
    }
    let has_captures = names.iter().any(|n| names::classify_capture(n).is_some())
        || (!opts.map.is_empty() && depth == 0);
    if has_captures {
        out.extend(capture::load_dir(dir, opts));
        return;
    }
    if let Some(p) = listing.cap_problem(dir) {
        out.push(capped(
            p.strip_prefix(&format!("{label}: "))
                .unwrap_or(&p)
                .to_string(),
        ));
    }
    // A directory of inputs: snapshot files, bundles, capture sub-directories.
    let too_deep: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_dir() && depth >= MAX_DIR_DEPTH)
        .collect();
    if !too_deep.is_empty() {
        let shown: Vec<String> = too_deep.iter().take(3).map(|p| file_name(p)).collect();
        out.push(capped(format!(
            "{} sub-director{} not read ({}{}): directories are read at most {} level(s) below the argument; pass them as arguments",
            too_deep.len(),
            if too_deep.len() == 1 { "y" } else { "ies" },
            shown.join(", "),
            if too_deep.len() > 3 { ", …" } else { "" },
            MAX_DIR_DEPTH
        )));
    }
    let mut children: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| {
            let n = file_name(p).to_ascii_lowercase();
            (p.is_dir() && depth < MAX_DIR_DEPTH)
                || n.ends_with(".json")
                || n.ends_with(".tar.gz")
                || n.ends_with(".tgz")
        })
        .collect();
    children.sort();
    if children.is_empty() {
        if !too_deep.is_empty() {
            return;
        }
        let mut found: Vec<String> = names.iter().take(5).cloned().collect();
        if names.len() > 5 {
            found.push(format!("… {} more", names.len() - 5));
        }
        out.push(Loaded::err(
            label.clone(),
            InputError::Unrecognised {
                path: label,
                found: found.join(", "),
            },
        ));
        return;
    }
    for child in children {
        load_path(child, opts, out, depth + 1);
    }
}

/// Most entries read from one directory (sorted; the rest are reported, not read).
pub const MAX_DIR_ENTRIES: usize = 10_000;
/// Directories of inputs are read this many levels deep (a directory of capture dirs).
pub const MAX_DIR_DEPTH: usize = 1;

/// Entries of a directory (hidden files skipped), sorted, at most [`MAX_DIR_ENTRIES`].
/// `over` is how many entries there were when the cap cut the list.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<PathBuf>,
    pub over: Option<usize>,
}

impl Listing {
    /// The problem to report when the cap cut the listing.
    pub fn cap_problem(&self, dir: &Path) -> Option<String> {
        self.over.map(|n| {
            format!(
                "{}: {n} entries, over the {MAX_DIR_ENTRIES}-entry cap; only the first {MAX_DIR_ENTRIES} (by name) were read",
                dir.display()
            )
        })
    }
}

pub fn list_dir(dir: &Path) -> Result<Listing, InputError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut v = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| InputError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let p = entry.path();
        if file_name(&p).starts_with('.') {
            continue;
        }
        v.push(p);
    }
    v.sort();
    let over = (v.len() > MAX_DIR_ENTRIES).then_some(v.len());
    v.truncate(MAX_DIR_ENTRIES);
    Ok(Listing { entries: v, over })
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Read a whole file with the size cap.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    use std::io::Read;
    let label = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| InputError::Io {
        path: label.clone(),
        message: e.to_string(),
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(InputError::TooLarge {
            path: label,
            size,
            limit,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| InputError::Io {
            path: label.clone(),
            message: e.to_string(),
        })?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: label,
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

fn looks_like_json(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    buf[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{NodeOutcome, Outcome};

    fn outcome(name: &str, o: Outcome) -> NodeOutcome {
        NodeOutcome {
            name: name.into(),
            target: "10.0.0.1".into(),
            outcome: o,
            error: Some("connect timeout".into()),
            stderr: None,
            connect_ms: 0,
            total_ms: 0,
            snapshot: None,
            failed_sections: Vec::new(),
        }
    }

    #[test]
    fn fleet_results_plug_in_as_inputs() {
        let snap = Snapshot::new(model::AgentInfo::default());
        let inputs = vec![
            Input::from_fleet(&outcome("a", Outcome::Ok), Some(snap)),
            Input::from_fleet(&outcome("b", Outcome::Unreachable), None),
        ];
        let loaded = load_all(inputs, &LoadOptions::default());
        assert!(loaded[0].outcome.is_ok());
        let e = loaded[1].outcome.as_ref().err().map(ToString::to_string);
        assert_eq!(
            e.as_deref(),
            Some("node b: unreachable in the fleet run: connect timeout")
        );
    }

    #[test]
    fn map_arguments_are_validated() {
        assert!(LoadOptions::new(&["ip-rule.txt=x".into()]).is_ok());
        assert!(LoadOptions::new(&["ip-rule=x".into()]).is_ok());
        assert!(LoadOptions::new(&["ip-rule.txt".into()]).is_err());
        assert!(LoadOptions::new(&["bogus=x".into()]).is_err());
        assert!(LoadOptions::new(&["ip-rule.txt= ".into()]).is_err());
    }
}
