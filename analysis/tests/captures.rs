//! Real-world-shaped captures (pastes, `iptables -S` without a backend header, log lines quoted
//! in issues), analysed without IMDS or CNI env: facts are inferred and labelled, and the
//! verdicts match what the capture shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use model::{
    AgentInfo, CniLogs, IptablesBackendDump, IptablesSection, NodeReport, Section, Severity,
    Snapshot,
};

/// `iptables -t nat -S` as pasted from an AL2023 node (groundtruth §1.2 (A): VPC
/// 192.168.0.0/16, ens5, --to-source 192.168.2.21), no backend header.
const AL2023_NAT_S: &str = r#"-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N AWS-CONNMARK-CHAIN-0
-N AWS-SNAT-CHAIN-0
-N KUBE-KUBELET-CANARY
-N KUBE-POSTROUTING
-N KUBE-SERVICES
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-CONNMARK-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.2.21 --random-fully
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
"#;

const AL2023_ROUTES: &str =
    "default via 192.168.0.1 dev ens5 proto dhcp src 192.168.2.21 metric 512
192.168.0.0/22 dev ens5 proto kernel scope link src 192.168.2.21 metric 512
192.168.0.1 dev ens5 proto dhcp scope link src 192.168.2.21 metric 512
192.168.2.12 dev eni4d2fe644677 scope link
192.168.3.22 dev enia7cc107bbb9 scope link
";

const AL2023_RULES: &str = "0:\tfrom all lookup local
512:\tfrom all to 192.168.2.12 lookup main
512:\tfrom all to 192.168.3.22 lookup main
1024:\tfrom all fwmark 0x80/0x80 lookup main
32766:\tfrom all lookup main
32767:\tfrom all lookup default
";

fn capture(nat: &str, routes: &str, rules: &str) -> Snapshot {
    let mut s = Snapshot::new(AgentInfo {
        name: "diag-capture".into(),
        version: "0".into(),
        inputs: vec![],
    });
    s.hostname = "paste".into();
    let t = parsers::iptables::parse_spec(nat, "nat");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    s.iptables = Section::ok(IptablesSection {
        backends: vec![IptablesBackendDump {
            backend: model::Backend::Unknown,
            command: "iptables -t nat -S".into(),
            tables: vec![t.value],
            ..Default::default()
        }],
        default_backend: None,
    });
    if !routes.is_empty() {
        s.routes = Section::ok(parsers::ip::parse_route(routes).unwrap().value);
    }
    if !rules.is_empty() {
        s.rules = Section::ok(parsers::ip::parse_rule(rules).unwrap().value);
    }
    s
}

fn loud(r: &NodeReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{}: {}", f.rule, f.summary))
        .collect()
}

#[test]
fn al2023_paste_is_healthy_with_inferred_facts() {
    let s = capture(AL2023_NAT_S, AL2023_ROUTES, AL2023_RULES);
    let r = analysis::analyze(&s);
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
    let f = analysis::Facts::from_snapshot(&s);
    assert_eq!(
        f.primary_ipv4.as_ref().unwrap().value.to_string(),
        "192.168.2.21"
    );
    assert_eq!(f.primary_interface.as_ref().unwrap().value, "ens5");
    assert_eq!(f.pods.len(), 2);
    // to-source was checked against the inferred primary IP.
    assert!(r.evaluated.iter().any(|e| e == "snat.to-source-mismatch"));
    // Without env, env-only checks are skipped with a reason.
    assert!(r
        .skipped
        .iter()
        .any(|s| s.rule == "snat.exclusion-missing" && s.reason.contains("env")));
}

#[test]
fn blog_paste_with_inverted_return() {
    // The line as it circulates in blog posts about "fixing" SNAT for peered VPCs.
    let nat = AL2023_NAT_S.replace(
        "-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN",
        "-A AWS-SNAT-CHAIN-0 ! -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN",
    );
    let r = analysis::analyze(&capture(&nat, AL2023_ROUTES, AL2023_RULES));
    let ids: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| f.rule.as_str())
        .collect();
    assert_eq!(ids, vec!["snat.return-inverted"], "{:#?}", loud(&r));
    assert_eq!(
        r.findings[0].evidence[0].location.as_deref(),
        Some("unknown nat AWS-SNAT-CHAIN-0 #1")
    );
}

#[test]
fn flushed_nat_table_paste() {
    // aws/amazon-vpc-cni-k8s#2837 shape: another agent restored the nat table without
    // --noflush; the AWS chains are gone but the connmark fwmark rule is still there.
    let nat = "-P PREROUTING ACCEPT\n-P POSTROUTING ACCEPT\n-N KUBE-POSTROUTING\n-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n";
    let mut s = capture(nat, AL2023_ROUTES, AL2023_RULES);
    // With env saying EXTERNALSNAT=false the missing chain is an error...
    s.cni = Section::ok(model::CniConfig {
        env: [(
            "AWS_VPC_K8S_CNI_EXTERNALSNAT".to_string(),
            "false".to_string(),
        )]
        .into(),
        ..Default::default()
    });
    let r = analysis::analyze(&s);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "snat.chain-missing" && f.severity == Severity::Error),
        "{:#?}",
        loud(&r)
    );
    // ...without env it cannot tell a flushed node from an EXTERNALSNAT one, and says so.
    s.cni = Section::default();
    let r = analysis::analyze(&s);
    assert!(r
        .skipped
        .iter()
        .any(|x| x.rule == "snat.chain-missing" && x.reason.contains("EXTERNALSNAT")));
    // ...and names the file that would let the check run (issue 11: every skip says so).
    for id in ["snat.chain-missing", "connmark.rules-missing"] {
        let x = r.skipped.iter().find(|x| x.rule == id).expect(id);
        assert!(x.reason.contains("cni-env"), "{id}: {}", x.reason);
        assert!(x.reason.contains("would let it run"), "{id}: {}", x.reason);
    }
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
}

#[test]
fn subnet_exhaustion_log_paste() {
    let log = r#"{"level":"error","ts":"2022-03-02T10:00:00.000Z","caller":"ipamd/ipamd.go:900","msg":"Failed to allocate a private IP/Prefix addresses on ENI eni-0abc: InsufficientFreeAddressesInSubnet: The specified subnet does not have enough free addresses to satisfy the request."}
{"level":"debug","ts":"2022-03-02T10:00:05.000Z","caller":"ipamd/ipamd.go:910","msg":"Recently we had InsufficientCidr error hence will wait for 2m0s before retrying"}
{"level":"error","ts":"2022-03-02T10:01:00.000Z","caller":"datastore/data_store.go:682","msg":"DataStore has no available IP/Prefix addresses"}
"#;
    let mut s = capture(AL2023_NAT_S, "", "");
    let p = parsers::cnilog::parse_text("ipamd.log", log);
    s.cni_logs = Section::ok(CniLogs {
        files: vec![p.value.0],
        events: p.value.1,
        events_dropped: 0,
    });
    let r = analysis::analyze(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "ipamd.ip-exhaustion")
        .expect("exhaustion");
    assert!(
        f.summary.contains("first 2022-03-02T10:00:00.000Z"),
        "{}",
        f.summary
    );
    assert!(f
        .evidence
        .iter()
        .any(|e| e.location.as_deref() == Some("ipamd.log:1")));
}

/// Pods inferred from ipamd.log (v1.12 wordings, `pkg/ipamd/rpc_handler.go` and
/// `pkg/ipamd/datastore/data_store.go`) against a bare `ip rule` paste: a live pod with only half
/// of its rules is an error, one with none a warning (it may have gone after the log's last
/// line), an added-then-deleted pod nothing; each finding says "inferred from log".
#[test]
fn bare_ip_rule_paste_with_ipamd_log_pods() {
    let log = r#"{"level":"info","ts":"2022-07-27T14:01:10.103Z","caller":"rpc/rpc.pb.go:713","msg":"Send AddNetworkReply: IPv4Addr 192.168.41.17, IPv6Addr: , DeviceNumber: 1, err: <nil>"}
{"level":"info","ts":"2022-07-27T14:02:20.203Z","caller":"rpc/rpc.pb.go:713","msg":"Send AddNetworkReply: IPv4Addr 192.168.44.203, IPv6Addr: , DeviceNumber: 1, err: <nil>"}
{"level":"info","ts":"2022-07-27T14:03:30.302Z","caller":"datastore/data_store.go:713","msg":"AssignPodIPv4Address: Assign IP 192.168.45.9 to sandbox aws-cni/c0ffee/eth0"}
{"level":"info","ts":"2022-07-27T14:03:30.303Z","caller":"rpc/rpc.pb.go:713","msg":"Send AddNetworkReply: IPv4Addr 192.168.45.9, IPv6Addr: , DeviceNumber: 1, err: <nil>"}
{"level":"info","ts":"2022-07-27T14:09:50.500Z","caller":"rpc/rpc.pb.go:731","msg":"Received DelNetwork for Sandbox c0ffee"}
{"level":"info","ts":"2022-07-27T14:09:50.504Z","caller":"rpc/rpc.pb.go:731","msg":"Send DelNetworkReply: IPv4Addr 192.168.45.9, DeviceNumber: 1, err: <nil>"}
"#;
    // 192.168.41.17 has its 1536 rule but not its 512; 192.168.44.203 has none.
    let rules = "0:\tfrom all lookup local\n1024:\tfrom all fwmark 0x80/0x80 lookup main\n1536:\tfrom 192.168.41.17 lookup 2\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n";
    let mut s = capture(AL2023_NAT_S, "", rules);
    let p = parsers::cnilog::parse_text("ipamd.log", log);
    s.cni_logs = Section::ok(CniLogs {
        files: vec![p.value.0],
        events: p.value.1,
        events_dropped: 0,
    });
    let r = analysis::analyze(&s);
    let pods: Vec<&model::Finding> = r
        .findings
        .iter()
        .filter(|f| f.rule == "route.pod-rule-missing")
        .collect();
    assert_eq!(pods.len(), 2, "{pods:#?}");
    let half = pods
        .iter()
        .find(|f| f.summary.contains("192.168.41.17"))
        .expect("half");
    assert_eq!(half.severity, Severity::Error);
    assert!(half.summary.contains("512: from all to 192.168.41.17"));
    assert!(!half.summary.contains("1536"), "{}", half.summary);
    let none = pods
        .iter()
        .find(|f| f.summary.contains("192.168.44.203"))
        .expect("none");
    assert_eq!(none.severity, Severity::Warning);
    assert!(none.summary.contains("1536: from 192.168.44.203 lookup 2"));
    for f in &pods {
        assert!(
            f.inferred.iter().any(|i| i.contains("inferred from log")),
            "{:?}",
            f.inferred
        );
        assert!(f
            .evidence
            .iter()
            .any(|e| e.text.contains("inferred from log: ipamd.log:")));
    }
    assert!(!pods.iter().any(|f| f.summary.contains("192.168.45.9")));
}
