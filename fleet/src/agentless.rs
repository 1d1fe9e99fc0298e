//! `--agentless`: the standard commands run in one remote script (one SSH exec), each output
//! delimited by a per-run random token; the snapshot is built here with the parsers.

use std::collections::BTreeMap;
use std::time::Duration;

use model::{AgentInfo, Outcome, Section, Snapshot};

use crate::quote::shell_join;
use crate::runner::{failed_sections, Classified};
use crate::ssh::ExecOutput;

/// Most conntrack entries listed (the table can hold hundreds of thousands).
pub const CONNTRACK_LINES: usize = 20_000;
/// Bytes of each CNI log read from its end.
pub const LOG_TAIL_BYTES: usize = 256 * 1024;
/// Entries kept in the conntrack sample.
pub const CONNTRACK_SAMPLE: usize = 200;
/// Directory of the VPC CNI logs on a node.
pub const CNI_LOG_DIR: &str = "/var/log/aws-routed-eni";

/// (section id, probe binary, argv). Run in this order by [`SCRIPT`].
pub const COMMANDS: &[(&str, &str, &[&str])] = &[
    ("hostname", "cat", &["cat", "/proc/sys/kernel/hostname"]),
    ("iptables_version", "iptables", &["iptables", "--version"]),
    (
        "iptables_nft",
        "iptables-nft-save",
        &["iptables-nft-save", "-c"],
    ),
    (
        "iptables_legacy",
        "iptables-legacy-save",
        &["iptables-legacy-save", "-c"],
    ),
    ("link", "ip", &["ip", "-j", "-d", "link"]),
    ("addr", "ip", &["ip", "-j", "addr"]),
    (
        "route4",
        "ip",
        // Without -4, `show table all` lists IPv6 routes too (and duplicates route6).
        &["ip", "-4", "-j", "route", "show", "table", "all"],
    ),
    (
        "route6",
        "ip",
        &["ip", "-6", "-j", "route", "show", "table", "all"],
    ),
    ("rule4", "ip", &["ip", "-4", "-j", "rule"]),
    ("rule6", "ip", &["ip", "-6", "-j", "rule"]),
    ("neigh", "ip", &["ip", "-j", "neigh"]),
    ("conntrack_stats", "conntrack", &["conntrack", "-S"]),
    (
        "conntrack_count",
        "cat",
        &["cat", "/proc/sys/net/netfilter/nf_conntrack_count"],
    ),
    (
        "conntrack_max",
        "cat",
        &["cat", "/proc/sys/net/netfilter/nf_conntrack_max"],
    ),
];

/// The remote script. `$1` is the delimiter token. Each section prints
/// `TOKEN BEGIN name`, its stdout, `TOKEN END name rc`, then its stderr between
/// `TOKEN STDERR name` and `TOKEN STDERR-END name`.
fn script() -> String {
    let mut s = String::from(
        r#"T=$1
e=$(mktemp) || exit 70
trap 'rm -f "$e"' EXIT
sec() {
  n=$1; p=$2; shift 2
  printf '\n%s BEGIN %s\n' "$T" "$n"
  if command -v "$p" >/dev/null 2>&1; then "$@" 2>"$e"; rc=$?; else rc=127; printf '%s: command not found\n' "$p" >"$e"; fi
  printf '\n%s END %s %s\n' "$T" "$n" "$rc"
  printf '%s STDERR %s\n' "$T" "$n"; head -c 2000 "$e"; printf '\n%s STDERR-END %s\n' "$T" "$n"
}
"#,
    );
    for (name, probe, argv) in COMMANDS {
        s.push_str(&format!("sec {name} {probe} {}\n", shell_join(argv)));
    }
    s.push_str(&format!(
        "sec conntrack_list conntrack sh -c {}\n",
        crate::quote::shell_quote(&format!(
            "conntrack -L -o extended 2>/dev/null | head -n {CONNTRACK_LINES}"
        ))
    ));
    s.push_str(&format!(
        "sec sysctl sysctl sh -c {}\n",
        crate::quote::shell_quote(
            "sysctl -a 2>/dev/null | grep -E '^net\\.(ipv4|ipv6|netfilter|core)\\.'"
        )
    ));
    for log in ["ipamd.log", "plugin.log"] {
        let path = format!("{CNI_LOG_DIR}/{log}");
        s.push_str(&format!(
            "sec {} tail {}\n",
            shell_join(&[&format!("log:{log}")]),
            shell_join(&["tail", "-c", &LOG_TAIL_BYTES.to_string(), &path])
        ));
    }
    s.push_str("exit 0\n");
    s
}

/// The exec string: `[sudo -n] sh -c <timeout wrapper> sh SECS sh -c <script> sh TOKEN`.
pub fn remote_command(sudo: bool, user: &str, timeout: Duration) -> String {
    let token = format!("@@EKSDIAG-{:016x}", rand::random::<u64>());
    let mut argv: Vec<String> = if sudo && user != "root" {
        vec!["sudo".into(), "-n".into()]
    } else {
        Vec::new()
    };
    argv.extend([
        "sh".into(),
        "-c".into(),
        "t=$1; shift; if command -v timeout >/dev/null 2>&1; then exec timeout -k 3 \"$t\" \"$@\"; else exec \"$@\"; fi".into(),
        "sh".into(),
        timeout.as_secs().max(1).to_string(),
        "sh".into(),
        "-c".into(),
        script(),
        "sh".into(),
        token,
    ]);
    shell_join(&argv)
}

/// One command's captured result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawSection {
    pub stdout: String,
    pub stderr: String,
    /// None when the output ended before the section finished.
    pub rc: Option<i32>,
}

/// Splits the script output into sections by the token found on the first BEGIN line.
pub fn split_sections(text: &str) -> BTreeMap<String, RawSection> {
    let mut out: BTreeMap<String, RawSection> = BTreeMap::new();
    // The token is whatever precedes " BEGIN " on the first delimiter line.
    let token = text
        .lines()
        .find_map(|l| {
            l.split_once(" BEGIN ")
                .filter(|(t, _)| t.starts_with("@@EKSDIAG-"))
                .map(|(t, _)| t.to_string())
        })
        .unwrap_or_default();
    if token.is_empty() {
        return out;
    }
    let begin = format!("{token} BEGIN ");
    let end = format!("{token} END ");
    let err_begin = format!("{token} STDERR ");
    let err_end = format!("{token} STDERR-END ");
    enum St {
        Out(String, Vec<String>),
        Err(String, Vec<String>),
        Idle,
    }
    let mut st = St::Idle;
    for line in text.split('\n') {
        st = match st {
            St::Idle => {
                if let Some(n) = line.strip_prefix(&begin) {
                    St::Out(n.to_string(), Vec::new())
                } else if let Some(n) = line.strip_prefix(&err_begin) {
                    St::Err(n.to_string(), Vec::new())
                } else {
                    St::Idle
                }
            }
            St::Out(n, mut lines) => {
                if let Some(rest) = line.strip_prefix(&end) {
                    let rc = rest
                        .rsplit_once(' ')
                        .and_then(|(_, rc)| rc.trim().parse::<i32>().ok());
                    // The script prints a newline before END; drop it.
                    if lines.last().is_some_and(|l| l.is_empty()) {
                        lines.pop();
                    }
                    let e = out.entry(n).or_default();
                    e.stdout = lines.join("\n");
                    e.rc = rc;
                    St::Idle
                } else {
                    lines.push(line.to_string());
                    St::Out(n, lines)
                }
            }
            St::Err(n, mut lines) => {
                if line.starts_with(&err_end) {
                    if lines.last().is_some_and(|l| l.is_empty()) {
                        lines.pop();
                    }
                    out.entry(n).or_default().stderr = lines.join("\n");
                    St::Idle
                } else {
                    lines.push(line.to_string());
                    St::Err(n, lines)
                }
            }
        };
    }
    if let St::Out(n, lines) = st {
        // Output ended inside a section (timeout or cut): keep what came, no rc.
        let e = out.entry(n).or_default();
        e.stdout = lines.join("\n");
        e.rc = None;
    }
    out
}

/// Why a raw section gives no data, as a section of the right status; None when it is usable.
fn unusable<T>(raw: Option<&RawSection>, what: &str) -> Option<Section<T>> {
    usable(raw, what).err()
}

/// The raw section when its command ran and succeeded; otherwise the section (of the right
/// status) that says why not.
pub(crate) fn usable<'a, T>(
    raw: Option<&'a RawSection>,
    what: &str,
) -> Result<&'a RawSection, Section<T>> {
    match raw {
        None => Err(Section::failed(format!(
            "{what}: no output (the script stopped before it)"
        ))),
        Some(r) => match r.rc {
            None => Err(Section::failed(format!(
                "{what}: output ended before the command finished"
            ))),
            Some(127) => Err(Section::unavailable(format!(
                "{what}: command not found on the node"
            ))),
            Some(0) => Ok(r),
            Some(rc) => {
                let e = r.stderr.trim();
                let msg = if e.is_empty() {
                    format!("{what}: exit {rc}")
                } else {
                    format!("{what}: exit {rc}: {e}")
                };
                Err(if e.contains("No such file") {
                    Section::unavailable(msg)
                } else {
                    Section::failed(msg)
                })
            }
        },
    }
}

fn cmd_label(id: &str) -> String {
    COMMANDS
        .iter()
        .find(|(n, _, _)| *n == id)
        .map(|(_, _, argv)| argv.join(" "))
        .unwrap_or_else(|| id.to_string())
}

/// Builds the snapshot from the split sections. Every section says where it came from or
/// why it has no data.
pub fn build_snapshot(raw: &BTreeMap<String, RawSection>, name: &str) -> Snapshot {
    let mut s = Snapshot::new(AgentInfo {
        name: "diag-agentless".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: COMMANDS.iter().map(|(_, _, a)| a.join(" ")).collect(),
    });
    s.hostname = raw
        .get("hostname")
        .filter(|r| r.rc == Some(0))
        .map(|r| r.stdout.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| name.to_string());
    s.node = Section::unavailable("agentless mode does not query IMDS");
    s.cni = Section::unavailable("agentless mode does not read the ipamd introspection API");
    s.conntrack = conntrack_section(raw);
    crate::agentless_sections::fill(&mut s, raw);
    s
}

fn conntrack_section(raw: &BTreeMap<String, RawSection>) -> Section<model::ConntrackSection> {
    let list_label = "conntrack -L -o extended";
    if let Some(bad) = unusable(raw.get("conntrack_list"), list_label) {
        return bad;
    }
    let Some(list) = raw.get("conntrack_list") else {
        return Section::failed("conntrack -L: missing");
    };
    let parsed = parsers::conntrack::parse_capture(&list.stdout, CONNTRACK_SAMPLE);
    let mut warnings = parsed.warning_strings();
    let mut sec = parsed.value;
    sec.source = list_label.to_string();
    let read = |id: &str| {
        raw.get(id)
            .filter(|r| r.rc == Some(0))
            .and_then(|r| r.stdout.trim().parse::<u64>().ok())
    };
    sec.count = read("conntrack_count").or(sec.count);
    sec.max = read("conntrack_max").or(sec.max);
    match unusable::<()>(raw.get("conntrack_stats"), &cmd_label("conntrack_stats")) {
        Some(bad) => warnings.push(bad.reason.unwrap_or_default()),
        None => {
            if let Some(r) = raw.get("conntrack_stats") {
                match parsers::conntrack::parse_stats(&r.stdout) {
                    Ok(p) => {
                        warnings.extend(p.warning_strings());
                        for st in &p.value {
                            for (k, v) in &st.counters {
                                *sec.totals.entry(k.clone()).or_insert(0) += v;
                            }
                        }
                        sec.stats = p.value;
                    }
                    Err(e) => warnings.push(format!("conntrack -S: {e}")),
                }
            }
        }
    }
    let lines = list.stdout.lines().count();
    let section = if lines >= CONNTRACK_LINES {
        Section::partial(
            sec,
            format!("listing cut at {CONNTRACK_LINES} entries (head -n)"),
        )
    } else {
        Section::ok(sec)
    };
    section.with_source(list_label).with_warnings(warnings)
}

/// Maps the agentless script's result to an outcome and a snapshot.
pub fn classify(out: &ExecOutput, name: &str) -> Classified {
    let text = String::from_utf8_lossy(&out.stdout);
    let raw = split_sections(&text);
    let stderr = if out.stderr.is_empty() {
        None
    } else {
        Some(
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect(),
        )
    };
    if raw.is_empty() {
        let (outcome, error) = match out.exit_status {
            Some(124) | Some(137) => (
                Outcome::Timeout,
                "agentless script exceeded the command timeout and was killed on the node"
                    .to_string(),
            ),
            Some(0) => (
                Outcome::InvalidOutput,
                "agentless script printed no sections".to_string(),
            ),
            Some(c) => (Outcome::AgentError, format!("agentless script exited {c}")),
            None => (
                Outcome::AgentError,
                "agentless script ended without an exit status".to_string(),
            ),
        };
        return Classified {
            outcome,
            error: Some(error),
            stderr,
            failed_sections: Vec::new(),
            snapshot: None,
        };
    }
    let snap = build_snapshot(&raw, name);
    let failed = failed_sections(&snap);
    let timed_out = matches!(out.exit_status, Some(124) | Some(137));
    let outcome = if failed.is_empty() && !timed_out {
        Outcome::Ok
    } else {
        Outcome::Partial
    };
    let error = if timed_out {
        Some("agentless script hit the command timeout; later sections are missing".to_string())
    } else if failed.is_empty() {
        None
    } else {
        Some(format!("{} section(s) not ok", failed.len()))
    };
    Classified {
        outcome,
        error,
        stderr,
        failed_sections: failed,
        snapshot: Some(snap),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn script_runs_and_splits_in_local_sh() {
        // Run the real script locally (in whatever namespace the test runs): sections must
        // all come back, each with an rc, whether or not the tool is installed here.
        let cmd = remote_command(false, "root", Duration::from_secs(30));
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        let raw = split_sections(&text);
        for (n, _, _) in COMMANDS {
            let r = raw.get(*n).unwrap_or_else(|| panic!("section {n} missing"));
            assert!(r.rc.is_some(), "{n} has no rc");
        }
        assert!(raw.contains_key("conntrack_list"));
        assert!(raw.contains_key("sysctl"));
        assert!(raw.contains_key("log:ipamd.log"));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(raw["hostname"].stdout.trim(), host.trim());
        assert_eq!(raw["hostname"].rc, Some(0));
    }

    #[test]
    fn split_handles_missing_tools_and_cut_output() {
        let t = "@@EKSDIAG-00000000000000aa";
        let text = format!(
            "\n{t} BEGIN a\nline1\nline2\n\n{t} END a 0\n{t} STDERR a\n\n{t} STDERR-END a\n\
             \n{t} BEGIN b\n\n{t} END b 127\n{t} STDERR b\nb: command not found\n\n{t} STDERR-END b\n\
             \n{t} BEGIN c\npartial"
        );
        let raw = split_sections(&text);
        assert_eq!(raw["a"].stdout, "line1\nline2");
        assert_eq!(raw["a"].rc, Some(0));
        assert_eq!(raw["b"].rc, Some(127));
        assert_eq!(raw["b"].stderr, "b: command not found");
        assert_eq!(raw["c"].rc, None);
        assert_eq!(raw["c"].stdout, "partial");
        let s: Option<Section<()>> = unusable(raw.get("b"), "b");
        assert_eq!(s.unwrap().status, model::SectionStatus::Unavailable);
        let s: Option<Section<()>> = unusable(raw.get("c"), "c");
        assert_eq!(s.unwrap().status, model::SectionStatus::Failed);
        assert!(unusable::<()>(raw.get("a"), "a").is_none());
        // A body line that merely contains another token is data, not a delimiter.
        let text2 = format!("{t} BEGIN x\n@@EKSDIAG-ffff BEGIN y\n\n{t} END x 0\n");
        let raw2 = split_sections(&text2);
        assert_eq!(raw2["x"].stdout, "@@EKSDIAG-ffff BEGIN y");
    }

    #[test]
    fn classify_empty_and_timeout() {
        let o = ExecOutput {
            exit_status: Some(124),
            ..Default::default()
        };
        assert_eq!(classify(&o, "n").outcome, Outcome::Timeout);
        let o = ExecOutput {
            exit_status: Some(0),
            stdout: b"garbage".to_vec(),
            ..Default::default()
        };
        assert_eq!(classify(&o, "n").outcome, Outcome::InvalidOutput);
    }
}
