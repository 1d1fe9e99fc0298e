//! Snapshot JSON: one snapshot, an array of snapshots, stdin, or a `diag collect` directory
//! (`fleet.json` + one snapshot file per node).

use std::path::Path;

use model::{FleetReport, Snapshot};

use super::{read_capped, InputError, Loaded, MAX_FILE_BYTES};

/// A file holding one snapshot or a JSON array of snapshots.
pub fn load_file(path: &Path) -> Vec<Loaded> {
    let label = path.display().to_string();
    match read_capped(path, MAX_FILE_BYTES) {
        Ok(bytes) => parse_document(&label, &String::from_utf8_lossy(&bytes)),
        Err(e) => vec![Loaded::err(label, e)],
    }
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
        Ok(_) => parse_document("stdin", &String::from_utf8_lossy(&buf)),
    }
}

/// Parse a document that is a snapshot or an array of snapshots.
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
    if text.trim().is_empty() {
        return bad("empty file (expected an eks-diag snapshot JSON document)".into());
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return bad(format!(
                "invalid JSON at line {} column {}: {e} (expected an eks-diag snapshot, e.g. `node-agent collect` output)",
                e.line(),
                e.column()
            ))
        }
    };
    match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return bad("empty JSON array (expected snapshots)".into());
            }
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
        v => match from_value(label, v) {
            Ok(s) => vec![Loaded::ok(label, s)],
            Err(e) => vec![Loaded::err(label, e)],
        },
    }
}

fn from_value(label: &str, v: serde_json::Value) -> Result<Snapshot, InputError> {
    if v.get("nodes").is_some() && v.get("transport").is_some() {
        return Err(InputError::BadSnapshot {
            path: label.to_string(),
            message: "this is a fleet.json; pass its directory instead".into(),
        });
    }
    Snapshot::from_json(&v.to_string()).map_err(|e| InputError::BadSnapshot {
        path: label.to_string(),
        message: e.to_string(),
    })
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
