#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `parsers::sysctl::parse` against real `sysctl -a` captures and pastes.

use std::fs;
use std::path::PathBuf;

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sysctl")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn sysctl_a_as_root() {
    let text = fixture("sysctl-a-root.txt");
    let p = parsers::sysctl::parse(&text).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let s = &p.value;
    // One key per line except multi-line values, whose lines repeat the key.
    let keys: std::collections::BTreeSet<_> = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(s.values.len(), keys.len());
    if text.contains("kernel.core_modes = pipe") {
        assert!(s
            .get("kernel.core_modes")
            .is_some_and(|v| v.contains("file\npipe")));
    }
    assert_eq!(
        s.values
            .get("net.ipv4.ip_local_port_range")
            .map(String::as_str),
        Some("32768\t60999")
    );
    assert_eq!(s.get("kernel.hostname"), Some("MASKED"));
    assert_eq!(s.rp_filter("lo"), Some(0));
    assert_eq!(s.effective_rp_filter("lo"), Some(0));
    assert!(
        s.get_u64("net.netfilter.nf_conntrack_max").is_some() || !text.contains("nf_conntrack_max")
    );
}

#[test]
fn sysctl_a_as_nobody_reports_denied_keys() {
    let text = fixture("sysctl-a-nobody.txt");
    let p = parsers::sysctl::parse(&text).unwrap();
    let denied: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("sysctl:"))
        .collect();
    assert!(!denied.is_empty());
    assert_eq!(p.warnings.len(), denied.len());
    for (w, (i, l)) in p.warnings.iter().zip(&denied) {
        assert_eq!(w.line, i + 1);
        assert_eq!(&w.text, l);
    }
    assert!(p
        .warnings
        .iter()
        .any(|w| w.text.contains("'net.ipv4.tcp_fastopen_key'")));
    assert!(!p.value.values.contains_key("net.ipv4.tcp_fastopen_key"));
    let keys: std::collections::BTreeSet<_> = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(p.value.values.len(), keys.len());
}

#[test]
fn cilium_paste_with_prompts() {
    let p = parsers::sysctl::parse(&fixture("realworld-cilium-10645.txt")).unwrap();
    assert!(p.warnings.is_empty());
    let s = &p.value;
    assert_eq!(s.values.len(), 3);
    assert_eq!(s.rp_filter("all"), Some(0));
    assert_eq!(s.effective_rp_filter("cilium_host"), Some(2));
    assert_eq!(
        s.rp_filter_interfaces(),
        vec!["cilium_host".to_string(), "lxc4d36398ebb25".to_string()]
    );
}

#[test]
fn handmade_eks_pastes() {
    let p = parsers::sysctl::parse(&fixture("handmade-eks-pastes.txt")).unwrap();
    let s = &p.value;
    assert_eq!(s.get_u64("net.ipv4.ip_forward"), Some(1));
    assert_eq!(s.rp_filter("eth1"), Some(1));
    assert_eq!(s.get("net.ipv4.ip_local_port_range"), Some("32768\t60999"));
    assert_eq!(s.get_u64("net.netfilter.nf_conntrack_max"), Some(262144));
    // The second node's value wins, with a warning for the conflict; the stable_secret error
    // is a warning too.
    assert_eq!(s.rp_filter("eth0"), Some(1));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert_eq!(p.warnings[0].line, 9);
    assert!(p.warnings[0].text.contains("stable_secret"));
    assert_eq!(p.warnings[1].line, 12);
    assert!(p.warnings[1].message.contains("duplicate"));
}
