//! Agentless sections built with the text parsers (iptables, ip, sysctl, CNI logs).

use std::collections::BTreeMap;

use model::iptables::{Backend, IptablesSection};
use model::{CniLogs, Family, Section, SectionStatus, Snapshot};
use parsers::{ParseError, Parsed};

use crate::agentless::{self, RawSection, LOG_TAIL_BYTES};

/// Most CNI log events kept (the agent bounds its own list similarly).
const MAX_EVENTS: usize = 2000;

fn label(id: &str) -> String {
    crate::agentless::COMMANDS
        .iter()
        .find(|(n, _, _)| *n == id)
        .map(|(_, _, argv)| argv.join(" "))
        .unwrap_or_else(|| id.to_string())
}

/// The raw output of `id` when the command ran and succeeded; otherwise the section that
/// says why not.
fn usable<'a, T>(
    raw: &'a BTreeMap<String, RawSection>,
    id: &str,
) -> Result<&'a RawSection, Section<T>> {
    agentless::usable(raw.get(id), &label(id))
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
fn merge<T>(a: Section<Vec<T>>, b: Section<Vec<T>>) -> Section<Vec<T>> {
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
    for (id, backend) in [
        ("iptables_nft", Backend::Nft),
        ("iptables_legacy", Backend::Legacy),
    ] {
        match usable::<()>(raw, id) {
            Err(s) => {
                if s.status == SectionStatus::Failed {
                    problems.push(s.reason.unwrap_or_default());
                } else if let Some(r) = s.reason {
                    warnings.push(r);
                }
            }
            Ok(r) => {
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
    if let Some(v) = raw.get("iptables_version").filter(|r| r.rc == Some(0)) {
        sec.default_backend = if v.stdout.contains("nf_tables") {
            Some(Backend::Nft)
        } else if v.stdout.contains("legacy") {
            Some(Backend::Legacy)
        } else {
            None
        };
    }
    if sources.is_empty() {
        let mut reasons = problems;
        reasons.extend(warnings);
        return if reasons.iter().all(|r| r.contains("not found")) {
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
    for name in ["ipamd.log", "plugin.log"] {
        let id = format!("log:{name}");
        let path = format!("{}/{name}", crate::agentless::CNI_LOG_DIR);
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
    if logs.events.len() > MAX_EVENTS {
        let drop = logs.events.len() - MAX_EVENTS;
        logs.events.drain(..drop);
        logs.events_dropped = drop as u64;
    }
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

/// Fills the parser-backed sections of `s` from the raw command output.
pub fn fill(s: &mut Snapshot, raw: &BTreeMap<String, RawSection>) {
    s.iptables = iptables(raw);
    let addr = parsed(raw, "addr", parsers::ip::parse_addr);
    s.addresses = Section {
        status: addr.status,
        reason: addr.reason.clone(),
        duration_ms: 0,
        sources: addr.sources.clone(),
        warnings: addr.warnings.clone(),
        data: addr.data.as_ref().map(|(_, a)| a.clone()),
    };
    s.links = parsed(raw, "link", parsers::ip::parse_link);
    if !s.links.status.has_data() && addr.status.has_data() {
        // `ip -j addr` carries the links too.
        let reason = s.links.reason.clone().unwrap_or_default();
        s.links = Section::partial(
            addr.data.map(|(l, _)| l).unwrap_or_default(),
            format!("from ip -j addr ({reason})"),
        );
    }
    s.routes = merge(
        parsed(raw, "route4", parsers::ip::parse_route),
        parsed(raw, "route6", parsers::ip::parse_route),
    );
    s.rules = merge(
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
}
