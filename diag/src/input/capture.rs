//! Captured command output (a directory of files, or the members of an ELC bundle) → one
//! [`Snapshot`] with an honest status per section.
//!
//! absent file → `skipped` ("no ip-rule.txt in <dir>"); parse warnings → `partial` with the
//! warnings; unparseable → `failed` with the parser's message naming the file and line. A
//! failed or truncated file is also a *problem* of the input (exit code 2) while the rest of
//! the snapshot is still analysed.

use std::path::Path;

use capture::{clean_text, CaptureFile, Kind, Origin};

use super::names;
use super::{file_name, list_dir, read_capped, InputError, LoadOptions, Loaded, MAX_FILE_BYTES};

pub use capture::AGENT_NAME;

/// Read a capture directory.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Vec<Loaded> {
    let label = dir.display().to_string();
    let listing = match list_dir(dir) {
        Ok(e) => e,
        Err(e) => return vec![Loaded::err(label, e)],
    };
    let mut files = Vec::new();
    let mut problems: Vec<String> = listing.cap_problem(dir).into_iter().collect();
    let mut inputs = Vec::new();
    let mapped: Vec<Kind> = opts.map.iter().map(|(k, _)| *k).collect();
    for path in &listing.entries {
        let name = file_name(path);
        let Some(kind) = names::classify_capture(&name) else {
            continue;
        };
        if mapped.contains(&kind) {
            continue;
        }
        if let Some(what) = not_regular(path) {
            problems.push(format!(
                "{}: {what}, not a regular file; skipped",
                path.display()
            ));
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
        inputs,
        where_: format!("in {label}"),
        ..Default::default()
    };
    let mut loaded = build(&origin, files, opts);
    loaded.problems.splice(0..0, problems);
    vec![loaded]
}

/// What a path is when it is not a regular file (symlinks followed): a FIFO, a device, a
/// directory. None for a regular file (or when it cannot be inspected: reading reports that).
fn not_regular(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
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
            inputs: inputs.to_vec(),
            where_: format!("for node {node} in {label}"),
            ..Default::default()
        };
        let mut loaded = build(&origin, files, opts);
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

/// Build the snapshot with the `capture` crate; its problems become input problems.
pub fn build(origin: &Origin, files: Vec<CaptureFile>, opts: &LoadOptions) -> Loaded {
    let built = capture::build(
        origin,
        &files,
        capture::BuildOptions {
            conntrack_sample: opts.conntrack_sample,
        },
    );
    Loaded {
        label: origin.label.clone(),
        outcome: Ok(built.snapshot),
        problems: built.problems.iter().map(ToString::to_string).collect(),
    }
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
}
