//! Scenarios on emulated nodes in the configurations real clusters run (prefix delegation,
//! security groups for pods, custom networking, IPv6 mode): each healthy node gets no
//! warning/error, and each injected fault (real kernel state) is reported by its rule; the
//! kernel itself (`ip route get`, `ip rule`) is asked what the fault changed.
//!
//! Needs root, `ip`, `iptables-nft`, `ip6tables-nft` and the `node-agent` and `cni-doubles`
//! binaries of the same profile (`cargo build --workspace --bins`). Without root the scenarios
//! print why and pass vacuously; with `CI` set or `EKD_SCENARIOS=require` they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use e2e::node::{EksNode, EksNodeBuilder};
use model::{NodeReport, Severity, Snapshot};

fn agent() -> PathBuf {
    e2e::doubles::sibling_bin(
        "node-agent",
        "EKD_NODE_AGENT",
        "cargo build --workspace --bins",
    )
    .expect("node-agent binary")
}

fn node(b: EksNodeBuilder) -> Option<EksNode> {
    let why = if !e2e::prereq::is_root() {
        Some("scenarios need root (network namespaces)".to_string())
    } else {
        [
            e2e::doubles::doubles_bin(),
            e2e::doubles::sibling_bin(
                "node-agent",
                "EKD_NODE_AGENT",
                "cargo build --workspace --bins",
            ),
        ]
        .into_iter()
        .find_map(|b| b.err().map(|e| format!("{e:#}")))
    };
    if let Some(why) = why {
        // The one CI-aware rule: a skip locally, a failure on CI or with EKD_SCENARIOS=require.
        e2e::prereq::skip(&format!("scenario: {why}"));
        return None;
    }
    Some(b.build().unwrap_or_else(|e| panic!("emulated node: {e:#}")))
}

fn collect(n: &EksNode) -> Snapshot {
    let mut argv: Vec<String> = vec![agent().display().to_string(), "collect".into()];
    argv.extend(n.config().agent_args());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = n.exec(&argv).expect("run node-agent");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node-agent failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    Snapshot::from_json(&stdout).expect("snapshot JSON")
}

fn loud(r: &NodeReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| {
            format!(
                "{} [{}]: {} {:?}",
                f.rule,
                f.severity,
                f.summary,
                f.evidence.iter().map(|e| &e.text).collect::<Vec<_>>()
            )
        })
        .collect()
}

#[track_caller]
fn assert_healthy(n: &EksNode) -> NodeReport {
    let r = analysis::analyze(&collect(n));
    assert!(
        loud(&r).is_empty(),
        "healthy emulated node produced: {:#?}\nskipped: {:#?}",
        loud(&r),
        r.skipped
    );
    r
}

/// `id` fires at `sev` with evidence naming `needle`; every other warning/error is in `also`.
#[track_caller]
fn assert_fires(n: &EksNode, id: &str, sev: Severity, needle: &str, also: &[&str]) {
    let r = analysis::analyze(&collect(n));
    let hits: Vec<_> = r.findings.iter().filter(|f| f.rule == id).collect();
    assert!(
        hits.iter().any(|f| f.severity == sev),
        "{id} did not fire at {sev}; findings: {:#?}\nskipped: {:#?}",
        loud(&r),
        r.skipped
    );
    assert!(
        hits.iter()
            .flat_map(|f| &f.evidence)
            .any(|e| e.text.contains(needle))
            || hits.iter().any(|f| f.summary.contains(needle)),
        "{id} does not name {needle}: {hits:#?}"
    );
    let others: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            f.severity >= Severity::Warning && f.rule != id && !also.contains(&f.rule.as_str())
        })
        .map(|f| format!("{}: {}", f.rule, f.summary))
        .collect();
    assert!(
        others.is_empty(),
        "{id}: unexpected other findings {others:#?}"
    );
}

/// `ip route get <dst> from <src> iif <iif>` in the node: what the kernel would do with a
/// packet the pod sends.
fn route_get(n: &EksNode, dst: &str, src: &str, iif: &str) -> String {
    n.ip(&["route", "get", dst, "from", src, "iif", iif])
        .unwrap_or_else(|e| format!("{e:#}"))
}

#[test]
fn prefix_delegation_node() {
    let Some(mut n) = node(EksNode::builder().prefix_delegation(true)) else {
        return;
    };
    let c = n.config().clone();
    // Pods' addresses come from the ENIs' /28 prefixes.
    for p in &c.pods {
        let eni = c.eni(p.eni_device).unwrap();
        assert!(
            eni.prefixes[0].contains(&p.ip),
            "{} not in {:?}",
            p.ip,
            eni.prefixes
        );
    }
    n.generate_traffic().unwrap();
    let r = assert_healthy(&n);
    assert!(
        r.evaluated.iter().any(|e| e == "route.pod-rule-missing"),
        "{:?}",
        r.skipped
    );
    let i = c.pods.iter().position(|p| p.eni_device == 1).unwrap();
    let p = &c.pods[i];
    let peer = c.vpc_peer.to_string();
    let before = route_get(&n, &peer, &p.ip.to_string(), &p.veth);
    assert!(
        before.contains("dev eth1") && before.contains("table 2"),
        "{before}"
    );
    // Fault: the prefix pod's 1536 rule is gone; the kernel now sends its VPC traffic out of
    // the primary ENI, which does not own the address.
    n.fault_delete_from_pod_rule(i).unwrap();
    let after = route_get(&n, &peer, &p.ip.to_string(), &p.veth);
    assert!(after.contains(&format!("dev {}", c.primary_if)), "{after}");
    assert_fires(
        &n,
        "route.pod-rule-missing",
        Severity::Error,
        &p.ip.to_string(),
        &[],
    );
}

#[test]
fn custom_networking_node() {
    let Some(mut n) = node(EksNode::builder().custom_networking("100.64.0.0/16")) else {
        return;
    };
    let c = n.config().clone();
    let custom: ipnet::Ipv4Net = "100.64.0.0/16".parse().unwrap();
    assert!(c.vpc_cidrs.contains(&custom));
    assert!(c
        .pods
        .iter()
        .all(|p| custom.contains(&p.ip) && p.eni_device == 1));
    assert!(custom.contains(&c.vpc_peer));
    n.generate_traffic().unwrap();
    let r = assert_healthy(&n);
    for id in [
        "snat.vpc-cidr-not-excluded",
        "ipamd.custom-networking-primary-subnet",
    ] {
        assert!(
            r.evaluated.iter().any(|e| e == id),
            "{id} not evaluated: {:?}",
            r.skipped
        );
    }
    // Fault: the secondary CIDR's RETURN is gone (as when the CIDR was associated after
    // aws-node started and never picked up): pod → 100.64 peer traffic is now SNATed.
    n.fault_drop_vpc_return("100.64.0.0/16", true).unwrap();
    assert!(n.ping_from(0, c.vpc_peer).unwrap());
    let ct = n
        .exec_ok(&[
            "conntrack",
            "-L",
            "-p",
            "icmp",
            "-s",
            &c.pods[0].ip.to_string(),
            "-d",
            &c.vpc_peer.to_string(),
        ])
        .unwrap();
    assert!(
        ct.contains(&format!("dst={}", c.primary_ip)),
        "no SNATed flow in conntrack:\n{ct}"
    );
    assert_fires(
        &n,
        "snat.vpc-cidr-not-excluded",
        Severity::Error,
        "100.64.0.0/16",
        &["snat.observed-unexpected"],
    );
}

#[test]
fn security_groups_for_pods_node() {
    let Some(mut n) = node(EksNode::builder().security_groups_for_pods(1)) else {
        return;
    };
    let c = n.config().clone();
    let i = c.pods.iter().position(|p| p.branch.is_some()).unwrap();
    let p = c.pods[i].clone();
    let b = p.branch.clone().unwrap();
    assert!(
        p.veth.starts_with("vlan") && p.veth.len() == 15,
        "{}",
        p.veth
    );
    n.generate_traffic().unwrap();
    let rules = n.ip(&["rule"]).unwrap();
    for want in [
        format!("10:\tfrom all iif {} lookup {}", b.vlan_link, b.table),
        format!("10:\tfrom all iif {} lookup {}", p.veth, b.table),
        "20:\tfrom all lookup local".to_string(),
    ] {
        assert!(rules.contains(&want), "{want:?} not in:\n{rules}");
    }
    assert!(!rules.starts_with("0:"), "{rules}");
    let r = assert_healthy(&n);
    assert!(
        r.evaluated.iter().any(|e| e == "route.branch-eni"),
        "{:?}",
        r.skipped
    );
    // The kernel routes the branch pod's traffic out of its VLAN.
    let out = route_get(&n, &c.internet_host.to_string(), &p.ip.to_string(), &p.veth);
    assert!(out.contains(&format!("dev {}", b.vlan_link)), "{out}");

    // Fault 1: the VLAN's iif rule is gone: replies arriving on the branch ENI are looked up
    // in main, which has no route to the pod.
    n.fault_delete_vlan_rule(i).unwrap();
    let back = n
        .ip(&[
            "route",
            "get",
            &p.ip.to_string(),
            "from",
            &c.internet_host.to_string(),
            "iif",
            &b.vlan_link,
        ])
        .unwrap_or_else(|e| format!("{e:#}"));
    assert!(!back.contains(&format!("dev {}", p.veth)), "{back}");
    assert!(!n.ping_from(i, c.internet_host).unwrap());
    assert_fires(&n, "route.branch-eni", Severity::Error, &b.vlan_link, &[]);

    // Fault 2 (fresh node): the VLAN link is down; the kernel drops its table's routes.
    drop(n);
    let Some(n) = node(EksNode::builder().security_groups_for_pods(1)) else {
        return;
    };
    let b = n.config().pods[i].branch.clone().unwrap();
    n.fault_vlan_down(i).unwrap();
    let table = n
        .ip(&["route", "show", "table", &b.table.to_string()])
        .unwrap();
    assert!(!table.contains("default"), "{table}");
    assert_fires(&n, "route.branch-eni", Severity::Error, &b.vlan_link, &[]);
}

#[test]
fn ipv6_node() {
    let Some(mut n) = node(EksNode::builder().ipv6(true)) else {
        return;
    };
    let c = n.config().clone();
    let prefix = c.enis[0].ipv6.as_ref().unwrap().prefix;
    assert!(c
        .pods
        .iter()
        .all(|p| p.ipv6.is_some_and(|a| prefix.contains(&a))));
    n.generate_traffic().unwrap();
    // No AWS SNAT/connmark chain in either family.
    let v4 = n.exec_ok(&[c.backend.save()]).unwrap();
    assert!(
        !v4.contains("AWS-SNAT-CHAIN") && v4.contains("Block Node Local Pod access via IPv4"),
        "{v4}"
    );
    let r = assert_healthy(&n);
    assert!(
        r.evaluated.iter().any(|e| e == "route.pod-rule-missing"),
        "{:?}",
        r.skipped
    );
    // Without ENABLE_IPv6 in the env (as in an eks-log-collector archive), IPv6 mode is
    // inferred from ipamd's IPv6-only pod addresses: still no SNAT/connmark alarm.
    let env_path = c.cni_env_file();
    let env = std::fs::read_to_string(&env_path).unwrap();
    let without: String = env
        .lines()
        .filter(|l| !l.starts_with("ENABLE_IPv6="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&env_path, without).unwrap();
    let r = assert_healthy(&n);
    assert!(
        format!("{:?}", r.skipped).contains("IPv6 cluster (inferred"),
        "{:?}",
        r.skipped
    );
    std::fs::write(&env_path, env).unwrap();
    let p = c.pods[0].clone();
    let ip6 = p.ipv6.unwrap().to_string();
    let rules = n.ip(&["-6", "rule"]).unwrap();
    assert!(
        rules.contains(&format!("512:\tfrom all to {ip6} lookup main")),
        "{rules}"
    );

    // Fault 1: the pod's `ip -6` 512 rule is gone.
    n.fault_delete_to_pod_rule6(0).unwrap();
    assert!(!n.ip(&["-6", "rule"]).unwrap().contains(&ip6));
    assert_fires(&n, "route.pod-rule-missing", Severity::Error, &ip6, &[]);

    // Fault 2 (fresh node): the pod's IPv6 host route is gone; the kernel now sends traffic
    // for the pod to the VPC router.
    drop(n);
    let Some(n) = node(EksNode::builder().ipv6(true)) else {
        return;
    };
    let p = n.config().pods[0].clone();
    let before = n.ip(&["-6", "route", "get", &ip6]).unwrap();
    assert!(before.contains(&format!("dev {}", p.veth)), "{before}");
    n.fault_delete_pod_route6(0).unwrap();
    let after = n.ip(&["-6", "route", "get", &ip6]).unwrap();
    assert!(after.contains(&format!("dev {}", c.primary_if)), "{after}");
    assert_fires(&n, "route.pod-route-missing", Severity::Error, &ip6, &[]);
}
