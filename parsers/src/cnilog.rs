//! `/var/log/aws-routed-eni/*.log[.gz]` and pastes of them: zap JSON (v1.6.1+), logrus text
//! (aws-node container stdout, v1.12.1+), seelog text (≤ v1.6.0), the v1.12.0 `entrypoint.sh`
//! JSON, `jq`-pretty-printed objects and hard-wrapped lines (groundtruth §3).

use std::collections::BTreeMap;
use std::io::Read;

use model::cni::{LogEvent, LogEventKind, LogFile};
use serde_json::{Map, Value};

use crate::util::{ParseWarning, Parsed};

/// Substrings of known diagnostic messages (groundtruth §3.3), checked in this order: a root
/// cause (IAM, throttling, an exhausted subnet) wins over the operation that failed because
/// of it (ENI creation, pod ADD). Matching is case-sensitive, as the Go sources are; where a
/// message exists in two casings (the plugin log vs the returned error) both are listed.
const RULES: &[(LogEventKind, &[&str])] = &[
    (
        LogEventKind::Startup,
        &[
            "Starting L-IPAMD",
            "IP pool manager - max pods",
            // The aws-node entrypoint got through its ipamd wait (v1.7–v1.15 entrypoint.sh).
            "Successfully copied CNI plugin binary",
            "Foregrounding IPAM daemon",
        ],
    ),
    (LogEventKind::PodAdd, &["Received CNI add request"]),
    (LogEventKind::PodDel, &["Received CNI del request"]),
    (
        LogEventKind::ReconcileDrift,
        &["Instance metadata does not match data store"],
    ),
    (
        LogEventKind::MissingIamPermission,
        &["UnauthorizedOperation", "missing permissions"],
    ),
    (
        LogEventKind::Ec2Throttling,
        &[
            "RequestLimitExceeded",
            "Request limit exceeded",
            "retry quota exceeded",
            "Throttling",
        ],
    ),
    (
        LogEventKind::IpExhaustion,
        &[
            "DataStore has no available IP/Prefix addresses",
            "no available IP/Prefix addresses",
            // ≤ v1.6 wording (#871): `assignPodIPv4AddressUnsafe: no available IP addresses`.
            "no available IP addresses",
            "failed to assign an IP address to container",
            "Failed to assign an IP address to container",
            // ≤ v1.6 plugin wording (#871): `Failed to assign an IP address to pod …`.
            "Failed to assign an IP address to pod",
            "InsufficientFreeAddressesInSubnet",
            "InsufficientCidrBlocks",
            "There aren't sufficient free Ipv4 addresses or prefixes",
            "Unable to attach IPs/Prefixes for the ENI, subnet doesn't seem to have enough",
        ],
    ),
    (
        LogEventKind::EniAttachFailure,
        &[
            "Failed to attach ENI",
            "failed to attach ENI",
            "AttachmentLimitExceeded",
            "AllocENI: error attaching ENI",
            "failed to create ENI",
            "Skipping ENI allocation as the max ENI limit is already reached",
            // ≤ v1.5 wording (`ipamd/ipamd.go` v1.2.1: `Skipping increase IPPOOL due to max
            // ENI already attached to the instance : %d`, #317).
            "Skipping increase IPPOOL due to max ENI already attached",
        ],
    ),
    (
        LogEventKind::EniConfigMissing,
        &[
            "No ENIConfig could be found",
            "eniconfig is not available",
            // v1.3–v1.12 `tryAllocateENI` with custom networking (issue-611, pr1082 captures).
            "Failed to get pod ENI config",
            // v1.9+ `eniconfig.MyENIConfig` when the named ENIConfig cannot be read.
            "error while retrieving eniconfig",
        ],
    ),
    (
        LogEventKind::NotReady,
        &[
            "Failed to connect to backend server",
            "failed to connect to backend server",
            "Timed out waiting for IPAM daemon to start",
            // ≤ v1.6 entrypoint.sh plain text (#1049): `timed out waiting for IPAM daemon to start.`
            "timed out waiting for IPAM daemon to start",
            "wrong client version",
            "Prefix datastore not initialized",
            // One per health probe of the v1.10–v1.15 entrypoint; the rule decides how many
            // make ipamd unreachable.
            "Retrying waiting for IPAM-D",
            "failed ipam state recovery",
            // v1.12+ `cmd/aws-vpc-cni/main.go`: ipamd exited before it served (#2423).
            "Failed to wait for IPAM daemon to complete",
            // `cmd/grpc-health-probe` (the aws-node readiness/liveness probe):
            // `timeout: failed to connect service ":50051" within 5s` (#3705).
            "failed to connect service \":50051\"",
            "failed to connect service at \":50051\"",
            // A Go runtime panic of ipamd (`panic: runtime error: index out of range`, #3431).
            "panic: runtime error",
        ],
    ),
];

/// The gRPC port of ipamd; `connection refused` to it means ipamd is down.
const IPAMD_GRPC_PORT: &str = ":50051";

/// Classify a log message (groundtruth §3.3). Tolerates `%!(EXTRA …)` suffixes and wrapped
/// AWS SDK errors because it matches substrings.
pub fn classify(msg: &str) -> Option<LogEventKind> {
    for (kind, needles) in RULES {
        if needles.iter().any(|n| msg.contains(n)) {
            return Some(*kind);
        }
    }
    if msg.contains("connection refused") && msg.contains(IPAMD_GRPC_PORT) {
        return Some(LogEventKind::NotReady);
    }
    if pool_exhausted(msg) {
        return Some(LogEventKind::IpExhaustion);
    }
    None
}

pub use model::vpccni::pool_exhausted;

/// Parse one line (zap JSON, logrus text, seelog text). `None` when it is none of these.
///
/// `kubectl logs --prefix` (`[pod/aws-node-x/aws-node] …`) and `--timestamps`
/// (`2025-12-08T08:50:58.123456789Z …`) prefixes are removed first; the kubectl timestamp is
/// used when the line has none of its own.
pub fn parse_line(file: &str, line_no: u64, line: &str) -> Option<LogEvent> {
    let (l, kubectl_ts) = strip_kubectl_prefixes(line.trim());
    let mut ev = if l.starts_with('{') {
        let obj: Map<String, Value> = serde_json::from_str(l).ok()?;
        event_from_json(file, line_no, obj)
    } else if let Some(ev) = parse_logrus(file, line_no, l) {
        ev
    } else {
        parse_seelog(file, line_no, l)?
    };
    if ev.ts.is_none() {
        ev.ts = kubectl_ts.map(str::to_string);
    }
    Some(ev)
}

/// Remove `[pod/<name>/<container>] ` and a leading RFC 3339 timestamp that precedes a JSON or
/// logrus line. Returns the rest and the removed timestamp.
fn strip_kubectl_prefixes(l: &str) -> (&str, Option<&str>) {
    let mut l = l;
    if l.starts_with("[pod/") {
        if let Some(i) = l.find("] ") {
            l = l.get(i + 2..).unwrap_or("").trim_start();
        }
    }
    if let Some((first, rest)) = l.split_once(' ') {
        let rest = rest.trim_start();
        let looks_ts = first.len() >= 20
            && first.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && first.contains('T')
            && first.contains(':');
        if looks_ts
            && (rest.starts_with('{') || rest.starts_with("time=") || rest.starts_with("level="))
        {
            return (rest, Some(first));
        }
    }
    (l, None)
}

/// Parse a whole file or a paste. Reassembles `jq`-pretty-printed objects and JSON lines that a
/// paste hard-wrapped. `LogFile.lines` counts physical lines, `unparsed_lines` the non-blank
/// ones that belong to no event.
pub fn parse_text(file: &str, text: &str) -> Parsed<(LogFile, Vec<LogEvent>)> {
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    let mut lf = LogFile {
        path: file.to_string(),
        size: text.len() as u64,
        bytes_read: text.len() as u64,
        ..Default::default()
    };
    let lines: Vec<&str> = text.lines().collect();
    lf.lines = lines.len() as u64;
    let mut i = 0;
    while i < lines.len() {
        let line_no = (i + 1) as u64;
        let raw = lines[i];
        let l = raw.trim();
        if l.is_empty() {
            i += 1;
            continue;
        }
        let parts = split_joined_seelog(l);
        if parts.len() > 1 {
            // Seelog records a paste joined into one line (#317): one event each.
            let evs: Vec<LogEvent> = parts
                .iter()
                .filter_map(|p| parse_seelog(file, line_no, p))
                .collect();
            if evs.len() == parts.len() {
                events.extend(evs);
                i += 1;
                continue;
            }
        }
        if let Some(ev) = parse_line(file, line_no, l) {
            events.push(ev);
            i += 1;
            continue;
        }
        if l.starts_with('{') {
            // A pretty-printed object (`{` alone, or `{"level": …` split over lines) or a line a
            // paste hard-wrapped: join following lines until the braces balance and it parses.
            if let Some((ev, used)) = join_json(file, line_no, &lines[i..]) {
                events.push(ev);
                i += used;
                continue;
            }
            push_warning(
                &mut warnings,
                i + 1,
                raw,
                "JSON log line that does not parse (truncated?)",
            );
        } else if let Some(ev) = l
            .starts_with("\"level\":")
            .then(|| parse_line(file, line_no, &format!("{{{l}")))
            .flatten()
        {
            // A zap line whose opening brace the paste lost (#2309 starts so).
            events.push(ev);
            i += 1;
            continue;
        } else if let Some(kind) = classify(l) {
            // Plain text without timestamp or level: the aws-node container stdout of CNI
            // ≤ v1.6 (`timed out waiting for IPAM daemon to start.`, #1049) or a message pasted
            // on its own. Keep it when it is a known diagnostic message.
            events.push(LogEvent {
                file: file.to_string(),
                line: Some(line_no),
                ts: None,
                level: String::new(),
                caller: None,
                msg: l.to_string(),
                fields: BTreeMap::new(),
                kind: Some(kind),
            });
            i += 1;
            continue;
        }
        lf.unparsed_lines += 1;
        i += 1;
    }
    if warnings.len() >= MAX_WARNINGS {
        warnings.push(ParseWarning::new(
            lines.len(),
            "",
            "more unparsable JSON lines not reported",
        ));
    }
    Parsed {
        value: (lf, events),
        warnings,
    }
}

/// Like [`parse_text`] for raw file bytes: gzip (by magic bytes or a `.gz` name) is
/// decompressed up to `max_decompressed` bytes; invalid UTF-8 is replaced.
pub fn parse_bytes(
    file: &str,
    bytes: &[u8],
    max_decompressed: usize,
) -> Parsed<(LogFile, Vec<LogEvent>)> {
    let gz_magic = bytes.starts_with(&[0x1f, 0x8b]);
    let mut warnings = Vec::new();
    let mut error = None;
    let mut truncated = false;
    let owned;
    let data: &[u8] = if gz_magic {
        let mut out = Vec::new();
        let limit = u64::try_from(max_decompressed)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(limit);
        if let Err(e) = dec.read_to_end(&mut out) {
            error = Some(format!("gzip: {e} after {} bytes", out.len()));
            warnings.push(ParseWarning::truncated(
                0,
                file,
                format!(
                    "gzip stream is damaged: {e}; parsed the {} bytes before it",
                    out.len()
                ),
            ));
        }
        if out.len() > max_decompressed {
            out.truncate(max_decompressed);
            truncated = true;
            warnings.push(ParseWarning::truncated(
                0,
                file,
                format!("decompressed size exceeds {max_decompressed} bytes; the rest is skipped"),
            ));
        }
        owned = out;
        &owned
    } else {
        if file.ends_with(".gz") {
            warnings.push(ParseWarning::new(
                0,
                file,
                "named .gz but not gzip; read as text",
            ));
        }
        bytes
    };
    let text = String::from_utf8_lossy(data);
    let mut p = parse_text(file, &text);
    let lf = &mut p.value.0;
    lf.size = bytes.len() as u64;
    lf.bytes_read = bytes.len() as u64;
    lf.truncated = truncated;
    lf.error = error;
    warnings.append(&mut p.warnings);
    p.warnings = warnings;
    p
}

// ---------------------------------------------------------------------------------------------

/// Cap on warnings per file: a corrupt 100 MB log must not produce a million of them.
const MAX_WARNINGS: usize = 50;
/// Most physical lines one reassembled object may span.
const MAX_JOIN_LINES: usize = 400;

fn push_warning(w: &mut Vec<ParseWarning>, line: usize, text: &str, msg: &str) {
    if w.len() < MAX_WARNINGS {
        w.push(ParseWarning::new(line, text, msg));
    }
}

/// Join `lines[0..n]` into one JSON object. Pretty-printed input (`{` on its own line) is
/// joined with newlines, hard-wrapped input without a separator, so no character is lost.
/// Returns the event and the number of lines used.
fn join_json(file: &str, line_no: u64, lines: &[&str]) -> Option<(LogEvent, usize)> {
    let pretty = lines.first().is_some_and(|l| l.trim() == "{");
    let mut buf = String::new();
    let mut depth = BraceDepth::default();
    for (n, l) in lines.iter().enumerate().take(MAX_JOIN_LINES) {
        if n > 0 {
            let t = l.trim_start();
            // A new object starts: the previous one was truncated.
            if !pretty && (t.starts_with("{\"") || t == "{") && depth.depth <= 1 {
                return None;
            }
            if pretty {
                buf.push('\n');
            }
        }
        let piece = if pretty {
            l.trim()
        } else {
            l.trim_end_matches('\r')
        };
        buf.push_str(if n == 0 { piece.trim_start() } else { piece });
        depth.feed(piece);
        if depth.depth <= 0 {
            let obj: Map<String, Value> = serde_json::from_str(buf.trim()).ok()?;
            return Some((event_from_json(file, line_no, obj), n + 1));
        }
    }
    None
}

/// Brace depth outside JSON strings.
#[derive(Default)]
struct BraceDepth {
    depth: i64,
    in_str: bool,
    escaped: bool,
}

impl BraceDepth {
    fn feed(&mut self, s: &str) {
        for b in s.bytes() {
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
        }
    }
}

fn event_from_json(file: &str, line_no: u64, mut obj: Map<String, Value>) -> LogEvent {
    let level = obj
        .remove("level")
        .map(|v| normalise_level(&value_string(v)))
        .unwrap_or_default();
    let ts = obj
        .remove("ts")
        .or_else(|| obj.remove("time"))
        .map(value_string);
    let caller = obj.remove("caller").map(value_string);
    let msg = obj
        .remove("msg")
        .or_else(|| obj.remove("message"))
        .map(value_string)
        .unwrap_or_default();
    let fields: BTreeMap<String, Value> = obj.into_iter().collect();
    let kind = classify(&msg);
    LogEvent {
        file: file.to_string(),
        line: Some(line_no),
        ts,
        level,
        caller,
        msg,
        fields,
        kind,
    }
}

fn value_string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn normalise_level(l: &str) -> String {
    let l = l.trim().to_ascii_lowercase();
    match l.as_str() {
        "warning" => "warn".to_string(),
        "critical" | "panic" | "dpanic" => "fatal".to_string(),
        "err" => "error".to_string(),
        _ => l,
    }
}

/// logrus text: `time="2025-12-08T08:50:58Z" level=info msg="Starting IPAM daemon... "`.
fn parse_logrus(file: &str, line_no: u64, l: &str) -> Option<LogEvent> {
    if !(l.starts_with("time=") || l.starts_with("level=")) {
        return None;
    }
    let pairs = logfmt(l)?;
    let mut ev = LogEvent {
        file: file.to_string(),
        line: Some(line_no),
        ..Default::default()
    };
    let mut saw_level = false;
    for (k, v) in pairs {
        match k.as_str() {
            "time" => ev.ts = Some(v),
            "level" => {
                ev.level = normalise_level(&v);
                saw_level = true;
            }
            "msg" => ev.msg = v,
            "caller" | "func" if ev.caller.is_none() => ev.caller = Some(v),
            _ => {
                ev.fields.insert(k, Value::String(v));
            }
        }
    }
    if !saw_level {
        return None;
    }
    ev.kind = classify(&ev.msg);
    Some(ev)
}

/// `key=value` / `key="quoted \" value"` pairs. `None` if the line is not logfmt.
fn logfmt(l: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = l.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c == ' ' || c == '\t' {
            chars.next();
            continue;
        }
        // key
        let mut eq = None;
        for (i, c) in chars.by_ref() {
            if c == '=' {
                eq = Some(i);
                break;
            }
            if c == ' ' || c == '\t' {
                return None;
            }
        }
        let eq = eq?;
        let key = l.get(start..eq)?.to_string();
        // value
        let mut val = String::new();
        if chars.peek().map(|&(_, c)| c) == Some('"') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, 't')) => val.push('\t'),
                        Some((_, o)) => val.push(o),
                        None => {}
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    o => val.push(o),
                }
            }
            if !closed {
                // A hard-wrapped paste: keep what we have.
                out.push((key, val));
                return Some(out);
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c == ' ' || c == '\t' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key, val));
    }
    Some(out)
}

/// seelog (≤ v1.6.0) and similar: `2018-05-15T21:04:05Z [INFO] msg`.
/// Where a seelog record starts inside a line: ` 2019-02-05T18:41:44Z [INFO] `.
fn seelog_start_at(l: &str, i: usize) -> bool {
    let b = l.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.len() == r.len() && s.iter().all(u8::is_ascii_digit))
    };
    if !(digits(i..i + 4)
        && b.get(i + 4) == Some(&b'-')
        && digits(i + 5..i + 7)
        && b.get(i + 7) == Some(&b'-')
        && digits(i + 8..i + 10)
        && b.get(i + 10) == Some(&b'T')
        && digits(i + 11..i + 13)
        && b.get(i + 13) == Some(&b':'))
    {
        return false;
    }
    let Some(rest) = l.get(i..) else { return false };
    let Some((_, after)) = rest.split_once(' ') else {
        return false;
    };
    let Some(level) = after.strip_prefix('[').and_then(|a| a.split_once(']')) else {
        return false;
    };
    !level.0.is_empty() && level.0.len() <= 8 && level.0.bytes().all(|c| c.is_ascii_alphabetic())
}

/// A line holding several seelog records (a paste that lost its line breaks) split at each
/// record's timestamp; one element when it holds one (or is not seelog).
fn split_joined_seelog(l: &str) -> Vec<&str> {
    if !seelog_start_at(l, 0) {
        return vec![l];
    }
    let mut starts = vec![0];
    for (i, c) in l.char_indices() {
        if i > 0
            && c.is_ascii_digit()
            && l.as_bytes().get(i - 1) == Some(&b' ')
            && seelog_start_at(l, i)
        {
            starts.push(i);
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(l.len());
        if let Some(p) = l.get(s..e) {
            out.push(p.trim_end());
        }
    }
    out
}

fn parse_seelog(file: &str, line_no: u64, l: &str) -> Option<LogEvent> {
    let (ts, rest) = l.split_once(' ')?;
    if !ts.bytes().next().is_some_and(|b| b.is_ascii_digit()) || !ts.contains(':') {
        return None;
    }
    let rest = rest.trim_start();
    let close = rest.find(']')?;
    let level = rest.strip_prefix('[')?.get(..close.checked_sub(1)?)?;
    if level.is_empty() || !level.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let msg = rest.get(close + 1..)?.trim_start().to_string();
    let kind = classify(&msg);
    Some(LogEvent {
        file: file.to_string(),
        line: Some(line_no),
        ts: Some(ts.to_string()),
        level: normalise_level(level),
        caller: None,
        msg,
        fields: BTreeMap::new(),
        kind,
    })
}

#[cfg(test)]
mod joined_tests {
    use super::*;

    #[test]
    fn seelog_records_joined_into_one_line_are_split() {
        // #317: the issue body shows ipamd's seelog lines without their line breaks.
        let l = "2019-02-05T18:41:41Z [INFO] Send AddNetworkReply: IPv4Addr , DeviceNumber: 0, err: datastore: no available IP addresses 2019-02-05T18:41:44Z [DEBUG] AssignIPv4Address: IP address pool stats: total:42, assigned 42 2019-02-05T18:41:45Z [DEBUG] Skipping increase IPPOOL due to max ENI already attached to the instance : 3";
        let p = parse_text("ipamd.log", l);
        let (_, evs) = p.value;
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert_eq!(evs[0].kind, Some(LogEventKind::IpExhaustion));
        assert_eq!(evs[1].level, "debug");
        assert_eq!(evs[2].kind, Some(LogEventKind::EniAttachFailure));
        // A message that merely contains a date is not split.
        let one = "2019-02-05T18:41:41Z [INFO] created at 2019-02-05T18:41:40Z by x";
        assert_eq!(split_joined_seelog(one).len(), 1);
    }
}

#[cfg(test)]
mod pool_tests {
    use super::pool_exhausted;

    #[test]
    fn pool_lines_of_every_version() {
        assert!(pool_exhausted(
            "IP pool stats: total = 14, used = 14, c.maxIPsPerENI = 14"
        ));
        assert!(!pool_exhausted(
            "IP pool stats: total = 14, used = 3, c.maxIPsPerENI = 14"
        ));
        assert!(pool_exhausted(
            "IP pool stats: total = 28, used = 28, IPs in Cooldown = 0, c.maxIPsPerENI = 14"
        ));
        assert!(pool_exhausted("IP pool stats: Total IPs/Prefixes = 14/0, AssignedIPs/CooldownIPs: 14/0, c.maxIPsPerENI = 14"));
        assert!(pool_exhausted("Prefix pool stats for network card 0: Total IPs/Prefixes = 32/2, AssignedIPs/CooldownIPs: 32/0, c.maxIPsPerENI = 14"));
        assert!(!pool_exhausted("Prefix pool stats for network card 0: Total IPs/Prefixes = 32/2, AssignedIPs/CooldownIPs: 5/0, c.maxIPsPerENI = 14"));
        assert!(!pool_exhausted("IP pool stats: Total IPs/Prefixes = 0/0, AssignedIPs/CooldownIPs: 0/0, c.maxIPsPerENI = 14"));
        assert!(pool_exhausted(
            "IP pool is too low: available (0) < ENI target (1) * addrsPerENI (14)"
        ));
        assert!(!pool_exhausted(
            "IP pool is too low: available (3) < ENI target (1) * addrsPerENI (14)"
        ));
        assert!(!pool_exhausted(
            "IP pool is NOT too low: available (9) >= ENI target (1) * addrsPerENI (14)"
        ));
    }

    /// The other pool-statistics wordings, as printed in public ipamd.log pastes (see the
    /// real-world captures named in each comment) and read from ipamd's source at each tag.
    #[test]
    fn pool_statistics_wordings_of_v1_0_to_v1_23() {
        // v1.0–v1.4 ipamd (k8s-73790-seelog-pool-exhausted-max-eni).
        assert!(pool_exhausted("IP pool stats: total = 42, used = 42, c.currentMaxAddrsPerENI = 15, c.maxAddrsPerENI = 15"));
        // v1.0–v1.3 datastore, no space after `total:` (same capture).
        assert!(pool_exhausted(
            "AssignIPv4Address: IP address pool stats: total:42, assigned 42"
        ));
        // v1.5–v1.15 datastore (issue-1077-v1.6-seelog-datastore-no-ip).
        assert!(pool_exhausted(
            "AssignIPv4Address: IP address pool stats: total: 9, assigned 9"
        ));
        // v1.16+ datastore: neither `=` nor `:`.
        assert!(pool_exhausted(
            "AssignPodIPv4Address: IP address pool stats: total 14, assigned 14"
        ));
        // An empty datastore is not a full one (issue-2045-sgp-datastore-empty).
        assert!(!pool_exhausted(
            "AssignIPv4Address: IP address pool stats: total: 0, assigned 0"
        ));
        // v1.0–v1.8 `IP Address Pool stats` (capital P).
        assert!(pool_exhausted(
            "IP Address Pool stats: total: 9, assigned: 9"
        ));
        // v1.9–v1.11 (pr1621-pool-stats-cooldown-v1.9).
        assert!(!pool_exhausted("IP/Prefix Address Pool stats: total: 18, assigned: 1, cooldownIPs: 0, total prefixes: 0"));
        assert!(pool_exhausted("IP/Prefix Address Pool stats: total: 16, assigned: 16, cooldownIPs: 0, total prefixes: 1"));
        assert!(pool_exhausted("Datastore Pool stats: total(/32): 14, assigned(/32): 14, cooldownIPs(/32): 0, total prefixes(/28): 0"));
        assert!(!pool_exhausted(
            "Datastore Pool stats: total(/32): 14, assigned(/32): 2, total prefixes(/28): 0"
        ));
        // v1.12–v1.19 (issue-2203-pool-stats-88-of-78).
        assert!(!pool_exhausted("IP pool stats: Total IPs/Prefixes = 88/0, AssignedIPs/CooldownIPs: 78/3, c.maxIPsPerENI = 29"));
        // v1.20+ per network card (issue-3494-ip-stats-network-card-sgp).
        assert!(!pool_exhausted(
            "IP stats for Network Card 0 - total IPs: 28, assigned IPs: 3, cooldown IPs: 0"
        ));
        assert!(pool_exhausted(
            "IP stats for Network Card 0 - total IPs: 28, assigned IPs: 28, cooldown IPs: 0"
        ));
        assert!(pool_exhausted("IP pool is too low for Network Card 0: available (0) < ENI target (1) * addrsPerENI (14)"));
        // An ENI being removed frees addresses on purpose.
        assert!(!pool_exhausted("RemoveUnusedENIFromStore eni-1: IP/Prefix address pool stats: free 14 addresses, total: 14, assigned: 14, total prefixes: 0"));
        // IPv6 prefix stats carry no IPv4 total.
        assert!(!pool_exhausted(
            "Datastore Pool stats: total v6 prefixes(/80): 1"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_precedence() {
        assert_eq!(
            classify("AllocENI: failed to create ENI: failed to create network interface: InvalidParameterValue: There aren't sufficient free Ipv4 addresses or prefixes"),
            Some(LogEventKind::IpExhaustion)
        );
        assert_eq!(
            classify("failed to create ENI: UnauthorizedOperation: You are not authorized"),
            Some(LogEventKind::MissingIamPermission)
        );
        assert_eq!(
            classify("No ENIConfig could be found for this node%!(EXTRA *errors.errorString=eniconfig: eniconfig is not available)"),
            Some(LogEventKind::EniConfigMissing)
        );
        // The v1.3–v1.12 wording (ipamd `tryAllocateENI`) and the v1.9+ retrieval error.
        assert_eq!(
            classify("Failed to get pod ENI config"),
            Some(LogEventKind::EniConfigMissing)
        );
        assert_eq!(
            classify("error while retrieving eniconfig: ENIConfig.crd.k8s.amazonaws.com \"us-east-1a\" not found"),
            Some(LogEventKind::EniConfigMissing)
        );
        assert_eq!(
            classify("rpc error: code = Unavailable desc = connection error: dial tcp 127.0.0.1:50051: connect: connection refused"),
            Some(LogEventKind::NotReady)
        );
        assert_eq!(
            classify("dial tcp 10.0.0.1:443: connect: connection refused"),
            None
        );
        assert_eq!(classify("throttling"), None, "case-sensitive");
        // aws-node stdout of CNI ≤ v1.6 (#1049), lower-case plain text, read by parse_text.
        let p = parse_text(
            "aws-node.log",
            "starting IPAM daemon in background ... ok.\nchecking for IPAM connectivity ...  failed.\ntimed out waiting for IPAM daemon to start.\n",
        );
        let evs = &p.value.1;
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].kind, Some(LogEventKind::NotReady));
        assert_eq!(evs[0].line, Some(3));
        assert_eq!(p.value.0.unparsed_lines, 2);
        // #2309: the paste lost the opening brace of the first zap line.
        let p = parse_text(
            "ipamd.log",
            "\"level\":\"error\",\"ts\":\"2023-03-09T04:09:07.998Z\",\"caller\":\"ipamd/ipamd.go:819\",\"msg\":\"AllocENI: error attaching ENI: attachENI: failed to attach ENI: AttachmentLimitExceeded: Interface count 4 exceeds the limit\"}\n",
        );
        let evs = &p.value.1;
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].level, "error");
        assert_eq!(evs[0].ts.as_deref(), Some("2023-03-09T04:09:07.998Z"));
        assert_eq!(evs[0].kind, Some(LogEventKind::EniAttachFailure));
        assert_eq!(
            classify("timed out waiting for IPAM daemon to start."),
            Some(LogEventKind::NotReady)
        );
    }

    #[test]
    fn logfmt_quotes() {
        let ev = parse_line(
            "aws-node.log",
            3,
            r#"time="2025-12-08T08:50:58Z" level=warning msg="say \"hi\"" extra=1"#,
        )
        .unwrap();
        assert_eq!(ev.level, "warn");
        assert_eq!(ev.msg, "say \"hi\"");
        assert_eq!(ev.fields["extra"], Value::String("1".into()));
        assert_eq!(ev.line, Some(3));
    }
}
