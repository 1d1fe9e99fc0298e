//! The `diag collect` output directory: one snapshot file per node, written as each node
//! finishes (so memory does not grow with the fleet), and `fleet.json` with every node's
//! outcome, written last. Also the summary line and exit code of a run.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use model::{FleetReport, NodeOutcome, Outcome, Snapshot};

use crate::targets::Target;

/// Why the output directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serialising {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ReportError + 'a {
    move |source| ReportError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A collect directory being filled. File names are fixed up front from the target list
/// (safe characters, unique), so they do not depend on which node finishes first.
#[derive(Debug)]
pub struct CollectDir {
    dir: PathBuf,
    files: Vec<String>,
    nodes: Vec<Option<NodeOutcome>>,
}

impl CollectDir {
    /// Creates `dir` (and parents) for these targets.
    pub fn create(dir: &Path, targets: &[Target]) -> Result<CollectDir, ReportError> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut used = HashSet::new();
        let files = targets
            .iter()
            .map(|t| snapshot_file_name(&t.name, &mut used))
            .collect();
        Ok(CollectDir {
            dir: dir.to_path_buf(),
            files,
            nodes: vec![None; targets.len()],
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Records node `index`; its snapshot (if any) is written now, through a temporary file
    /// renamed into place, so a reader never sees half a snapshot.
    pub fn write_node(
        &mut self,
        index: usize,
        mut outcome: NodeOutcome,
        snapshot: Option<&Snapshot>,
    ) -> Result<(), ReportError> {
        if let (Some(s), Some(file)) = (snapshot, self.files.get(index)) {
            let path = self.dir.join(file);
            let tmp = self.dir.join(format!(".{file}.tmp"));
            let json = serde_json::to_vec_pretty(s).map_err(|source| ReportError::Json {
                what: format!("the snapshot of {}", outcome.name),
                source,
            })?;
            std::fs::write(&tmp, json).map_err(io("writing", &tmp))?;
            std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
            outcome.snapshot = Some(file.clone());
        }
        if let Some(slot) = self.nodes.get_mut(index) {
            *slot = Some(outcome);
        }
        Ok(())
    }

    /// Writes `fleet.json` (nodes in target order) and returns the report.
    pub fn finish(
        self,
        started_at: SystemTime,
        duration: Duration,
        transport: &str,
    ) -> Result<FleetReport, ReportError> {
        let report = FleetReport {
            started_at: rfc3339(started_at),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            transport: transport.to_string(),
            nodes: self.nodes.into_iter().flatten().collect(),
        };
        let path = self.dir.join("fleet.json");
        let json = serde_json::to_vec_pretty(&report).map_err(|source| ReportError::Json {
            what: "fleet.json".into(),
            source,
        })?;
        std::fs::write(&path, json).map_err(io("writing", &path))?;
        Ok(report)
    }
}

/// A file name for a node's snapshot: safe characters only, unique within the run.
pub fn snapshot_file_name(name: &str, used: &mut HashSet<String>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.is_empty() || base.starts_with('.') {
        base = format!("node{base}");
    }
    let mut cand = format!("{base}.json");
    let mut i = 2;
    while !used.insert(cand.clone()) || cand == "fleet.json" {
        cand = format!("{base}-{i}.json");
        i += 1;
    }
    cand
}

/// `N ok, M failed (by reason)`.
pub fn summary_line(nodes: &[NodeOutcome]) -> String {
    let ok = nodes.iter().filter(|n| n.outcome == Outcome::Ok).count();
    let partial = nodes
        .iter()
        .filter(|n| n.outcome == Outcome::Partial)
        .count();
    let mut failed: BTreeMap<Outcome, usize> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.outcome.is_success()) {
        *failed.entry(n.outcome).or_default() += 1;
    }
    let nfailed: usize = failed.values().sum();
    let mut s = format!("{} ok", ok + partial);
    if partial > 0 {
        s.push_str(&format!(" ({partial} partial)"));
    }
    s.push_str(&format!(", {nfailed} failed"));
    if nfailed > 0 {
        let parts: Vec<String> = failed.iter().map(|(o, c)| format!("{c} {o}")).collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

/// 0 all ok, 1 some failed, 2 none collected.
pub fn exit_code(nodes: &[NodeOutcome]) -> i32 {
    let ok = nodes.iter().filter(|n| n.outcome.is_success()).count();
    if nodes.is_empty() || ok == 0 {
        2
    } else if ok == nodes.len() {
        0
    } else {
        1
    }
}

/// RFC 3339 UTC with whole seconds (`2026-11-21T04:24:45Z`).
pub fn rfc3339(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn node(name: &str, o: Outcome) -> NodeOutcome {
        NodeOutcome {
            name: name.into(),
            target: name.into(),
            outcome: o,
            error: Some("e".into()),
            stderr: None,
            connect_ms: 0,
            total_ms: 0,
            snapshot: None,
            failed_sections: vec![],
        }
    }

    #[test]
    fn summary_and_exit_codes() {
        let nodes = vec![
            node("a", Outcome::Ok),
            node("b", Outcome::Partial),
            node("c", Outcome::Unreachable),
            node("d", Outcome::Unreachable),
            node("e", Outcome::HostkeyMismatch),
        ];
        assert_eq!(
            summary_line(&nodes),
            "2 ok (1 partial), 3 failed (2 unreachable, 1 hostkey-mismatch)"
        );
        assert_eq!(exit_code(&nodes), 1);
        assert_eq!(exit_code(&nodes[..2]), 0);
        assert_eq!(exit_code(&nodes[2..]), 2);
        assert_eq!(exit_code(&[]), 2);
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut used = Default::default();
        assert_eq!(
            snapshot_file_name("ip-10-0-0-1.ec2.internal", &mut used),
            "ip-10-0-0-1.ec2.internal.json"
        );
        assert_eq!(
            snapshot_file_name("ip-10-0-0-1.ec2.internal", &mut used),
            "ip-10-0-0-1.ec2.internal-2.json"
        );
        assert_eq!(
            snapshot_file_name("../../etc/passwd", &mut used),
            "node.._.._etc_passwd.json"
        );
        assert_eq!(snapshot_file_name("fleet", &mut used), "fleet-2.json");
        assert_eq!(snapshot_file_name("fd00::1", &mut used), "fd00__1.json");
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_235_085);
        assert_eq!(rfc3339(t), "2026-11-21T04:24:45Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(951_782_400_999); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn collect_dir_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Snapshot::new(Default::default());
        s.hostname = "a".into();
        let targets = vec![
            Target {
                name: "a".into(),
                ..Default::default()
            },
            Target {
                name: "b".into(),
                ..Default::default()
            },
        ];
        let mut cd = CollectDir::create(&dir.path().join("out"), &targets).unwrap();
        // Out of order, as a stream delivers them.
        cd.write_node(1, node("b", Outcome::Timeout), None).unwrap();
        cd.write_node(0, node("a", Outcome::Ok), Some(&s)).unwrap();
        let out = dir.path().join("out");
        let back =
            Snapshot::from_json(&std::fs::read_to_string(out.join("a.json")).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(!out.join("fleet.json").exists(), "fleet.json comes last");
        let r = cd
            .finish(SystemTime::now(), Duration::from_secs(1), "ssh")
            .unwrap();
        assert_eq!(r.nodes[0].snapshot.as_deref(), Some("a.json"));
        let fr: FleetReport =
            serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap())
                .unwrap();
        assert_eq!(fr.nodes.len(), 2);
        assert_eq!(fr.nodes[0].name, "a");
        assert_eq!(fr.nodes[1].outcome, Outcome::Timeout);
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }
}
