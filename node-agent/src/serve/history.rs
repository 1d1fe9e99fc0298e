//! The on-disk change history and the last K snapshots under `--state-dir`.
//!
//! Layout: `changes.jsonl` (one [`Change`] per line, oldest first) and
//! `snapshots/snapshot-<unix seconds>.json`. Every file is written whole to a temporary
//! file in the same directory, fsynced and renamed over the old one, so a crash leaves
//! either the old or the new file, never a torn one. A file (or line) that does not parse
//! anyway — truncated by a full disk, edited by hand — is reported in
//! [`History::problems`] and skipped; it is never fatal.
//!
//! Bounds: at most `max_changes` changes and none older than `max_age`; at most
//! `keep_snapshots` snapshots (a snapshot is written only when something changed, so these
//! are the last K distinct states).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use model::diff::Change;
use model::Snapshot;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serialising {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HistoryError + 'a {
    move |source| HistoryError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Caps of the history.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_changes: usize,
    pub max_age: Duration,
    pub keep_snapshots: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_changes: 10_000,
            max_age: Duration::from_secs(7 * 86_400),
            keep_snapshots: 3,
        }
    }
}

/// The change log in memory, mirrored to disk by [`History::flush`].
#[derive(Debug)]
pub struct History {
    dir: PathBuf,
    caps: Caps,
    changes: VecDeque<(Timestamp, Change)>,
    dirty: bool,
    /// False for [`History::in_memory`]: nothing is ever written.
    persist: bool,
    /// Files or lines that were skipped, with why.
    pub problems: Vec<String>,
}

pub const CHANGES_FILE: &str = "changes.jsonl";
pub const SNAPSHOT_DIR: &str = "snapshots";

impl History {
    /// Open (creating) `dir`, load the change log and the newest readable snapshot.
    pub fn open(dir: &Path, caps: Caps) -> Result<(History, Option<Snapshot>), HistoryError> {
        let snaps = dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&snaps).map_err(io("creating", &snaps))?;
        let mut h = History {
            dir: dir.to_path_buf(),
            caps,
            changes: VecDeque::new(),
            dirty: false,
            persist: true,
            problems: Vec::new(),
        };
        let path = dir.join(CHANGES_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => h.load_changes(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => h
                .problems
                .push(format!("{}: {e}; starting empty", path.display())),
        }
        let last = h.load_last_snapshot(&snaps);
        h.prune(Timestamp::now());
        Ok((h, last))
    }

    fn load_changes(&mut self, path: &Path, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut bad = 0usize;
        let mut first_bad = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<Change>(line)
                .map_err(|e| e.to_string())
                .and_then(|c| match c.at.parse::<Timestamp>() {
                    Ok(t) => Ok((t, c)),
                    Err(e) => Err(format!("bad `at`: {e}")),
                });
            match parsed {
                Ok(tc) => self.changes.push_back(tc),
                Err(why) => {
                    bad += 1;
                    first_bad.get_or_insert((n + 1, why));
                }
            }
        }
        if let Some((line, why)) = first_bad {
            self.problems.push(format!(
                "{}: skipped {bad} unreadable line(s), first at line {line}: {why}",
                path.display()
            ));
            // Rewrite without them at the next flush.
            self.dirty = true;
        }
    }

    fn snapshot_files(snaps: &Path) -> Vec<(i64, PathBuf)> {
        let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(snaps)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let secs = name
                    .strip_prefix("snapshot-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((secs, e.path()))
            })
            .collect();
        files.sort();
        files
    }

    fn load_last_snapshot(&mut self, snaps: &Path) -> Option<Snapshot> {
        for (_, path) in Self::snapshot_files(snaps).into_iter().rev() {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(s) => return Some(s),
                Err(why) => self
                    .problems
                    .push(format!("{}: skipped: {why}", path.display())),
            }
        }
        None
    }

    /// A history that lives only in memory (no state directory, [`History::flush`] and
    /// [`History::save_snapshot`] write nothing): the API over a fixed state, for the fuzz
    /// target and tests that need neither root nor a disk.
    pub fn in_memory(caps: Caps, changes: Vec<Change>, now: Timestamp) -> History {
        let mut h = History {
            dir: PathBuf::new(),
            caps,
            changes: VecDeque::new(),
            dirty: false,
            persist: false,
            problems: Vec::new(),
        };
        h.record(changes, now);
        h
    }

    /// Add the changes of one round, observed at `now`.
    pub fn record(&mut self, changes: Vec<Change>, now: Timestamp) {
        for c in changes {
            let t = c.at.parse::<Timestamp>().unwrap_or(now);
            self.changes.push_back((t, c));
            self.dirty = true;
        }
        self.prune(now);
    }

    fn prune(&mut self, now: Timestamp) {
        let max_age =
            jiff::SignedDuration::try_from(self.caps.max_age).unwrap_or(jiff::SignedDuration::MAX);
        let oldest = now.checked_sub(max_age).unwrap_or(Timestamp::MIN);
        while self
            .changes
            .front()
            .is_some_and(|(t, _)| *t < oldest || self.changes.len() > self.caps.max_changes)
        {
            self.changes.pop_front();
            self.dirty = true;
        }
    }

    /// Changes at or after `since` (all when `None`), oldest first.
    pub fn since(&self, since: Option<Timestamp>) -> Vec<Change> {
        self.changes
            .iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .map(|(_, c)| c.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Write the change log if it changed since the last flush.
    pub fn flush(&mut self) -> Result<(), HistoryError> {
        if !self.dirty || !self.persist {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(self.changes.len() * 160);
        for (_, c) in &self.changes {
            serde_json::to_writer(&mut buf, c).map_err(|source| HistoryError::Json {
                what: "a change",
                source,
            })?;
            buf.push(b'\n');
        }
        write_atomic(&self.dir.join(CHANGES_FILE), &buf)?;
        self.dirty = false;
        Ok(())
    }

    /// Keep `snap` as one of the last K snapshots.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), HistoryError> {
        if !self.persist {
            return Ok(());
        }
        let snaps = self.dir.join(SNAPSHOT_DIR);
        let secs = snap
            .collected_at
            .parse::<Timestamp>()
            .unwrap_or_else(|_| Timestamp::now())
            .as_second();
        let bytes = serde_json::to_vec(snap).map_err(|source| HistoryError::Json {
            what: "the snapshot",
            source,
        })?;
        write_atomic(&snaps.join(format!("snapshot-{secs}.json")), &bytes)?;
        let files = Self::snapshot_files(&snaps);
        let excess = files.len().saturating_sub(self.caps.keep_snapshots.max(1));
        for (_, path) in files.into_iter().take(excess) {
            std::fs::remove_file(&path).map_err(io("removing", &path))?;
        }
        Ok(())
    }
}

/// Write `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HistoryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("renaming into place", path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Best effort: the rename is durable once the directory is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use model::diff::{ChangeKind, ChangeOp};

    fn change(at: &str, n: usize) -> Change {
        Change {
            at: at.into(),
            kind: ChangeKind::IpRule,
            op: ChangeOp::Added,
            subject: "rule ipv4".into(),
            content: format!("{n}: from all lookup main"),
        }
    }

    #[test]
    fn survives_a_restart_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let at = crate::duration::rfc3339_ts(now);
        let (mut h, last) = History::open(dir.path(), Caps::default()).unwrap();
        assert!(last.is_none());
        h.record(vec![change(&at, 1), change(&at, 2)], now);
        h.flush().unwrap();
        // A torn final line (a crash mid-append by some other writer, a full disk).
        let path = dir.path().join(CHANGES_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"at\":\"2026-");
        std::fs::write(&path, text).unwrap();
        std::fs::write(
            dir.path().join(SNAPSHOT_DIR).join("snapshot-1.json"),
            b"{ nope",
        )
        .unwrap();
        let (h2, last) = History::open(dir.path(), Caps::default()).unwrap();
        assert!(last.is_none());
        assert_eq!(h2.len(), 2);
        assert_eq!(h2.problems.len(), 2, "{:?}", h2.problems);
        assert!(h2.problems[0].contains("line 3"), "{:?}", h2.problems);
    }

    #[test]
    fn bounded_by_count_and_age_and_filtered_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let caps = Caps {
            max_changes: 5,
            max_age: Duration::from_secs(3600),
            keep_snapshots: 2,
        };
        let (mut h, _) = History::open(dir.path(), caps).unwrap();
        let now: Timestamp = "2026-12-01T14:00:00Z".parse().unwrap();
        h.record(vec![change("2026-12-01T12:00:00Z", 0)], now);
        assert!(h.is_empty(), "older than max_age");
        let batch: Vec<Change> = (0..8).map(|n| change("2026-12-01T13:59:00Z", n)).collect();
        h.record(batch, now);
        assert_eq!(h.len(), 5);
        h.record(vec![change("2026-12-01T14:00:00Z", 99)], now);
        let since = h.since(Some("2026-12-01T14:00:00Z".parse().unwrap()));
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].content, "99: from all lookup main");
        for secs in [10, 20, 30] {
            let s = Snapshot {
                collected_at: crate::duration::rfc3339_ts(Timestamp::from_second(secs).unwrap()),
                ..Default::default()
            };
            h.save_snapshot(&s).unwrap();
        }
        let files = History::snapshot_files(&dir.path().join(SNAPSHOT_DIR));
        assert_eq!(files.iter().map(|f| f.0).collect::<Vec<_>>(), [20, 30]);
    }
}
