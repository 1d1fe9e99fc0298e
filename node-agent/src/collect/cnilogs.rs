//! CNI logs (`/var/log/aws-routed-eni/*`), read from the end within byte and time budgets.
//!
//! ipamd.log and plugin.log grow to 100 MB before lumberjack rotates them, so files are read
//! *backwards* from the end in blocks: the newest lines first, until the per-file budget
//! (default 8 MiB), the total budget (default 32 MiB), the section's time budget or the
//! `--since` cut-off stops it. Files are taken newest first; rotated `*.log.gz` files are read
//! whole, and only while the budget still has room for them. Only classified events and
//! warn/error lines are kept, at most `max_events` (the newest); the rest are counted.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::SystemTime;

use model::{CniLogs, LogEvent, LogFile, Section};

use super::{Deadline, Options};
use crate::duration::parse_timestamp;

const BLOCK: u64 = 64 * 1024;

/// Limits of one collection.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub per_file: u64,
    pub total: u64,
    pub max_events: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_file: 8 * 1024 * 1024,
            total: 32 * 1024 * 1024,
            max_events: model::cni::MAX_LOG_EVENTS,
        }
    }
}

pub async fn collect(opts: &Options, deadline: Deadline) -> Section<CniLogs> {
    let dir = opts.log_dir.clone();
    let budget = opts.log_budget;
    let cutoff = opts
        .since
        .map(|d| crate::duration::now_epoch() - d.as_secs() as i64);
    match tokio::task::spawn_blocking(move || read_logs(&dir, budget, cutoff, deadline)).await {
        Ok(s) => s,
        Err(e) => Section::failed(format!("cni_logs: reader task failed: {e}")),
    }
}

/// Is this event worth keeping?
fn relevant(e: &LogEvent) -> bool {
    e.kind.is_some()
        || matches!(
            e.level.to_ascii_lowercase().as_str(),
            "warn" | "warning" | "error" | "fatal" | "panic" | "dpanic" | "critical"
        )
}

/// Older than the cut-off? Events without a timestamp are kept.
fn too_old(e: &LogEvent, cutoff: Option<i64>) -> bool {
    match (cutoff, e.ts.as_deref().and_then(parse_timestamp)) {
        (Some(c), Some(t)) => t < c,
        _ => false,
    }
}

struct Collector {
    budget: Budget,
    cutoff: Option<i64>,
    /// Newest first.
    events: Vec<LogEvent>,
    dropped: u64,
    total_read: u64,
}

impl Collector {
    fn keep(&mut self, e: LogEvent) {
        if !relevant(&e) || too_old(&e, self.cutoff) {
            return;
        }
        if self.events.len() < self.budget.max_events {
            self.events.push(e);
        } else {
            self.dropped += 1;
        }
    }

    fn total_left(&self) -> u64 {
        self.budget.total.saturating_sub(self.total_read)
    }
}

/// Read every file in `dir` (newest first) within the budgets.
pub fn read_logs(
    dir: &Path,
    budget: Budget,
    cutoff: Option<i64>,
    deadline: Deadline,
) -> Section<CniLogs> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Section::unavailable(format!("no CNI log directory {}", dir.display()));
        }
        Err(e) => return Section::failed(format!("cannot list {}: {e}", dir.display())),
    };
    let mut files: Vec<(String, u64, SystemTime)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            md.is_file().then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    md.len(),
                    md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                )
            })
        })
        .collect();
    // Newest first; the live files before their rotated copies at equal mtime.
    files.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(a.0.ends_with(".gz").cmp(&b.0.ends_with(".gz")))
            .then(a.0.cmp(&b.0))
    });

    let mut c = Collector {
        budget,
        cutoff,
        events: Vec::new(),
        dropped: 0,
        total_read: 0,
    };
    let mut out_files = Vec::new();
    let mut warnings = Vec::new();
    let mut budget_hit = false;
    let mut time_hit = false;
    for (name, size, mtime) in files {
        let path = dir.join(&name);
        let mut lf = LogFile {
            path: path.display().to_string(),
            size,
            ..Default::default()
        };
        if deadline.expired() {
            time_hit = true;
            lf.truncated = size > 0;
            lf.error = Some("not read: time budget exhausted".to_string());
            out_files.push(lf);
            continue;
        }
        let gz = name.ends_with(".gz");
        if gz {
            let mtime_epoch = mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if cutoff.is_some_and(|cut| mtime_epoch < cut) {
                lf.truncated = size > 0;
                lf.error = Some("not read: last written before --since".to_string());
                out_files.push(lf);
                continue;
            }
            if size > c.total_left() || size > budget.per_file {
                budget_hit = true;
                lf.truncated = size > 0;
                lf.error = Some("not read: byte budget exhausted".to_string());
                out_files.push(lf);
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    c.total_read += bytes.len() as u64;
                    let parsed = parsers::cnilog::parse_bytes(
                        &name,
                        &bytes,
                        usize::try_from(budget.per_file).unwrap_or(usize::MAX),
                    );
                    warnings.extend(
                        parsed
                            .warning_strings()
                            .into_iter()
                            .map(|w| format!("{name}: {w}")),
                    );
                    let (pf, events) = parsed.value;
                    lf.bytes_read = bytes.len() as u64;
                    lf.lines = pf.lines;
                    lf.unparsed_lines = pf.unparsed_lines;
                    lf.truncated = pf.truncated;
                    lf.error = pf.error;
                    // Newest first, like the plain files.
                    for e in events.into_iter().rev() {
                        c.keep(e);
                    }
                }
                Err(e) => lf.error = Some(format!("cannot read: {e}")),
            }
            out_files.push(lf);
            continue;
        }
        let limit = budget.per_file.min(c.total_left());
        match tail_file(&path, &name, limit, &mut c, deadline) {
            Ok(t) => {
                lf.bytes_read = t.bytes_read;
                lf.lines = t.lines;
                lf.unparsed_lines = t.unparsed;
                lf.truncated = !t.reached_start && !t.stopped_by_since;
                if lf.truncated {
                    if t.timed_out {
                        time_hit = true;
                    } else {
                        budget_hit = true;
                    }
                }
                c.total_read += t.bytes_read;
            }
            Err(e) => lf.error = Some(e),
        }
        out_files.push(lf);
    }

    let mut events = std::mem::take(&mut c.events);
    events.reverse();
    // Oldest first / newest last across files (stable for equal or missing timestamps).
    events.sort_by_key(|e| {
        e.ts.as_deref()
            .and_then(parse_timestamp)
            .unwrap_or(i64::MIN)
    });
    let errors: Vec<String> = out_files
        .iter()
        .filter(|f| f.error.as_deref().is_some_and(|e| e.starts_with("cannot")))
        .map(|f| format!("{}: {}", f.path, f.error.as_deref().unwrap_or_default()))
        .collect();
    if budget_hit {
        warnings.push(format!(
            "byte budget reached ({} per file, {} total): older lines not read",
            budget.per_file, budget.total
        ));
    }
    if c.dropped > 0 {
        warnings.push(format!(
            "{} events over the limit of {} not kept",
            c.dropped, budget.max_events
        ));
    }
    let logs = CniLogs {
        files: out_files,
        events,
        events_dropped: c.dropped,
    };
    let s = if time_hit {
        Section::partial(logs, "time budget exhausted before all logs were read")
    } else if !errors.is_empty() {
        let mut reason = errors
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if errors.len() > 3 {
            reason.push_str(&format!("; and {} more files unreadable", errors.len() - 3));
        }
        Section::partial(logs, reason)
    } else {
        Section::ok(logs)
    };
    s.with_source(format!("dir:{}", dir.display()))
        .with_warnings(warnings)
}

struct TailResult {
    bytes_read: u64,
    lines: u64,
    unparsed: u64,
    reached_start: bool,
    stopped_by_since: bool,
    timed_out: bool,
}

/// Read `path` backwards from its end, at most `limit` bytes, feeding complete lines (newest
/// first) to the collector. A line cut by the budget at the start is dropped.
fn tail_file(
    path: &Path,
    name: &str,
    limit: u64,
    c: &mut Collector,
    deadline: Deadline,
) -> Result<TailResult, String> {
    let mut f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let size = f.metadata().map_err(|e| format!("cannot stat: {e}"))?.len();
    let mut r = TailResult {
        bytes_read: 0,
        lines: 0,
        unparsed: 0,
        reached_start: size == 0,
        stopped_by_since: false,
        timed_out: false,
    };
    let mut pos = size;
    // Bytes of the (possibly incomplete) first line of what has been read so far.
    let mut carry: Vec<u8> = Vec::new();
    // Events of this file, newest first, with their index from the end.
    let mut file_events: Vec<(u64, LogEvent)> = Vec::new();
    let mut from_end: u64 = 0;
    'outer: while pos > 0 {
        if r.bytes_read >= limit {
            break;
        }
        if deadline.expired() {
            r.timed_out = true;
            break;
        }
        let want = BLOCK.min(pos).min(limit - r.bytes_read);
        let start = pos - want;
        f.seek(SeekFrom::Start(start))
            .map_err(|e| format!("cannot seek: {e}"))?;
        let mut block = vec![0u8; want as usize];
        f.read_exact(&mut block)
            .map_err(|e| format!("cannot read: {e}"))?;
        r.bytes_read += want;
        pos = start;
        block.extend_from_slice(&carry);
        // Everything after the first newline is complete lines; the head stays in carry.
        let (head, complete) = match block.iter().position(|b| *b == b'\n') {
            Some(i) => (block[..i].to_vec(), &block[i + 1..]),
            None => (block.clone(), &block[block.len()..]),
        };
        let mut lines: Vec<&[u8]> = complete.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for line in lines.into_iter().rev() {
            if feed(line, name, from_end, &mut r, &mut file_events, c.cutoff) {
                r.stopped_by_since = true;
                break 'outer;
            }
            from_end += 1;
        }
        carry = head;
    }
    if pos == 0 && !r.stopped_by_since && !r.timed_out {
        r.reached_start = true;
        if !carry.is_empty() && feed(&carry, name, from_end, &mut r, &mut file_events, c.cutoff) {
            r.stopped_by_since = true;
        }
    }
    // Line numbers are only known when the whole file was read.
    let total = r.lines;
    for (idx, mut e) in file_events {
        e.line = if r.reached_start {
            Some(total - idx)
        } else {
            None
        };
        c.keep(e);
    }
    Ok(r)
}

/// Parse one line; returns true when the line is older than the cut-off (stop reading).
fn feed(
    line: &[u8],
    name: &str,
    from_end: u64,
    r: &mut TailResult,
    events: &mut Vec<(u64, LogEvent)>,
    cutoff: Option<i64>,
) -> bool {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if text.trim().is_empty() {
        r.lines += 1;
        return false;
    }
    match parsers::cnilog::parse_line(name, 0, text) {
        Some(e) => {
            if too_old(&e, cutoff) {
                return true;
            }
            r.lines += 1;
            if relevant(&e) {
                events.push((from_end, e));
            }
        }
        None => {
            r.lines += 1;
            r.unparsed += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn zap(level: &str, ts: &str, msg: &str) -> String {
        format!(r#"{{"level":"{level}","ts":"{ts}","caller":"ipamd/ipamd.go:1","msg":"{msg}"}}"#)
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    #[test]
    fn missing_dir_is_unavailable() {
        let s = read_logs(
            Path::new("/definitely/not/here"),
            Budget::default(),
            None,
            deadline(),
        );
        assert_eq!(s.status, model::SectionStatus::Unavailable);
    }

    #[test]
    fn keeps_warn_error_and_classified_with_line_numbers() {
        let d = tempfile::tempdir().unwrap();
        let mut text = String::new();
        text.push_str(&zap(
            "info",
            "2024-05-01T10:00:00.000Z",
            "Starting L-IPAMD v1.21.2  ...",
        ));
        text.push('\n');
        text.push_str(&zap("debug", "2024-05-01T10:00:01.000Z", "noise"));
        text.push('\n');
        text.push_str("not json at all\n");
        text.push_str(&zap(
            "error",
            "2024-05-01T10:00:02.000Z",
            "DataStore has no available IP/Prefix addresses",
        ));
        text.push('\n');
        std::fs::write(d.path().join("ipamd.log"), &text).unwrap();
        let s = read_logs(d.path(), Budget::default(), None, deadline());
        assert_eq!(s.status, model::SectionStatus::Ok, "{:?}", s.reason);
        let logs = s.data.unwrap();
        assert_eq!(logs.files.len(), 1);
        let f = &logs.files[0];
        assert_eq!(f.size, text.len() as u64);
        assert_eq!(f.bytes_read, text.len() as u64);
        assert!(!f.truncated);
        assert_eq!(f.lines, 4);
        // The debug line is dropped, the startup (classified) and the error are kept, in order.
        let msgs: Vec<&str> = logs.events.iter().map(|e| e.msg.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("Starting L-IPAMD"));
        assert!(msgs[1].starts_with("DataStore has no available"));
        assert_eq!(logs.events[0].line, Some(1));
        assert_eq!(logs.events[1].line, Some(4));
    }

    #[test]
    fn per_file_budget_reads_only_the_tail() {
        let d = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&zap(
                "error",
                "2024-05-01T10:00:00.000Z",
                &format!("failure number {i:05}"),
            ));
            text.push('\n');
        }
        std::fs::write(d.path().join("plugin.log"), &text).unwrap();
        let budget = Budget {
            per_file: 100 * 1024,
            total: 1024 * 1024,
            max_events: 100_000,
        };
        let s = read_logs(d.path(), budget, None, deadline());
        let logs = s.data.unwrap();
        let f = &logs.files[0];
        assert!(f.truncated);
        assert_eq!(f.bytes_read, 100 * 1024);
        // Every kept event is complete and from the end of the file.
        let last = logs.events.last().unwrap();
        assert_eq!(last.msg, "failure number 04999");
        assert!(logs
            .events
            .iter()
            .all(|e| e.msg.starts_with("failure number ")));
        assert!(logs.events.iter().all(|e| e.line.is_none()));
        let line_len = text.len() / 5000;
        let n = logs.events.len();
        assert!(
            n >= 100 * 1024 / line_len - 1 && n <= 100 * 1024 / line_len,
            "{n}"
        );
    }

    #[test]
    fn event_bound_keeps_newest_and_counts_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&zap(
                "warn",
                &format!("2024-05-01T10:00:{i:02}.000Z"),
                &format!("w{i:02}"),
            ));
            text.push('\n');
        }
        std::fs::write(d.path().join("ipamd.log"), &text).unwrap();
        let budget = Budget {
            max_events: 10,
            ..Budget::default()
        };
        let logs = read_logs(d.path(), budget, None, deadline()).data.unwrap();
        assert_eq!(logs.events.len(), 10);
        assert_eq!(logs.events_dropped, 40);
        assert_eq!(logs.events[0].msg, "w40");
        assert_eq!(logs.events[9].msg, "w49");
    }

    #[test]
    fn since_stops_at_older_lines() {
        let d = tempfile::tempdir().unwrap();
        let now = crate::duration::now_epoch();
        let fmt = |secs_ago: i64| {
            crate::duration::rfc3339(
                SystemTime::UNIX_EPOCH + Duration::from_secs((now - secs_ago) as u64),
            )
        };
        let mut text = String::new();
        for ago in [7200, 5400, 600, 60] {
            text.push_str(&zap("error", &fmt(ago), &format!("ago {ago}")));
            text.push('\n');
        }
        std::fs::write(d.path().join("ipamd.log"), &text).unwrap();
        let logs = read_logs(d.path(), Budget::default(), Some(now - 3600), deadline())
            .data
            .unwrap();
        let msgs: Vec<&str> = logs.events.iter().map(|e| e.msg.as_str()).collect();
        assert_eq!(msgs, ["ago 600", "ago 60"]);
        assert!(!logs.files[0].truncated);
    }

    #[test]
    fn gz_rotated_files_are_read_while_budget_remains() {
        let d = tempfile::tempdir().unwrap();
        let live = zap("error", "2024-05-02T10:00:00.000Z", "live error");
        std::fs::write(d.path().join("ipamd.log"), format!("{live}\n")).unwrap();
        let old = format!(
            "{}\n",
            zap("error", "2024-05-01T10:00:00.000Z", "rotated error")
        );
        let gz_path = d.path().join("ipamd-2024-05-01T10-00-00.123.log.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(old.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        std::fs::write(&gz_path, &gz).unwrap();
        // Make the rotated file older.
        let f = File::options().write(true).open(&gz_path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();

        let logs = read_logs(d.path(), Budget::default(), None, deadline())
            .data
            .unwrap();
        assert_eq!(logs.files.len(), 2);
        assert!(logs.files[0].path.ends_with("ipamd.log"));
        let msgs: Vec<&str> = logs.events.iter().map(|e| e.msg.as_str()).collect();
        assert_eq!(msgs, ["rotated error", "live error"]);

        // A total budget that the live file exhausts leaves the .gz unread.
        let budget = Budget {
            per_file: 8 * 1024 * 1024,
            total: (live.len() + 1) as u64,
            max_events: 100,
        };
        let logs = read_logs(d.path(), budget, None, deadline()).data.unwrap();
        assert_eq!(logs.files[1].bytes_read, 0);
        assert!(logs.files[1].error.as_deref().unwrap().contains("budget"));
        assert_eq!(logs.events.len(), 1);
    }
}
