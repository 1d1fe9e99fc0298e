//! `analysis::trace` on the fixture node (`fixtures/node-a`, parsed by the real parsers):
//! healthy paths for pods on the primary and the secondary ENI, each fault changing the path
//! the way the kernel would, inbound traffic, unknown inputs and the observed-vs-predicted
//! comparison with the fixture's conntrack entries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod common;

use std::net::IpAddr;

use analysis::trace::{trace, trace_all_pods, TraceRequest};
use common::*;
use model::trace::{PacketTrace, TraceDirection};

const PRIMARY_POD: &str = "192.168.5.10";
const SECONDARY_POD: &str = "192.168.20.33";
const INTERNET: &str = "93.184.216.34";
const VPC_HOST: &str = "192.168.40.5";
const NODE_IP: &str = "192.168.1.251";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, dst: &str, port: u16) -> TraceRequest {
    let mut r = TraceRequest::new(ip(src), ip(dst));
    r.proto = "tcp".into();
    r.dport = Some(port);
    r
}

fn run(n: &NodeA, req: TraceRequest) -> PacketTrace {
    trace(&n.build(), &req)
}

fn egress(t: &PacketTrace) -> Option<&str> {
    t.route.egress_interface.as_deref()
}

#[test]
fn secondary_pod_to_internet_takes_rule_1024_out_of_the_primary_eni_and_is_snated() {
    let t = run(&NodeA::default(), tcp(SECONDARY_POD, INTERNET, 443));
    assert_eq!(t.flow.direction, TraceDirection::Egress);
    assert_eq!(t.pod_veth.as_deref(), Some("eni4d5f75c480c"));
    assert_eq!(t.mark, Some(0x80));
    assert_eq!(t.route.rule_priority, Some(1024), "{:#?}", t.steps);
    assert_eq!(t.route.table, Some(254));
    assert_eq!(egress(&t), Some("eth0"));
    assert_eq!(t.route.next_hop, Some(ip("192.168.0.1")));
    assert_eq!(t.source_after_nat, Some(ip(NODE_IP)));
    assert_eq!(t.snat_rule.as_deref(), Some("nft nat AWS-SNAT-CHAIN-0 #2"));
    assert_eq!(t.snat_random.as_deref(), Some("--random-fully"));
    assert_eq!(t.reply_interface.as_deref(), Some("eth0"));
    assert_eq!(t.reply_accepted, Some(true));
    assert!(t.established_route.is_none());
    assert!(t.unknowns.is_empty(), "{:?}", t.unknowns);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
    // The fixture's conntrack has this flow, SNATed to the node IP: agrees.
    assert_eq!(t.observed.len(), 1);
    assert_eq!(t.observed[0].matches_prediction, Some(true));
    assert_eq!(
        t.verdict,
        "192.168.20.33 → 93.184.216.34:443 leaves eth0 via 192.168.0.1, SNATed to \
         192.168.1.251 by nft nat AWS-SNAT-CHAIN-0 #2; replies accepted"
    );
    // Every step that decided something names its evidence line.
    let rule_step = t
        .steps
        .iter()
        .find(|s| s.decision.starts_with("rule 1024 matches"))
        .unwrap();
    assert!(rule_step.evidence[0].text.contains("fwmark 0x80/0x80"));
    assert!(rule_step.evidence[1]
        .text
        .starts_with("default via 192.168.0.1 dev eth0"));
    assert!(t.steps.iter().any(|s| s
        .evidence
        .iter()
        .any(|e| e.text.contains("[18:1080] -A AWS-CONNMARK-CHAIN-0"))));
}

#[test]
fn secondary_pod_to_vpc_uses_its_eni_table_and_keeps_its_address() {
    let t = run(&NodeA::default(), tcp(SECONDARY_POD, VPC_HOST, 5432));
    assert_eq!(t.mark, Some(0));
    assert_eq!(t.route.rule_priority, Some(1536));
    assert_eq!(t.route.table, Some(2));
    assert_eq!(egress(&t), Some("eth1"));
    assert_eq!(t.source_after_nat, Some(ip(SECONDARY_POD)));
    assert!(t.snat_rule.is_none());
    assert_eq!(t.reply_interface.as_deref(), Some("eth1"));
    assert_eq!(t.reply_accepted, Some(true));
    assert!(t
        .verdict
        .contains("leaves eth1 via 192.168.0.1, not SNATed; replies accepted"));
}

#[test]
fn primary_pod_paths() {
    let n = NodeA::default();
    let t = run(&n, tcp(PRIMARY_POD, INTERNET, 443));
    assert_eq!(egress(&t), Some("eth0"));
    assert_eq!(t.source_after_nat, Some(ip(NODE_IP)));
    let t = run(&n, tcp(PRIMARY_POD, VPC_HOST, 5432));
    assert_eq!(t.route.rule_priority, Some(32766));
    assert_eq!(egress(&t), Some("eth0"));
    assert_eq!(t.source_after_nat, Some(ip(PRIMARY_POD)));
    assert_eq!(t.observed[0].matches_prediction, Some(true));
}

#[test]
fn missing_1536_rule_sends_secondary_pod_vpc_traffic_out_of_the_wrong_eni() {
    let mut n = NodeA::default();
    n.rules = n.rules.replace("1536:\tfrom 192.168.20.33 lookup 2\n", "");
    let t = run(&n, tcp(SECONDARY_POD, VPC_HOST, 5432));
    assert_eq!(t.route.rule_priority, Some(32766));
    assert_eq!(egress(&t), Some("eth0"));
    assert!(
        t.findings
            .iter()
            .any(|f| f.contains("source/destination check")),
        "{:?}",
        t.findings
    );
}

#[test]
fn strict_rp_filter_on_the_primary_eni_drops_secondary_pod_replies_only() {
    let mut n = NodeA::default();
    n.sysctl = n.sysctl.replace(
        "net.ipv4.conf.eth0.rp_filter = 2",
        "net.ipv4.conf.eth0.rp_filter = 1",
    );
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    assert_eq!(egress(&t), Some("eth0"));
    assert_eq!(t.reply_accepted, Some(false));
    assert!(t.verdict.ends_with("replies dropped"), "{}", t.verdict);
    assert!(t.findings.iter().any(|f| f.contains("rp_filter=1")));
    let t = run(&n, tcp(PRIMARY_POD, INTERNET, 443));
    assert_eq!(t.reply_accepted, Some(true));
}

#[test]
fn missing_snat_rule_or_inverted_return_leaves_the_pod_address_and_conntrack_disagrees() {
    let n = NodeA::default().ipt_replace(
        "[20:1200] -A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment \"AWS, SNAT\" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.1.251 --random-fully\n",
        "",
    );
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    assert_eq!(egress(&t), Some("eth0"));
    assert_eq!(t.source_after_nat, Some(ip(SECONDARY_POD)));
    assert!(t.snat_rule.is_none());
    // The fixture's conntrack (taken before the fault) shows the node IP: a finding.
    assert_eq!(t.observed[0].matches_prediction, Some(false));
    assert!(t
        .findings
        .iter()
        .any(|f| f.starts_with("observed ≠ predicted")));
    assert!(t.verdict.contains("[conntrack disagrees]"));

    let n = NodeA::default().ipt_replace(
        "[40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16",
        "-A AWS-SNAT-CHAIN-0 ! -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN\n[40:2400] -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16",
    );
    let t = run(&n, tcp(PRIMARY_POD, INTERNET, 443));
    assert_eq!(t.source_after_nat, Some(ip(PRIMARY_POD)));
    assert!(t
        .steps
        .iter()
        .any(|s| s.decision.contains("negated RETURN")));
}

#[test]
fn missing_mangle_restore_splits_the_flow_across_enis() {
    let n = NodeA::default().ipt_replace(
        "[300:24000] -A PREROUTING -i eni+ -m comment --comment \"AWS, primary ENI\" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80\n",
        "",
    );
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    // The first packet gets its mark from nat PREROUTING; later ones get none.
    assert_eq!(egress(&t), Some("eth0"));
    let later = t.established_route.as_ref().expect("later packets differ");
    assert_eq!(later.egress_interface.as_deref(), Some("eth1"));
    assert_eq!(later.rule_priority, Some(1536));
    assert!(
        t.verdict.contains("later packets leave eth1"),
        "{}",
        t.verdict
    );
}

#[test]
fn missing_nat_connmark_rules_first_packet_leaves_its_own_eni_then_m1_marks_the_reply() {
    let n = NodeA::default()
        .ipt_replace(
            "[30:1800] -A PREROUTING -i eni+ -m comment --comment \"AWS, outbound connections\" -j AWS-CONNMARK-CHAIN-0\n",
            "",
        )
        .ipt_replace(
            "[50:3000] -A PREROUTING -m comment --comment \"AWS, CONNMARK\" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80\n",
            "",
        );
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    assert_eq!(t.mark, Some(0));
    assert_eq!(egress(&t), Some("eth1"));
    assert_eq!(t.source_after_nat, Some(ip(NODE_IP)));
    // The reply to the node IP on eth0 is LOCAL there: M1 sets connmark 0x80, which the mangle
    // restore then puts on the pod's later packets → rule 1024 → eth0.
    let later = t.established_route.as_ref().expect("later packets differ");
    assert_eq!(later.egress_interface.as_deref(), Some("eth0"));
}

#[test]
fn inbound_ip_target_and_nodeport() {
    let n = NodeA::default();
    // NLB IP target: arrives on the pod's own ENI; the reply goes back the same way.
    let t = run(&n, tcp("198.51.100.7", SECONDARY_POD, 8080));
    assert_eq!(t.flow.direction, TraceDirection::Inbound);
    assert_eq!(t.flow.iif.as_deref(), Some("eth1"));
    assert_eq!(egress(&t), Some("eni4d5f75c480c"));
    assert_eq!(t.reply_interface.as_deref(), Some("eth1"));
    assert_eq!(t.reply_accepted, Some(true));
    // NodePort on the primary ENI: M1 marks the connection, the reply takes rule 1024.
    let mut req = tcp("198.51.100.7", SECONDARY_POD, 8080);
    req.iif = Some("eth0".into());
    let t = run(&n, req);
    assert_eq!(t.reply_interface.as_deref(), Some("eth0"));
    assert_eq!(t.reply_accepted, Some(true), "{:#?}", t.steps);
    assert!(t
        .steps
        .iter()
        .any(|s| s.decision.starts_with("rule 1024 matches")));
    // Without M1 the reply leaves eth1: asymmetric.
    let n = n.ipt_replace(
        "[120:9000] -A PREROUTING -i eth0 -m comment --comment \"AWS, primary ENI\" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80\n",
        "",
    );
    let mut req = tcp("198.51.100.7", SECONDARY_POD, 8080);
    req.iif = Some("eth0".into());
    let t = run(&n, req);
    assert_eq!(t.reply_interface.as_deref(), Some("eth1"));
    assert_eq!(t.reply_accepted, Some(false));
    assert!(t.findings.iter().any(|f| f.contains("asymmetric")));
}

#[test]
fn unknown_inputs_are_stated_not_guessed() {
    let mut n = NodeA::default();
    n.rules = String::new();
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    assert!(t
        .unknowns
        .iter()
        .any(|u| u.contains("policy routing not evaluated")));
    assert!(egress(&t).is_none());
    assert!(t.verdict.contains("egress unknown"), "{}", t.verdict);

    let mut n = NodeA::default();
    n.iptables = String::new();
    let t = run(&n, tcp(SECONDARY_POD, INTERNET, 443));
    assert!(t.unknowns.iter().any(|u| u.contains("SNAT not evaluated")));
    assert!(t.source_after_nat.is_none());
    // Without the connmark the packet takes rule 1536 — but the trace says the mark is unknown.
    assert!(t.mark.is_none());
}

#[test]
fn all_pods_are_grouped_by_outcome() {
    let (traces, groups) = trace_all_pods(&NodeA::default().build(), ip(VPC_HOST), "tcp", None);
    assert_eq!(traces.len(), 2);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    let eth1 = groups
        .iter()
        .find(|g| g.outcome.starts_with("leaves eth1"))
        .unwrap();
    assert_eq!(eth1.pods, vec![ip(SECONDARY_POD)]);
    let (_, groups) = trace_all_pods(&NodeA::default().build(), ip(INTERNET), "tcp", None);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0].pods.len(), 2);
}
