//! `node-agent bundle` inside emulated EKS nodes (real kernel state in network namespaces),
//! healthy and with each fault kind injected:
//! * every manifest entry is a member of the archive with the recorded size and sha256;
//! * with `--redact`, no original address (dotted, dashed, `::ffff:`), MAC, id or host name of
//!   the node is in any byte of any member (the archive is decompressed and every member
//!   scanned), and the private map is beside the archive with mode 0600, not inside;
//! * the redacted bundle analyses to exactly the rule ids and severities of the unredacted
//!   one, read back through `bundle::reader` as `diag analyze` does;
//! * the same input redacted twice with one map file gets the same pseudonyms.
//!
//! Needs root, iproute2, iptables (nft and legacy) and the `node-agent` binary of the same
//! profile (`cargo test --workspace --test bundle --test netns -- bundle_` builds it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bundle::manifest::Manifest;
use e2e::agent::agent_bin;
use e2e::netns::require_root;
use e2e::node::{EksNode, EksNodeBuilder, Random};
use model::{Severity, Snapshot};
use sha2::{Digest, Sha256};

/// Members of a .tar.gz: (path, bytes).
fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let f = std::fs::File::open(archive).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        out.push((p, buf));
    }
    out
}

/// `node-agent bundle` in the node's namespace; returns the archive path it printed.
fn agent_bundle(node: &EksNode, dir: &Path, extra: &[&str]) -> PathBuf {
    let bin = agent_bin().unwrap().display().to_string();
    let d = dir.display().to_string();
    let args = node.config().agent_args();
    let mut argv: Vec<&str> = vec![bin.as_str(), "bundle", "-d", d.as_str()];
    argv.extend(args.iter().map(String::as_str));
    argv.extend_from_slice(extra);
    let out = node
        .ns()
        .exec_timeout(&argv, Duration::from_secs(120))
        .unwrap();
    assert!(
        out.status.success(),
        "node-agent bundle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.starts_with(dir), "{} not in {}", path.display(), d);
    assert!(path.exists());
    path
}

/// Every manifest entry is a member with the recorded size and sha256, and every member but
/// the manifest is in the manifest.
fn check_manifest(archive: &Path) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let ms = members(archive);
    let top = ms[0].0.split('/').next().unwrap().to_string();
    assert_eq!(ms[0].0, format!("{top}/manifest.json"), "manifest first");
    let m: Manifest = serde_json::from_slice(&ms[0].1).unwrap();
    assert_eq!(m.tool, "eks-diag");
    assert!(!m.files.is_empty());
    for f in &m.files {
        let (_, data) = ms
            .iter()
            .find(|(p, _)| *p == format!("{top}/{}", f.path))
            .unwrap_or_else(|| panic!("manifest lists {} but the archive lacks it", f.path));
        assert_eq!(f.bytes, data.len() as u64, "{}", f.path);
        assert_eq!(f.sha256, hex::encode(Sha256::digest(data)), "{}", f.path);
    }
    for (p, _) in &ms[1..] {
        let rel = p.strip_prefix(&format!("{top}/")).unwrap();
        assert!(
            m.files.iter().any(|f| f.path == rel),
            "{rel} not in the manifest"
        );
    }
    for want in [
        "report.md",
        "snapshot.json",
        "findings.json",
        "networking/iptables-save.txt",
        "networking/iprule.txt",
        "networking/iproute.txt",
        "networking/ip6rule.txt",
        "networking/ip6route.txt",
        "networking/ipaddr.txt",
        "networking/ipneigh.txt",
        "networking/conntrack.txt",
        "sysctls/sysctl_all.txt",
        "system/instance-id.txt",
    ] {
        assert!(m.files.iter().any(|f| f.path == want), "no {want}");
    }
    (m, ms)
}

/// Rule ids and severities of the bundle's snapshot, read back like `diag analyze` does.
fn findings(archive: &Path) -> (Snapshot, BTreeSet<(String, Severity)>) {
    let b = bundle::reader::read(archive).unwrap();
    assert_eq!(b.nodes.len(), 1);
    let s = b.nodes.into_iter().next().unwrap().snapshot.unwrap();
    let r = analysis::analyze(&s);
    let ids = r
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.severity))
        .collect();
    (s, ids)
}

/// What identifies this node: its addresses (all forms), MACs, AWS ids and host name.
/// Pinned addresses (loopback, link-local, 0.0.0.0, multicast) and the private class networks
/// themselves are kept by design and left out.
/// Addresses count only when the redacted run saw them too (`ip_map` of its map, or kept by
/// design): the two runs are separate collections, and a neighbour or conntrack peer met only
/// by the plain run may equal some pseudonym of the redacted one by chance.
fn originals(s: &Snapshot, map: &bundle::PrivateMap) -> Vec<String> {
    let mut v4: BTreeSet<std::net::Ipv4Addr> = BTreeSet::new();
    let mut v6: BTreeSet<std::net::Ipv6Addr> = BTreeSet::new();
    let mut words: BTreeSet<String> = BTreeSet::new();
    let mut add = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => {
            v4.insert(a);
        }
        std::net::IpAddr::V6(a) => {
            v6.insert(a);
        }
    };
    for a in s.addresses.get().unwrap() {
        add(a.local);
    }
    for r in s.routes.get().unwrap() {
        r.gateway.into_iter().chain(r.prefsrc).for_each(&mut add);
        if r.dst.prefix_len() > 16 {
            add(r.dst.network());
        }
    }
    for n in s.neighbours.get().unwrap() {
        add(n.dst);
    }
    let node = s.node.get().unwrap();
    node.primary_ipv4.into_iter().for_each(|a| add(a.into()));
    for e in &node.enis {
        e.ipv4_addresses.iter().for_each(|a| add((*a).into()));
        words.insert(e.mac.clone());
        words.extend(e.interface_id.clone());
        words.extend(e.subnet_id.clone());
    }
    words.extend(node.instance_id.clone());
    words.extend(node.primary_mac.clone());
    for l in s.links.get().unwrap() {
        if let Some(m) = &l.address {
            if m != "00:00:00:00:00:00" && !m.starts_with("ff:") {
                words.insert(m.clone());
            }
        }
    }
    if s.hostname.len() >= 2 {
        words.insert(s.hostname.clone());
    }
    let pinned4 = |a: &std::net::Ipv4Addr| {
        a.is_loopback()
            || a.is_link_local()
            || a.is_unspecified()
            || a.is_multicast()
            || a.is_broadcast()
            || ["10.0.0.0", "172.16.0.0", "192.168.0.0", "100.64.0.0"]
                .contains(&a.to_string().as_str())
    };
    let mut out: Vec<String> = Vec::new();
    for a in v4
        .iter()
        .filter(|a| !pinned4(a) && map.ip_map.contains_key(&a.to_string()))
    {
        let o = a.octets();
        out.push(a.to_string());
        out.push(format!("{}-{}-{}-{}", o[0], o[1], o[2], o[3]));
        out.push(format!("::ffff:{a}"));
    }
    for a in v6
        .iter()
        .filter(|a| map.ipv6_map.contains_key(&a.to_string()))
        .filter(|a| {
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (a.segments()[0] & 0xffc0) == 0xfe80)
        })
    {
        out.push(a.to_string());
    }
    out.extend(words);
    out
}

/// `needle` as a whole token in `hay` (not inside a longer number or name).
fn contains_token(hay: &str, needle: &str) -> bool {
    let hb = hay.as_bytes();
    let mut from = 0;
    let lower = hay.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    while let Some(p) = lower[from..].find(&needle) {
        let s = from + p;
        let e = s + needle.len();
        let tokch = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'_';
        let before = s == 0
            || !tokch(hb[s - 1])
            || (hb[s - 1] == b'.'
                && !hb
                    .get(s.wrapping_sub(2))
                    .is_some_and(|c| c.is_ascii_digit()));
        let after = e >= hb.len()
            || !(hb[e].is_ascii_alphanumeric()
                || hb[e] == b'_'
                || (hb[e] == b'.' && hb.get(e + 1).is_some_and(|c| c.is_ascii_digit())));
        if before && after {
            return true;
        }
        from = s + 1;
    }
    false
}

fn scan_for_leaks(archive: &Path, originals: &[String]) {
    let ms = members(archive);
    let mut leaks = Vec::new();
    for o in originals {
        // The member names, too.
        for (p, data) in &ms {
            let text = String::from_utf8_lossy(data);
            if contains_token(&text, o) || contains_token(p, o) {
                leaks.push(format!("{o} in {p}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "originals left after redaction: {leaks:?}"
    );
}

/// Build the node, or fail (these tests never skip: root is needed and present in CI).
fn node(b: EksNodeBuilder) -> EksNode {
    require_root().unwrap();
    b.build().unwrap()
}

/// The whole check for one node state.
fn check(n: &EksNode, what: &str) -> BTreeSet<(String, Severity)> {
    let tmp = tempfile::tempdir().unwrap();
    let plain = agent_bundle(n, &tmp.path().join("plain"), &[]);
    let red_dir = tmp.path().join("red");
    let red = agent_bundle(n, &red_dir, &["--redact", "--redact-keyword", "emulated"]);
    let (pm, _) = check_manifest(&plain);
    assert!(!pm.redacted);
    let (rm, rmembers) = check_manifest(&red);
    assert!(rm.redacted);

    // The map: beside the archive, private, not inside.
    let map_name = rm.redaction.as_ref().unwrap().map_file.clone();
    let map_path = red_dir.join(&map_name);
    let mode = std::fs::metadata(&map_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{what}: map mode");
    assert!(!rmembers
        .iter()
        .any(|(p, _)| p.ends_with("private_map.json")));
    let map_text = std::fs::read_to_string(&map_path).unwrap();
    let key = serde_json::from_str::<serde_json::Value>(&map_text).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !rmembers
            .iter()
            .any(|(_, d)| String::from_utf8_lossy(d).contains(&key)),
        "{what}: the key is in the archive"
    );

    let (snap, ids_plain) = findings(&plain);
    let (rsnap, ids_red) = findings(&red);
    assert_eq!(
        ids_plain, ids_red,
        "{what}: redacted bundle analyses differently"
    );

    // No original of the node in any byte of the redacted archive.
    let map = bundle::PrivateMap::from_json(&map_text).unwrap();
    let orig = originals(&snap, &map);
    assert!(
        orig.len() > 10,
        "{what}: too few originals to mean anything: {orig:?}"
    );
    scan_for_leaks(&red, &orig);
    // … and the plain bundle does have them (the scan can fail).
    let plain_text: String = members(&plain)
        .iter()
        .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
        .collect();
    let primary = snap.node.get().unwrap().primary_ipv4.unwrap().to_string();
    assert!(contains_token(&plain_text, &primary));

    // The redacted node's primary IP is one pseudonym everywhere: node facts, SNAT rule.
    let rprimary = rsnap.node.get().unwrap().primary_ipv4.unwrap();
    assert_ne!(rprimary.to_string(), primary);
    assert_eq!(map.ip_map.get(&primary), Some(&rprimary.to_string()));

    // The same snapshot redacted twice with that map: the same bytes.
    let again = |d: &str| {
        let mut o = bundle::Options::new("test", vec!["test".into()]);
        o.map = Some(map.clone());
        let w = bundle::write(
            &tmp.path().join(d),
            vec![bundle::NodeInput {
                label: "n".into(),
                snapshot: Some(snap.clone()),
                ..Default::default()
            }],
            &o,
        )
        .unwrap();
        let ms = members(&w.archive);
        ms.into_iter()
            .filter(|(p, _)| !p.ends_with("manifest.json"))
            .map(|(p, d)| (p.split_once('/').unwrap().1.to_string(), d))
            .collect::<Vec<_>>()
    };
    let (a, b) = (again("a"), again("b"));
    assert_eq!(a, b, "{what}: one map, two different redactions");
    // And consistent with the agent's own redacted bundle for the same addresses.
    let snap_a = a.iter().find(|(p, _)| p == "snapshot.json").unwrap();
    let sa = Snapshot::from_json(std::str::from_utf8(&snap_a.1).unwrap()).unwrap();
    assert_eq!(sa.node.get().unwrap().primary_ipv4, Some(rprimary));
    ids_plain
}

#[test]
fn bundle_healthy_node() {
    let mut n = node(EksNode::builder().pods_on_primary(2).pods_on_secondary(2));
    n.generate_traffic().unwrap();
    let ids = check(&n, "healthy");
    assert!(
        !ids.iter().any(|(_, s)| *s >= Severity::Warning),
        "the healthy node is not healthy: {ids:?}"
    );
}

#[test]
fn bundle_of_each_fault_kind_diagnoses_the_same() {
    type Fault = (&'static str, fn(&EksNode));
    let faults: &[Fault] = &[
        ("snat-rule-deleted", |n| n.fault_delete_snat_rule().unwrap()),
        ("to-source", |n| {
            n.fault_snat_to_source("192.168.99.99".parse().unwrap())
                .unwrap()
        }),
        ("vpc-return-dropped", |n| {
            n.fault_drop_vpc_return("192.168.0.0/16", true).unwrap()
        }),
        ("unexpected-return", |n| {
            n.fault_add_unexpected_return("172.16.0.0/12").unwrap()
        }),
        ("negated-return", |n| {
            n.fault_insert_negated_return("192.168.0.0/16").unwrap()
        }),
        ("duplicate-jump", |n| {
            n.fault_duplicate_postrouting_jump().unwrap()
        }),
        ("random-none", |n| {
            n.fault_snat_random(Random::None).unwrap()
        }),
        ("stale-chain", |n| n.fault_stale_snat_chain_1().unwrap()),
        ("both-backends", |n| {
            n.fault_copy_rules_to_other_backend().unwrap()
        }),
        ("connmark-nat", |n| {
            n.fault_delete_nat_connmark_rules().unwrap()
        }),
        ("fwmark-rule", |n| n.fault_delete_fwmark_rule().unwrap()),
        ("from-pod-rule", |n| {
            n.fault_delete_from_pod_rule(2).unwrap()
        }),
        ("to-pod-rule", |n| n.fault_delete_to_pod_rule(0).unwrap()),
        ("pod-route", |n| n.fault_delete_pod_route(0).unwrap()),
        ("veth-down", |n| n.fault_veth_down(0).unwrap()),
        ("eni-default-route", |n| {
            n.fault_delete_eni_default_route(1).unwrap()
        }),
        ("eni-subnet-in-main", |n| {
            n.fault_add_eni_subnet_route_to_main(1).unwrap()
        }),
        ("rp-filter", |n| n.fault_rp_filter(1).unwrap()),
        ("ip-forward-off", |n| n.fault_ip_forward_off().unwrap()),
    ];
    let healthy = {
        let mut n = node(EksNode::builder().pods_on_primary(2).pods_on_secondary(2));
        n.generate_traffic().unwrap();
        check(&n, "healthy")
    };
    for (what, inject) in faults {
        let mut n = node(EksNode::builder().pods_on_primary(2).pods_on_secondary(2));
        // Conntrack entries first: some faults break the traffic itself.
        n.generate_traffic().unwrap();
        inject(&n);
        let ids = check(&n, what);
        assert_ne!(
            ids, healthy,
            "{what}: the fault changed no finding, so the comparison proves nothing"
        );
    }
}

/// ELC's `networking/iptables-{nat,mangle,filter}.txt` are rendered from the save dump (the
/// agent never runs `iptables -L`); the test runs the real `iptables -t T -nvL` in the node
/// right after the bundle (no traffic in between) and compares: the same chains, the same
/// rows token by token (column widths aside) with the same counters; and
/// `parsers::iptables::parse_list` of the rendering gives the dump's rules.
#[test]
fn bundle_iptables_listings_match_the_real_listings() {
    let mut n = node(EksNode::builder().pods_on_primary(2).pods_on_secondary(2));
    n.generate_traffic().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let archive = agent_bundle(&n, tmp.path(), &[]);
    let (m, ms) = check_manifest(&archive);
    let (snap, _) = findings(&archive);
    let norm = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect()
    };
    // ipamd's answers, verbatim: the bytes the double serves, from the collector's client.
    let ipamd_url = n
        .config()
        .agent_args()
        .windows(2)
        .find(|w| w[0] == "--ipamd-endpoint")
        .map(|w| w[1].clone())
        .unwrap();
    for name in [
        "enis",
        "networkutils-env-settings",
        "ipamd-env-settings",
        "eni-configs",
        "pods",
    ] {
        let path = format!("ipamd/{name}.json");
        let (_, data) = ms
            .iter()
            .find(|(p, _)| p.ends_with(&format!("/{path}")))
            .unwrap_or_else(|| panic!("{path} not in the bundle"));
        let url = format!("{ipamd_url}/v1/{name}");
        let served = n
            .ns()
            .exec_ok(&["curl", "-s", "--max-time", "3", &url])
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(data),
            served,
            "{path}: not as served"
        );
        let entry = m.files.iter().find(|f| f.path == path).unwrap();
        assert_eq!(entry.source.kind, "http");
        assert_eq!(entry.source.argv, ["GET", url.as_str()]);
        assert!(
            !m.omitted.iter().any(|o| o.path == path),
            "{path} both written and omitted"
        );
    }
    let enis = ms
        .iter()
        .find(|(p, _)| p.ends_with("/ipamd/enis.json"))
        .unwrap();
    let parsed = parsers::ipamd::parse_enis(std::str::from_utf8(&enis.1).unwrap()).unwrap();
    assert_eq!(
        Some(parsed),
        snap.cni.get().unwrap().ipamd_enis,
        "enis.json vs the snapshot"
    );
    // Nothing serves ipamd's metrics port in the emulated node: no file, and it says why.
    assert!(!ms.iter().any(|(p, _)| p.ends_with("/ipamd/metrics.json")));
    assert!(m.omitted.iter().any(|o| o.path == "ipamd/metrics.json"));

    let ipt = snap.iptables.get().unwrap();
    let dump = ipt
        .default_backend
        .and_then(|b| ipt.backend(b))
        .unwrap_or(&ipt.backends[0]);
    for table in ["nat", "mangle", "filter"] {
        let path = format!("networking/iptables-{table}.txt");
        let (_, data) = ms
            .iter()
            .find(|(p, _)| p.ends_with(&format!("/{path}")))
            .unwrap_or_else(|| panic!("{path} not in the bundle"));
        let text = String::from_utf8(data.clone()).unwrap();
        let entry = m.files.iter().find(|f| f.path == path).unwrap();
        assert_eq!(entry.source.kind, "rendered", "{path}");
        let note = entry.note.as_deref().unwrap();
        assert!(
            note.contains("-save -c") && note.contains("not run"),
            "{note}"
        );
        // ELC's trailer, then the listing proper.
        let (listing, trailer) = text.rsplit_once("=======\n").unwrap();
        let rows = dump
            .table(table)
            .unwrap()
            .chains
            .iter()
            .map(|c| c.rules.len())
            .sum::<usize>();
        assert_eq!(trailer, format!("Total Number of Rules: {rows}\n"));
        // The agent's own requests to the IMDS/ipamd doubles (loopback, nat OUTPUT and
        // POSTROUTING) run after its iptables-save, so the bundle's counters are compared
        // with the rows' counters blanked; the counters themselves are checked on a save
        // dump the test takes immediately before the real listing (no traffic between).
        let real = n.iptables(&["-t", table, "-nvL"]).unwrap();
        let no_counters = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|l| {
                    let w: Vec<&str> = l.split(' ').collect();
                    if w.len() > 2
                        && w[0]
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b"KMGT".contains(&b))
                        && !l.starts_with("Chain")
                    {
                        w[2..].join(" ")
                    } else if l.starts_with("Chain") && l.contains("packets") {
                        l.split(" packets")
                            .next()
                            .map(|h| h.rsplit_once(' ').map(|x| x.0).unwrap_or(h))
                            .unwrap_or(&l)
                            .to_string()
                    } else {
                        l
                    }
                })
                .collect()
        };
        assert_eq!(
            no_counters(norm(listing)),
            no_counters(norm(&real)),
            "{table}: rendered vs real:\n{listing}\n---\n{real}"
        );
        assert!(
            norm(&real).len() > 5,
            "{table}: the real listing is too short to mean anything"
        );
        let save_bin = format!("{}-save", n.config().backend.iptables());
        let save = n.ns().exec_ok(&[save_bin.as_str(), "-c"]).unwrap();
        let real = n.iptables(&["-t", table, "-nvL"]).unwrap();
        let fresh = parsers::iptables::parse_save(&save).value;
        let fresh = fresh.first().and_then(|d| d.table(table)).unwrap();
        let (fresh_listing, unknown) = bundle::iptables_list::render_table(fresh, true);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(
            norm(&fresh_listing),
            norm(&real),
            "{table}: counters, rendered vs real"
        );

        let back = parsers::iptables::parse_list(listing, table);
        assert!(back.warnings.is_empty(), "{table}: {:?}", back.warnings);
        let key = |r: &model::IptRule| {
            (
                r.chain.clone(),
                r.packets,
                r.bytes,
                r.target.clone(),
                r.matches.clone(),
                r.target_options.clone(),
            )
        };
        let want: Vec<_> = dump
            .table(table)
            .unwrap()
            .chains
            .iter()
            .flat_map(|c| c.rules.iter().map(key))
            .collect();
        let got: Vec<_> = back
            .value
            .chains
            .iter()
            .flat_map(|c| c.rules.iter().map(key))
            .collect();
        assert_eq!(got, want, "{table}: parse_list of the rendering");
    }
}
