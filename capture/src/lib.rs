//! Raw command output → [`Snapshot`]: the one place that turns captured text into sections.
//!
//! Three producers of raw output use it:
//! - diag's capture directories and eks-log-collector archives ([`build`] over
//!   [`CaptureFile`]s classified by [`kind`]);
//! - fleet's agentless mode ([`agentless`]: the command list, the split of the script output
//!   and the snapshot built from it);
//! - later bundles and `node-agent --replay`.
//!
//! Every section is built by one function per kind in [`sections`], under one status policy
//! ([`status`]): absent → `skipped`/`unavailable`, parse warnings in a pasted file →
//! `partial`, unparseable → `failed` naming the file and line. A failed or truncated file is
//! also a [`Problem`] of the input, while the rest of the snapshot is still built.
//!
//! This crate does no I/O: callers read files/archives/SSH output and hand the bytes in.

pub mod agentless;
pub mod kind;
pub mod sections;
pub mod status;

use model::{AgentInfo, Section, SectionName, Snapshot};

pub use kind::Kind;

/// Name of the agent in snapshots rebuilt from captures.
pub const AGENT_NAME: &str = model::snapshot::CAPTURE_AGENT_NAME;

/// One captured file.
#[derive(Debug, Clone)]
pub struct CaptureFile {
    /// Name shown in messages and `agent.inputs` (`ip-rule.txt`, `networking/iprule.txt`).
    pub name: String,
    pub kind: Kind,
    pub data: Vec<u8>,
}

/// Where a set of captures came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The input path, for labels and messages.
    pub label: String,
    pub hostname: String,
    pub collected_at: String,
    /// Paths of the files used, for `agent.inputs`.
    pub inputs: Vec<String>,
    /// Ends "no ip-rule.txt …" reasons: `in <dir>`, `in bundle <path>`.
    pub where_: String,
    /// What the producer never captures, per section: the reason replaces "no <file> <where>"
    /// (the eks-log-collector never runs `ip neigh`, say).
    pub never_captured: Vec<(SectionName, String)>,
}

/// Options for building.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Conntrack entries kept as a sample per node.
    pub conntrack_sample: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            conntrack_sample: 200,
        }
    }
}

/// A problem with part of the input (an unparseable or truncated file, a member over a cap):
/// it makes diag's exit code 2 but the snapshot is still analysed. `location` names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The snapshot and the problems met building it.
#[derive(Debug, Clone)]
pub struct Built {
    pub snapshot: Snapshot,
    pub problems: Vec<Problem>,
}

/// Longest line of a text capture read as is; longer lines are cut to this and reported.
/// (JSON captures are exempt: `ip -j` prints a whole table on one line.)
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Cuts lines over [`MAX_LINE_BYTES`] in a text capture; None when nothing was cut.
fn cap_long_lines(
    f: &CaptureFile,
    problems: &mut Vec<Problem>,
    label: &str,
) -> Option<CaptureFile> {
    let json_kind = matches!(
        f.kind,
        Kind::Enis
            | Kind::NetworkutilsEnv
            | Kind::IpamdEnv
            | Kind::EniConfigs
            | Kind::Conflist
            | Kind::ContainerInfo
            | Kind::NodeFacts
            | Kind::CniLog
    );
    let json_text = f
        .data
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[' || *b == b'{');
    if json_kind || json_text || f.data.len() <= MAX_LINE_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(f.data.len());
    let mut cut = false;
    for (i, line) in f.data.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        if line.len() > MAX_LINE_BYTES {
            cut = true;
            problems.push(Problem {
                location: format!("{label}/{}", f.name),
                message: format!(
                    "line {} is {} bytes, over the {MAX_LINE_BYTES}-byte line cap; read only its first {MAX_LINE_BYTES} bytes",
                    i + 1,
                    line.len()
                ),
            });
            out.extend_from_slice(&line[..MAX_LINE_BYTES]);
        } else {
            out.extend_from_slice(line);
        }
    }
    cut.then(|| CaptureFile {
        name: f.name.clone(),
        kind: f.kind,
        data: out,
    })
}

/// Build the snapshot from classified files.
pub fn build(origin: &Origin, files: &[CaptureFile], opts: BuildOptions) -> Built {
    let mut problems = Vec::new();
    let capped: Vec<CaptureFile>;
    let files: &[CaptureFile] = {
        let cut: Vec<Option<CaptureFile>> = files
            .iter()
            .map(|f| cap_long_lines(f, &mut problems, &origin.label))
            .collect();
        if cut.iter().all(Option::is_none) {
            files
        } else {
            capped = files
                .iter()
                .zip(cut)
                .map(|(f, c)| c.unwrap_or_else(|| f.clone()))
                .collect();
            &capped
        }
    };
    let mut snap = Snapshot::new(AgentInfo {
        name: AGENT_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        inputs: origin.inputs.clone(),
    });
    snap.hostname = origin.hostname.clone();
    snap.collected_at = origin.collected_at.clone();
    let of = |section: SectionName| -> Vec<&CaptureFile> {
        files
            .iter()
            .filter(|f| f.kind.section() == section)
            .collect()
    };
    let missing = |section: SectionName| -> String {
        origin
            .never_captured
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| format!("no {} {}", kind::expected_name(section), origin.where_))
    };
    let mut ctx = sections::Ctx {
        label: &origin.label,
        problems: &mut problems,
    };

    snap.iptables = sections::iptables(&of(SectionName::Iptables), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::Iptables)));
    if let Some(v6) = sections::ip6tables(&of(SectionName::Iptables), &mut ctx) {
        if snap.iptables.data.is_none() && snap.iptables.status == model::SectionStatus::Skipped {
            snap.iptables = Section::skipped(format!(
                "only ip6tables-save output (the IPv6 rules) {}; iptables-save.txt (IPv4) would let the SNAT/connmark checks run",
                origin.where_
            ));
        }
        snap.ip6tables = v6;
    }
    snap.rules = sections::rules(&of(SectionName::Rules), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::Rules)));
    snap.routes = sections::routes(&of(SectionName::Routes), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::Routes)));
    snap.neighbours = sections::neighbours(&of(SectionName::Neighbours), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::Neighbours)));
    // `ip addr` (and `ifconfig`) carry links too; `ip link` wins for links when both exist.
    let (links, addresses) = sections::links_and_addresses(
        &of(SectionName::Links),
        &of(SectionName::Addresses),
        &mut ctx,
    );
    snap.links = links.unwrap_or_else(|| Section::skipped(missing(SectionName::Links)));
    snap.addresses = addresses.unwrap_or_else(|| Section::skipped(missing(SectionName::Addresses)));
    snap.conntrack =
        sections::conntrack(&of(SectionName::Conntrack), &mut ctx, opts.conntrack_sample)
            .unwrap_or_else(|| Section::skipped(missing(SectionName::Conntrack)));
    snap.sysctls = sections::sysctls(&of(SectionName::Sysctls), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::Sysctls)));
    snap.cni = sections::cni(&of(SectionName::Cni), &mut ctx).unwrap_or_else(|| {
        Section::skipped(format!(
            "no cni-env, enis.json or networkutils-env-settings.json {}",
            origin.where_
        ))
    });
    snap.cni_logs = sections::logs(&of(SectionName::CniLogs), &mut ctx)
        .unwrap_or_else(|| Section::skipped(missing(SectionName::CniLogs)));
    snap.node = sections::node(&of(SectionName::Node), &mut ctx).unwrap_or_else(|| {
        Section::skipped(format!(
            "no imds.json or node.json {}; node facts are inferred from kernel state",
            origin.where_
        ))
    });
    if let Some(id) = snap.node.get().and_then(|n| n.instance_id.clone()) {
        if snap.hostname.is_empty() {
            snap.hostname = id;
        }
    }
    Built {
        snapshot: snap,
        problems,
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
    fn ip6tables_dumps_are_kept_apart_from_the_ipv4_rules() {
        let v6 = "# Generated by ip6tables-save v1.8.4 on x\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n";
        let v4 = "# Generated by iptables-save v1.8.4 on x\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0\nCOMMIT\n";
        let origin = Origin {
            label: "dir".into(),
            where_: "in dir".into(),
            ..Default::default()
        };
        let rules = |s: &Section<model::IptablesSection>| -> Vec<String> {
            s.data
                .iter()
                .flat_map(|d| &d.backends)
                .flat_map(|d| &d.tables)
                .flat_map(|t| &t.chains)
                .flat_map(|c| &c.rules)
                .map(|r| r.raw.clone())
                .collect()
        };
        // Named ip6tables-save.txt, beside an IPv4 save.
        let files = [
            CaptureFile {
                name: "ip6tables-save.txt".into(),
                kind: kind::classify_capture("ip6tables-save.txt").unwrap_or(Kind::IpRule),
                data: v6.as_bytes().to_vec(),
            },
            CaptureFile {
                name: "iptables-save.txt".into(),
                kind: Kind::IptablesSave(model::Backend::Unknown),
                data: v4.as_bytes().to_vec(),
            },
        ];
        let b = build(&origin, &files, BuildOptions::default());
        let v4_rules = rules(&b.snapshot.iptables);
        let v6_rules = rules(&b.snapshot.ip6tables);
        assert_eq!(v4_rules.len(), 1, "{v4_rules:?}");
        assert!(v4_rules[0].contains("AWS-SNAT-CHAIN-0"));
        assert_eq!(
            v6_rules,
            vec!["-A POSTROUTING -j KUBE-POSTROUTING".to_string()]
        );
        // An ip6tables-save paste saved as iptables-save.txt is not IPv4 iptables either.
        let files = [CaptureFile {
            name: "iptables-save.txt".into(),
            kind: Kind::IptablesSave(model::Backend::Unknown),
            data: v6.as_bytes().to_vec(),
        }];
        let b = build(&origin, &files, BuildOptions::default());
        assert!(b.snapshot.iptables.data.is_none());
        assert_eq!(rules(&b.snapshot.ip6tables).len(), 1);
        // Without any ip6tables input the section stays out of the JSON.
        let files = [CaptureFile {
            name: "iptables-save.txt".into(),
            kind: Kind::IptablesSave(model::Backend::Unknown),
            data: v4.as_bytes().to_vec(),
        }];
        let b = build(&origin, &files, BuildOptions::default());
        let j = serde_json::to_value(&b.snapshot).unwrap_or_default();
        assert!(j.get("ip6tables").is_none(), "{j}");
    }

    #[test]
    fn an_over_long_line_is_cut_and_named() {
        let mut data = b"0:\tfrom all lookup local\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        data.extend(b"\n32766:\tfrom all lookup main\n");
        let files = [CaptureFile {
            name: "ip-rule.txt".into(),
            kind: Kind::IpRule,
            data,
        }];
        let origin = Origin {
            label: "dir".into(),
            where_: "in dir".into(),
            ..Default::default()
        };
        let b = build(&origin, &files, BuildOptions::default());
        let p: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert!(
            p.iter().any(|m| m.starts_with(
                "dir/ip-rule.txt: line 2 is 1048586 bytes, over the 1048576-byte line cap"
            )),
            "{p:?}"
        );
        assert_eq!(b.snapshot.rules.data.map(|r| r.len()), Some(2));
    }

    #[test]
    fn strips_colour_and_cr() {
        assert_eq!(
            clean_text(b"\x1b[32meth0\x1b[0m UP\r\n"),
            "eth0 UP\n".to_string()
        );
    }
}
