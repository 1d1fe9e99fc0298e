//! A snapshot's sections as the command output a person would have saved, under
//! eks-log-collector's file names.
//!
//! What is verbatim and what is rendered:
//! * iptables: the snapshot keeps every rule line as `iptables-save -c` printed it
//!   (`IptRule::raw`); the tables are reassembled around them (`*table`, `:CHAIN POLICY
//!   [p:b]`, `COMMIT`). Rules read from `iptables -L` pastes have no save line and are written
//!   with `parsers::iptables::to_save_line` from their parsed fields.
//! * `iptables -nvL -t nat|mangle|filter` (ELC's `iptables-<table>.txt`): rendered from the
//!   save dump by [`crate::iptables_list`], never run (the manifest note says so).
//! * ip rule / route / addr / neigh, conntrack, sysctls: the agent reads netlink and `/proc`,
//!   not command output, so these are rendered from the parsed data in iproute2's /
//!   conntrack's format (the diag parsers read them back to the same data: see the tests).
//!   `conntrack.txt` holds `-S` then the kept sample of `-L` (the whole table is summarised,
//!   not kept: the manifest marks the file truncated).
//! * CNI logs: rendered from the kept events (one zap-style JSON line each) unless the caller
//!   adds the raw files (`node-agent bundle` copies `/var/log/aws-routed-eni/*`).
//!
//! Sections that were not collected produce no file; the manifest lists them as omitted.

use std::fmt::Write as _;

use model::{Backend, IptablesBackendDump, SectionStatus, Snapshot};
use serde::{Deserialize, Serialize};

/// Where the bytes of a bundle file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Source {
    /// `command` (run for the bundle), `http` (a GET made for the bundle), `file` (copied), `rendered` (from a snapshot section,
    /// in the format of `argv`), `generated` (report, findings, snapshot).
    pub kind: String,
    /// The command, or the command whose output format a rendered file has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// The file copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The snapshot section a rendered file comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

impl Source {
    pub fn rendered(section: &str, argv: &[&str]) -> Source {
        Source {
            kind: "rendered".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            section: Some(section.into()),
            ..Default::default()
        }
    }

    pub fn generated() -> Source {
        Source {
            kind: "generated".into(),
            ..Default::default()
        }
    }

    pub fn command(argv: &[String]) -> Source {
        Source {
            kind: "command".into(),
            argv: argv.to_vec(),
            ..Default::default()
        }
    }

    /// An HTTP GET the bundle made (ipamd introspection), `argv` = `["GET", url]`.
    pub fn http(url: &str) -> Source {
        Source {
            kind: "http".into(),
            argv: vec!["GET".into(), url.into()],
            ..Default::default()
        }
    }

    pub fn file(path: &str) -> Source {
        Source {
            kind: "file".into(),
            path: Some(path.into()),
            ..Default::default()
        }
    }
}

/// One file for the bundle, before redaction and caps.
#[derive(Debug, Clone, Default)]
pub struct RawFile {
    /// Path inside the node's directory (`networking/iprule.txt`).
    pub path: String,
    pub data: Vec<u8>,
    pub source: Source,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
    /// Already cut by the collector (a sample, a byte cap).
    pub truncated: bool,
    pub timed_out: bool,
    pub note: Option<String>,
    /// A CNI log: `--since` filters it and `--max-size` may cut it from the start.
    pub log: bool,
    /// JSON: redacted value by value rather than as text.
    pub json: bool,
}

impl RawFile {
    pub fn text(path: &str, text: String, source: Source) -> RawFile {
        RawFile {
            path: path.into(),
            data: text.into_bytes(),
            source,
            ..Default::default()
        }
    }
}

/// A section that gives no file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    pub path: String,
    pub reason: String,
}

/// ELC's `ipamd/<name>.json` files (`IPAMD_DATA` in eks-log-collector.sh, plus `metrics`).
pub const IPAMD_FILES: &[&str] = &[
    "enis",
    "pods",
    "networkutils-env-settings",
    "ipamd-env-settings",
    "eni-configs",
    "metrics",
];

/// Every file the snapshot can give, plus the ELC files it cannot give and why.
pub fn files(s: &Snapshot) -> (Vec<RawFile>, Vec<Omitted>) {
    let mut out = Vec::new();
    let mut omitted = Vec::new();
    fn omit(
        omitted: &mut Vec<Omitted>,
        path: &str,
        section: &str,
        status: SectionStatus,
        reason: Option<&str>,
    ) {
        omitted.push(Omitted {
            path: path.into(),
            reason: format!(
                "section {section} is {status:?}{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        })
    }

    // iptables
    match s.iptables.get() {
        Some(ipt) => {
            let with_rules: Vec<&IptablesBackendDump> =
                ipt.backends.iter().filter(|d| d.rule_count() > 0).collect();
            let main = ipt
                .default_backend
                .and_then(|b| ipt.backend(b))
                .or_else(|| with_rules.first().copied())
                .or_else(|| ipt.backends.first());
            if let Some(d) = main {
                let mut f = RawFile::text(
                    "networking/iptables-save.txt",
                    iptables_save(d, &s.collected_at),
                    Source::rendered("iptables", &["iptables-save", "-c"]),
                );
                f.note = Some(format!("{} backend ({})", d.backend, d.command));
                out.push(f);
                for table in ["nat", "mangle", "filter"] {
                    let path = format!("networking/iptables-{table}.txt");
                    let Some(t) = d.table(table) else {
                        omitted.push(Omitted {
                            path,
                            reason: format!("the {} backend has no {table} table", d.backend),
                        });
                        continue;
                    };
                    let numeric = crate::iptables_list::numeric_proto(d.version.as_deref());
                    let (mut text, unknown) = crate::iptables_list::render_table(t, numeric);
                    // ELC appends the count of rule rows to each listing.
                    let rows: usize = t.chains.iter().map(|c| c.rules.len()).sum();
                    let _ = write!(text, "=======\nTotal Number of Rules: {rows}\n");
                    let mut f = RawFile::text(
                        &path,
                        text,
                        Source::rendered(
                            "iptables",
                            &[
                                "iptables",
                                "--wait",
                                "1",
                                "--numeric",
                                "--verbose",
                                "--list",
                                "--table",
                                table,
                            ],
                        ),
                    );
                    let mut note = format!(
                        "rendered from `{}` ({} backend), not run: `iptables -L` can load \
                         kernel modules on the legacy backend",
                        d.command, d.backend
                    );
                    if !unknown.is_empty() {
                        let _ = write!(
                            note,
                            "; {} option(s) whose -L wording is not known here are in save \
                             syntax (first: `{}`)",
                            unknown.len(),
                            unknown[0]
                        );
                    }
                    f.note = Some(note);
                    out.push(f);
                }
            }
            if with_rules.len() > 1 {
                for d in &with_rules {
                    let (name, argv) = match d.backend {
                        Backend::Nft => ("networking/iptables-nft-save.txt", "iptables-nft-save"),
                        Backend::Legacy => (
                            "networking/iptables-legacy-save.txt",
                            "iptables-legacy-save",
                        ),
                        Backend::Unknown => continue,
                    };
                    out.push(RawFile::text(
                        name,
                        iptables_save(d, &s.collected_at),
                        Source::rendered("iptables", &[argv, "-c"]),
                    ));
                }
            }
        }
        None => omit(
            &mut omitted,
            "networking/iptables-save.txt",
            "iptables",
            s.iptables.status,
            s.iptables.reason.as_deref(),
        ),
    }

    // rules and routes
    match s.rules.get() {
        Some(rules) => {
            for (fam, path, argv) in [
                (
                    model::Family::Inet,
                    "networking/iprule.txt",
                    &["ip", "rule"][..],
                ),
                (
                    model::Family::Inet6,
                    "networking/ip6rule.txt",
                    &["ip", "-6", "rule"][..],
                ),
            ] {
                let text: String = rules
                    .iter()
                    .filter(|r| r.family == fam)
                    .map(|r| r.to_ip_line() + "\n")
                    .collect();
                out.push(RawFile::text(path, text, Source::rendered("rules", argv)));
            }
        }
        None => omit(
            &mut omitted,
            "networking/iprule.txt",
            "rules",
            s.rules.status,
            s.rules.reason.as_deref(),
        ),
    }
    match s.routes.get() {
        Some(routes) => {
            for (fam, path, argv) in [
                (
                    model::Family::Inet,
                    "networking/iproute.txt",
                    &["ip", "route", "show", "table", "all"][..],
                ),
                (
                    model::Family::Inet6,
                    "networking/ip6route.txt",
                    &["ip", "-6", "route", "show", "table", "all"][..],
                ),
            ] {
                let text: String = routes
                    .iter()
                    .filter(|r| r.family == fam)
                    .map(|r| r.to_ip_line() + "\n")
                    .collect();
                out.push(RawFile::text(path, text, Source::rendered("routes", argv)));
            }
        }
        None => omit(
            &mut omitted,
            "networking/iproute.txt",
            "routes",
            s.routes.status,
            s.routes.reason.as_deref(),
        ),
    }

    // links + addresses, neighbours
    if s.links.get().is_some() || s.addresses.get().is_some() {
        out.push(RawFile::text(
            "networking/ipaddr.txt",
            ip_addr(s),
            Source::rendered("addresses", &["ip", "addr"]),
        ));
    } else {
        omit(
            &mut omitted,
            "networking/ipaddr.txt",
            "addresses",
            s.addresses.status,
            s.addresses.reason.as_deref(),
        );
    }
    match s.neighbours.get() {
        Some(ns) => {
            let mut t = String::new();
            for n in ns {
                let _ = write!(t, "{} dev {}", n.dst, n.dev);
                if let Some(l) = &n.lladdr {
                    let _ = write!(t, " lladdr {l}");
                }
                for st in &n.state {
                    let _ = write!(t, " {st}");
                }
                t.push('\n');
            }
            out.push(RawFile::text(
                "networking/ipneigh.txt",
                t,
                Source::rendered("neighbours", &["ip", "neigh"]),
            ));
        }
        None => omit(
            &mut omitted,
            "networking/ipneigh.txt",
            "neighbours",
            s.neighbours.status,
            s.neighbours.reason.as_deref(),
        ),
    }

    // conntrack: -S then -L
    match s.conntrack.get() {
        Some(ct) => {
            let mut t = String::new();
            for st in &ct.stats {
                let mut parts = Vec::new();
                if let Some(c) = st.cpu {
                    parts.push(format!("cpu={c}"));
                }
                parts.extend(st.counters.iter().map(|(k, v)| format!("{k}={v}")));
                t.push_str(&parts.join(" "));
                t.push('\n');
            }
            for e in &ct.sample {
                t.push_str(&e.to_line());
                t.push('\n');
            }
            let total = ct.summary.total;
            let mut f = RawFile::text(
                "networking/conntrack.txt",
                t,
                Source::rendered("conntrack", &["conntrack", "-S", ";", "conntrack", "-L"]),
            );
            if total > ct.sample.len() as u64 {
                f.truncated = true;
                f.note = Some(format!(
                    "{} of {total} entries (the agent's sample; all are in snapshot.json's summary)",
                    ct.sample.len()
                ));
            }
            out.push(f);
        }
        None => omit(
            &mut omitted,
            "networking/conntrack.txt",
            "conntrack",
            s.conntrack.status,
            s.conntrack.reason.as_deref(),
        ),
    }

    // sysctls
    match s.sysctls.get() {
        Some(sy) => {
            let t: String = sy
                .values
                .iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect();
            let mut f = RawFile::text(
                "sysctls/sysctl_all.txt",
                t,
                Source::rendered("sysctls", &["sysctl", "-a"]),
            );
            f.note = Some("the keys the agent reads, not every sysctl".into());
            f.truncated = true;
            out.push(f);
        }
        None => omit(
            &mut omitted,
            "sysctls/sysctl_all.txt",
            "sysctls",
            s.sysctls.status,
            s.sysctls.reason.as_deref(),
        ),
    }

    // CNI
    match s.cni.get() {
        Some(c) => {
            if !c.env.is_empty() {
                let t: String = c.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                out.push(RawFile::text(
                    "cni/aws-node.env",
                    t,
                    Source::rendered("cni", &["cat", "/proc/<aws-k8s-agent>/environ"]),
                ));
            }
            if let Some(conf) = &c.conflist {
                let mut f = RawFile::text(
                    "cni/10-aws.conflist",
                    serde_json::to_string_pretty(conf).unwrap_or_default() + "\n",
                    Source::rendered("cni", &["cat", "/etc/cni/net.d/10-aws.conflist"]),
                );
                f.json = true;
                out.push(f);
            }
        }
        None => omit(
            &mut omitted,
            "cni/aws-node.env",
            "cni",
            s.cni.status,
            s.cni.reason.as_deref(),
        ),
    }
    // ipamd's own answers: `node-agent bundle` adds them as served (the writer then drops
    // these entries); a snapshot keeps them parsed only.
    for name in IPAMD_FILES {
        omitted.push(Omitted {
            path: format!("ipamd/{name}.json"),
            reason: "ipamd's answer is not in this bundle: a snapshot keeps ipamd's answers \
                     parsed (snapshot.json: cni.ipamd_enis, cni.env with env_sources), not \
                     ipamd's JSON; only `node-agent bundle` adds ipamd's own answers, when \
                     ipamd answers it (its problems say why not)"
                .into(),
        });
    }
    if let Some(logs) = s.cni_logs.get() {
        out.extend(log_files(logs));
    }

    // node facts
    if let Some(n) = s.node.get() {
        for (path, v) in [
            ("system/instance-id.txt", &n.instance_id),
            ("system/instance-type.txt", &n.instance_type),
            ("system/availability-zone.txt", &n.availability_zone),
            ("system/region.txt", &n.region),
        ] {
            if let Some(v) = v {
                out.push(RawFile::text(
                    path,
                    format!("{v}\n"),
                    Source::rendered(
                        "node",
                        &["curl", "http://169.254.169.254/latest/meta-data/"],
                    ),
                ));
            }
        }
    }
    if !s.hostname.is_empty() {
        out.push(RawFile::text(
            "system/hostname.txt",
            format!("{}\n", s.hostname),
            Source::rendered("node", &["hostname"]),
        ));
    }
    (out, omitted)
}

/// Reassemble one backend's dump as `iptables-save -c` prints it.
pub fn iptables_save(d: &IptablesBackendDump, at: &str) -> String {
    let mut t = String::new();
    let generator = d
        .version
        .clone()
        .unwrap_or_else(|| format!("iptables-{}-save", d.backend));
    for table in &d.tables {
        let _ = writeln!(t, "# Generated by {generator} on {at}");
        let _ = writeln!(t, "*{}", table.name);
        for c in &table.chains {
            let _ = writeln!(
                t,
                ":{} {} [{}:{}]",
                c.name,
                c.policy.as_deref().unwrap_or("-"),
                c.packets.unwrap_or(0),
                c.bytes.unwrap_or(0)
            );
        }
        for c in &table.chains {
            for r in &c.rules {
                let raw = r.raw.trim();
                if raw.starts_with("-A ") || raw.starts_with('[') {
                    t.push_str(&r.evidence_line());
                } else {
                    t.push_str(&parsers::iptables::to_save_line(r));
                }
                t.push('\n');
            }
        }
        t.push_str("COMMIT\n");
        let _ = writeln!(t, "# Completed on {at}");
    }
    t
}

/// `ip addr` output: every link with its addresses.
pub fn ip_addr(s: &Snapshot) -> String {
    let links = s.links.get().map(Vec::as_slice).unwrap_or(&[]);
    let addrs = s.addresses.get().map(Vec::as_slice).unwrap_or(&[]);
    let mut t = String::new();
    let mut names: Vec<(u32, String)> = links
        .iter()
        .map(|l| (l.ifindex, l.ifname.clone()))
        .collect();
    for a in addrs {
        if !names.iter().any(|(i, _)| *i == a.ifindex) {
            names.push((a.ifindex, a.ifname.clone()));
        }
    }
    names.sort();
    for (idx, name) in names {
        let link = links.iter().find(|l| l.ifindex == idx);
        let mut head = format!("{idx}: {name}");
        if let Some(l) = link {
            if let Some(p) = l.link_index {
                let _ = write!(head, "@if{p}");
            }
            let _ = write!(head, ": <{}>", l.flags.join(","));
            if let Some(m) = l.mtu {
                let _ = write!(head, " mtu {m}");
            }
            if let Some(m) = &l.master {
                let _ = write!(head, " master {m}");
            }
            let state = if l.operstate.is_empty() {
                "UNKNOWN"
            } else {
                &l.operstate
            };
            let _ = write!(head, " state {state}");
        } else {
            head.push_str(": <>");
        }
        t.push_str(&head);
        t.push('\n');
        if let Some(l) = link {
            let kind = if name == "lo" { "loopback" } else { "ether" };
            if let Some(mac) = &l.address {
                let _ = write!(t, "    link/{kind} {mac}");
                if kind == "ether" {
                    t.push_str(" brd ff:ff:ff:ff:ff:ff");
                }
                if let Some(n) = l.link_netnsid {
                    let _ = write!(t, " link-netnsid {n}");
                }
                t.push('\n');
            }
        }
        for a in addrs.iter().filter(|a| a.ifindex == idx) {
            let fam = match a.family {
                model::Family::Inet => "inet",
                model::Family::Inet6 => "inet6",
            };
            let _ = write!(t, "    {fam} {}/{}", a.local, a.prefixlen);
            if let Some(b) = &a.broadcast {
                let _ = write!(t, " brd {b}");
            }
            let scope = if a.scope.is_empty() {
                "global"
            } else {
                &a.scope
            };
            let _ = write!(t, " scope {scope}");
            for f in &a.flags {
                let _ = write!(t, " {f}");
            }
            if a.family == model::Family::Inet {
                let _ = write!(t, " {}", a.label.as_deref().unwrap_or(&a.ifname));
            }
            t.push_str("\n       valid_lft forever preferred_lft forever\n");
        }
    }
    t
}

/// The kept CNI log events, one zap-style JSON line each, under the file they came from.
fn log_files(logs: &model::CniLogs) -> Vec<RawFile> {
    let mut by_file: std::collections::BTreeMap<String, Vec<&model::LogEvent>> = Default::default();
    for e in &logs.events {
        by_file.entry(e.file.clone()).or_default().push(e);
    }
    let mut out = Vec::new();
    for (file, events) in by_file {
        let base = file
            .rsplit('/')
            .next()
            .unwrap_or(&file)
            .trim_end_matches(".gz");
        let mut t = String::new();
        for e in &events {
            let mut o = serde_json::Map::new();
            o.insert("level".into(), e.level.clone().into());
            if let Some(ts) = &e.ts {
                o.insert("ts".into(), ts.clone().into());
            }
            if let Some(c) = &e.caller {
                o.insert("caller".into(), c.clone().into());
            }
            o.insert("msg".into(), e.msg.clone().into());
            for (k, v) in &e.fields {
                o.insert(k.clone(), v.clone());
            }
            t.push_str(&serde_json::Value::Object(o).to_string());
            t.push('\n');
        }
        let total = logs
            .files
            .iter()
            .find(|f| f.path == file)
            .map(|f| f.lines)
            .unwrap_or(0);
        let mut f = RawFile::text(
            &format!("var_log/aws-routed-eni/{base}"),
            t,
            Source::rendered("cni_logs", &["cat", &file]),
        );
        f.truncated = true;
        f.log = true;
        f.note = Some(format!(
            "{} classified/warn/error events of {total} lines (the agent keeps events, not lines)",
            events.len()
        ));
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rendered_rules_routes_and_addresses_parse_back_to_the_same_data() {
        let mut s = Snapshot::new(model::AgentInfo::default());
        let rules = parsers::ip::parse_rule(
            "0:\tfrom all lookup local\n512:\tfrom all to 192.168.1.10 lookup main\n1536:\tfrom 192.168.1.10 lookup 2\n32766:\tfrom all lookup main\n",
        )
        .unwrap()
        .value;
        s.rules = model::Section::ok(rules.clone());
        let routes = parsers::ip::parse_route(
            "default via 192.168.0.1 dev eth0\n192.168.0.0/19 dev eth0 proto kernel scope link src 192.168.1.251\ndefault via 192.168.0.1 dev eth1 table 2\nlocal 192.168.1.251 dev eth0 table local proto kernel scope host src 192.168.1.251\n",
        )
        .unwrap()
        .value;
        s.routes = model::Section::ok(routes.clone());
        let (files, _) = files(&s);
        let get = |p: &str| {
            String::from_utf8(files.iter().find(|f| f.path == p).unwrap().data.clone()).unwrap()
        };
        assert_eq!(
            parsers::ip::parse_rule(&get("networking/iprule.txt"))
                .unwrap()
                .value,
            rules
        );
        assert_eq!(
            parsers::ip::parse_route(&get("networking/iproute.txt"))
                .unwrap()
                .value,
            routes
        );
    }
}
