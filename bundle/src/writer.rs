//! Writing a bundle: render, analyse, redact, cap, checksum, archive.
//!
//! Layout of `eks-diag_<node>_<YYYY-MM-DD_HHMMSS>-UTC.tar.gz` (one top directory of the same
//! name; `manifest.json` is the first member):
//!
//! ```text
//! manifest.json  report.md  snapshot.json  findings.json
//! networking/ iptables-save.txt [iptables-nft-save.txt iptables-legacy-save.txt] iprule.txt
//!             ip6rule.txt iproute.txt ip6route.txt ipaddr.txt ipneigh.txt conntrack.txt
//! sysctls/sysctl_all.txt   cni/aws-node.env cni/10-aws.conflist
//! var_log/aws-routed-eni/*   system/{instance-id,instance-type,availability-zone,region,hostname}.txt
//! ```
//!
//! A fleet bundle (several nodes in one archive, `eks-diag_<name|fleet>_<time>.tar.gz`) has
//! `manifest.json`, the fleet `report.md` and `findings.json` (cross-node findings) at the top
//! and each node's files under `nodes/<node>/`. A node that could not be collected has a
//! directory with `error.txt` only, and is `failed` in the manifest.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use model::{NodeReport, SectionStatus, Snapshot};
use sha2::{Digest, Sha256};

use crate::manifest::{Cut, FileEntry, Manifest, NodeEntry, RedactionInfo, BUNDLE_FORMAT, TOOL};
use crate::redact::{PrivateMap, Redactor};
use crate::render::{self, Omitted, RawFile, Source};
use crate::report;

/// How to write a bundle.
#[derive(Debug, Clone)]
pub struct Options {
    /// Version recorded in the manifest (`env!("CARGO_PKG_VERSION")` of the caller).
    pub tool_version: String,
    pub cmdline: Vec<String>,
    pub redact: bool,
    /// Continue this map (same key, same pseudonyms).
    pub map: Option<PrivateMap>,
    pub keywords: Vec<String>,
    /// Cap on the bytes of all members together (before compression).
    pub max_size: Option<u64>,
    /// Drop CNI log lines older than this instant; the string is how it was given.
    pub since: Option<(jiff::Timestamp, String)>,
    /// Name of a fleet bundle (cluster); ignored for one node.
    pub name: Option<String>,
    pub started: jiff::Timestamp,
}

impl Options {
    pub fn new(tool_version: &str, cmdline: Vec<String>) -> Options {
        Options {
            tool_version: tool_version.to_string(),
            cmdline,
            redact: true,
            map: None,
            keywords: Vec::new(),
            max_size: None,
            since: None,
            name: None,
            started: jiff::Timestamp::now(),
        }
    }
}

/// One node to bundle: its snapshot, or why there is none.
#[derive(Debug, Clone, Default)]
pub struct NodeInput {
    /// The name the node was reached by (a host, an instance id, `local`).
    pub label: String,
    pub snapshot: Option<Snapshot>,
    pub error: Option<String>,
    /// Problems reading part of the input (partial bundle).
    pub problems: Vec<String>,
    /// Files collected raw for the bundle (they replace rendered files of the same path; raw
    /// CNI logs replace the rendered events).
    pub extra: Vec<RawFile>,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub archive: PathBuf,
    pub map_file: Option<PathBuf>,
    pub manifest: Manifest,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nothing to bundle: no nodes")]
    Empty,
    #[error("map file: {0}")]
    Map(#[from] crate::redact::MapError),
    #[error("{path}: not an eks-diag bundle: {message}")]
    NotABundle { path: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A file on its way into the archive.
struct Member {
    path: String,
    data: Vec<u8>,
    raw: RawFile,
}

struct Prepared {
    /// Directory prefix inside the bundle (`` or `nodes/<n>/`).
    dir: String,
    label: String,
    snapshot: Option<Snapshot>,
    report: Option<NodeReport>,
    files: Vec<RawFile>,
    omitted: Vec<Omitted>,
    error: Option<String>,
    problems: Vec<String>,
}

/// Write the bundle of `nodes` into `dir` (created if missing); the private map goes beside
/// the archive (mode 0600) when redacting.
pub fn write(dir: &Path, nodes: Vec<NodeInput>, opts: &Options) -> Result<Written, BundleError> {
    if nodes.is_empty() {
        return Err(BundleError::Empty);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let fleet = nodes.len() > 1;
    let mut cuts = Vec::new();
    let mut prepared: Vec<Prepared> = nodes
        .into_iter()
        .map(|n| prepare(n, opts, &mut cuts))
        .collect();

    let fleet_findings = if fleet {
        let snaps: Vec<&Snapshot> = prepared
            .iter()
            .filter_map(|p| p.snapshot.as_ref())
            .collect();
        analysis::analyze_fleet(&snaps)
    } else {
        Vec::new()
    };

    // Redaction: learn everything first.
    let mut redactor = if opts.redact {
        let mut r = match &opts.map {
            Some(m) => Redactor::from_map(m.clone())?,
            None => Redactor::new(),
        };
        for k in &opts.keywords {
            r.add_keyword(k);
        }
        let mut networks = Vec::new();
        let mut values = Vec::new();
        for p in &prepared {
            // A node without a snapshot is known by its label only (a remote host name).
            if p.snapshot.is_none() && !looks_like_address(&p.label) {
                r.add_hostname(&p.label);
            }
            if let Some(s) = &p.snapshot {
                r.add_hostname(&s.hostname);
                if let Some(n) = s.node.get() {
                    if let Some(d) = &n.private_dns_name {
                        r.add_hostname(d);
                    }
                }
                networks.extend(named_networks(s));
                values.push(serde_json::to_value(s).unwrap_or_default());
            }
            if let Some(rep) = &p.report {
                values.push(serde_json::to_value(rep).unwrap_or_default());
            }
        }
        values.push(serde_json::to_value(&fleet_findings).unwrap_or_default());
        let texts: Vec<String> = prepared
            .iter()
            .flat_map(|p| p.files.iter())
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .chain(opts.cmdline.iter().cloned())
            .chain(prepared.iter().map(|p| p.label.clone()))
            .collect();
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let value_refs: Vec<&serde_json::Value> = values.iter().collect();
        r.preload(&text_refs, &value_refs, &networks);
        Some(r)
    } else {
        None
    };

    let red_text = |r: &mut Option<Redactor>, s: &str| -> String {
        match r {
            Some(r) => r.redact_text(s),
            None => s.to_string(),
        }
    };

    // Names and directories (redacted).
    let mut node_entries = Vec::new();
    let mut used_dirs: Vec<String> = Vec::new();
    for p in prepared.iter_mut() {
        let shown = p
            .snapshot
            .as_ref()
            .map(|s| s.display_name())
            .unwrap_or_else(|| p.label.clone());
        let name = red_text(&mut redactor, &shown);
        if fleet {
            let mut d = safe_name(&name);
            let base = d.clone();
            let mut i = 2;
            while used_dirs.contains(&d) {
                d = format!("{base}-{i}");
                i += 1;
            }
            used_dirs.push(d.clone());
            p.dir = format!("nodes/{d}/");
        }
        let mut reasons: Vec<String> = p
            .problems
            .iter()
            .map(|x| red_text(&mut redactor, x))
            .collect();
        let status = match (&p.snapshot, &p.error) {
            (None, e) => {
                reasons.insert(
                    0,
                    red_text(&mut redactor, e.as_deref().unwrap_or("no snapshot")),
                );
                "failed"
            }
            (Some(s), _) => {
                for (sec, st, why) in s.section_statuses() {
                    if st != SectionStatus::Ok && st != SectionStatus::Skipped {
                        reasons.push(red_text(
                            &mut redactor,
                            &format!("section {sec} {st:?}: {}", why.unwrap_or("")),
                        ));
                    }
                }
                if reasons.is_empty() {
                    "complete"
                } else {
                    "partial"
                }
            }
        };
        node_entries.push(NodeEntry {
            name,
            dir: if fleet {
                p.dir.trim_end_matches('/').to_string()
            } else {
                ".".into()
            },
            status: status.into(),
            reasons,
        });
    }

    // Members, in archive order, redacted.
    let mut members: Vec<Member> = Vec::new();
    let mut omitted_all = Vec::new();
    let push = |members: &mut Vec<Member>, r: &mut Option<Redactor>, dirp: &str, f: RawFile| {
        let data = match r {
            None => f.data.clone(),
            Some(r) => redact_bytes(r, &f),
        };
        members.push(Member {
            path: format!("{dirp}{}", f.path),
            data,
            raw: f,
        });
    };
    if fleet {
        let rows: Vec<(String, String, Option<NodeReport>, Option<String>)> = prepared
            .iter()
            .zip(&node_entries)
            .map(|(p, e)| {
                (
                    e.name.clone(),
                    e.dir.clone(),
                    p.report.clone(),
                    p.error.clone(),
                )
            })
            .collect();
        let title = opts.name.clone().unwrap_or_else(|| "fleet".into());
        let md = report::fleet_markdown(&title, &rows, &fleet_findings, opts.redact);
        push(
            &mut members,
            &mut redactor,
            "",
            RawFile::text("report.md", md, Source::generated()),
        );
        let mut ff = RawFile::text(
            "findings.json",
            serde_json::to_string_pretty(&fleet_findings).unwrap_or_default(),
            Source::generated(),
        );
        ff.json = true;
        push(&mut members, &mut redactor, "", ff);
    }
    for p in prepared.iter_mut() {
        let dirp = p.dir.clone();
        match (&p.snapshot, &p.report) {
            (Some(s), Some(rep)) => {
                let md = report::node_markdown(s, rep, opts.redact);
                push(
                    &mut members,
                    &mut redactor,
                    &dirp,
                    RawFile::text("report.md", md, Source::generated()),
                );
                let mut sj = RawFile::text(
                    "snapshot.json",
                    serde_json::to_string_pretty(s).unwrap_or_default(),
                    Source::generated(),
                );
                sj.json = true;
                push(&mut members, &mut redactor, &dirp, sj);
                let mut fj = RawFile::text(
                    "findings.json",
                    serde_json::to_string_pretty(rep).unwrap_or_default(),
                    Source::generated(),
                );
                fj.json = true;
                push(&mut members, &mut redactor, &dirp, fj);
            }
            _ => {
                let why = p.error.clone().unwrap_or_else(|| "no snapshot".into());
                push(
                    &mut members,
                    &mut redactor,
                    &dirp,
                    RawFile::text("error.txt", format!("{why}\n"), Source::generated()),
                );
            }
        }
        for f in std::mem::take(&mut p.files) {
            push(&mut members, &mut redactor, &dirp, f);
        }
        for o in std::mem::take(&mut p.omitted) {
            omitted_all.push(Omitted {
                path: format!("{dirp}{}", o.path),
                reason: red_text(&mut redactor, &o.reason),
            });
        }
    }

    // --max-size: generated files first, logs last; logs lose their oldest lines.
    if let Some(max) = opts.max_size {
        apply_max_size(&mut members, max, &mut cuts);
    }

    let end = jiff::Timestamp::now();
    let node_name = if fleet {
        red_text(
            &mut redactor,
            &opts.name.clone().unwrap_or_else(|| "fleet".into()),
        )
    } else {
        node_entries
            .first()
            .map(|e| e.name.clone())
            .unwrap_or_default()
    };
    let stamp = opts.started.strftime("%Y-%m-%d_%H%M%S-UTC").to_string();
    let base = format!("eks-diag_{}_{stamp}", safe_name(&node_name));
    let archive = dir.join(format!("{base}.tar.gz"));
    let map_name = format!("{base}.private_map.json");

    let files: Vec<FileEntry> = members
        .iter()
        .map(|m| FileEntry {
            path: m.path.clone(),
            source: redact_source(&mut redactor, &m.raw.source),
            exit_code: m.raw.exit_code,
            duration_ms: m.raw.duration_ms,
            bytes: m.data.len() as u64,
            sha256: hex::encode(Sha256::digest(&m.data)),
            truncated: m.raw.truncated,
            timed_out: m.raw.timed_out,
            note: m.raw.note.as_ref().map(|n| red_text(&mut redactor, n)),
        })
        .collect();
    let cuts: Vec<Cut> = cuts
        .into_iter()
        .map(|c| Cut {
            reason: red_text(&mut redactor, &c.reason),
            ..c
        })
        .collect();
    let cmdline: Vec<String> = opts
        .cmdline
        .iter()
        .map(|a| red_text(&mut redactor, a))
        .collect();
    let manifest = Manifest {
        tool: TOOL.into(),
        version: opts.tool_version.clone(),
        bundle_format: BUNDLE_FORMAT,
        cmdline,
        start_time: opts.started.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        end_time: end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        run_time_ms: u64::try_from(end.duration_since(opts.started).as_millis()).unwrap_or(0),
        node: node_name,
        fleet,
        redacted: redactor.is_some(),
        redaction: redactor.as_ref().map(|r| RedactionInfo {
            parsers: r.stats().clone(),
            map_file: map_name.clone(),
            warnings: r.warnings().to_vec(),
        }),
        max_size: opts.max_size,
        since: opts.since.as_ref().map(|(_, s)| s.clone()),
        nodes: node_entries,
        files,
        omitted: omitted_all,
        cuts,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();

    // The archive: temporary name, then rename, so a reader never sees half a bundle.
    let tmp = dir.join(format!(".{base}.tar.gz.partial"));
    {
        let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mtime = u64::try_from(end.as_second()).unwrap_or(0);
        let mut add = |path: &str, data: &[u8]| -> Result<(), BundleError> {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, format!("{base}/{path}"), data)
                .map_err(io(&tmp))
        };
        add("manifest.json", &manifest_json)?;
        for m in &members {
            add(&m.path, &m.data)?;
        }
        let gz = tar.into_inner().map_err(io(&tmp))?;
        let mut f = gz.finish().map_err(io(&tmp))?;
        f.flush().map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &archive).map_err(io(&archive))?;

    let map_file = match &redactor {
        Some(r) => {
            let path = dir.join(&map_name);
            write_private(
                &path,
                &serde_json::to_vec_pretty(&r.map()).unwrap_or_default(),
            )?;
            Some(path)
        }
        None => None,
    };
    Ok(Written {
        archive,
        map_file,
        manifest,
    })
}

/// Write a file only its owner can read (the map translates the bundle back).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), BundleError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(path))?;
    }
    f.write_all(data).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn prepare(n: NodeInput, opts: &Options, cuts: &mut Vec<Cut>) -> Prepared {
    let mut files = Vec::new();
    let mut omitted = Vec::new();
    let report = n.snapshot.as_ref().map(analysis::analyze);
    if let Some(s) = &n.snapshot {
        let (rendered, om) = render::files(s);
        omitted = om;
        let raw_logs = n.extra.iter().any(|f| f.log);
        files = rendered
            .into_iter()
            .filter(|f| {
                let replaced = n.extra.iter().any(|x| x.path == f.path);
                !(replaced || (raw_logs && f.log))
            })
            .collect();
    }
    // What the caller supplied is no longer missing.
    omitted.retain(|o| !n.extra.iter().any(|x| x.path == o.path));
    files.extend(n.extra);
    if let Some((cutoff, given)) = &opts.since {
        for f in files.iter_mut().filter(|f| f.log) {
            let before = f.data.len() as u64;
            let (kept, dropped) = since_filter(&f.data, *cutoff);
            if dropped > 0 {
                f.data = kept;
                f.truncated = true;
                cuts.push(Cut {
                    path: f.path.clone(),
                    reason: format!("--since {given}: {dropped} older line(s) dropped"),
                    bytes_before: before,
                    bytes_after: f.data.len() as u64,
                });
            }
        }
    }
    Prepared {
        dir: String::new(),
        label: n.label,
        snapshot: n.snapshot,
        report,
        files,
        omitted,
        error: n.error,
        problems: n.problems,
    }
}

/// Lines whose zap/logrus `"ts"` is older than `cutoff` dropped; lines without a readable
/// timestamp are kept.
fn since_filter(data: &[u8], cutoff: jiff::Timestamp) -> (Vec<u8>, u64) {
    let text = String::from_utf8_lossy(data);
    let mut out = String::with_capacity(text.len());
    let mut dropped = 0;
    for line in text.split_inclusive('\n') {
        let ts = line
            .find("\"ts\":\"")
            .map(|i| &line[i + 6..])
            .and_then(|r| r.split('"').next())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        match ts {
            Some(t) if t < cutoff => dropped += 1,
            _ => out.push_str(line),
        }
    }
    (out.into_bytes(), dropped)
}

/// Keep members within `max` bytes: generated files and kernel state first, CNI logs last;
/// a log that does not fit keeps its newest lines, any other file that does not fit is left
/// out. Every cut is recorded.
fn apply_max_size(members: &mut Vec<Member>, max: u64, cuts: &mut Vec<Cut>) {
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| (members[i].raw.log, i));
    let mut left = max;
    let mut drop = Vec::new();
    for i in order {
        let m = &mut members[i];
        let len = m.data.len() as u64;
        if len <= left {
            left -= len;
            continue;
        }
        // A log keeps its newest lines, from a line boundary, when at least one fits.
        let keep = usize::try_from(left).unwrap_or(usize::MAX);
        let start = m.data.len() - keep.min(m.data.len());
        let start = m.data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(m.data.len(), |p| start + p + 1);
        if m.raw.log && start < m.data.len() {
            m.data.drain(..start);
            m.raw.truncated = true;
            left -= m.data.len() as u64;
            cuts.push(Cut {
                path: m.path.clone(),
                reason: format!("--max-size {max}: oldest lines dropped"),
                bytes_before: len,
                bytes_after: m.data.len() as u64,
            });
        } else {
            cuts.push(Cut {
                path: m.path.clone(),
                reason: format!("--max-size {max}: left out"),
                bytes_before: len,
                bytes_after: 0,
            });
            drop.push(i);
        }
    }
    let mut i = 0;
    members.retain(|_| {
        let keep = !drop.contains(&i);
        i += 1;
        keep
    });
}

fn redact_bytes(r: &mut Redactor, f: &RawFile) -> Vec<u8> {
    let text = String::from_utf8_lossy(&f.data);
    if f.json {
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) {
            r.redact_json(&mut v);
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            return s.into_bytes();
        }
    }
    r.redact_text(&text).into_bytes()
}

fn redact_source(r: &mut Option<Redactor>, s: &Source) -> Source {
    let Some(r) = r else {
        return s.clone();
    };
    Source {
        kind: s.kind.clone(),
        argv: s.argv.iter().map(|a| r.redact_text(a)).collect(),
        path: s.path.as_ref().map(|p| r.redact_text(p)),
        section: s.section.clone(),
    }
}

/// The networks the snapshot names (VPC, subnet, ENI prefix, ipamd CIDR, SNAT exclusion):
/// preloaded into the map's `networks`.
pub fn named_networks(s: &Snapshot) -> Vec<ipnet::IpNet> {
    let mut out: Vec<ipnet::IpNet> = Vec::new();
    if let Some(n) = s.node.get() {
        out.extend(n.vpc_cidrs.iter().map(|c| ipnet::IpNet::V4(*c)));
        for e in &n.enis {
            out.extend(e.subnet_cidr.iter().map(|c| ipnet::IpNet::V4(*c)));
            out.extend(e.vpc_cidrs.iter().map(|c| ipnet::IpNet::V4(*c)));
            out.extend(e.ipv4_prefixes.iter().map(|c| ipnet::IpNet::V4(*c)));
        }
    }
    if let Some(c) = s.cni.get() {
        if let Some(enis) = &c.ipamd_enis {
            for card in &enis.network_cards {
                for e in &card.enis {
                    out.extend(e.cidrs.iter().map(|c| c.cidr));
                }
            }
        }
        if let Some(v) = c.env.get("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS") {
            out.extend(
                v.split(',')
                    .filter_map(|x| x.trim().parse::<ipnet::IpNet>().ok()),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

fn looks_like_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok() || s.contains('/') || s == "local" || s == "stdin"
}

/// A name fit for a file name: `[A-Za-z0-9._-]`, others become `-`.
fn safe_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let n = n.trim_matches('.').to_string();
    if n.is_empty() {
        "node".into()
    } else {
        n
    }
}
