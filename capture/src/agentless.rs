//! Agentless mode's side of the capture: the commands run on a node (one table), the split
//! of the delimited script output into one [`RawSection`] per command, and the snapshot
//! built from them. The script itself (shell quoting, sudo, the remote timeout) is fleet's.

use std::collections::BTreeMap;

use model::iptables::{Backend, IptablesSection};
use model::{AgentInfo, CniLogs, ConntrackSection, Family, Section, SectionStatus, Snapshot};
use parsers::{ParseError, Parsed};

use crate::status::{from_command, CommandEnd};

/// Most conntrack entries listed (the table can hold hundreds of thousands).
pub const CONNTRACK_LINES: usize = 20_000;
/// Bytes of each CNI log read from its end.
pub const LOG_TAIL_BYTES: usize = 256 * 1024;
/// Entries kept in the conntrack sample.
pub const CONNTRACK_SAMPLE: usize = 200;
/// Directory of the VPC CNI logs on a node.
pub const CNI_LOG_DIR: &str = model::vpccni::CNI_LOG_DIR;
/// Name of the agent in snapshots built by agentless mode.
pub const AGENT_NAME: &str = "diag-agentless";

/// What must exist on the node for a command to mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A program on PATH (`command -v`).
    Program(&'static str),
    /// A file the command reads (`test -e`): absent means the source does not exist here.
    File(&'static str),
}

/// One command of the agentless script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Section id in the script output.
    pub id: &'static str,
    pub needs: Needs,
    pub argv: &'static [&'static str],
    /// How the command is named in sources and reasons.
    pub label: &'static str,
}

/// Every command, in the order the script runs them.
pub const COMMANDS: &[Command] = &[
    Command {
        id: "hostname",
        needs: Needs::File("/proc/sys/kernel/hostname"),
        argv: &["cat", "/proc/sys/kernel/hostname"],
        label: "cat /proc/sys/kernel/hostname",
    },
    Command {
        id: "iptables_version",
        needs: Needs::Program("iptables"),
        argv: &["iptables", "--version"],
        label: "iptables --version",
    },
    Command {
        id: "iptables_nft",
        needs: Needs::Program("iptables-nft-save"),
        argv: &["iptables-nft-save", "-c"],
        label: "iptables-nft-save -c",
    },
    Command {
        id: "iptables_legacy",
        needs: Needs::Program("iptables-legacy-save"),
        argv: &["iptables-legacy-save", "-c"],
        label: "iptables-legacy-save -c",
    },
    Command {
        id: "link",
        needs: Needs::Program("ip"),
        argv: &["ip", "-j", "-d", "link"],
        label: "ip -j -d link",
    },
    Command {
        id: "addr",
        needs: Needs::Program("ip"),
        argv: &["ip", "-j", "addr"],
        label: "ip -j addr",
    },
    // Without -4, `show table all` lists IPv6 routes too (and duplicates route6).
    Command {
        id: "route4",
        needs: Needs::Program("ip"),
        argv: &["ip", "-4", "-j", "route", "show", "table", "all"],
        label: "ip -4 -j route show table all",
    },
    Command {
        id: "route6",
        needs: Needs::Program("ip"),
        argv: &["ip", "-6", "-j", "route", "show", "table", "all"],
        label: "ip -6 -j route show table all",
    },
    Command {
        id: "rule4",
        needs: Needs::Program("ip"),
        argv: &["ip", "-4", "-j", "rule"],
        label: "ip -4 -j rule",
    },
    Command {
        id: "rule6",
        needs: Needs::Program("ip"),
        argv: &["ip", "-6", "-j", "rule"],
        label: "ip -6 -j rule",
    },
    Command {
        id: "neigh",
        needs: Needs::Program("ip"),
        argv: &["ip", "-j", "neigh"],
        label: "ip -j neigh",
    },
    Command {
        id: "conntrack_stats",
        needs: Needs::Program("conntrack"),
        argv: &["conntrack", "-S"],
        label: "conntrack -S",
    },
    Command {
        id: "conntrack_count",
        needs: Needs::File("/proc/sys/net/netfilter/nf_conntrack_count"),
        argv: &["cat", "/proc/sys/net/netfilter/nf_conntrack_count"],
        label: "cat /proc/sys/net/netfilter/nf_conntrack_count",
    },
    Command {
        id: "conntrack_max",
        needs: Needs::File("/proc/sys/net/netfilter/nf_conntrack_max"),
        argv: &["cat", "/proc/sys/net/netfilter/nf_conntrack_max"],
        label: "cat /proc/sys/net/netfilter/nf_conntrack_max",
    },
    // "20000" is CONNTRACK_LINES (a test keeps them equal).
    Command {
        id: "conntrack_list",
        needs: Needs::Program("conntrack"),
        argv: &[
            "sh",
            "-c",
            "conntrack -L -o extended 2>/dev/null | head -n 20000",
        ],
        label: "conntrack -L -o extended",
    },
    Command {
        id: "sysctl",
        needs: Needs::Program("sysctl"),
        argv: &[
            "sh",
            "-c",
            "sysctl -a 2>/dev/null | grep -E '^net\\.(ipv4|ipv6|netfilter|core)\\.'",
        ],
        label: "sysctl -a",
    },
    // "262144" is LOG_TAIL_BYTES (a test keeps them equal).
    Command {
        id: "log:ipamd.log",
        needs: Needs::File("/var/log/aws-routed-eni/ipamd.log"),
        argv: &["tail", "-c", "262144", "/var/log/aws-routed-eni/ipamd.log"],
        label: "tail -c 262144 /var/log/aws-routed-eni/ipamd.log",
    },
    Command {
        id: "log:plugin.log",
        needs: Needs::File("/var/log/aws-routed-eni/plugin.log"),
        argv: &["tail", "-c", "262144", "/var/log/aws-routed-eni/plugin.log"],
        label: "tail -c 262144 /var/log/aws-routed-eni/plugin.log",
    },
];

/// The CNI logs the script tails, by file name.
const LOGS: &[&str] = &["ipamd.log", "plugin.log"];

fn label(id: &str) -> String {
    COMMANDS
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.label.to_string())
        .unwrap_or_else(|| id.to_string())
}

/// Marker the script prints instead of an exit code when the file a command needs is absent.
pub const NO_FILE_MARK: &str = "nofile";

/// One command's captured result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    pub stdout: String,
    pub stderr: String,
    pub end: CommandEnd,
}

impl Default for RawSection {
    fn default() -> Self {
        RawSection {
            stdout: String::new(),
            stderr: String::new(),
            end: CommandEnd::Unfinished,
        }
    }
}

impl RawSection {
    fn succeeded(&self) -> bool {
        self.end == CommandEnd::Exit(0)
    }
}

/// Prefix of the per-run delimiter token.
pub const TOKEN_PREFIX: &str = "@@EKSDIAG-";

/// Splits the script output into sections by the token found on the first BEGIN line.
/// Each section is `TOKEN BEGIN name`, its stdout, `TOKEN END name rc|nofile`, then its
/// stderr between `TOKEN STDERR name` and `TOKEN STDERR-END name`.
pub fn split_sections(text: &str) -> BTreeMap<String, RawSection> {
    let mut out: BTreeMap<String, RawSection> = BTreeMap::new();
    // The token is whatever precedes " BEGIN " on the first delimiter line.
    let token = text
        .lines()
        .find_map(|l| {
            l.split_once(" BEGIN ")
                .filter(|(t, _)| t.starts_with(TOKEN_PREFIX))
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
    enum Reading {
        Stdout(String, Vec<String>),
        Stderr(String, Vec<String>),
        Between,
    }
    let mut st = Reading::Between;
    for line in text.split('\n') {
        st = match st {
            Reading::Between => {
                if let Some(n) = line.strip_prefix(&begin) {
                    Reading::Stdout(n.to_string(), Vec::new())
                } else if let Some(n) = line.strip_prefix(&err_begin) {
                    Reading::Stderr(n.to_string(), Vec::new())
                } else {
                    Reading::Between
                }
            }
            Reading::Stdout(n, mut lines) => {
                if let Some(rest) = line.strip_prefix(&end) {
                    let code = rest.rsplit_once(' ').map(|(_, rc)| rc.trim());
                    let end = match code {
                        Some(NO_FILE_MARK) => CommandEnd::NoFile,
                        Some(c) => c
                            .parse::<i32>()
                            .map(CommandEnd::Exit)
                            .unwrap_or(CommandEnd::Unfinished),
                        None => CommandEnd::Unfinished,
                    };
                    // The script prints a newline before END; drop it.
                    if lines.last().is_some_and(|l| l.is_empty()) {
                        lines.pop();
                    }
                    let e = out.entry(n).or_default();
                    e.stdout = lines.join("\n");
                    e.end = end;
                    Reading::Between
                } else {
                    lines.push(line.to_string());
                    Reading::Stdout(n, lines)
                }
            }
            Reading::Stderr(n, mut lines) => {
                if line.starts_with(&err_end) {
                    if lines.last().is_some_and(|l| l.is_empty()) {
                        lines.pop();
                    }
                    out.entry(n).or_default().stderr = lines.join("\n");
                    Reading::Between
                } else {
                    lines.push(line.to_string());
                    Reading::Stderr(n, lines)
                }
            }
        };
    }
    if let Reading::Stdout(n, lines) = st {
        // Output ended inside a section (timeout or cut): keep what came, unfinished.
        let e = out.entry(n).or_default();
        e.stdout = lines.join("\n");
        e.end = CommandEnd::Unfinished;
    }
    out
}

/// The raw output of `id` when its command ran and succeeded; otherwise the section (of the
/// status the policy in [`crate::status`] gives) that says why not.
pub fn usable<'a, T>(
    raw: &'a BTreeMap<String, RawSection>,
    id: &str,
) -> Result<&'a RawSection, Section<T>> {
    let r = raw.get(id);
    match from_command(
        r.map(|r| r.end),
        r.map_or("", |r| r.stderr.as_str()),
        &label(id),
    ) {
        Some(bad) => Err(bad),
        None => r.ok_or_else(|| Section::failed(format!("{}: missing", label(id)))),
    }
}

/// Parses one command's output into a section (empty output is an empty, complete list).
fn parsed<T: Default>(
    raw: &BTreeMap<String, RawSection>,
    id: &str,
    f: impl FnOnce(&str) -> Result<Parsed<T>, ParseError>,
) -> Section<T> {
    let r = match usable(raw, id) {
        Ok(r) => r,
        Err(s) => return s,
    };
    let what = label(id);
    match f(&r.stdout) {
        Ok(p) => {
            let w = p.warning_strings();
            Section::ok(p.value).with_source(what).with_warnings(w)
        }
        Err(ParseError::Empty) => Section::ok(T::default()).with_source(what),
        Err(e) => Section::failed(format!("{what}: {e}")),
    }
}

/// Merges two sections of lists (IPv4 + IPv6): ok when both are, partial when one failed.
fn merge_families<T>(a: Section<Vec<T>>, b: Section<Vec<T>>) -> Section<Vec<T>> {
    match (a.status.has_data(), b.status.has_data()) {
        (true, true) => {
            let mut data = a.data.unwrap_or_default();
            data.extend(b.data.unwrap_or_default());
            let mut s = Section::ok(data);
            if a.status == SectionStatus::Partial || b.status == SectionStatus::Partial {
                s.status = SectionStatus::Partial;
            }
            s.sources = a.sources.into_iter().chain(b.sources).collect();
            s.warnings = a.warnings.into_iter().chain(b.warnings).collect();
            s
        }
        (true, false) | (false, true) => {
            let (good, bad) = if a.status.has_data() { (a, b) } else { (b, a) };
            // An IPv6 side that is merely unavailable (IPv6 disabled) leaves the section ok.
            let mut s = good;
            if bad.status != SectionStatus::Unavailable {
                s.status = SectionStatus::Partial;
                s.reason = bad.reason;
            } else if let Some(r) = bad.reason {
                s.warnings.push(r);
            }
            s
        }
        (false, false) => a,
    }
}

fn iptables(raw: &BTreeMap<String, RawSection>) -> Section<IptablesSection> {
    let mut sec = IptablesSection::default();
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut all_absent = true;
    for (id, backend) in [
        ("iptables_nft", Backend::Nft),
        ("iptables_legacy", Backend::Legacy),
    ] {
        match usable::<()>(raw, id) {
            Err(s) => {
                all_absent &= s.status == SectionStatus::Unavailable;
                if s.status == SectionStatus::Failed {
                    problems.push(s.reason.unwrap_or_default());
                } else if let Some(r) = s.reason {
                    warnings.push(r);
                }
            }
            Ok(r) => {
                all_absent = false;
                let p = parsers::iptables::parse_save(&r.stdout);
                warnings.extend(p.warning_strings());
                for mut d in p.value {
                    if d.backend == Backend::Unknown {
                        d.backend = backend;
                    }
                    d.command = label(id);
                    sec.backends.push(d);
                }
                sources.push(label(id));
            }
        }
    }
    if let Some(v) = raw.get("iptables_version").filter(|r| r.succeeded()) {
        sec.default_backend = Backend::from_version_output(&format!("{}{}", v.stdout, v.stderr));
    }
    if sources.is_empty() {
        let mut reasons = problems;
        reasons.extend(warnings);
        return if all_absent {
            Section::unavailable(reasons.join("; "))
        } else {
            Section::failed(reasons.join("; "))
        };
    }
    let mut s = if problems.is_empty() {
        Section::ok(sec)
    } else {
        Section::partial(sec, problems.join("; "))
    };
    s.sources = sources;
    s.with_warnings(warnings)
}

fn cni_logs(raw: &BTreeMap<String, RawSection>) -> Section<CniLogs> {
    let mut logs = CniLogs::default();
    let mut absent = Vec::new();
    let mut warnings = Vec::new();
    let mut failed = Vec::new();
    for name in LOGS {
        let id = format!("log:{name}");
        let path = format!("{CNI_LOG_DIR}/{name}");
        match usable::<()>(raw, &id) {
            Err(s) if s.status == SectionStatus::Unavailable => absent.push(path),
            Err(s) => failed.push(format!("{path}: {}", s.reason.unwrap_or_default())),
            Ok(r) => {
                let p = parsers::cnilog::parse_text(name, &r.stdout);
                warnings.extend(p.warning_strings());
                let (mut file, events) = p.value;
                file.path = path;
                file.bytes_read = r.stdout.len() as u64;
                file.truncated = r.stdout.len() + 1 >= LOG_TAIL_BYTES;
                logs.files.push(file);
                logs.events.extend(events);
            }
        }
    }
    logs.keep_newest(model::cni::MAX_LOG_EVENTS);
    if logs.files.is_empty() {
        return if failed.is_empty() {
            Section::unavailable(format!("no CNI logs: {} absent", absent.join(", ")))
        } else {
            Section::failed(failed.join("; "))
        };
    }
    let mut s = if failed.is_empty() {
        Section::ok(logs)
    } else {
        Section::partial(logs, failed.join("; "))
    };
    s.sources = vec![format!("tail -c {LOG_TAIL_BYTES}")];
    if !absent.is_empty() {
        warnings.push(format!("absent: {}", absent.join(", ")));
    }
    s.with_warnings(warnings)
}

fn conntrack(raw: &BTreeMap<String, RawSection>) -> Section<ConntrackSection> {
    let list = match usable(raw, "conntrack_list") {
        Ok(r) => r,
        Err(bad) => return bad,
    };
    let list_label = label("conntrack_list");
    let parsed = parsers::conntrack::parse_capture(&list.stdout, CONNTRACK_SAMPLE);
    let mut warnings = parsed.warning_strings();
    let mut sec = parsed.value;
    sec.source = list_label.clone();
    let read = |id: &str| {
        raw.get(id)
            .filter(|r| r.succeeded())
            .and_then(|r| r.stdout.trim().parse::<u64>().ok())
    };
    sec.count = read("conntrack_count").or(sec.count);
    sec.max = read("conntrack_max").or(sec.max);
    match usable::<()>(raw, "conntrack_stats") {
        Err(bad) => warnings.push(bad.reason.unwrap_or_default()),
        Ok(r) => match parsers::conntrack::parse_stats(&r.stdout) {
            Ok(p) => {
                warnings.extend(p.warning_strings());
                sec.totals = model::conntrack::sum_stats(&p.value);
                sec.stats = p.value;
            }
            Err(e) => warnings.push(format!("conntrack -S: {e}")),
        },
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

/// Builds the snapshot from the split sections. Every section says where it came from or
/// why it has no data.
pub fn build_snapshot(raw: &BTreeMap<String, RawSection>, name: &str) -> Snapshot {
    let mut s = Snapshot::new(AgentInfo {
        name: AGENT_NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: COMMANDS.iter().map(|c| c.label.to_string()).collect(),
    });
    s.hostname = raw
        .get("hostname")
        .filter(|r| r.succeeded())
        .map(|r| r.stdout.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| name.to_string());
    s.node = Section::unavailable("agentless mode does not query IMDS");
    s.cni = Section::unavailable("agentless mode does not read the ipamd introspection API");
    s.conntrack = conntrack(raw);
    s.iptables = iptables(raw);
    let addr = parsed(raw, "addr", parsers::ip::parse_addr);
    s.links = parsed(raw, "link", parsers::ip::parse_link);
    if !s.links.status.has_data() && addr.status.has_data() {
        // `ip -j addr` carries the links too.
        let reason = s.links.reason.clone().unwrap_or_default();
        s.links = Section::partial(
            addr.data.clone().map(|(l, _)| l).unwrap_or_default(),
            format!("from ip -j addr ({reason})"),
        );
    }
    s.addresses = addr.map(|(_, a)| a);
    s.routes = merge_families(
        parsed(raw, "route4", parsers::ip::parse_route),
        parsed(raw, "route6", parsers::ip::parse_route),
    );
    s.rules = merge_families(
        parsed(raw, "rule4", |t| {
            parsers::ip::parse_rule_family(t, Family::Inet)
        }),
        parsed(raw, "rule6", |t| {
            parsers::ip::parse_rule_family(t, Family::Inet6)
        }),
    );
    s.neighbours = parsed(raw, "neigh", parsers::ip::parse_neigh);
    s.sysctls = parsed(raw, "sysctl", parsers::sysctl::parse);
    s.cni_logs = cni_logs(raw);
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn literal_limits_match_their_constants() {
        let list = COMMANDS.iter().find(|c| c.id == "conntrack_list").unwrap();
        assert!(list.argv[2].ends_with(&format!("head -n {CONNTRACK_LINES}")));
        for name in LOGS {
            let c = COMMANDS
                .iter()
                .find(|c| c.id == format!("log:{name}"))
                .unwrap();
            let path = format!("{CNI_LOG_DIR}/{name}");
            assert_eq!(c.argv, ["tail", "-c", &LOG_TAIL_BYTES.to_string(), &path]);
            assert_eq!(c.needs, Needs::File(Box::leak(path.into_boxed_str())));
        }
        for c in COMMANDS {
            if c.argv[0] != "sh" {
                assert_eq!(c.label, c.argv.join(" "), "{}", c.id);
            }
        }
    }

    #[test]
    fn split_handles_missing_tools_files_and_cut_output() {
        let t = "@@EKSDIAG-00000000000000aa";
        let text = format!(
            "\n{t} BEGIN a\nline1\nline2\n\n{t} END a 0\n{t} STDERR a\n\n{t} STDERR-END a\n\
             \n{t} BEGIN b\n\n{t} END b 127\n{t} STDERR b\nb: command not found\n\n{t} STDERR-END b\n\
             \n{t} BEGIN f\n\n{t} END f nofile\n{t} STDERR f\n\n{t} STDERR-END f\n\
             \n{t} BEGIN c\npartial"
        );
        let raw = split_sections(&text);
        assert_eq!(raw["a"].stdout, "line1\nline2");
        assert_eq!(raw["a"].end, CommandEnd::Exit(0));
        assert_eq!(raw["b"].end, CommandEnd::Exit(127));
        assert_eq!(raw["b"].stderr, "b: command not found");
        assert_eq!(raw["f"].end, CommandEnd::NoFile);
        assert_eq!(raw["c"].end, CommandEnd::Unfinished);
        assert_eq!(raw["c"].stdout, "partial");
        let st = |id: &str| usable::<()>(&raw, id).err().map(|s| s.status);
        assert_eq!(st("b"), Some(SectionStatus::Unavailable));
        assert_eq!(st("f"), Some(SectionStatus::Unavailable));
        assert_eq!(st("c"), Some(SectionStatus::Failed));
        assert_eq!(st("nope"), Some(SectionStatus::Failed));
        assert_eq!(st("a"), None);
        // A body line that merely contains another token is data, not a delimiter.
        let text2 = format!("{t} BEGIN x\n@@EKSDIAG-ffff BEGIN y\n\n{t} END x 0\n");
        let raw2 = split_sections(&text2);
        assert_eq!(raw2["x"].stdout, "@@EKSDIAG-ffff BEGIN y");
    }

    #[test]
    fn pre_1_8_iptables_is_legacy_and_totals_are_summed() {
        let t = "@@EKSDIAG-00000000000000bb";
        let sec = |id: &str, out: &str| {
            format!("\n{t} BEGIN {id}\n{out}\n\n{t} END {id} 0\n{t} STDERR {id}\n\n{t} STDERR-END {id}\n")
        };
        let text = [
            sec("iptables_version", "iptables v1.6.2"),
            sec("iptables_legacy", "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT"),
            sec("conntrack_list", ""),
            sec(
                "conntrack_stats",
                "cpu=0 found=0 invalid=1 insert=0 insert_failed=2 drop=0 early_drop=0 error=0 search_restart=0\n\
                 cpu=1 found=0 invalid=3 insert=0 insert_failed=5 drop=0 early_drop=0 error=0 search_restart=0",
            ),
        ]
        .concat();
        let raw = split_sections(&text);
        let s = build_snapshot(&raw, "n");
        assert_eq!(
            s.iptables.data.as_ref().and_then(|d| d.default_backend),
            Some(Backend::Legacy)
        );
        let totals = &s.conntrack.data.as_ref().unwrap().totals;
        assert_eq!(totals.get("insert_failed"), Some(&7));
        assert_eq!(totals.get("invalid"), Some(&4));
    }
}
