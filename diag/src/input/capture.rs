//! Captured command output (a directory of files, or the members of an ELC bundle) → one
//! [`Snapshot`] with an honest status per section.
//!
//! absent file → `skipped` ("no ip-rule.txt in <dir>"); parse warnings → `partial` with the
//! warnings; unparseable → `failed` with the parser's message naming the file and line. A
//! failed or truncated file is also a *problem* of the input (exit code 2) while the rest of
//! the snapshot is still analysed.

use std::path::Path;

use model::{AgentInfo, Section, Snapshot};

use super::names::{self, Kind};
use super::sections::{
    cni_section, conntrack_section, iptables_section, logs_section, node_section, routes_section,
    simple,
};
use super::{file_name, list_dir, read_capped, InputError, LoadOptions, Loaded, MAX_FILE_BYTES};

/// Name of the agent in snapshots rebuilt from captures.
pub const AGENT_NAME: &str = "diag-capture";

/// One captured file.
#[derive(Debug, Clone)]
pub struct CaptureFile {
    /// Name shown in messages and `agent.inputs` (`ip-rule.txt`, `networking/iprule.txt`).
    pub name: String,
    pub kind: Kind,
    pub data: Vec<u8>,
}

/// Where a set of captures came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The input path, for labels and messages.
    pub label: String,
    pub hostname: String,
    pub collected_at: String,
    /// Paths of the files used, for `agent.inputs`.
    pub inputs: Vec<String>,
}

/// Read a capture directory.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Vec<Loaded> {
    let label = dir.display().to_string();
    let entries = match list_dir(dir) {
        Ok(e) => e,
        Err(e) => return vec![Loaded::err(label, e)],
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut inputs = Vec::new();
    let mapped: Vec<Kind> = opts.map.iter().map(|(k, _)| *k).collect();
    for path in entries.iter().filter(|p| p.is_file()) {
        let name = file_name(path);
        let Some(kind) = names::classify_capture(&name) else {
            continue;
        };
        if mapped.contains(&kind) {
            continue;
        }
        match read_capped(path, MAX_FILE_BYTES) {
            Ok(data) => {
                inputs.push(path.display().to_string());
                files.push(CaptureFile { name, kind, data });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for (kind, file) in &opts.map {
        let p = Path::new(file);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if !path.is_file() {
            problems.push(format!(
                "{}: --map {}: no such file",
                path.display(),
                names::expected_name(kind.section())
            ));
            continue;
        }
        match read_capped(&path, MAX_FILE_BYTES) {
            Ok(data) => {
                inputs.push(path.display().to_string());
                files.push(CaptureFile {
                    name: file_name(&path),
                    kind: *kind,
                    data,
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if files.is_empty() {
        let e = InputError::Unrecognised {
            path: label.clone(),
            found: "no readable capture file".into(),
        };
        let mut l = Loaded::err(label, e);
        l.problems = problems;
        return vec![l];
    }
    if let Some(nodes) = split_by_node(&files) {
        return from_loop_captures(&label, &inputs, nodes, problems, opts);
    }
    let hostname = host_from_dir(dir);
    let origin = Origin {
        label: label.clone(),
        hostname,
        collected_at: String::new(),
        inputs,
    };
    let mut loaded = build(&origin, files, opts, &format!("in {label}"));
    loaded.problems.splice(0..0, problems);
    vec![loaded]
}

/// `for i in $N1 $N2; do echo ">> node $i <<"; ssh $i sudo iptables -t nat -S; done > f`:
/// the node name of a marker line.
fn node_marker(line: &str) -> Option<&str> {
    let l = line.trim();
    let inner = l.strip_prefix(">>")?.strip_suffix("<<")?.trim();
    let name = inner.strip_prefix("node")?.trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// One capture per node: (node, files), plus the files that carry no markers.
type LoopCaptures = (Vec<(String, Vec<CaptureFile>)>, Vec<CaptureFile>);

/// Split files holding `>> node X <<` sections into per-node files. None when no file has
/// markers.
fn split_by_node(files: &[CaptureFile]) -> Option<LoopCaptures> {
    let mut nodes: Vec<(String, Vec<CaptureFile>)> = Vec::new();
    let mut unmarked = Vec::new();
    let mut any = false;
    for f in files {
        let text = clean_text(&f.data);
        if !text.lines().any(|l| node_marker(l).is_some()) {
            unmarked.push(f.clone());
            continue;
        }
        any = true;
        let mut current: Option<String> = None;
        let mut buf = String::new();
        let mut flush = |node: &Option<String>, buf: &mut String| {
            if let Some(n) = node {
                let part = CaptureFile {
                    name: f.name.clone(),
                    kind: f.kind,
                    data: std::mem::take(buf).into_bytes(),
                };
                match nodes.iter_mut().find(|(x, _)| x == n) {
                    Some((_, v)) => v.push(part),
                    None => nodes.push((n.clone(), vec![part])),
                }
            }
            buf.clear();
        };
        for line in text.lines() {
            if let Some(n) = node_marker(line) {
                flush(&current, &mut buf);
                current = Some(n.to_string());
            } else {
                buf.push_str(line);
                buf.push('\n');
            }
        }
        flush(&current, &mut buf);
    }
    any.then_some((nodes, unmarked))
}

fn from_loop_captures(
    label: &str,
    inputs: &[String],
    (nodes, unmarked): LoopCaptures,
    mut problems: Vec<String>,
    opts: &LoadOptions,
) -> Vec<Loaded> {
    // The aws-node env is the same DaemonSet for every node; anything else unmarked cannot be
    // attributed to a node.
    let shared: Vec<CaptureFile> = unmarked
        .iter()
        .filter(|f| matches!(f.kind, Kind::CniEnv))
        .cloned()
        .collect();
    for f in unmarked.iter().filter(|f| !matches!(f.kind, Kind::CniEnv)) {
        problems.push(format!(
            "{label}/{}: ignored: other files hold per-node `>> node X <<` sections and this one has none",
            f.name
        ));
    }
    let mut out = Vec::new();
    for (i, (node, mut files)) in nodes.into_iter().enumerate() {
        files.extend(shared.iter().cloned());
        let origin = Origin {
            label: format!("{label}#{node}"),
            hostname: node.clone(),
            collected_at: String::new(),
            inputs: inputs.to_vec(),
        };
        let mut loaded = build(&origin, files, opts, &format!("for node {node} in {label}"));
        if i == 0 {
            loaded.problems.splice(0..0, problems.drain(..));
        }
        out.push(loaded);
    }
    out
}

fn host_from_dir(dir: &Path) -> String {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into())
}

/// Build the snapshot from classified files. `where_` ends messages: "no ip-rule.txt in …".
pub fn build(origin: &Origin, files: Vec<CaptureFile>, opts: &LoadOptions, where_: &str) -> Loaded {
    let mut snap = Snapshot::new(AgentInfo {
        name: AGENT_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        inputs: origin.inputs.clone(),
    });
    snap.hostname = origin.hostname.clone();
    snap.collected_at = origin.collected_at.clone();
    let mut problems = Vec::new();

    let of = |pred: &dyn Fn(Kind) -> bool| -> Vec<&CaptureFile> {
        files.iter().filter(|f| pred(f.kind)).collect()
    };
    let missing = |section: &str| format!("no {} {where_}", names::expected_name(section));
    let loc = |f: &CaptureFile| format!("{}/{}", origin.label, f.name);

    // iptables
    {
        let fs = of(&|k| k.section() == "iptables");
        let (sec, p) = iptables_section(&fs, &loc);
        problems.extend(p);
        snap.iptables = sec.unwrap_or_else(|| Section::skipped(missing("iptables")));
    }
    // ip rule / route / neigh
    snap.rules = simple(&of(&|k| k == Kind::IpRule), &loc, &mut problems, |t| {
        parsers::ip::parse_rule(t)
    })
    .unwrap_or_else(|| Section::skipped(missing("rules")));
    snap.routes = routes_section(&of(&|k| k.section() == "routes"), &loc, &mut problems)
        .unwrap_or_else(|| Section::skipped(missing("routes")));
    snap.neighbours = simple(&of(&|k| k == Kind::IpNeigh), &loc, &mut problems, |t| {
        parsers::ip::parse_neigh(t)
    })
    .unwrap_or_else(|| Section::skipped(missing("neighbours")));
    // ip addr carries links too; ip link wins for links when both exist.
    {
        let addr_files = of(&|k| k == Kind::IpAddr);
        let pair = simple(&addr_files, &loc, &mut problems, parsers::ip::parse_addr);
        let link_sec = simple(&of(&|k| k == Kind::IpLink), &loc, &mut problems, |t| {
            parsers::ip::parse_link(t)
        });
        match pair {
            Some(sec) => {
                let (links, addrs) = sec.data.clone().unzip_pair();
                snap.addresses = relabel(&sec, addrs);
                snap.links = match link_sec {
                    Some(l) => l,
                    None => relabel(&sec, links),
                };
            }
            None => {
                snap.addresses = Section::skipped(missing("addresses"));
                snap.links = link_sec.unwrap_or_else(|| Section::skipped(missing("links")));
            }
        }
    }
    // conntrack
    {
        let fs = of(&|k| k.section() == "conntrack");
        snap.conntrack = conntrack_section(&fs, &loc, &mut problems, opts.conntrack_sample)
            .unwrap_or_else(|| Section::skipped(missing("conntrack")));
    }
    snap.sysctls = simple(&of(&|k| k == Kind::Sysctl), &loc, &mut problems, |t| {
        parsers::sysctl::parse(t)
    })
    .unwrap_or_else(|| Section::skipped(missing("sysctls")));
    snap.cni =
        cni_section(&of(&|k| k.section() == "cni"), &loc, &mut problems).unwrap_or_else(|| {
            Section::skipped(format!(
                "no cni-env, enis.json or networkutils-env-settings.json {where_}"
            ))
        });
    snap.cni_logs = logs_section(&of(&|k| k == Kind::CniLog), &loc, &mut problems)
        .unwrap_or_else(|| Section::skipped(missing("cni_logs")));
    snap.node =
        node_section(&of(&|k| k.section() == "node"), &loc, &mut problems).unwrap_or_else(|| {
            Section::skipped(format!(
                "no imds.json or node.json {where_}; node facts are inferred from kernel state"
            ))
        });
    if let Some(id) = snap.node.get().and_then(|n| n.instance_id.clone()) {
        if snap.hostname.is_empty() {
            snap.hostname = id;
        }
    }
    Loaded {
        label: origin.label.clone(),
        outcome: Ok(snap),
        problems,
    }
}

trait UnzipPair<A, B> {
    fn unzip_pair(self) -> (Option<A>, Option<B>);
}

impl<A, B> UnzipPair<A, B> for Option<(A, B)> {
    fn unzip_pair(self) -> (Option<A>, Option<B>) {
        match self {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        }
    }
}

/// Same status/sources/warnings, other data.
pub(super) fn relabel<A, B>(s: &Section<A>, data: Option<B>) -> Section<B> {
    Section {
        status: s.status,
        reason: s.reason.clone(),
        duration_ms: 0,
        sources: s.sources.clone(),
        warnings: s.warnings.clone(),
        data,
    }
}

/// Text of a capture: lossy UTF-8, `ip -c` colour codes and CRs removed.
pub fn clean_text(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    if !data.iter().any(|b| *b == 0x1b || *b == b'\r') {
        return s.into_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\r' {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_loop_captures_by_node_marker() {
        assert_eq!(node_marker(">> node 192.168.1.10 <<"), Some("192.168.1.10"));
        assert_eq!(node_marker(">>node ip-1<<"), Some("ip-1"));
        assert_eq!(node_marker(">> node  <<"), None);
        assert_eq!(node_marker("-A X"), None);
        let f = CaptureFile {
            name: "ip-rule.txt".into(),
            kind: Kind::IpRule,
            data: b">> node a <<\n0: from all lookup local\n\n>> node b <<\n1: x\n".to_vec(),
        };
        let (nodes, unmarked) = split_by_node(&[f]).unwrap_or_default();
        assert!(unmarked.is_empty());
        let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(nodes[1].1[0].data, b"1: x\n".to_vec());
        let plain = CaptureFile {
            name: "ip-rule.txt".into(),
            kind: Kind::IpRule,
            data: b"0: from all lookup local\n".to_vec(),
        };
        assert!(split_by_node(&[plain]).is_none());
    }

    #[test]
    fn strips_colour_and_cr() {
        assert_eq!(
            clean_text(b"\x1b[32meth0\x1b[0m UP\r\n"),
            "eth0 UP\n".to_string()
        );
    }
}
