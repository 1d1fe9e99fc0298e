//! Reading an eks-diag bundle back: the manifest (first member) and each node's
//! `snapshot.json`, redacted or not. `diag analyze BUNDLE` and `diag tui --from BUNDLE` get
//! their snapshots here; the analysis then runs on them as on a live node.

use std::io::Read;
use std::path::Path;

use model::Snapshot;

use crate::manifest::{Manifest, TOOL};
use crate::writer::BundleError;

/// Largest member read (a snapshot of a node with 100k rules is well below).
pub const MAX_MEMBER_BYTES: u64 = 256 * 1024 * 1024;

/// One node of a bundle.
#[derive(Debug)]
pub struct BundleNode {
    pub name: String,
    /// Directory inside the bundle (`.` for a one-node bundle).
    pub dir: String,
    /// The snapshot, or why there is none (a failed node, an unreadable member).
    pub snapshot: Result<Snapshot, String>,
}

#[derive(Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    pub nodes: Vec<BundleNode>,
}

fn open(path: &Path) -> Result<tar::Archive<flate2::read::GzDecoder<std::fs::File>>, BundleError> {
    let f = std::fs::File::open(path).map_err(|source| BundleError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(f)))
}

/// The manifest when `path` is an eks-diag bundle (its first member is `<top>/manifest.json`
/// with `"tool": "eks-diag"`), `None` for any other archive (an eks-log-collector bundle).
/// Reads only the first member.
pub fn probe(path: &Path) -> Option<Manifest> {
    let mut a = open(path).ok()?;
    let mut entries = a.entries().ok()?;
    let mut e = entries.next()?.ok()?;
    let name = e.path().ok()?.to_string_lossy().into_owned();
    if name.rsplit('/').next() != Some("manifest.json")
        || e.header().size().ok()? > MAX_MEMBER_BYTES
    {
        return None;
    }
    let mut buf = Vec::new();
    e.read_to_end(&mut buf).ok()?;
    let m: Manifest = serde_json::from_slice(&buf).ok()?;
    (m.tool == TOOL).then_some(m)
}

/// Read the whole bundle.
pub fn read(path: &Path) -> Result<Bundle, BundleError> {
    let not = |message: String| BundleError::NotABundle {
        path: path.display().to_string(),
        message,
    };
    let manifest = probe(path)
        .ok_or_else(|| not("the first member is not an eks-diag manifest.json".into()))?;
    let mut snapshots: Vec<(String, Result<Snapshot, String>)> = Vec::new();
    let mut a = open(path)?;
    let entries = a
        .entries()
        .map_err(|e| not(format!("cannot read the tar stream: {e}")))?;
    for entry in entries {
        let mut e = match entry {
            Ok(e) => e,
            Err(err) => {
                snapshots.push((
                    String::new(),
                    Err(format!("archive truncated or corrupt: {err}")),
                ));
                break;
            }
        };
        let Ok(name) = e.path().map(|p| p.to_string_lossy().into_owned()) else {
            continue;
        };
        // `<top>/snapshot.json` or `<top>/nodes/<n>/snapshot.json`.
        let Some(rel) = name.split_once('/').map(|(_, r)| r.to_string()) else {
            continue;
        };
        let Some(dir) = rel.strip_suffix("snapshot.json") else {
            continue;
        };
        let dir = match dir.trim_end_matches('/') {
            "" => ".".to_string(),
            d => d.to_string(),
        };
        let size = e.header().size().unwrap_or(0);
        if size > MAX_MEMBER_BYTES {
            snapshots.push((
                dir,
                Err(format!(
                    "snapshot.json is {size} bytes, over the {MAX_MEMBER_BYTES}-byte cap"
                )),
            ));
            continue;
        }
        let mut text = String::new();
        let r = match e.read_to_string(&mut text) {
            Ok(_) => Snapshot::from_json(&text).map_err(|e| format!("{dir}/snapshot.json: {e}")),
            Err(err) => Err(format!("{dir}/snapshot.json: truncated member: {err}")),
        };
        snapshots.push((dir, r));
    }
    let mut nodes = Vec::new();
    for n in &manifest.nodes {
        let found = snapshots.iter().position(|(d, _)| *d == n.dir);
        let snapshot = match found {
            Some(i) => snapshots.remove(i).1,
            None if n.status == "failed" => Err(format!(
                "node {} was not collected: {}",
                n.name,
                n.reasons.first().cloned().unwrap_or_default()
            )),
            None => Err(format!(
                "node {}: {}/snapshot.json is missing from the bundle",
                n.name, n.dir
            )),
        };
        nodes.push(BundleNode {
            name: n.name.clone(),
            dir: n.dir.clone(),
            snapshot,
        });
    }
    for (dir, s) in snapshots {
        nodes.push(BundleNode {
            name: dir.clone(),
            dir,
            snapshot: s,
        });
    }
    Ok(Bundle { manifest, nodes })
}
