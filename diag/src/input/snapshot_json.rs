//! Snapshot JSON: one snapshot, an array of snapshots, stdin, or a `diag collect` directory
//! (`fleet.json` + one snapshot file per node).

use std::path::Path;

use model::{FleetReport, Snapshot};

use super::{read_capped, InputError, Loaded, MAX_FILE_BYTES};

/// A file holding one snapshot or a JSON array of snapshots.
///
/// A well-formed file is read once, streamed from the file into the model (the text is never
/// held whole: a 100,000-rule node's snapshot costs its parsed size, not that plus its text).
/// Anything else (invalid JSON or UTF-8, a broken item, a fleet.json, a file over the cap) is
/// read whole and goes through [`parse_document`], which says what is wrong.
pub fn load_file(path: &Path) -> Vec<Loaded> {
    let label = path.display().to_string();
    if let Some(loaded) = stream_file(&label, path) {
        return loaded;
    }
    match read_capped(path, MAX_FILE_BYTES) {
        Ok(bytes) => parse_bytes(&label, &bytes),
        Err(e) => vec![Loaded::err(label, e)],
    }
}

/// The streaming read of [`load_file`]; `None` sends the file to the whole-text path.
fn stream_file(label: &str, path: &Path) -> Option<Vec<Loaded>> {
    use std::io::{BufRead, BufReader, Read};
    let f = std::fs::File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut r = BufReader::with_capacity(1 << 16, f.take(MAX_FILE_BYTES));
    let first = r
        .fill_buf()
        .ok()?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())?;
    match first {
        b'{' => {
            let s: Snapshot = model::name::interned(|| serde_json::from_reader(r)).ok()?;
            Some(vec![match check_version(label, s) {
                Ok(s) => Loaded::ok(label, s),
                Err(e) => Loaded::err(label, e),
            }])
        }
        b'[' => {
            let items: Vec<Snapshot> = model::name::interned(|| serde_json::from_reader(r)).ok()?;
            if items.is_empty() {
                return None;
            }
            Some(versioned_items(label, items))
        }
        _ => None,
    }
}

fn versioned_items(label: &str, items: Vec<Snapshot>) -> Vec<Loaded> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let l = format!("{label}[{i}]");
            match check_version(&l, s) {
                Ok(s) => Loaded::ok(l, s),
                Err(e) => Loaded::err(l, e),
            }
        })
        .collect()
}

/// A snapshot (or array) on standard input.
pub fn load_stdin() -> Vec<Loaded> {
    use std::io::Read;
    let mut buf = Vec::new();
    let res = std::io::stdin()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf);
    match res {
        Err(e) => vec![Loaded::err(
            "stdin",
            InputError::Io {
                path: "stdin".into(),
                message: e.to_string(),
            },
        )],
        Ok(_) if buf.len() as u64 > MAX_FILE_BYTES => vec![Loaded::err(
            "stdin",
            InputError::TooLarge {
                path: "stdin".into(),
                size: buf.len() as u64,
                limit: MAX_FILE_BYTES,
            },
        )],
        Ok(_) => parse_bytes("stdin", &buf),
    }
}

/// [`parse_document`] of bytes: invalid UTF-8 becomes U+FFFD and an input problem naming
/// its byte offset (a snapshot written by the agent is always valid UTF-8).
fn parse_bytes(label: &str, bytes: &[u8]) -> Vec<Loaded> {
    let (text, invalid) = model::sanitize::decode_lossy(bytes);
    let mut loaded = parse_document(label, &text);
    if let Some(note) = model::sanitize::invalid_utf8_note(&invalid) {
        for l in loaded.iter_mut().filter(|l| l.outcome.is_ok()) {
            l.problems.push(note.clone());
        }
    }
    loaded
}

/// Parse a document that is a snapshot or an array of snapshots.
///
/// A readable document is parsed once, straight into [`Snapshot`]s. Only a document that
/// fails is read again as generic JSON, to name the broken item of an array or to recognise a
/// `fleet.json`.
pub fn parse_document(label: &str, text: &str) -> Vec<Loaded> {
    let bad = |message: String| {
        vec![Loaded::err(
            label,
            InputError::BadSnapshot {
                path: label.to_string(),
                message,
            },
        )]
    };
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return bad("empty file (expected an eks-diag snapshot JSON document)".into());
    }
    if trimmed.starts_with('[') {
        return match model::name::interned(|| serde_json::from_str::<Vec<Snapshot>>(text)) {
            Ok(items) if items.is_empty() => bad("empty JSON array (expected snapshots)".into()),
            Ok(items) => versioned_items(label, items),
            Err(e) if e.is_data() => array_items(label, text),
            Err(e) => bad(invalid_json(&e)),
        };
    }
    match model::name::interned(|| serde_json::from_str::<Snapshot>(text)) {
        Ok(s) => match check_version(label, s) {
            Ok(s) => vec![Loaded::ok(label, s)],
            Err(e) => vec![Loaded::err(label, e)],
        },
        Err(e) if !e.is_data() => bad(invalid_json(&e)),
        Err(_) if is_fleet_json(text) => {
            bad("this is a fleet.json; pass its directory instead".into())
        }
        // Well-formed JSON that is not a readable snapshot: `from_json` says why (no
        // schema_version, a newer version, which field of which section is broken).
        Err(e) => bad(Snapshot::from_json(text)
            .err()
            .map(|r| r.to_string())
            .unwrap_or_else(|| e.to_string())),
    }
}

fn invalid_json(e: &serde_json::Error) -> String {
    format!(
        "invalid JSON at line {} column {}: {e} (expected an eks-diag snapshot, e.g. `node-agent collect` output)",
        e.line(),
        e.column()
    )
}

fn check_version(label: &str, s: Snapshot) -> Result<Snapshot, InputError> {
    if s.schema_version == model::SCHEMA_VERSION {
        Ok(s)
    } else {
        Err(InputError::BadSnapshot {
            path: label.to_string(),
            message: model::snapshot::SnapshotReadError::UnsupportedVersion(u64::from(
                s.schema_version,
            ))
            .to_string(),
        })
    }
}

/// An array with at least one unreadable item: each item on its own, so the good ones are
/// still analysed and the bad one is named.
fn array_items(label: &str, text: &str) -> Vec<Loaded> {
    let items: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![Loaded::err(
                label,
                InputError::BadSnapshot {
                    path: label.to_string(),
                    message: invalid_json(&e),
                },
            )]
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let l = format!("{label}[{i}]");
            match from_value(&l, item) {
                Ok(s) => Loaded::ok(l, s),
                Err(e) => Loaded::err(l, e),
            }
        })
        .collect()
}

fn is_fleet_json(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        nodes: Option<serde::de::IgnoredAny>,
        transport: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Probe>(text).is_ok_and(|p| p.nodes.is_some() && p.transport.is_some())
}

/// One item of an array that failed as a whole (the error path only).
fn from_value(label: &str, v: serde_json::Value) -> Result<Snapshot, InputError> {
    let bad = |message: String| InputError::BadSnapshot {
        path: label.to_string(),
        message,
    };
    if v.get("nodes").is_some() && v.get("transport").is_some() {
        return Err(bad(
            "this is a fleet.json; pass its directory instead".into()
        ));
    }
    let version = v.get("schema_version").and_then(|x| x.as_u64());
    match version {
        None => Err(bad(
            model::snapshot::SnapshotReadError::NotASnapshot.to_string()
        )),
        Some(n) if n != u64::from(model::SCHEMA_VERSION) => Err(bad(
            model::snapshot::SnapshotReadError::UnsupportedVersion(n).to_string(),
        )),
        Some(_) => serde_json::from_value(v)
            .map_err(|e| bad(model::snapshot::SnapshotReadError::Json(e.to_string()).to_string())),
    }
}

/// A directory written by `diag collect`: `fleet.json` lists the nodes and their outcome,
/// successful ones point at their snapshot file.
pub fn load_collect_dir(dir: &Path) -> Vec<Loaded> {
    let fleet_path = dir.join("fleet.json");
    let fleet_label = fleet_path.display().to_string();
    let text = match read_capped(&fleet_path, MAX_FILE_BYTES) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return vec![Loaded::err(fleet_label, e)],
    };
    let fleet: FleetReport = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return vec![Loaded::err(
                fleet_label.clone(),
                InputError::BadSnapshot {
                    path: fleet_label,
                    message: format!(
                        "invalid fleet.json: {e} (expected the `diag collect` fleet report)"
                    ),
                },
            )]
        }
    };
    let mut out = Vec::new();
    for node in &fleet.nodes {
        match &node.snapshot {
            Some(rel) if node.outcome.is_success() => {
                out.extend(load_file(&dir.join(rel)));
            }
            _ => out.push(Loaded::err(
                format!("{}#{}", fleet_label, node.name),
                fleet_failure(node),
            )),
        }
    }
    if fleet.nodes.is_empty() {
        out.push(Loaded::err(
            fleet_label.clone(),
            InputError::BadSnapshot {
                path: fleet_label,
                message: "fleet.json lists no nodes".into(),
            },
        ));
    }
    out
}

/// Why a node of a fleet run has no snapshot, from its outcome.
pub fn fleet_failure(node: &model::NodeOutcome) -> InputError {
    let mut message = format!("{} in the fleet run", node.outcome);
    if let Some(e) = &node.error {
        message.push_str(&format!(": {e}"));
    }
    if let Some(s) = &node.stderr {
        let s = s.trim();
        if !s.is_empty() {
            message.push_str(&format!(" (stderr: {})", first_line(s)));
        }
    }
    InputError::Fleet {
        node: node.name.clone(),
        message,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
