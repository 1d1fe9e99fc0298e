//! Fleet rules and the SNAT / route views.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod common;

use common::*;
use model::Severity;

fn named(mut n: model::Snapshot, name: &str) -> model::Snapshot {
    n.hostname = name.into();
    n
}

#[test]
fn identical_nodes_have_no_fleet_findings() {
    let a = named(NodeA::default().build(), "a");
    // Same settings spelled differently (prng vs 2, 0x80 vs 128) are not drift.
    let mut b = NodeA::default()
        .set_env("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "prng")
        .set_env("AWS_VPC_K8S_CNI_CONNMARK", "0x80");
    b.enis = None;
    b.routes = String::new();
    let b = named(b.build(), "b");
    let f = analysis::analyze_fleet(&[&a, &b]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn drift_is_reported_on_the_odd_node() {
    let a = named(NodeA::default().build(), "a");
    let b = named(NodeA::default().build(), "b");
    let mut c = NodeA::default().set_env("AWS_VPC_K8S_CNI_EXTERNALSNAT", "true");
    c.enis = None;
    c.routes = String::new();
    let c = named(c.build(), "c");
    let f: Vec<_> = analysis::analyze_fleet(&[&a, &b, &c])
        .into_iter()
        .filter(|f| f.rule == "fleet.config-drift")
        .collect();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].rule, "fleet.config-drift");
    assert_eq!(f[0].node, "c");
    assert!(f[0]
        .summary
        .contains("AWS_VPC_K8S_CNI_EXTERNALSNAT is true here but false on 2 other node(s)"));
}

#[test]
fn same_pod_ip_on_two_nodes() {
    let a = named(NodeA::default().build(), "a");
    let b = named(NodeA::default().build(), "b");
    let f = analysis::analyze_fleet(&[&a, &b]);
    let dups: Vec<_> = f
        .iter()
        .filter(|f| f.rule == "fleet.duplicate-pod-ip")
        .collect();
    // Two pod IPs, one finding per node each.
    assert_eq!(dups.len(), 4, "{f:#?}");
    assert!(dups.iter().all(|f| f.severity == Severity::Error));
    assert!(dups
        .iter()
        .any(|f| f.node == "a" && f.summary.contains("192.168.5.10")));
}

#[test]
fn catalogue_lists_fleet_rules() {
    let ids: Vec<_> = analysis::catalogue().iter().map(|r| r.id).collect();
    for id in [
        "fleet.config-drift",
        "fleet.duplicate-pod-ip",
        "fleet.node-unreachable",
        "snat.chain-missing",
        "ipamd.not-ready",
    ] {
        assert!(ids.contains(&id), "{id}");
    }
}

#[test]
fn snat_view_of_healthy_node() {
    let s = NodeA::default().build();
    let r = analysis::analyze(&s);
    let v = analysis::views::snat_view(&s, &r);
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["mode"], "snat");
    assert_eq!(j["layout"], "single");
    assert_eq!(v.to_source, vec!["192.168.1.251".to_string()]);
    assert_eq!(v.to_source_ok, Some(true));
    assert_eq!(v.random_flag.as_deref(), Some("--random-fully"));
    assert_eq!(v.random_ok, Some(true));
    assert!(v.missing_cidrs.is_empty() && v.unexpected_cidrs.is_empty());
    assert_eq!(v.cidrs.len(), 1);
    assert!(v.connmark.nat_prerouting_jump && v.connmark.nat_restore && v.connmark.chain_set_mark);
    assert_eq!(v.connmark.mangle_rules, Some(3));
    assert!(v.connmark.fwmark_rule.is_some());
    let snat = v
        .counters
        .iter()
        .find(|c| c.location == "nft nat AWS-SNAT-CHAIN-0 #2")
        .unwrap();
    assert_eq!((snat.packets, snat.bytes), (Some(20), Some(1200)));
    let ct = v.conntrack.unwrap();
    assert!(ct.missing_snat.is_empty() && ct.unexpected_snat.is_empty());
    let p = ct
        .by_pod
        .iter()
        .find(|p| p.pod.to_string() == "192.168.5.10")
        .unwrap();
    assert_eq!((p.external_flows, p.external_snat_flows), (1, 1));
    assert_eq!(ct.insert_failed, Some(0));
}

#[test]
fn snat_view_shows_missing_and_mismatch() {
    let mut n = NodeA::default()
        .set_env("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "10.0.0.0/8")
        .ipt_replace(
            "--to-source 192.168.1.251 --random-fully",
            "--to-source 192.168.9.9",
        );
    n.conntrack = n.conntrack.replace(
        "src=93.184.216.34 dst=192.168.1.251 sport=443 dport=40212",
        "src=93.184.216.34 dst=192.168.5.10 sport=443 dport=40212",
    );
    let s = n.build();
    let r = analysis::analyze(&s);
    let v = analysis::views::snat_view(&s, &r);
    assert_eq!(v.to_source_ok, Some(false));
    assert_eq!(v.random_ok, Some(false));
    assert_eq!(v.missing_cidrs, vec!["10.0.0.0/8".parse().unwrap()]);
    assert_eq!(v.conntrack.as_ref().unwrap().missing_snat.len(), 1);
    let ids: Vec<_> = v.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        ids.contains(&"snat.to-source-mismatch")
            && ids.contains(&"snat.random-mismatch")
            && ids.contains(&"snat.exclusion-missing")
    );
}

#[test]
fn route_view_per_pod_and_eni() {
    let mut n = NodeA::default();
    n.routes = n
        .routes
        .replace("default via 192.168.0.1 dev eth1 table 2\n", "");
    let s = n.build();
    let r = analysis::analyze(&s);
    let v = analysis::views::route_view(&s, &r);
    assert_eq!(v.pods.len(), 2);
    let p = v
        .pods
        .iter()
        .find(|p| p.ip.to_string() == "192.168.20.33")
        .unwrap();
    assert_eq!(p.veth.as_deref(), Some("eni4d5f75c480c"));
    assert_eq!((p.veth_exists, p.veth_up), (Some(true), Some(true)));
    assert_eq!(p.table, Some(2));
    assert_eq!(p.rule_512.len(), 1);
    assert_eq!(
        p.rule_1536,
        vec!["1536:\tfrom 192.168.20.33 lookup 2".to_string()]
    );
    assert_eq!(
        p.pod.as_deref(),
        Some("kube-system/coredns-5d78c9869d-abcde")
    );
    let e = v.enis.iter().find(|e| e.device_number == 1).unwrap();
    assert_eq!(e.table, 2);
    assert_eq!(
        e.routes,
        vec!["192.168.0.1 dev eth1 table 2 scope link".to_string()]
    );
    assert_eq!(e.problems.len(), 1, "{:#?}", v.findings);
    assert!(v.findings.iter().all(|f| f.rule.starts_with("route.")));
}

#[test]
fn version_spellings_are_not_drift() {
    let a = named(NodeA::default().build(), "a");
    let mut b = NodeA::default();
    b.version = Some("amazon-k8s-cni:v1.21.2-eksbuild.1".into());
    b.enis = None;
    b.routes = String::new();
    let b = named(b.build(), "b");
    let f = analysis::analyze_fleet(&[&a, &b]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn route_view_attaches_subnet_route_problem_to_its_eni() {
    let mut n = NodeA::default();
    n.routes
        .push_str("192.168.0.0/19 dev eth1 proto kernel scope link src 192.168.7.41\n");
    let s = n.build();
    let r = analysis::analyze(&s);
    let v = analysis::views::route_view(&s, &r);
    let e1 = v.enis.iter().find(|e| e.device_number == 1).unwrap();
    assert_eq!(e1.problems.len(), 1, "{:#?}", v.enis);
    let e0 = v.enis.iter().find(|e| e.device_number == 0).unwrap();
    assert!(e0.problems.is_empty(), "{:#?}", v.enis);
}

/// Without any CNI env (agentless runs, captures) drift still shows in what is programmed:
/// one node has not picked up a new exclusion CIDR.
#[test]
fn programmed_snat_drift_without_env() {
    let bare = |n: NodeA| {
        let mut n = n;
        n.env.clear();
        n.version = None;
        n.enis = None;
        n.routes = String::new();
        n
    };
    let exclusion = |n: NodeA| {
        n.ipt_replace(
            "[40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN",
            "[40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN\n[0:0] -A AWS-SNAT-CHAIN-0 -d 172.20.0.0/16 -m comment --comment \"AWS SNAT CHAIN EXCLUSION\" -j RETURN",
        )
    };
    let a = named(bare(exclusion(NodeA::default())).build(), "a");
    let b = named(bare(exclusion(NodeA::default())).build(), "b");
    let c = named(bare(NodeA::default()).build(), "c");
    let drift: Vec<_> = analysis::analyze_fleet(&[&a, &b, &c])
        .into_iter()
        .filter(|f| f.rule == "fleet.config-drift")
        .collect();
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert_eq!(drift[0].node, "c");
    assert!(
        drift[0].summary.contains("programmed SNAT RETURN CIDRs"),
        "{}",
        drift[0].summary
    );
    assert!(drift[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("172.20.0.0/16")));
    // And identical programmed state is no drift.
    let f = analysis::analyze_fleet(&[&a, &b]);
    assert!(f.iter().all(|f| f.rule != "fleet.config-drift"), "{f:#?}");
}
