//! The archive AWS's own eks-log-collector.sh (v0.7.9) wrote on an emulated node
//! (`fixtures/elc/real-v0.7.9/`, produced by `scripts/elc-run.sh`, see its SOURCE.md) is read
//! fully (issue 11 item 4): conntrack not partial because of the collector's
//! `*** Output of conntrack -S ***` headers, the `iptables -nvL` counters of
//! `iptables-nat.txt` kept next to `iptables-save.txt` (taken without `-c`), links and
//! addresses from `ifconfig.txt`, the version from `ipamd/metrics.json`. Every expected value
//! is read from the archive's own members, not typed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::PathBuf;

use common::*;

fn archive() -> PathBuf {
    archive_in("elc/real-v0.7.9")
}

fn archive_in(rel: &str) -> PathBuf {
    let dir = fixtures().join(rel);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("the real collector archive")
}

/// One member's text, straight from the archive.
fn member(rel: &str) -> String {
    member_of(&archive(), rel)
}

fn member_of(path: &std::path::Path, rel: &str) -> String {
    let f = std::fs::File::open(path).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.trim_start_matches("./") == rel {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            return s;
        }
    }
    panic!("{rel} not in the archive");
}

fn load() -> model::Snapshot {
    load_from(archive())
}

fn load_from(path: PathBuf) -> model::Snapshot {
    let opts = diag::input::LoadOptions::new(&[]).unwrap();
    let mut l = diag::input::load_all(vec![diag::input::Input::Path(path)], &opts);
    assert_eq!(l.len(), 1);
    let l = l.remove(0);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    l.outcome.unwrap()
}

#[test]
fn conntrack_section_is_complete_despite_the_collector_headers() {
    let raw = member("networking/conntrack.txt");
    assert!(
        raw.contains("*** Output of conntrack -S ***"),
        "not the collector's framing"
    );
    let s = load();
    assert_eq!(
        s.conntrack.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.conntrack
    );
    let ct = s.conntrack.get().unwrap();
    let cpus = raw.lines().filter(|l| l.starts_with("cpu=")).count();
    assert_eq!(ct.stats.len(), cpus, "{ct:?}");
    // Every flow line of `conntrack -L` (the lines after its header) is a flow.
    let flows = raw
        .split("*** Output of conntrack -L ***")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.contains("src="))
        .count();
    assert!(flows > 0);
    assert_eq!(ct.summary.total as usize, flows, "{:?}", ct.summary);
}

#[test]
fn nat_counters_from_the_nvl_listing_are_kept() {
    // The SNAT rule's packet count as `iptables -nvL -t nat` printed it.
    let nat = member("networking/iptables-nat.txt");
    let snat_line = nat
        .lines()
        .find(|l| l.contains("/* AWS, SNAT */"))
        .expect("SNAT rule in iptables-nat.txt");
    let want: u64 = snat_line
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        want > 0,
        "the emulated pods' internet traffic was SNATed: {snat_line}"
    );
    assert!(
        !member("networking/iptables-save.txt").contains("[0:0] -A"),
        "save taken with -c?"
    );
    let s = load();
    assert_eq!(
        s.iptables.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.iptables.reason
    );
    assert!(
        s.iptables
            .sources
            .iter()
            .any(|x| x.contains("iptables-nat.txt")),
        "{:?}",
        s.iptables.sources
    );
    let ipt = s.iptables.get().unwrap();
    let chain = ipt.backends[0]
        .table("nat")
        .unwrap()
        .chain("AWS-SNAT-CHAIN-0")
        .unwrap();
    let rule = chain
        .rules
        .iter()
        .find(|r| r.target.as_deref() == Some("SNAT"))
        .expect("SNAT rule");
    assert_eq!(rule.packets, Some(want), "{rule:?}");
    // And `diag snat` shows them.
    let out = diag(&[
        "snat",
        "--from",
        archive().to_str().unwrap(),
        "--color",
        "never",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(&format!("[{want}:")), "{}", out.stdout);
}

#[test]
fn links_and_addresses_come_from_ifconfig() {
    let ifc = member("networking/ifconfig.txt");
    let s = load();
    assert_eq!(
        s.links.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.links.reason
    );
    let links = s.links.get().unwrap();
    // Every interface block of ifconfig (a line starting at column 0 with `name: flags=`).
    let names: Vec<&str> = ifc
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains(": flags="))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert!(
        names.contains(&"eth0") && names.contains(&"eth1"),
        "{names:?}"
    );
    for n in &names {
        assert!(
            links.iter().any(|l| l.ifname == *n),
            "{n} missing from {links:?}"
        );
    }
    let addrs = s.addresses.get().unwrap();
    for l in ifc.lines().filter(|l| l.trim_start().starts_with("inet ")) {
        let ip = l.split_whitespace().nth(1).unwrap();
        assert!(
            addrs.iter().any(|a| a.local.to_string() == ip),
            "{ip} missing: {addrs:?}"
        );
    }
}

#[test]
fn ipamd_metrics_give_the_version_and_the_analysis_is_clean() {
    let m = member("ipamd/metrics.json");
    let version = m
        .lines()
        .find(|l| l.starts_with("awscni_build_info{"))
        .and_then(|l| {
            l.split_once('{')?
                .1
                .split_once('}')
                .map(|(labels, _)| labels)
        })
        .and_then(|labels| labels.split(',').find_map(|kv| kv.strip_prefix("version=")))
        .map(|v| v.trim_matches('"'))
        .expect("awscni_build_info in metrics.json")
        .to_string();
    let s = load();
    let cni = s.cni.get().unwrap();
    assert_eq!(
        cni.version.as_deref(),
        Some(version.as_str()),
        "{:?}",
        s.cni.sources
    );
    assert!(
        s.cni.sources.iter().any(|x| x.contains("metrics.json")),
        "{:?}",
        s.cni.sources
    );
    // The node was healthy when the collector ran: no warning or error.
    let r = analysis::analyze(&s);
    let loud: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity >= model::Severity::Warning)
        .map(|f| format!("{}: {}", f.rule, f.summary))
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    assert_eq!(s.hostname, member("system/instance-id.txt").trim());
}

/// The same collector on an IPv6-mode node (`real-v0.7.9-ipv6/`): ipamd's env endpoints do
/// not list ENABLE_IPv6, the pods' addresses are IPv6 only, the per-pod 512 rules are in
/// `networking/ip6rule.txt`. A healthy IPv6 node gets no error (no SNAT/connmark expected).
#[test]
fn ipv6_node_archive_is_read_and_judged_as_ipv6() {
    let path = archive_in("elc/real-v0.7.9-ipv6");
    let ip6rule = member_of(&path, "networking/ip6rule.txt");
    let want_512: Vec<&str> = ip6rule
        .lines()
        .filter(|l| l.starts_with("512:"))
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert!(!want_512.is_empty(), "{ip6rule}");
    assert!(!member_of(&path, "ipamd/ipamd-env-settings.json").contains("ENABLE_IPv6"));
    let s = load_from(path);
    let rules = s.rules.get().unwrap();
    for ip in &want_512 {
        assert!(
            rules.iter().any(|r| r.family == model::Family::Inet6
                && r.priority == 512
                && r.dst.is_some_and(|d| d.addr().to_string() == *ip)),
            "512 rule for {ip} not read as IPv6: {rules:?}"
        );
    }
    assert!(
        s.rules.sources.iter().any(|x| x.contains("ip6rule.txt")),
        "{:?}",
        s.rules.sources
    );
    let r = analysis::analyze(&s);
    let loud: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity >= model::Severity::Warning)
        .map(|f| format!("{}: {}", f.rule, f.summary))
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    // IPv6 mode was inferred (and says from what), and the SNAT checks say why they skipped.
    let skipped = format!("{:?}", r.skipped);
    assert!(
        skipped.contains("IPv6 cluster (inferred: ipamd /v1/enis assigns only IPv6"),
        "{skipped}"
    );
    assert!(r.evaluated.iter().any(|e| e == "route.pod-rule-missing"));
}
