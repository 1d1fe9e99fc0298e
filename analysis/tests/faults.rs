//! One fault per test on the healthy sample node: exactly the expected rule fires (at warning or
//! error), with the exact evidence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod common;

use common::*;
use model::{EvidenceKind, Severity};

const SNAT_LINE: &str = "[20:1200] -A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment \"AWS, SNAT\" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.1.251 --random-fully\n";
const JUMP_LINE: &str =
    "[60:3600] -A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0\n";
const VPC_RETURN: &str = "[40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN\n";

fn ev_texts(f: &model::Finding) -> Vec<String> {
    f.evidence
        .iter()
        .map(|e| format!("{} | {}", e.location.clone().unwrap_or_default(), e.text))
        .collect()
}

#[test]
fn snat_rule_flushed_is_chain_missing() {
    let n = NodeA::default().ipt_replace(SNAT_LINE, "");
    let f = assert_only(&n.build(), "snat.chain-missing");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(
        f[0].summary.contains("\"AWS, SNAT\" rule is missing"),
        "{}",
        f[0].summary
    );
    assert!(
        ev_texts(&f[0]).iter().any(|e| e.starts_with(
            "nft nat AWS-SNAT-CHAIN-0 #1 | [40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16"
        )),
        "{:#?}",
        ev_texts(&f[0])
    );
}

#[test]
fn postrouting_jump_missing_is_chain_missing_in_chained_layout_too() {
    let n = NodeA::chained().ipt_replace(
        "-A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0\n",
        "",
    );
    let f = assert_only(&n.build(), "snat.chain-missing");
    assert!(f[0].summary.contains("POSTROUTING jump"));
    assert!(f[0].summary.contains("legacy"));
}

#[test]
fn wrong_to_source() {
    let n = NodeA::default().ipt_replace(
        "--to-source 192.168.1.251 --random-fully",
        "--to-source 192.168.9.9 --random-fully",
    );
    let f = assert_only(&n.build(), "snat.to-source-mismatch");
    assert!(f[0].summary.contains("192.168.9.9") && f[0].summary.contains("192.168.1.251"));
    assert_eq!(
        f[0].evidence[0].location.as_deref(),
        Some("nft nat AWS-SNAT-CHAIN-0 #2")
    );
    assert!(f[0].evidence[0]
        .text
        .starts_with("[20:1200] -A AWS-SNAT-CHAIN-0"));
}

#[test]
fn wrong_to_source_chained() {
    let n = NodeA::chained().ipt_replace("--to-source 192.168.1.251", "--to-source 10.9.9.9");
    let f = assert_only(&n.build(), "snat.to-source-mismatch");
    assert_eq!(
        f[0].evidence[0].location.as_deref(),
        Some("legacy nat AWS-SNAT-CHAIN-1 #1")
    );
}

#[test]
fn secondary_vpc_cidr_not_returned() {
    let mut n = NodeA::default();
    n.vpc_cidrs = vec!["192.168.0.0/16", "100.64.0.0/16"];
    let f = assert_only(&n.build(), "snat.vpc-cidr-not-excluded");
    assert!(f[0].summary.contains("100.64.0.0/16"));
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.kind == EvidenceKind::Imds && e.text.contains("100.64.0.0/16")));
}

#[test]
fn configured_exclusion_not_programmed() {
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "10.0.0.0/8");
    let f = assert_only(&n.build(), "snat.exclusion-missing");
    assert!(f[0].summary.contains("10.0.0.0/8"));
}

#[test]
fn exclusion_zero_slash_zero_flap_mentions_3658() {
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "0.0.0.0/0");
    let f = assert_only(&n.build(), "snat.exclusion-missing");
    assert!(f[0].evidence.iter().any(|e| e.text.contains("#3658")));
}

#[test]
fn unexpected_exclusion_is_info() {
    let mut n = NodeA::default();
    n.iptables = fixture("iptables-single-excl.txt");
    let r = assert_healthy(&n.build());
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "snat.exclusion-unexpected")
        .collect();
    assert_eq!(f.len(), 2, "{:#?}", r.findings);
    assert!(f.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn inverted_return_from_blog_paste() {
    let n = NodeA::default().ipt_replace(VPC_RETURN, "[40:2400] -A AWS-SNAT-CHAIN-0 ! -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN\n");
    let f = assert_only(&n.build(), "snat.return-inverted");
    assert_eq!(f[0].evidence[0].text, "[40:2400] -A AWS-SNAT-CHAIN-0 ! -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN");
    assert_eq!(
        f[0].evidence[0].location.as_deref(),
        Some("nft nat AWS-SNAT-CHAIN-0 #1")
    );
}

#[test]
fn snat_rule_before_returns() {
    let n = NodeA::default()
        .ipt_replace(VPC_RETURN, "")
        .ipt_replace(SNAT_LINE, &format!("{SNAT_LINE}{VPC_RETURN}"));
    let f = assert_only(&n.build(), "snat.rule-order");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].summary.contains("shadows 1 RETURN"));
}

#[test]
fn duplicate_postrouting_jump() {
    let n = NodeA::default().ipt_replace(JUMP_LINE, &format!("{JUMP_LINE}{JUMP_LINE}"));
    let f = assert_only(&n.build(), "snat.rule-order");
    assert!(f[0].summary.contains("2 POSTROUTING jumps"));
    assert_eq!(f[0].evidence.len(), 2);
}

#[test]
fn random_flag_mismatch() {
    let n = NodeA::default().ipt_replace(
        "--to-source 192.168.1.251 --random-fully",
        "--to-source 192.168.1.251",
    );
    let f = assert_only(&n.build(), "snat.random-mismatch");
    assert!(f[0].summary.contains("none") && f[0].summary.contains("--random-fully"));
    // hashrandom configured and --random present: fine.
    let n = NodeA::default()
        .set_env("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "1")
        .ipt_replace(
            "--to-source 192.168.1.251 --random-fully",
            "--to-source 192.168.1.251 --random",
        );
    assert_healthy(&n.build());
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "none");
    assert_only(&n.build(), "snat.random-mismatch");
}

#[test]
fn external_snat_with_rules_still_active() {
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_EXTERNALSNAT", "true");
    let f = assert_only(&n.build(), "snat.external-snat-conflict");
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.location.as_deref() == Some("nft nat POSTROUTING #2")));
}

#[test]
fn stale_numbered_chains_on_single_layout() {
    let n = NodeA::default().ipt_replace(
        ":AWS-SNAT-CHAIN-0 - [0:0]\n",
        ":AWS-SNAT-CHAIN-0 - [0:0]\n:AWS-SNAT-CHAIN-1 - [0:0]\n",
    ).ipt_replace(
        "[0:0] -A KUBE-MARK-MASQ",
        "[0:0] -A AWS-SNAT-CHAIN-1 ! -o vlan+ -m comment --comment \"AWS, SNAT\" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.77.7 --random-fully\n[0:0] -A KUBE-MARK-MASQ",
    );
    let f = assert_only(&n.build(), "snat.stale-chains");
    assert!(f[0].summary.contains("AWS-SNAT-CHAIN-1"));
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("192.168.77.7")));
}

#[test]
fn aws_rules_in_both_backends() {
    let mut n = NodeA::default();
    let legacy = fixture("iptables-chained.txt").replace(":KUBE-KUBELET-CANARY - [0:0]\n", "");
    n.iptables = format!("{}{}", n.iptables, legacy);
    let f = assert_only(&n.build(), "snat.backend-split");
    assert!(f[0].summary.contains("both"));
    assert!(f[0].evidence.iter().any(|e| e
        .location
        .as_deref()
        .unwrap_or("")
        .starts_with("legacy nat")));
}

#[test]
fn aws_rules_only_in_the_backend_the_kubelet_does_not_use() {
    let mut n = NodeA::default();
    let nft_kube = "# Generated by iptables-nft-save v1.8.8 (nf_tables) on x\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n";
    let legacy = fixture("iptables-chained.txt").replace(":KUBE-KUBELET-CANARY - [0:0]\n", "");
    n.iptables = format!("{nft_kube}{legacy}");
    let f = assert_only(&n.build(), "snat.backend-split");
    assert!(
        f[0].summary.contains("kubelet uses nft"),
        "{}",
        f[0].summary
    );
}

#[test]
fn conntrack_shows_vpc_flow_snated_by_another_rule() {
    let mut n = NodeA::default();
    n.conntrack = n.conntrack.replace(
        "src=192.168.40.5 dst=192.168.5.10 sport=5432 dport=50000",
        "src=192.168.40.5 dst=192.168.1.251 sport=5432 dport=50000",
    );
    let f = assert_only(&n.build(), "snat.observed-unexpected");
    assert!(f[0].evidence[0]
        .text
        .contains("src=192.168.5.10 dst=192.168.40.5"));
    assert_eq!(f[0].evidence[0].kind, EvidenceKind::Conntrack);
}

#[test]
fn conntrack_shows_internet_flow_not_snated() {
    let mut n = NodeA::default();
    n.conntrack = n.conntrack.replace(
        "src=93.184.216.34 dst=192.168.1.251 sport=443 dport=40212",
        "src=93.184.216.34 dst=192.168.5.10 sport=443 dport=40212",
    );
    let f = assert_only(&n.build(), "snat.observed-missing");
    assert!(f[0].evidence[0].text.contains("dst=93.184.216.34"));
}

#[test]
fn connmark_chain_flushed() {
    let n = NodeA::default().ipt_replace(
        "[18:1080] -A AWS-CONNMARK-CHAIN-0 -m comment --comment \"AWS, CONNMARK\" -j CONNMARK --set-xmark 0x80/0x80\n",
        "",
    );
    let f = assert_only(&n.build(), "connmark.rules-missing");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("--set-xmark 0x80/0x80")));
}

#[test]
fn fwmark_rule_missing() {
    let mut n = NodeA::default();
    n.rules = n
        .rules
        .replace("1024:\tfrom all fwmark 0x80/0x80 lookup main\n", "");
    let f = assert_only(&n.build(), "connmark.rules-missing");
    assert!(f[0].evidence.iter().any(|e| e
        .text
        .contains("1024: from all fwmark 0x80/0x80 lookup main")));
}

#[test]
fn mangle_rule_on_wrong_interface() {
    let n = NodeA::default().ipt_replace(
        "-A PREROUTING -i eth0 -m comment",
        "-A PREROUTING -i ens5 -m comment",
    );
    let f = assert_only(&n.build(), "connmark.rules-missing");
    assert!(f[0].evidence.iter().any(|e| e.text.contains("-i eth0")));
}

#[test]
fn connmark_missing_on_old_nft_node_is_error() {
    let mut n = NodeA::default();
    n.iptables = fixture("iptables-v123-nft.txt");
    n.version = Some("v1.21.2".into());
    let f = assert_only(&n.build(), "connmark.rules-missing");
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn conntrack_insert_failed() {
    let mut n = NodeA::default();
    n.conntrack = n.conntrack.replace(
        "cpu=1   \tfound=0 invalid=3 insert=0 insert_failed=0",
        "cpu=1   \tfound=0 invalid=3 insert=0 insert_failed=42",
    );
    let f = assert_only(&n.build(), "conntrack.insert-failed");
    assert!(f[0].summary.contains("insert_failed=42"));
}

#[test]
fn conntrack_table_pressure() {
    let mut n = NodeA::default();
    n.sysctl = n
        .sysctl
        .replace("nf_conntrack_count = 120", "nf_conntrack_count = 250000");
    // The capture's own count (entries seen) is small; use the sysctl only.
    n.conntrack = n
        .conntrack
        .lines()
        .filter(|l| l.starts_with("cpu="))
        .collect::<Vec<_>>()
        .join("\n");
    let s = n.build();
    let mut s = s;
    if let Some(ct) = s.conntrack.get_mut() {
        ct.count = None;
    }
    let f = assert_only(&s, "conntrack.table-pressure");
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn pod_1536_rule_missing() {
    let mut n = NodeA::default();
    n.rules = n.rules.replace("1536:\tfrom 192.168.20.33 lookup 2\n", "");
    let f = assert_only(&n.build(), "route.pod-rule-missing");
    assert!(f[0].summary.contains("1536: from 192.168.20.33 lookup 2"));
    assert!(f[0].summary.contains("kube-system/coredns"));
}

#[test]
fn pod_512_rule_missing() {
    let mut n = NodeA::default();
    n.rules = n
        .rules
        .replace("512:\tfrom all to 192.168.5.10 lookup main\n", "");
    let f = assert_only(&n.build(), "route.pod-rule-missing");
    assert!(f[0]
        .summary
        .contains("512: from all to 192.168.5.10 lookup main"));
}

#[test]
fn pod_rule_wrong_table() {
    let mut n = NodeA::default();
    n.rules = n.rules.replace(
        "1536:\tfrom 192.168.20.33 lookup 2\n",
        "1536:\tfrom 192.168.20.33 lookup 3\n",
    );
    let f = assert_only(&n.build(), "route.pod-rule-wrong-table");
    assert_eq!(f[0].evidence[0].text, "1536:\tfrom 192.168.20.33 lookup 3");
}

#[test]
fn pod_host_route_missing() {
    let mut n = NodeA::default();
    n.routes = n
        .routes
        .replace("192.168.5.10 dev eni055ab01821c scope link\n", "");
    let f = assert_only(&n.build(), "route.pod-route-missing");
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn pod_veth_down() {
    let mut n = NodeA::default();
    n.links = n.links.replace(
        "5: eni055ab01821c@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc noqueue state UP",
        "5: eni055ab01821c@if3: <BROADCAST,MULTICAST> mtu 9001 qdisc noqueue state DOWN",
    );
    let f = assert_only(&n.build(), "route.pod-route-missing");
    assert!(f[0].summary.contains("down"));
}

#[test]
fn stale_rules_after_pod_delete() {
    let mut n = NodeA::default();
    n.rules = n.rules.replace(
        "1024:",
        "512:\tfrom all to 192.168.9.99 lookup main\n1536:\tfrom 192.168.9.99 lookup 2\n1024:",
    );
    let f = assert_only(&n.build(), "route.dangling");
    assert!(f[0].summary.contains("192.168.9.99"));
    assert_eq!(f[0].evidence.len(), 2);
}

#[test]
fn duplicate_pod_rules() {
    let mut n = NodeA::default();
    n.rules = n.rules.replace(
        "1536:\tfrom 192.168.20.33 lookup 2\n",
        "1536:\tfrom 192.168.20.33 lookup 2\n1536:\tfrom 192.168.20.33 lookup 2\n",
    );
    let f = assert_only(&n.build(), "route.duplicate-rule");
    assert_eq!(f[0].severity, Severity::Warning);
}

#[test]
fn eni_table_default_route_missing() {
    let mut n = NodeA::default();
    n.routes = n
        .routes
        .replace("default via 192.168.0.1 dev eth1 table 2\n", "");
    let f = assert_only(&n.build(), "route.eni-table-broken");
    assert!(f[0].summary.contains("table 2 has no default route"));
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("192.168.0.1 dev eth1 table 2 scope link")));
}

#[test]
fn subnet_route_readded_in_main() {
    let mut n = NodeA::default();
    n.routes
        .push_str("192.168.0.0/19 dev eth1 proto kernel scope link src 192.168.7.41\n");
    let f = assert_only(&n.build(), "route.subnet-route-in-main");
    assert!(f[0].evidence[0].text.contains("192.168.0.0/19 dev eth1"));
}

#[test]
fn strict_rp_filter_on_primary() {
    let mut n = NodeA::default();
    n.sysctl = n.sysctl.replace(
        "net.ipv4.conf.eth0.rp_filter = 2",
        "net.ipv4.conf.eth0.rp_filter = 1",
    );
    let f = assert_only(&n.build(), "sysctl.rp-filter-strict");
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text == "net.ipv4.conf.eth0.rp_filter = 1"));
    // all=1 with eth0=2 is fine (max = 2): that is the healthy fixture itself.
}

#[test]
fn ip_forward_off() {
    let mut n = NodeA::default();
    n.sysctl = n
        .sysctl
        .replace("net.ipv4.ip_forward = 1", "net.ipv4.ip_forward = 0");
    assert_only(&n.build(), "sysctl.ip-forward-disabled");
}

fn with_log(line: &str) -> NodeA {
    let mut n = NodeA::default();
    n.logs[0].1.push_str(line);
    n.logs[0].1.push('\n');
    n
}

#[test]
fn ip_exhaustion_from_logs() {
    let n = with_log(
        r#"{"level":"error","ts":"2023-11-16T10:05:03.920Z","caller":"datastore/data_store.go:682","msg":"DataStore has no available IP/Prefix addresses"}"#,
    );
    let f = assert_only(&n.build(), "ipamd.ip-exhaustion");
    assert_eq!(f[0].evidence[0].location.as_deref(), Some("ipamd.log:5"));
    assert!(f[0]
        .summary
        .contains("1 event(s) at 2023-11-16T10:05:03.920Z"));
}

#[test]
fn ec2_throttling_from_logs() {
    let n = with_log(
        r#"{"level":"error","ts":"2023-11-16T10:05:03.920Z","caller":"awsutils/awsutils.go:900","msg":"Failed to allocate a private IP address RequestLimitExceeded: Request limit exceeded.\n\tstatus code: 503, request id: abc"}"#,
    );
    assert_only(&n.build(), "ipamd.ec2-throttling");
}

#[test]
fn eni_attach_failure_from_logs() {
    let n = with_log(
        r#"{"level":"error","ts":"2023-11-16T10:05:03.920Z","caller":"awsutils/awsutils.go:700","msg":"Failed to attach ENI eni-0abc: AttachmentLimitExceeded: Interface count 4 exceeds the limit for t2.medium"}"#,
    );
    assert_only(&n.build(), "ipamd.eni-attach-failure");
}

#[test]
fn not_ready_from_plugin_log() {
    let mut n = NodeA::default();
    n.logs.push(("plugin.log".into(), r#"{"level":"error","ts":"2023-11-16T10:05:03.920Z","caller":"routed-eni-cni-plugin/cni.go:130","msg":"Failed to connect to backend server for container 3f2c: rpc error: code = Unavailable"}"#.into()));
    let f = assert_only(&n.build(), "ipamd.not-ready");
    assert_eq!(f[0].evidence[0].location.as_deref(), Some("plugin.log:1"));
}

#[test]
fn not_ready_from_unreachable_introspection() {
    let s = {
        let mut s = NodeA::default().build();
        s.cni.status = model::SectionStatus::Partial;
        s.cni.reason = Some("ipamd introspection 127.0.0.1:61679: connection refused".into());
        s
    };
    let f = assert_only(&s, "ipamd.not-ready");
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("connection refused")));
}

#[test]
fn missing_sections_are_skipped_with_reasons() {
    let mut s = NodeA::default().build();
    s.iptables = model::Section::failed("iptables-nft-save: timed out after 5s");
    s.rules = model::Section::skipped("not requested");
    let r = analysis::analyze(&s);
    let reason = |id: &str| {
        r.skipped
            .iter()
            .find(|x| x.rule == id)
            .map(|x| x.reason.clone())
    };
    assert_eq!(
        reason("snat.chain-missing").as_deref(),
        Some("section iptables is failed: iptables-nft-save: timed out after 5s")
    );
    assert!(reason("route.duplicate-rule").unwrap().contains("rules"));
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
}

#[test]
fn inferred_facts_are_listed() {
    let mut n = NodeA::default().ipt_replace(
        "--to-source 192.168.1.251 --random-fully",
        "--to-source 192.168.9.9 --random-fully",
    );
    n.imds = false;
    let f = assert_only(&n.build(), "snat.to-source-mismatch");
    assert!(
        f[0].inferred.iter().any(|i| i.starts_with("primary_ipv4")),
        "{:?}",
        f[0].inferred
    );
}

#[test]
fn chain_missing_cites_unnated_flows_and_observed_missing_stays_quiet() {
    let mut n = NodeA::default().ipt_replace(SNAT_LINE, "");
    n.conntrack = n.conntrack.replace(
        "src=93.184.216.34 dst=192.168.1.251 sport=443 dport=40212",
        "src=93.184.216.34 dst=192.168.5.10 sport=443 dport=40212",
    );
    let f = assert_only(&n.build(), "snat.chain-missing");
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.kind == EvidenceKind::Conntrack
                && e.text.contains("src=192.168.5.10 dst=93.184.216.34")),
        "{:#?}",
        ev_texts(&f[0])
    );
}

#[test]
fn assigned_ip_without_any_plumbing_is_info() {
    let mut n = NodeA::default();
    n.routes = n
        .routes
        .replace("192.168.5.10 dev eni055ab01821c scope link\n", "");
    n.rules = n
        .rules
        .replace("512:\tfrom all to 192.168.5.10 lookup main\n", "");
    let r = assert_healthy(&n.build());
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule == "route.pod-route-missing" && f.severity == Severity::Info));
}

#[test]
fn missing_iam_permission_from_logs() {
    let n = with_log(
        r#"{"level":"error","ts":"2024-01-01T00:00:00.000Z","caller":"awsutils/awsutils.go:400","msg":"Unauthorized operation: failed to call ec2:CreateNetworkInterface due to missing permissions. Please refer https://github.com/aws/amazon-vpc-cni-k8s/blob/master/docs/iam-policy.md to attach relevant policy to IAM role"}"#,
    );
    let s = n.build();
    let r = analysis::analyze(&s);
    let ids = loud_ids(&r);
    assert!(
        ids.contains(&"ipamd.missing-iam-permission".to_string()),
        "{:#?} kinds: {:?}",
        loud(&r),
        s.cni_logs
            .get()
            .unwrap()
            .events
            .iter()
            .map(|e| e.kind)
            .collect::<Vec<_>>()
    );
}

#[test]
fn eniconfig_missing_from_logs() {
    let n = with_log(r#"{"level":"error","ts":"2024-01-01T00:00:00.000Z","caller":"ipamd/ipamd.go:500","msg":"error while retrieving eniconfig: eniconfig: eniconfig is not available"}"#)
        .set_env("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");
    let r = analysis::analyze(&n.build());
    assert!(
        loud_ids(&r).contains(&"ipamd.eniconfig-missing".to_string()),
        "{:#?}",
        loud(&r)
    );
}

#[test]
fn custom_networking_pod_in_primary_subnet() {
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");
    let f = assert_only(&n.build(), "ipamd.custom-networking-primary-subnet");
    // Both pods of the sample node sit in 192.168.0.0/19, the primary ENI's subnet.
    assert!(f[0].summary.contains("2 pod IP(s)"), "{}", f[0].summary);
}

#[test]
fn nm_cloud_setup_tables() {
    let mut n = NodeA::default();
    n.routes
        .push_str("default via 192.168.0.1 dev eth1 table 30400 proto static metric 20100\n");
    n.rules.push_str("30400:\tfrom 192.168.7.41 lookup 30400\n");
    assert_only(&n.build(), "route.nm-cloud-setup");
}

#[test]
fn connmark_sharing_kube_proxy_bit() {
    let n = NodeA::default().set_env("AWS_VPC_K8S_CNI_CONNMARK", "0x4000");
    let r = analysis::analyze(&n.build());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "connmark.mark-conflict")
        .expect("conflict");
    assert!(f.summary.contains("kube-proxy"));
    // The default is fine (covered by every healthy test).
}

#[test]
fn pod_veth_from_brief_capture_without_flags_is_not_down() {
    // `ip -br addr` gives `eni… UP` but no <FLAGS>: the link is up unless the state says DOWN
    // (real capture: diag/tests/fixtures/realworld/aews-w2-loop-3nodes).
    let mut s = NodeA::default().build();
    let links = s.links.data.as_mut().unwrap();
    for l in links.iter_mut() {
        l.flags.clear();
    }
    assert_healthy(&s);
    let links = s.links.data.as_mut().unwrap();
    let veth = links
        .iter_mut()
        .find(|l| l.ifname == "eni055ab01821c")
        .unwrap();
    veth.operstate = "DOWN".into();
    let f = assert_only(&s, "route.pod-route-missing");
    assert!(f[0].summary.contains("down"), "{}", f[0].summary);
}

#[test]
fn main_only_route_capture_does_not_claim_eni_tables_broken() {
    // `ip route` (main only) pasted as ip-route.txt: table 2 is not empty, it is not captured
    // (real capture: diag/tests/fixtures/realworld/aews-w2-node1-healthy).
    let mut n = NodeA::default();
    n.routes = n
        .routes
        .lines()
        .filter(|l| !l.contains(" table "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut s = n.build();
    s.routes.sources = vec!["file:ip-route.txt".into()];
    let r = assert_healthy(&s);
    let skip = r
        .skipped
        .iter()
        .find(|k| k.rule == "route.eni-table-broken")
        .expect("route.eni-table-broken skipped");
    assert!(
        skip.reason.contains("not in the capture"),
        "{}",
        skip.reason
    );
}

#[test]
fn rp_filter_all_strict_without_the_interface_value_is_undetermined() {
    // A paste of only `net.ipv4.conf.{default,all}.rp_filter = 1` (the AL2 defaults): eth0's own
    // value (2, set by aws-vpc-cni-init) is not in it, so max(all, eth0) is unknown — no error
    // (real capture: diag/tests/fixtures/realworld/nlb-preserve-ip-rp-filter-blog).
    let mut n = NodeA::default();
    n.sysctl = n
        .sysctl
        .lines()
        .filter(|l| !l.starts_with("net.ipv4.conf.eth"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = assert_healthy(&n.build());
    let skip = r
        .skipped
        .iter()
        .find(|k| k.rule == "sysctl.rp-filter-strict")
        .expect("sysctl.rp-filter-strict skipped");
    assert!(skip.reason.contains("not determined"), "{}", skip.reason);
    // Still an error when eth0's own value is there and strict.
    let mut n = NodeA::default();
    n.sysctl = n.sysctl.replace(
        "net.ipv4.conf.eth0.rp_filter = 2",
        "net.ipv4.conf.eth0.rp_filter = 1",
    );
    let f = assert_only(&n.build(), "sysctl.rp-filter-strict");
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn detached_iif_rule_is_reported_from_ip_rule_alone() {
    // PR #1376: only `ip rule` was pasted; the `[detached]` rule needs no routes
    // (real capture: diag/tests/fixtures/realworld/pr1376-sgp-detached-iif-rule).
    let mut n = NodeA::default();
    n.routes = String::new();
    n.rules = n.rules.replace(
        "1024:",
        "10:\tfrom all iif vlanaad671050aa [detached] lookup 101 \n1024:",
    );
    let s = n.build();
    let r = analysis::analyze(&s);
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "route.dangling")
        .collect();
    assert_eq!(f.len(), 1, "{:#?}", r.findings);
    assert!(
        f[0].summary.contains("no longer exists"),
        "{}",
        f[0].summary
    );
}
