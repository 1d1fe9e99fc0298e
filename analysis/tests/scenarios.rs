//! Scenarios on emulated nodes (network namespaces, real kernel state): for each rule, the
//! fault is really injected, the real `node-agent` collects inside the node namespace, and the
//! analysis must report the rule with evidence; the same node before the fault is healthy.
//!
//! Needs root, `ip`, `iptables-{nft,legacy}` and the `node-agent` and `cni-doubles` binaries of
//! the same profile:
//! `CARGO_TARGET_DIR=target-analysis cargo build -p node-agent -p e2e --bins`, then
//! `CARGO_TARGET_DIR=target-analysis cargo test -p analysis --test scenarios`.
//! Without root the scenarios print why and pass vacuously (the unit tests cover the logic).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use e2e::node::{Backend, EksNode, EksNodeBuilder, Layout, Random};
use model::{NodeReport, Severity, Snapshot};

fn agent() -> PathBuf {
    e2e::doubles::sibling_bin(
        "node-agent",
        "EKD_NODE_AGENT",
        "CARGO_TARGET_DIR=target-analysis cargo build -p node-agent",
    )
    .expect("node-agent binary")
}

/// Why the scenarios cannot run here, if they cannot: not root, or binaries missing.
fn cannot_run() -> Option<String> {
    if !e2e::prereq::is_root() {
        return Some("scenarios need root (network namespaces)".into());
    }
    let bins = [
        e2e::doubles::doubles_bin(),
        e2e::doubles::sibling_bin("node-agent", "EKD_NODE_AGENT", "cargo build -p node-agent"),
    ];
    bins.into_iter()
        .find_map(|b| b.err().map(|e| format!("{e:#}")))
}

/// Scenarios must run (never skip) with `EKD_SCENARIOS=require` or on CI (`CI` set): the one
/// CI-aware rule, `e2e::prereq::required`.
fn require() -> bool {
    e2e::prereq::required()
}

/// Build a node, or `None` (with the reason printed) when this environment cannot. With
/// `EKD_SCENARIOS=require` an environment that cannot run them is a failure instead.
fn node(b: EksNodeBuilder) -> Option<EksNode> {
    if let Some(why) = cannot_run() {
        assert!(!require(), "EKD_SCENARIOS=require but: {why}");
        eprintln!("skipping scenario: {why}");
        return None;
    }
    match b.build() {
        Ok(n) => Some(n),
        // A `cni-doubles` from another build of a shared target dir that does not understand
        // this harness's config: environmental, unless the scenarios are required.
        Err(e) if !require() && format!("{e:#}").contains("did not become ready") => {
            eprintln!("skipping scenario: {e:#}\n(rebuild: CARGO_TARGET_DIR=<this target> cargo build -p node-agent -p e2e --bins)");
            None
        }
        Err(e) => panic!("emulated node: {e:#}"),
    }
}

fn collect_with(n: &EksNode, extra: &[&str]) -> Snapshot {
    let agent = agent().display().to_string();
    let mut argv: Vec<String> = vec![agent, "collect".into()];
    // `extra` holds `--flag value` pairs that replace the node's defaults.
    let mut base = n.config().agent_args().into_iter().peekable();
    while let Some(a) = base.next() {
        let overridden = extra.iter().any(|e| *e == a);
        let value = if a.starts_with("--") {
            base.next_if(|v| !v.starts_with("--"))
        } else {
            None
        };
        if !overridden {
            argv.push(a);
            argv.extend(value);
        }
    }
    argv.extend(extra.iter().map(|s| s.to_string()));
    let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = n.exec(&argv_ref).expect("run node-agent");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node-agent failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stdout
    );
    Snapshot::from_json(&stdout).expect("snapshot JSON")
}

fn collect(n: &EksNode) -> Snapshot {
    collect_with(n, &[])
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
    let s = collect(n);
    let r = analysis::analyze(&s);
    assert!(
        loud(&r).is_empty(),
        "healthy emulated node produced: {:#?}\nskipped: {:#?}",
        loud(&r),
        r.skipped
    );
    r
}

/// The rule fires at `sev`, with evidence; every other warning/error must be in `also`.
#[track_caller]
fn assert_fires(n: &EksNode, id: &str, sev: Severity, also: &[&str]) -> Vec<model::Finding> {
    let s = collect(n);
    let r = analysis::analyze(&s);
    let hits: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == id)
        .cloned()
        .collect();
    assert!(
        !hits.is_empty(),
        "{id} did not fire; findings: {:#?}\nskipped: {:#?}",
        loud(&r),
        r.skipped
    );
    assert!(
        hits.iter().any(|f| f.severity == sev),
        "{id} severity: {hits:#?}"
    );
    for f in &hits {
        assert!(!f.evidence.is_empty(), "{id} without evidence: {f:#?}");
        assert!(!f.explanation.is_empty() && !f.remedy.is_empty());
    }
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
    hits
}

fn ev_has(f: &[model::Finding], needle: &str) -> bool {
    f.iter().flat_map(|f| f.evidence.iter()).any(|e| {
        e.text.contains(needle) || e.location.as_deref().is_some_and(|l| l.contains(needle))
    })
}

fn secondary_pod(n: &EksNode) -> usize {
    n.pods()
        .iter()
        .position(|p| p.eni_device == 1)
        .expect("a pod on the secondary ENI")
}

#[test]
fn healthy_layouts_and_backends() {
    for (layout, backend) in [
        (Layout::Current, Backend::Nft),
        (Layout::Chained, Backend::Legacy),
        (Layout::Current, Backend::Legacy),
    ] {
        let Some(mut n) = node(
            EksNode::builder()
                .layout(layout)
                .backend(backend)
                .exclude_snat(["10.0.0.0/8"]),
        ) else {
            return;
        };
        n.generate_traffic().expect("traffic");
        let r = assert_healthy(&n);
        assert!(
            r.evaluated.iter().any(|id| id == "snat.chain-missing"),
            "{:#?}",
            r.skipped
        );
        assert!(
            r.evaluated.iter().any(|id| id == "route.pod-rule-missing"),
            "{:#?}",
            r.skipped
        );
        assert!(
            r.evaluated.iter().any(|id| id == "snat.observed-missing"),
            "{:#?}",
            r.skipped
        );
    }
}

#[test]
fn snat_chain_missing() {
    let Some(mut n) = node(EksNode::builder()) else {
        return;
    };
    n.generate_traffic().unwrap();
    assert_healthy(&n);
    n.fault_delete_snat_rule().unwrap();
    let f = assert_fires(&n, "snat.chain-missing", Severity::Error, &[]);
    assert!(ev_has(&f, "AWS-SNAT-CHAIN-0"));
    let Some(n) = node(
        EksNode::builder()
            .layout(Layout::Chained)
            .backend(Backend::Legacy),
    ) else {
        return;
    };
    n.fault_delete_postrouting_jump().unwrap();
    let f = assert_fires(&n, "snat.chain-missing", Severity::Error, &[]);
    assert!(f[0].summary.contains("POSTROUTING jump"));
}

#[test]
fn snat_to_source_mismatch() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    assert_healthy(&n);
    n.fault_snat_to_source("192.168.99.99".parse().unwrap())
        .unwrap();
    let f = assert_fires(&n, "snat.to-source-mismatch", Severity::Error, &[]);
    assert!(ev_has(&f, "--to-source 192.168.99.99"));
    assert!(ev_has(&f, "nat AWS-SNAT-CHAIN-0 #"));
}

#[test]
fn snat_vpc_cidr_not_excluded() {
    let Some(n) = node(EksNode::builder().vpc_cidrs(["192.168.0.0/16", "100.64.0.0/16"])) else {
        return;
    };
    assert_healthy(&n);
    n.fault_drop_vpc_return("100.64.0.0/16", true).unwrap();
    let f = assert_fires(&n, "snat.vpc-cidr-not-excluded", Severity::Error, &[]);
    assert!(f[0].summary.contains("100.64.0.0/16"));
}

#[test]
fn snat_exclusion_missing_and_unexpected() {
    let Some(n) = node(EksNode::builder().exclude_snat(["10.0.0.0/8"])) else {
        return;
    };
    assert_healthy(&n);
    n.fault_drop_vpc_return("10.0.0.0/8", true).unwrap();
    let f = assert_fires(&n, "snat.exclusion-missing", Severity::Warning, &[]);
    assert!(f[0].summary.contains("10.0.0.0/8"));

    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_add_unexpected_return("172.16.0.0/12").unwrap();
    let r = assert_healthy(&n);
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "snat.exclusion-unexpected")
        .collect();
    assert_eq!(f.len(), 1, "{:#?}", r.findings);
    assert!(f[0].evidence[0].text.contains("-d 172.16.0.0/12 -j RETURN"));
}

#[test]
fn snat_return_inverted() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_insert_negated_return("192.168.0.0/16").unwrap();
    let f = assert_fires(&n, "snat.return-inverted", Severity::Error, &[]);
    assert!(ev_has(&f, "! -d 192.168.0.0/16"));
}

#[test]
fn snat_rule_order_duplicate_jump() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_duplicate_postrouting_jump().unwrap();
    let f = assert_fires(&n, "snat.rule-order", Severity::Warning, &[]);
    assert!(f[0].summary.contains("POSTROUTING jumps"));
}

#[test]
fn snat_random_mismatch() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_snat_random(Random::None).unwrap();
    let f = assert_fires(&n, "snat.random-mismatch", Severity::Warning, &[]);
    assert!(f[0].summary.contains("none"));
    let Some(n) = node(EksNode::builder().randomize(Random::Hash)) else {
        return;
    };
    assert_healthy(&n);
}

#[test]
fn snat_external_snat_conflict() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let path = n.config().cni_env_file();
    let env = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        env.replace(
            "AWS_VPC_K8S_CNI_EXTERNALSNAT=false",
            "AWS_VPC_K8S_CNI_EXTERNALSNAT=true",
        ),
    )
    .unwrap();
    let f = assert_fires(&n, "snat.external-snat-conflict", Severity::Warning, &[]);
    assert!(ev_has(&f, "AWS-SNAT-CHAIN-0"));
}

#[test]
fn snat_stale_chains() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_stale_snat_chain_1().unwrap();
    let f = assert_fires(&n, "snat.stale-chains", Severity::Warning, &[]);
    assert!(f[0].summary.contains("AWS-SNAT-CHAIN-1"));
}

#[test]
fn snat_backend_split() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_copy_rules_to_other_backend().unwrap();
    let f = assert_fires(&n, "snat.backend-split", Severity::Error, &[]);
    assert!(f[0].summary.contains("both"));
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_move_rules_to_other_backend().unwrap();
    let f = assert_fires(&n, "snat.backend-split", Severity::Error, &[]);
    assert!(
        f[0].summary.contains("kubelet uses nft"),
        "{}",
        f[0].summary
    );
}

#[test]
fn snat_observed_unexpected() {
    let Some(mut n) = node(EksNode::builder()) else {
        return;
    };
    // Another agent masquerades pod → VPC traffic ahead of the AWS chain.
    let peer = n.config().vpc_peer.to_string();
    n.iptables(&[
        "-t",
        "nat",
        "-I",
        "POSTROUTING",
        "1",
        "-d",
        &peer,
        "-j",
        "MASQUERADE",
    ])
    .unwrap();
    n.generate_traffic().unwrap();
    let f = assert_fires(&n, "snat.observed-unexpected", Severity::Warning, &[]);
    assert!(ev_has(&f, &format!("dst={peer}")));
}

#[test]
fn snat_observed_missing() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    assert_healthy(&n);
    // Another agent accepts pod traffic in POSTROUTING before the AWS jump. The emulated VPC,
    // like the real one, drops un-NATed internet traffic, so the ping itself fails; its
    // conntrack entry stays.
    let inet = n.config().internet_host.to_string();
    n.iptables(&[
        "-t",
        "nat",
        "-I",
        "POSTROUTING",
        "1",
        "-d",
        &inet,
        "-j",
        "ACCEPT",
    ])
    .unwrap();
    let _ = n
        .pod_ns(0)
        .unwrap()
        .exec(&["ping", "-n", "-q", "-c", "1", "-W", "1", &inet]);
    let f = assert_fires(&n, "snat.observed-missing", Severity::Warning, &[]);
    assert!(ev_has(&f, &format!("dst={inet}")));
}

#[test]
fn connmark_rules_missing() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_nat_connmark_rules().unwrap();
    let f = assert_fires(&n, "connmark.rules-missing", Severity::Error, &[]);
    assert!(ev_has(&f, "AWS-CONNMARK-CHAIN-0"));
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_fwmark_rule().unwrap();
    let f = assert_fires(&n, "connmark.rules-missing", Severity::Error, &[]);
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.text.contains("fwmark 0x80/0x80 lookup main")));
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_mangle_connmark_rules().unwrap();
    assert_fires(&n, "connmark.rules-missing", Severity::Error, &[]);
}

#[test]
fn route_pod_rule_missing() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let i = secondary_pod(&n);
    n.fault_delete_from_pod_rule(i).unwrap();
    let f = assert_fires(&n, "route.pod-rule-missing", Severity::Error, &[]);
    assert!(f[0]
        .summary
        .contains(&format!("1536: from {} lookup 2", n.pods()[i].ip)));
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_to_pod_rule(0).unwrap();
    let f = assert_fires(&n, "route.pod-rule-missing", Severity::Error, &[]);
    assert!(f[0]
        .summary
        .contains(&format!("512: from all to {}", n.pods()[0].ip)));
}

#[test]
fn route_pod_rule_wrong_table() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let i = secondary_pod(&n);
    n.fault_point_from_rule_at(i, 3).unwrap();
    let f = assert_fires(&n, "route.pod-rule-wrong-table", Severity::Error, &[]);
    assert!(ev_has(&f, "lookup 3"));
}

#[test]
fn route_pod_route_missing() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_pod_route(0).unwrap();
    assert_fires(&n, "route.pod-route-missing", Severity::Error, &[]);
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_veth_down(0).unwrap();
    let f = assert_fires(&n, "route.pod-route-missing", Severity::Error, &[]);
    assert!(
        f.iter()
            .any(|f| f.summary.contains("down") || f.summary.contains("no main-table host route")),
        "{f:#?}"
    );
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_veth(0).unwrap();
    assert_fires(&n, "route.pod-route-missing", Severity::Error, &[]);
}

#[test]
fn route_dangling() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    // Rules of a deleted pod whose IP ipamd no longer assigns (a free IP of the warm pool).
    let ip = n.config().enis[1].free_ips[0].to_string();
    n.ip(&["rule", "add", "prio", "512", "to", &ip, "lookup", "main"])
        .unwrap();
    n.ip(&["rule", "add", "prio", "1536", "from", &ip, "lookup", "2"])
        .unwrap();
    let f = assert_fires(&n, "route.dangling", Severity::Warning, &[]);
    assert!(f[0].summary.contains(&ip));
}

#[test]
fn route_duplicate_rule() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_duplicate_to_pod_rule(0, 3).unwrap();
    let f = assert_fires(&n, "route.duplicate-rule", Severity::Error, &[]);
    assert!(f[0].summary.contains("different tables"));
}

#[test]
fn route_eni_table_broken() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_delete_eni_default_route(1).unwrap();
    let f = assert_fires(&n, "route.eni-table-broken", Severity::Error, &[]);
    assert!(f[0].summary.contains("table 2 has no default route"));
}

#[test]
fn route_subnet_route_in_main() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_add_eni_subnet_route_to_main(1).unwrap();
    let f = assert_fires(&n, "route.subnet-route-in-main", Severity::Warning, &[]);
    assert!(ev_has(&f, "dev eth1"));
}

#[test]
fn sysctl_rules() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_rp_filter(1).unwrap();
    let f = assert_fires(&n, "sysctl.rp-filter-strict", Severity::Error, &[]);
    assert!(ev_has(&f, "net.ipv4.conf.eth0.rp_filter = 1"));
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    n.fault_ip_forward_off().unwrap();
    assert_fires(&n, "sysctl.ip-forward-disabled", Severity::Error, &[]);
}

fn append_log(n: &EksNode, file: &str, line: &str) {
    use std::io::Write;
    let p = n.config().log_dir().join(file);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[test]
fn ipamd_log_rules() {
    let cases = [
        (
            "ipamd.log",
            r#"{"level":"error","ts":"2026-01-01T00:01:00.000Z","caller":"datastore/data_store.go:682","msg":"DataStore has no available IP/Prefix addresses"}"#,
            "ipamd.ip-exhaustion",
            Severity::Warning,
        ),
        (
            "ipamd.log",
            r#"{"level":"error","ts":"2026-01-01T00:01:00.000Z","caller":"awsutils/awsutils.go:900","msg":"Failed to allocate a private IP address RequestLimitExceeded: Request limit exceeded.\n\tstatus code: 503, request id: abc"}"#,
            "ipamd.ec2-throttling",
            Severity::Warning,
        ),
        (
            "ipamd.log",
            r#"{"level":"error","ts":"2026-01-01T00:01:00.000Z","caller":"awsutils/awsutils.go:700","msg":"Failed to attach ENI eni-0abc: AttachmentLimitExceeded: Interface count 4 exceeds the limit for t2.medium"}"#,
            "ipamd.eni-attach-failure",
            Severity::Warning,
        ),
        (
            "plugin.log",
            r#"{"level":"error","ts":"2026-01-01T00:01:00.000Z","caller":"routed-eni-cni-plugin/cni.go:130","msg":"Failed to connect to backend server for container abc: rpc error: code = Unavailable"}"#,
            "ipamd.not-ready",
            Severity::Error,
        ),
    ];
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    assert_healthy(&n);
    for (file, line, id, sev) in cases {
        let Some(n) = node(EksNode::builder()) else {
            return;
        };
        append_log(&n, file, line);
        let f = assert_fires(&n, id, sev, &[]);
        assert!(ev_has(&f, file), "{f:#?}");
    }
}

#[test]
fn ipamd_not_ready_when_introspection_is_unreachable() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let s = collect_with(&n, &["--ipamd-endpoint", "http://127.0.0.1:9"]);
    let r = analysis::analyze(&s);
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "ipamd.not-ready")
        .collect();
    assert!(
        !f.is_empty(),
        "cni section: {:?} {:?}; findings {:#?}",
        s.cni.status,
        s.cni.reason,
        loud(&r)
    );
}

#[test]
fn external_snat_node_is_healthy() {
    // Groundtruth §1.2 (D): EXTERNALSNAT=true, NODE_PORT_SUPPORT=true: the AWS nat chains
    // exist but are empty, nothing jumps to them; mangle M1–M3 and rule 1024 stay.
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let path = n.config().cni_env_file();
    let env = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        env.replace(
            "AWS_VPC_K8S_CNI_EXTERNALSNAT=false",
            "AWS_VPC_K8S_CNI_EXTERNALSNAT=true",
        ),
    )
    .unwrap();
    n.fault_delete_postrouting_jump().unwrap();
    n.fault_delete_nat_connmark_rules().unwrap();
    n.iptables(&["-t", "nat", "-F", "AWS-SNAT-CHAIN-0"])
        .unwrap();
    n.iptables(&["-t", "nat", "-F", "AWS-CONNMARK-CHAIN-0"])
        .unwrap();
    let r = assert_healthy(&n);
    assert!(r.evaluated.iter().any(|e| e == "connmark.rules-missing"));
    // The same node with the env still saying false is the F1 fault.
    std::fs::write(&path, env).unwrap();
    assert_fires(
        &n,
        "snat.chain-missing",
        Severity::Error,
        &["connmark.rules-missing"],
    );
}

#[test]
fn v123_nft_node_with_native_connmark_is_not_an_alarm() {
    // Groundtruth §1.2 (K): v1.23 on nft keeps the connmark rules in `table ip aws-cni`.
    let Some(n) = node(EksNode::builder().backend(Backend::Nft)) else {
        return;
    };
    n.fault_delete_nat_connmark_rules().unwrap();
    n.iptables(&["-t", "nat", "-F", "AWS-CONNMARK-CHAIN-0"])
        .unwrap();
    n.iptables(&["-t", "nat", "-X", "AWS-CONNMARK-CHAIN-0"])
        .unwrap();
    let vpc = n.config().vpc_cidrs[0].to_string();
    let table = format!(
        "table ip aws-cni {{\n chain nat-prerouting {{\n  type nat hook prerouting priority -90; policy accept;\n  iifname \"eni*\" counter jump snat-mark\n  counter meta mark set ct mark and 0x80\n }}\n chain snat-mark {{\n  counter ip daddr {vpc} return\n  counter ct mark set ct mark or 0x80\n }}\n}}\n"
    );
    let tmp = n.config().workdir.join("aws-cni.nft");
    std::fs::write(&tmp, table).unwrap();
    n.exec_ok(&["nft", "-f", &tmp.display().to_string()])
        .unwrap();
    // While the logs say v1.21.2 the same state is a real fault (rules flushed)...
    let f = assert_fires(&n, "connmark.rules-missing", Severity::Error, &[]);
    assert!(ev_has(&f, "AWS, primary ENI"));
    // ...once ipamd says v1.23.0, it is the expected v1.23 nft layout.
    append_log(
        &n,
        "ipamd.log",
        r#"{"level":"info","ts":"2026-01-02T00:00:00.000Z","caller":"aws-k8s-agent/main.go:42","msg":"Starting L-IPAMD v1.23.0  ..."}"#,
    );
    let r = assert_healthy(&n);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "connmark.rules-missing")
        .expect("info finding");
    assert_eq!(f.severity, Severity::Info, "{f:#?}");
}

fn set_env(n: &EksNode, key: &str, value: &str) {
    let path = n.config().cni_env_file();
    let env = std::fs::read_to_string(&path).unwrap();
    let mut out: Vec<String> = env
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}=")))
        .map(str::to_string)
        .collect();
    out.push(format!("{key}={value}"));
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

#[test]
fn route_nm_cloud_setup() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    let e1 = n.config().enis[1].clone();
    n.ip(&[
        "route",
        "add",
        "default",
        "via",
        &e1.gateway.to_string(),
        "dev",
        &e1.ifname,
        "table",
        "30400",
        "onlink",
    ])
    .unwrap();
    n.ip(&[
        "rule",
        "add",
        "prio",
        "30400",
        "from",
        &e1.primary_ip.to_string(),
        "lookup",
        "30400",
    ])
    .unwrap();
    let f = assert_fires(&n, "route.nm-cloud-setup", Severity::Warning, &[]);
    assert!(ev_has(&f, "lookup 30400"));
}

#[test]
fn connmark_mark_conflict_and_custom_networking() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    // The env says 0x4000 (kube-proxy's masquerade bit); the rules still carry 0x80 because
    // aws-node was not restarted, which connmark.rules-missing reports too.
    set_env(&n, "AWS_VPC_K8S_CNI_CONNMARK", "0x4000");
    let f = assert_fires(
        &n,
        "connmark.mark-conflict",
        Severity::Warning,
        &["connmark.rules-missing"],
    );
    assert!(f[0].summary.contains("kube-proxy"));

    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    set_env(&n, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");
    let f = assert_fires(
        &n,
        "ipamd.custom-networking-primary-subnet",
        Severity::Warning,
        &[],
    );
    assert!(ev_has(&f, &n.pods()[0].ip.to_string()));
}

#[test]
fn ipamd_config_log_rules() {
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    append_log(
        &n,
        "ipamd.log",
        r#"{"level":"error","ts":"2026-01-01T00:02:00.000Z","caller":"awsutils/awsutils.go:400","msg":"Unauthorized operation: failed to call ec2:CreateNetworkInterface due to missing permissions. Please refer https://github.com/aws/amazon-vpc-cni-k8s/blob/master/docs/iam-policy.md to attach relevant policy to IAM role"}"#,
    );
    assert_fires(&n, "ipamd.missing-iam-permission", Severity::Error, &[]);
    let Some(n) = node(EksNode::builder()) else {
        return;
    };
    set_env(&n, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");
    append_log(
        &n,
        "ipamd.log",
        r#"{"level":"error","ts":"2026-01-01T00:02:00.000Z","caller":"ipamd/ipamd.go:500","msg":"error while retrieving eniconfig: eniconfig: eniconfig is not available"}"#,
    );
    assert_fires(
        &n,
        "ipamd.eniconfig-missing",
        Severity::Warning,
        &["ipamd.custom-networking-primary-subnet"],
    );
}
