#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fixture tests: real captures from a throwaway network namespace (`fixtures/iptables/netns`),
//! the ground-truth samples (`groundtruth`) and real-world pastes (`real-world`); see
//! `fixtures/iptables/PROVENANCE.md`.

use std::path::{Path, PathBuf};

use model::iptables::{Backend, IptArg, IptRule, IptTable, IptablesBackendDump};
use parsers::iptables::{parse_any, parse_list, parse_save, parse_spec};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iptables")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn all_fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in ["netns", "groundtruth", "real-world"] {
        let mut entries: Vec<_> = std::fs::read_dir(dir().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        entries.sort();
        for p in entries {
            let name = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

#[test]
fn every_fixture_parses_without_warnings() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 25, "fixtures missing: {}", fixtures.len());
    for (name, text) in fixtures {
        let p = parse_any(&text, "nat").unwrap_or_else(|e| panic!("{name}: {e}"));
        let rules: usize = p.value.iter().map(IptablesBackendDump::rule_count).sum();
        let chains: usize = p
            .value
            .iter()
            .flat_map(|d| &d.tables)
            .map(|t| t.chains.len())
            .sum();
        assert!(chains > 0, "{name}: no chains");
        // Every `-A` line / table row in the file became a rule.
        let expected_rules = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("-A ")
                    || l.starts_with('[')
                    || l.split_whitespace()
                        .next()
                        .is_some_and(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            })
            .count();
        assert_eq!(rules, expected_rules, "{name}: rule count");
        let expected_warnings: &[&str] = match name.as_str() {
            // The ground-truth excerpts have no header and (A) no chain declarations for the
            // built-in / kube-proxy chains.
            "groundtruth/A-default-v1.16.2-v1.22.save.txt" => &["not declared"],
            "groundtruth/v1.23-legacy-comments.save.txt" => &[],
            "real-world/issue407-kube-proxy-statistic.save.txt" => &[],
            _ => &[],
        };
        for w in &p.warnings {
            assert!(
                expected_warnings.iter().any(|e| w.message.contains(e)),
                "{name}: unexpected warning {w}"
            );
        }
    }
}

fn rules_of<'a>(t: &'a IptTable, chain: &str) -> &'a [IptRule] {
    &t.chain(chain)
        .unwrap_or_else(|| panic!("chain {chain} missing"))
        .rules
}

fn a(module: Option<&str>, option: &str, negated: bool, values: &[&str]) -> IptArg {
    IptArg {
        module: module.map(Into::into),
        option: option.into(),
        negated,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// The same rules captured in two formats: same chains in the same order, same rules with the
/// same matches, target, goto and target options; counters too when both carry them.
fn assert_same_rules(what: &str, x: &IptTable, y: &IptTable, counters: bool) {
    let names = |t: &IptTable| t.chains.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(x), names(y), "{what}: chain order");
    for (cx, cy) in x.chains.iter().zip(&y.chains) {
        assert_eq!(cx.policy, cy.policy, "{what}: policy of {}", cx.name);
        assert_eq!(
            cx.rules.len(),
            cy.rules.len(),
            "{what}: rules in {}",
            cx.name
        );
        if counters {
            assert_eq!(
                (cx.packets, cx.bytes),
                (cy.packets, cy.bytes),
                "{what}: counters of {}",
                cx.name
            );
        }
        for (rx, ry) in cx.rules.iter().zip(&cy.rules) {
            let ctx = format!("{what}: `{}` vs `{}`", rx.raw, ry.raw);
            assert_eq!(rx.chain, ry.chain, "{ctx}");
            assert_eq!(rx.matches, ry.matches, "{ctx}");
            assert_eq!(rx.target, ry.target, "{ctx}");
            assert_eq!(rx.goto, ry.goto, "{ctx}");
            assert_eq!(rx.target_options, ry.target_options, "{ctx}");
            if counters {
                assert_eq!((rx.packets, rx.bytes), (ry.packets, ry.bytes), "{ctx}");
            }
        }
    }
}

fn only_dump(text: &str) -> IptablesBackendDump {
    let p = parse_save(text);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.value.len(), 1);
    p.value.into_iter().next().unwrap()
}

#[test]
fn netns_nft_save_with_counters_exact_structure() {
    let d = only_dump(&read("netns/nft-save-c.txt"));
    assert_eq!(d.backend, Backend::Nft);
    assert_eq!(d.version.as_deref(), Some("1.8.9"));
    assert!(d.has_counters);
    assert!(d.command.is_empty());
    let names: Vec<&str> = d.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["mangle", "filter", "nat"]);
    let nat = d.table("nat").unwrap();
    let counts: Vec<(&str, usize)> = nat
        .chains
        .iter()
        .map(|c| (c.name.as_str(), c.rules.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("PREROUTING", 3),
            ("INPUT", 0),
            ("OUTPUT", 1),
            ("POSTROUTING", 2),
            ("AWS-CONNMARK-CHAIN-0", 3),
            ("AWS-SNAT-CHAIN-0", 3),
            ("KUBE-MARK-MASQ", 1),
            ("KUBE-POSTROUTING", 3),
            ("KUBE-SERVICES", 7),
        ]
    );
    let post = nat.chain("POSTROUTING").unwrap();
    assert_eq!(post.policy.as_deref(), Some("ACCEPT"));
    assert_eq!((post.packets, post.bytes), (Some(7), Some(488)));
    assert_eq!(nat.chain("AWS-SNAT-CHAIN-0").unwrap().policy, None);

    let snat = rules_of(nat, "AWS-SNAT-CHAIN-0");
    assert_eq!(
        snat.iter()
            .map(|r| r.comment().unwrap())
            .collect::<Vec<_>>(),
        ["AWS SNAT CHAIN EXCLUSION", "AWS SNAT CHAIN", "AWS, SNAT"]
    );
    assert_eq!((snat[0].packets, snat[0].bytes), (Some(5), Some(300)));
    assert_eq!((snat[1].packets, snat[1].bytes), (Some(1), Some(60)));
    assert_eq!(snat[0].value("-d"), Some("10.0.0.0/8"));
    assert_eq!(snat[0].target.as_deref(), Some("RETURN"));
    let last = &snat[2];
    assert!(last.raw.starts_with("[0:0] -A AWS-SNAT-CHAIN-0 ! -o vlan+"));
    assert_eq!(
        last.matches,
        [
            a(None, "-o", true, &["vlan+"]),
            a(Some("comment"), "--comment", false, &["AWS, SNAT"]),
            a(Some("addrtype"), "--dst-type", true, &["LOCAL"]),
        ]
    );
    assert_eq!(last.target.as_deref(), Some("SNAT"));
    assert_eq!(
        last.target_options,
        [
            a(None, "--to-source", false, &["192.168.1.251"]),
            a(None, "--random-fully", false, &[]),
        ]
    );
    let pre = rules_of(nat, "PREROUTING");
    assert_eq!(pre[1].value("-i"), Some("eni+"));
    assert_eq!(pre[1].target.as_deref(), Some("AWS-CONNMARK-CHAIN-0"));
    assert_eq!(
        pre[2].target_options,
        [
            a(None, "--restore-mark", false, &[]),
            a(None, "--nfmask", false, &["0x80"]),
            a(None, "--ctmask", false, &["0x80"]),
        ]
    );
    let ks = rules_of(nat, "KUBE-SERVICES");
    assert_eq!(ks[3].value("--dports"), Some("80,443"));
    assert_eq!(
        ks[3].arg("--state").unwrap().module.as_deref(),
        Some("state")
    );
    assert_eq!(ks[3].comment(), Some("kube-system/kube-dns:dns"));
    assert!(ks[4].goto);
    assert!(ks[4].arg("-s").unwrap().negated);
    assert_eq!(ks[4].comment(), Some(r#"name: "aws-cni" id: "abc123""#));
    assert_eq!(ks[6].target, None);
    let kp = rules_of(nat, "KUBE-POSTROUTING");
    assert!(kp[0].arg("--mark").unwrap().negated);

    let mangle = d.table("mangle").unwrap();
    let m = rules_of(mangle, "PREROUTING");
    assert_eq!(m.len(), 3);
    assert_eq!(
        m[0].matches,
        [
            a(None, "-i", false, &["eth0"]),
            a(Some("comment"), "--comment", false, &["AWS, primary ENI"]),
            a(Some("addrtype"), "--dst-type", false, &["LOCAL"]),
            a(Some("addrtype"), "--limit-iface-in", false, &[]),
        ]
    );
    assert_eq!(
        m[0].target_options,
        [a(None, "--set-xmark", false, &["0x80/0x80"])]
    );
    let out = rules_of(mangle, "OUTPUT");
    assert_eq!(
        (out[0].packets, out[0].bytes),
        (Some(300_012), Some(42_600_600))
    );
}

#[test]
fn netns_nft_save_without_counters() {
    let d = only_dump(&read("netns/nft-save.txt"));
    assert_eq!(d.backend, Backend::Nft);
    assert!(!d.has_counters);
    let nat = d.table("nat").unwrap();
    // Policy counters are printed without -c too; user chains have none.
    assert_eq!(nat.chain("POSTROUTING").unwrap().packets, Some(7));
    assert_eq!(nat.chain("KUBE-SERVICES").unwrap().packets, None);
    assert!(nat
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .all(|r| r.packets.is_none()));
    let with = only_dump(&read("netns/nft-save-c.txt"));
    for t in &d.tables {
        assert_same_rules(
            "nft save vs save -c",
            t,
            with.table(&t.name).unwrap(),
            false,
        );
    }
}

#[test]
fn netns_legacy_save_headers_and_same_rules_as_nft() {
    let legacy = only_dump(&read("netns/legacy-save-c.txt"));
    // iptables 1.8.9's legacy build prints `# Generated by iptables-save v1.8.9 on …`.
    assert_eq!(legacy.backend, Backend::Legacy);
    assert_eq!(legacy.version.as_deref(), Some("1.8.9"));
    assert!(legacy.has_counters);
    let nft = only_dump(&read("netns/nft-save-c.txt"));
    // Same rules programmed into both backends; legacy lists tables in another order.
    for t in &nft.tables {
        let l = legacy.table(&t.name).unwrap();
        assert_same_rules(&format!("legacy vs nft {}", t.name), l, t, false);
    }
    let plain = only_dump(&read("netns/legacy-save.txt"));
    assert_eq!(plain.backend, Backend::Legacy);
    // Legacy save without -c still prints real chain counters.
    let post = plain.table("nat").unwrap().chain("POSTROUTING").unwrap();
    assert_eq!(post.packets, Some(7));
}

#[test]
fn netns_concatenated_and_default_save() {
    let p = parse_save(&read("netns/concat-legacy-then-nft-c.txt"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let backends: Vec<Backend> = p.value.iter().map(|d| d.backend).collect();
    assert_eq!(backends, [Backend::Legacy, Backend::Nft]);
    assert_eq!(p.value[0].tables.len(), 3);
    assert_eq!(p.value[1].tables.len(), 3);
    assert_eq!(p.value[0].rule_count(), p.value[1].rule_count());

    // `iptables-save` (nft build) with the legacy warning on top.
    let d = only_dump(&read("netns/default-save-c.txt"));
    assert_eq!(d.backend, Backend::Nft);
    assert_eq!(d.rule_count(), 28);
}

#[test]
fn netns_same_rules_in_save_spec_and_list() {
    let save = only_dump(&read("netns/nft-save-c.txt"));
    let nat = save.table("nat").unwrap();

    let s = parse_spec(&read("netns/nft-nat-S.txt"), "nat");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_same_rules("save vs -S", nat, &s.value, false);

    let sv = parse_spec(&read("netns/nft-nat-S-v.txt"), "nat");
    assert!(sv.warnings.is_empty(), "{:?}", sv.warnings);
    assert_same_rules("save -c vs -S -v", nat, &sv.value, true);

    let l = parse_list(&read("netns/nft-nat-L-n-v.txt"), "nat");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_same_rules("save -c vs -L -n -v", nat, &l.value, true);

    let lx = parse_list(&read("netns/nft-nat-L-n-v-x-line-numbers.txt"), "nat");
    assert!(lx.warnings.is_empty(), "{:?}", lx.warnings);
    assert_same_rules("save -c vs -L -x --line-numbers", nat, &lx.value, true);

    let legacy = only_dump(&read("netns/legacy-save-c.txt"));
    let lnat = legacy.table("nat").unwrap();
    let lsv = parse_spec(&read("netns/legacy-nat-S-v.txt"), "nat");
    assert_same_rules("legacy save -c vs -S -v", lnat, &lsv.value, true);
    let llx = parse_list(&read("netns/legacy-nat-L-n-v-x-line-numbers.txt"), "nat");
    assert_same_rules("legacy save -c vs -L -x", lnat, &llx.value, true);

    let mangle = save.table("mangle").unwrap();
    let ms = parse_spec(&read("netns/nft-mangle-S.txt"), "mangle");
    assert_same_rules("mangle save vs -S", mangle, &ms.value, false);
    // -L without -x rounds 300012 packets to 300K: compare structure only, counters apart.
    let ml = parse_list(&read("netns/nft-mangle-L-n-v.txt"), "mangle");
    assert!(ml.warnings.is_empty(), "{:?}", ml.warnings);
    assert_same_rules("mangle save vs -L", mangle, &ml.value, false);
    let out = &ml.value.chain("OUTPUT").unwrap().rules[0];
    assert_eq!((out.packets, out.bytes), (Some(300_000), Some(43_000_000)));

    let fl = parse_list(&read("netns/nft-filter-L-n-v.txt"), "filter");
    assert_same_rules(
        "filter save vs -L",
        save.table("filter").unwrap(),
        &fl.value,
        true,
    );
    let rej = &fl.value.chain("FORWARD").unwrap().rules[0];
    assert_eq!(rej.value("--ctstate"), Some("NEW"));
    assert_eq!(
        rej.target_arg("--reject-with").unwrap().values,
        ["icmp-port-unreachable"]
    );
}

#[test]
fn netns_filter_extras_same_in_save_and_list() {
    let d = only_dump(&read("netns/nft-filter-extras-save.txt"));
    let filter = d.table("filter").unwrap();
    let l = parse_list(&read("netns/nft-filter-extras-L-n-v.txt"), "filter");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_same_rules("filter extras save vs -L", filter, &l.value, false);
    let out = rules_of(filter, "OUTPUT");
    assert_eq!(out[0].value("--icmp-type"), Some("8"));
    assert_eq!(out[0].value("--limit"), Some("3/hour"));
    assert_eq!(out[1].value("--uid-owner"), Some("1000"));
    assert_eq!(out[2].value("--sport"), Some("1024:65535"));
}

#[test]
fn netns_chained_layout_v1_12_0_legacy() {
    let d = only_dump(&read("netns/legacy-chained-v1.12.0-save.txt"));
    assert_eq!(d.backend, Backend::Legacy);
    assert!(!d.has_counters);
    let nat = d.table("nat").unwrap();
    let pre = rules_of(nat, "PREROUTING");
    assert_eq!(pre[0].value("--state"), Some("NEW"));
    assert_eq!(
        pre[0].arg("--state").unwrap().module.as_deref(),
        Some("state")
    );
    for (chain, cidr, next) in [
        ("AWS-SNAT-CHAIN-0", "192.168.0.0/16", "AWS-SNAT-CHAIN-1"),
        ("AWS-SNAT-CHAIN-1", "100.64.0.0/16", "AWS-SNAT-CHAIN-2"),
        (
            "AWS-CONNMARK-CHAIN-0",
            "192.168.0.0/16",
            "AWS-CONNMARK-CHAIN-1",
        ),
        (
            "AWS-CONNMARK-CHAIN-1",
            "100.64.0.0/16",
            "AWS-CONNMARK-CHAIN-2",
        ),
    ] {
        let r = rules_of(nat, chain);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].matches[0], a(None, "-d", true, &[cidr]));
        assert_eq!(r[0].target.as_deref(), Some(next));
    }
    let last = &rules_of(nat, "AWS-SNAT-CHAIN-2")[0];
    assert!(last.has_target_option("--random"));
    assert!(!last.has_target_option("--random-fully"));

    let l = parse_list(&read("netns/legacy-chained-v1.12.0-nat-L-n-v.txt"), "nat");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_same_rules("chained save vs -L", nat, &l.value, false);
    let s = parse_spec(&read("netns/legacy-chained-v1.12.0-nat-S.txt"), "nat");
    assert_same_rules("chained save vs -S", nat, &s.value, false);
}

#[test]
fn netns_kube_proxy_heavy() {
    let d = only_dump(&read("netns/nft-kube-proxy-save-c.txt"));
    let nat = d.table("nat").unwrap();
    assert_eq!(d.rule_count(), 104);
    let svc = nat
        .chains
        .iter()
        .find(|c| c.name.starts_with("KUBE-SVC-") && c.rules.len() == 4)
        .unwrap();
    let prob = svc.rules[1].arg("--probability").unwrap();
    assert_eq!(prob.module.as_deref(), Some("statistic"));
    assert_eq!(prob.values, ["0.33333333349"]);
    assert_eq!(svc.rules[3].arg("--probability"), None);
    let sep = nat
        .chains
        .iter()
        .find(|c| c.name.starts_with("KUBE-SEP-"))
        .unwrap();
    // `-p tcp -m tcp` with no tcp option keeps a `-m` trace.
    assert_eq!(sep.rules[1].matches[2].option, "-m");
    assert_eq!(sep.rules[1].target.as_deref(), Some("DNAT"));
    let l = parse_list(&read("netns/nft-kube-proxy-nat-L-n-v.txt"), "nat");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_same_rules("kube-proxy save vs -L", nat, &l.value, true);
    let s = parse_spec(&read("netns/nft-kube-proxy-nat-S.txt"), "nat");
    assert_same_rules("kube-proxy save vs -S", nat, &s.value, false);
}

#[test]
fn groundtruth_samples() {
    let p = parse_save(&read("groundtruth/A-default-v1.16.2-v1.22.save.txt"));
    let d = &p.value[0];
    assert_eq!(d.backend, Backend::Unknown);
    assert_eq!(d.version, None);
    let nat = d.table("nat").unwrap();
    let snat = rules_of(nat, "AWS-SNAT-CHAIN-0");
    assert_eq!(snat.len(), 2);
    assert_eq!(
        snat[1].target_arg("--to-source").unwrap().values,
        ["192.168.1.251"]
    );
    assert_eq!(
        rules_of(nat, "POSTROUTING")[1].comment(),
        Some("AWS SNAT CHAIN")
    );
    assert_eq!(rules_of(d.table("mangle").unwrap(), "PREROUTING").len(), 3);
    // Only the undeclared KUBE-* chains warn (built-ins are never declared in excerpts).
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);

    let b = only_dump(&read("groundtruth/B-exclusions.save.txt"));
    let nat = b.table("nat").unwrap();
    let snat = rules_of(nat, "AWS-SNAT-CHAIN-0");
    let dests: Vec<&str> = snat.iter().filter_map(|r| r.value("-d")).collect();
    assert_eq!(dests, ["172.16.0.0/12", "10.0.0.0/8", "192.168.0.0/16"]);
    assert_eq!(snat[0].comment(), Some("AWS SNAT CHAIN EXCLUSION"));
    let cm = rules_of(nat, "AWS-CONNMARK-CHAIN-0");
    assert_eq!(cm[0].comment(), Some("AWS CONNMARK CHAIN, EXCLUDED CIDR"));
    assert_eq!(
        cm[3].target_options,
        [a(None, "--set-xmark", false, &["0x80/0x80"])]
    );

    let c = only_dump(&read("groundtruth/C-chained-v1.12.1-v1.16.0.save.txt"));
    let nat = c.table("nat").unwrap();
    let r = &rules_of(nat, "AWS-SNAT-CHAIN-0")[0];
    assert_eq!(r.matches[0], a(None, "-d", true, &["192.168.0.0/16"]));
    assert_eq!(r.target.as_deref(), Some("AWS-SNAT-CHAIN-1"));

    let v = only_dump(&read("groundtruth/v1.23-legacy-comments.save.txt"));
    assert_eq!(v.backend, Backend::Legacy);
    assert_eq!(v.version.as_deref(), Some("1.8.4"));
    let nat = v.table("nat").unwrap();
    assert_eq!(nat.chain("PREROUTING").unwrap().packets, Some(120));
    let cm = rules_of(nat, "AWS-CONNMARK-CHAIN-0");
    assert_eq!(cm[0].comment(), Some("AWS CONNMARK CHAIN"));
    assert_eq!((cm[0].packets, cm[0].bytes), (Some(4), Some(240)));
    let excl = &rules_of(nat, "AWS-SNAT-CHAIN-0")[0];
    assert_eq!(excl.arg("-d"), None);
    assert_eq!(excl.comment(), Some("AWS SNAT CHAIN EXCLUSION"));
    let e4 = rules_of(nat, "POSTROUTING").last().unwrap();
    assert_eq!(
        e4.comment(),
        Some(r#"name: "aws-cni" id: "0123456789abcdef""#)
    );
    assert_eq!(e4.value("-s"), Some("169.254.172.10/32"));
}

#[test]
fn real_world_pastes() {
    let p = parse_any(
        &read("real-world/collapsed-aws-snat-chain-paste.txt"),
        "nat",
    )
    .unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let t = &p.value[0].tables[0];
    assert_eq!(t.name, "nat");
    let r = rules_of(t, "AWS-SNAT-CHAIN-0");
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].packets, r[0].bytes), (Some(1), Some(84)));
    assert_eq!(r[0].value("-d"), Some("172.20.0.0/16"));
    assert_eq!(r[0].comment(), Some("AWS SNAT CHAIN EXCLUSION"));
    assert_eq!(r[1].value("-d"), Some("192.168.0.0/16"));

    let m = parse_list(&read("real-world/pr304-mangle-nvL.txt"), "mangle");
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let pre = m.value.chain("PREROUTING").unwrap();
    assert_eq!((pre.packets, pre.bytes), (Some(25_324), Some(8_496_000)));
    assert_eq!(pre.rules[0].value("-i"), Some("ens5"));
    assert!(pre.rules[0].arg("--limit-iface-in").is_some());
    assert_eq!(pre.rules[1].target_options.len(), 3);

    let v6 = parse_list(&read("real-world/mailcow-5721-ip6tables-nvL.txt"), "filter");
    assert!(v6.warnings.is_empty(), "{:?}", v6.warnings);
    let fwd = rules_of(&v6.value, "FORWARD");
    assert_eq!(fwd.len(), 11);
    assert_eq!(fwd[3].value("-o"), Some("br-mailcow"));
    assert_eq!(fwd[3].value("--ctstate"), Some("RELATED,ESTABLISHED"));
    assert!(fwd[5].arg("-o").unwrap().negated);
    assert_eq!(fwd[0].packets, Some(349_000));

    let v6b = parse_list(&read("real-world/mailcow-5348-ip6tables-nvL.txt"), "filter");
    let dk = rules_of(&v6b.value, "DOCKER");
    assert_eq!(dk[0].value("-d"), Some("fd4d:6169:6c63:6f77::f/128"));
    assert_eq!(dk[0].value("--dport"), Some("443"));
    assert!(dk[0].arg("-i").unwrap().negated);

    let e = parse_any(
        &read("real-world/eks-log-collector-iptables-nat.txt"),
        "nat",
    )
    .unwrap();
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    assert_eq!(e.value[0].rule_count(), 23);
    assert!(e.value[0].has_counters);

    let k = parse_any(
        &read("real-world/issue407-kube-proxy-statistic.save.txt"),
        "nat",
    )
    .unwrap();
    let t = &k.value[0].tables[0];
    assert_eq!(t.chains.len(), 3);
    assert_eq!(t.chains[0].rules[0].value("--mode"), Some("random"));
    assert!(k.warnings.is_empty(), "{:?}", k.warnings);
    // Given the wrong table, the grep'd save (kube-proxy KUBE-SVC chains) is nat, with a
    // single warning saying so.
    let k = parse_any(
        &read("real-world/issue407-kube-proxy-statistic.save.txt"),
        "filter",
    )
    .unwrap();
    assert_eq!(k.value[0].tables[0].name, "nat");
    assert_eq!(k.warnings.len(), 1, "{:?}", k.warnings);
    assert!(k.warnings[0].message.contains("assuming table nat"));

    // Block-quoted `-S`: the quoted first line's policy is kept.
    let m = parse_any(
        &read("real-world/mailcow-2071-blockquoted-filter-S.txt"),
        "filter",
    )
    .unwrap();
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let f = &m.value[0].tables[0];
    assert_eq!(f.name, "filter");
    assert_eq!(f.chain("INPUT").unwrap().policy.as_deref(), Some("ACCEPT"));
    assert_eq!(f.chain("FORWARD").unwrap().policy.as_deref(), Some("DROP"));
}

/// `index_save` warns exactly when `parse_save` does, and on a clean dump keeps its chains
/// and counters, and its chains' indexed rules, parsed again, are exactly `parse_save`'s
/// rules — on every fixture, on the same text with CRLF line ends and with blank lines
/// between the rules of one chain.
#[test]
fn index_save_then_indexed_rules_is_parse_save() {
    let mut texts: Vec<(String, String)> = Vec::new();
    for (name, text) in all_fixtures() {
        texts.push((format!("{name} (crlf)"), text.replace('\n', "\r\n")));
        texts.push((
            format!("{name} (blank lines)"),
            text.replace("\n-A ", "\n\n-A ").replace("\n[", "\n\n["),
        ));
        texts.push((name, text));
    }
    let mut indexed_rules_seen = 0;
    for (name, text) in &texts {
        let eager = parse_save(text);
        let index = parsers::iptables::index_save(text).unwrap();
        // The index's structure is only promised for a clean dump (a headerless paste names
        // its table from its rules, which the index does not keep): callers take
        // `parse_save` when there is any warning.
        assert_eq!(
            index.warnings.is_empty(),
            eager.warnings.is_empty(),
            "{name}: warnings"
        );
        if !eager.warnings.is_empty() {
            continue;
        }
        assert_eq!(index.value.len(), eager.value.len(), "{name}: dumps");
        let mut names = model::name::Interner::default();
        for (d, e) in index.value.iter().zip(&eager.value) {
            assert_eq!(
                (d.backend, &d.version, d.has_counters),
                (e.backend, &e.version, e.has_counters),
                "{name}"
            );
            assert_eq!(d.tables.len(), e.tables.len(), "{name}: tables");
            for (td, te) in d.tables.iter().zip(&e.tables) {
                assert_eq!(td.name, te.name, "{name}");
                assert_eq!(td.chains.len(), te.chains.len(), "{name} {}", td.name);
                for (cd, ce) in td.chains.iter().zip(&te.chains) {
                    assert!(cd.rules.is_empty(), "{name}: index keeps no rules");
                    assert_eq!(
                        (&cd.name, &cd.policy, cd.packets, cd.bytes),
                        (&ce.name, &ce.policy, ce.packets, ce.bytes),
                        "{name}"
                    );
                    let again: Vec<IptRule> =
                        parsers::iptables::indexed_rules(text, cd, &mut names).collect();
                    assert_eq!(again, ce.rules, "{name}: {} {}", td.name, cd.name);
                    assert!(ce.rule_lines.is_empty(), "parse_save keeps no spans");
                    indexed_rules_seen += again.len();
                }
            }
        }
    }
    assert!(
        indexed_rules_seen > 500,
        "only {indexed_rules_seen} rules indexed"
    );
}
