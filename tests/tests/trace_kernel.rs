//! `analysis::trace` against the kernel's real packets on emulated EKS nodes.
//!
//! For every pod (primary and secondary ENI) × destination (internet host, VPC peer, a host
//! in an excluded CIDR) × {healthy, missing 1536 rule, missing SNAT rule, missing nat connmark
//! rules, missing mangle connmark rules, strict rp_filter on the primary ENI, inverted RETURN}:
//! a burst of pings goes out of the pod's namespace; the egress interface is the node interface
//! whose TX counter rose (read with `ip -s -j link`), the source after NAT is the reply tuple of
//! that flow in `conntrack -L` (read by the small reader below, not `parsers::conntrack`). The
//! real `node-agent` then collects the snapshot and the trace of the same flow must predict the
//! same interface(s) and source, and agree with the conntrack entries in the snapshot.
//! `ip route get` is deliberately not used: it ignores the connmark.
//!
//! Needs root, iproute2, iptables (nft and legacy), conntrack, ping and the `node-agent` and
//! `cni-doubles` binaries next to the test executable (`cargo build -p node-agent -p e2e
//! --bins`). Without them the test says why and passes, except with `CI` or
//! `EKD_SCENARIOS=require` set, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use analysis::trace::{trace, TraceRequest};
use e2e::node::{EksNode, EksNodeBuilder};
use model::trace::PacketTrace;

/// Pings per burst.
const BURST: u64 = 8;
/// The host in the excluded CIDR (added to the internet namespace by [`add_excluded_host`]).
const EXCLUDED_CIDR: &str = "198.51.100.0/24";
const EXCLUDED_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn require() -> bool {
    e2e::prereq::required()
}

fn cannot_run() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces)".into());
    }
    for tool in ["conntrack", "ping", "ip", "iptables-nft"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    [e2e::doubles::doubles_bin(), e2e::agent::agent_bin()]
        .into_iter()
        .find_map(|b| b.err().map(|e| format!("{e:#}")))
}

fn node(b: EksNodeBuilder) -> Option<EksNode> {
    if let Some(why) = cannot_run() {
        assert!(!require(), "CI/EKD_SCENARIOS=require but: {why}");
        eprintln!("skipping trace_kernel: {why}");
        return None;
    }
    Some(b.build().unwrap_or_else(|e| panic!("emulated node: {e:#}")))
}

/// TX packet counters of every interface in the node namespace (`ip -s -j link`).
fn tx_counters(n: &EksNode) -> BTreeMap<String, u64> {
    let text = n.exec_ok(&["ip", "-s", "-j", "link", "show"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for l in v.as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap().to_string();
        let tx = l["stats64"]["tx"]["packets"].as_u64().unwrap();
        out.insert(name, tx);
    }
    out
}

/// One `conntrack -L` line, the fields this test needs.
#[derive(Debug)]
struct Ct {
    proto: String,
    orig_src: IpAddr,
    orig_dst: IpAddr,
    reply_dst: IpAddr,
    line: String,
}

/// A deliberately small reader of `conntrack -L` text: the first `src=`/`dst=` pair is the
/// original tuple, the second the reply tuple.
fn read_conntrack(text: &str) -> Vec<Ct> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(proto) = words.next() else { continue };
        let mut srcs = Vec::new();
        let mut dsts = Vec::new();
        for w in line.split_whitespace() {
            if let Some(v) = w.strip_prefix("src=") {
                srcs.push(v.parse::<IpAddr>());
            } else if let Some(v) = w.strip_prefix("dst=") {
                dsts.push(v.parse::<IpAddr>());
            }
        }
        if let ([Ok(os), Ok(_), ..], [Ok(od), Ok(rd), ..]) = (srcs.as_slice(), dsts.as_slice()) {
            out.push(Ct {
                proto: proto.to_string(),
                orig_src: *os,
                orig_dst: *od,
                reply_dst: *rd,
                line: line.to_string(),
            });
        }
    }
    out
}

/// What the kernel did with one burst.
#[derive(Debug)]
struct Observed {
    tx: BTreeMap<String, u64>,
    received: u64,
    reply_dst: IpAddr,
    ct_line: String,
}

/// A host in the excluded CIDR behind the router, reachable without SNAT (as over a TGW).
fn add_excluded_host(n: &EksNode) {
    let inet = n.config().internet_host.to_string();
    n.internet_ns()
        .exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{EXCLUDED_HOST}/32"),
            "dev",
            "eth0",
        ])
        .unwrap();
    n.vpc_ns()
        .exec_ok(&[
            "ip",
            "route",
            "add",
            &format!("{EXCLUDED_HOST}/32"),
            "via",
            &inet,
            "dev",
            "tinet",
        ])
        .unwrap();
    n.vpc_ns()
        .exec_ok(&[
            "iptables-nft",
            "-w",
            "5",
            "-I",
            "FORWARD",
            "1",
            "-d",
            EXCLUDED_CIDR,
            "-j",
            "ACCEPT",
        ])
        .unwrap();
}

/// No other traffic on the ENIs while counting: IPv6 off on them, permanent neighbours for the
/// gateways (node side) and for the ENI addresses (router side), so no ARP is sent.
fn quiet_enis(n: &EksNode) {
    let c = n.config();
    let router_links = n.vpc_ns().exec_ok(&["ip", "-j", "link", "show"]).unwrap();
    let links: serde_json::Value = serde_json::from_str(&router_links).unwrap();
    let mac_of = |name: &str| -> String {
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == name)
            .and_then(|l| l["address"].as_str())
            .unwrap()
            .to_string()
    };
    for (eni, router_if) in c.enis.iter().zip(["n0", "n1"]) {
        n.exec_ok(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", eni.ifname),
        ])
        .unwrap();
        n.exec_ok(&[
            "ip",
            "neigh",
            "replace",
            &eni.gateway.to_string(),
            "lladdr",
            &mac_of(router_if),
            "dev",
            &eni.ifname,
            "nud",
            "permanent",
        ])
        .unwrap();
        n.vpc_ns()
            .exec_ok(&[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{router_if}.disable_ipv6=1"),
            ])
            .unwrap();
        n.vpc_ns()
            .exec_ok(&[
                "ip",
                "neigh",
                "replace",
                &eni.primary_ip.to_string(),
                "lladdr",
                &eni.mac,
                "dev",
                router_if,
                "nud",
                "permanent",
            ])
            .unwrap();
    }
}

/// A burst of pings from pod `i` to `dst`; what the counters and conntrack say.
fn burst(n: &EksNode, i: usize, dst: Ipv4Addr) -> Observed {
    let pod = &n.pods()[i];
    let before = tx_counters(n);
    let out = n
        .pod_ns(i)
        .unwrap()
        .exec(&[
            "ping",
            "-n",
            "-q",
            "-c",
            &BURST.to_string(),
            "-i",
            "0.05",
            "-W",
            "1",
            &dst.to_string(),
        ])
        .unwrap();
    let after = tx_counters(n);
    let text = String::from_utf8_lossy(&out.stdout);
    let received = text
        .split(',')
        .find_map(|p| p.trim().strip_suffix(" received"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let tx = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect();
    let ct = n.exec_ok(&["conntrack", "-L", "-p", "icmp"]).unwrap();
    let flow = read_conntrack(&ct)
        .into_iter()
        .find(|e| {
            e.proto == "icmp" && e.orig_src == IpAddr::V4(pod.ip) && e.orig_dst == IpAddr::V4(dst)
        })
        .unwrap_or_else(|| panic!("no conntrack entry {} → {dst}:\n{ct}", pod.ip));
    Observed {
        tx,
        received,
        reply_dst: flow.reply_dst,
        ct_line: flow.line,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Healthy,
    Missing1536,
    MissingSnat,
    MissingNatConnmark,
    MissingMangleConnmark,
    StrictRpFilter,
    InvertedReturn,
}

fn inject(n: &EksNode, f: Fault) {
    let secondary = n.pods().iter().position(|p| p.eni_device != 0).unwrap();
    match f {
        Fault::Healthy => Ok(()),
        Fault::Missing1536 => n.fault_delete_from_pod_rule(secondary),
        Fault::MissingSnat => n.fault_delete_snat_rule(),
        Fault::MissingNatConnmark => n.fault_delete_nat_connmark_rules(),
        Fault::MissingMangleConnmark => n.fault_delete_mangle_connmark_rules(),
        Fault::StrictRpFilter => n.fault_rp_filter(1),
        Fault::InvertedReturn => {
            let vpc = n.config().vpc_cidrs[0].to_string();
            n.fault_insert_negated_return(&vpc)
        }
    }
    .unwrap_or_else(|e| panic!("{f:?}: {e:#}"));
}

/// The ENI interfaces a trace predicts the burst leaves through: the first packet's, and the
/// later packets' when they differ.
fn predicted_ifaces(t: &PacketTrace) -> (Option<String>, Option<String>) {
    (
        t.route.egress_interface.clone(),
        t.established_route
            .as_ref()
            .and_then(|r| r.egress_interface.clone()),
    )
}

fn case(f: Fault) {
    let Some(n) = node(
        EksNode::builder()
            .pods_on_primary(1)
            .pods_on_secondary(1)
            .exclude_snat([EXCLUDED_CIDR]),
    ) else {
        return;
    };
    add_excluded_host(&n);
    quiet_enis(&n);
    inject(&n, f);
    n.exec_ok(&["conntrack", "-F"]).unwrap();
    let c = n.config().clone();
    let enis: Vec<String> = c.enis.iter().map(|e| e.ifname.clone()).collect();
    let dsts = [
        ("internet", c.internet_host),
        ("vpc-peer", c.vpc_peer),
        ("excluded", EXCLUDED_HOST),
    ];
    let mut seen = Vec::new();
    for (i, pod) in c.pods.iter().enumerate() {
        for (what, dst) in dsts {
            seen.push((i, pod.clone(), what, dst, burst(&n, i, dst)));
        }
    }
    let (snap, _) = e2e::agent::collect(&n, &[], None).unwrap();
    let mut failures = Vec::new();
    for (_, pod, what, dst, obs) in &seen {
        let t = trace(
            &snap,
            &TraceRequest::new(IpAddr::V4(pod.ip), IpAddr::V4(*dst)),
        );
        let label = format!(
            "{f:?}: pod {} (ENI {}) → {what} {dst}",
            pod.ip, pod.eni_device
        );
        let ctx = || {
            format!(
                "{label}\n  kernel: tx {:?}, {} received, conntrack {}\n  trace: {}\n  steps:\n    {}",
                obs.tx,
                obs.received,
                obs.ct_line,
                t.verdict,
                t.steps
                    .iter()
                    .map(|s| s.decision.clone())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
        };
        // Egress interface(s): the ENIs whose TX counter rose.
        let rose: Vec<&String> = enis.iter().filter(|e| obs.tx[*e] > 0).collect();
        let (first, later) = predicted_ifaces(&t);
        let mut predicted: Vec<&String> = first.iter().chain(later.iter()).collect();
        predicted.sort();
        predicted.dedup();
        let mut rose_sorted = rose.clone();
        rose_sorted.sort();
        if rose_sorted != predicted {
            failures.push(format!(
                "egress: kernel {rose:?} ≠ trace {predicted:?}\n{}",
                ctx()
            ));
            continue;
        }
        match (&first, &later) {
            (Some(a), None) if obs.tx[a] < BURST => {
                failures.push(format!(
                    "only {} of {BURST} echo requests left {a}\n{}",
                    obs.tx[a],
                    ctx()
                ));
            }
            (Some(a), Some(b)) if obs.tx[a] + obs.tx[b] < BURST => {
                failures.push(format!("echo requests missing on {a}+{b}\n{}", ctx()));
            }
            _ => {}
        }
        // Source after NAT = the reply tuple's destination.
        if t.source_after_nat != Some(obs.reply_dst) {
            failures.push(format!(
                "source after NAT: kernel {} ≠ trace {:?}\n{}",
                obs.reply_dst,
                t.source_after_nat,
                ctx()
            ));
        }
        // The snapshot's conntrack agrees with the prediction.
        if t.findings
            .iter()
            .any(|x| x.starts_with("observed ≠ predicted"))
            || t.observed.is_empty()
        {
            failures.push(format!("observed flows {:?}\n{}", t.observed, ctx()));
        }
        // Replies: dropped on the node when the trace says so; answered when the trace accepts
        // them and the emulated fabric delivers (it only lets the node's primary IP reach the
        // internet).
        let fabric_delivers = *what != "internet" || obs.reply_dst == IpAddr::V4(c.primary_ip);
        match t.reply_accepted {
            Some(false) if obs.received > 0 => failures.push(format!(
                "trace drops replies but {} arrived\n{}",
                obs.received,
                ctx()
            )),
            Some(true) if fabric_delivers && obs.received == 0 => {
                failures.push(format!("trace accepts replies but none arrived\n{}", ctx()))
            }
            None => failures.push(format!("reply acceptance unknown\n{}", ctx())),
            _ => {}
        }
        if !t.unknowns.is_empty() {
            failures.push(format!("unknown inputs {:?}\n{}", t.unknowns, ctx()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The fault really changed something the trace reports (so the test could fail).
    let secondary_internet = seen
        .iter()
        .find(|(_, p, w, _, _)| p.eni_device != 0 && *w == "internet")
        .map(|(_, _, _, _, o)| o)
        .unwrap();
    match f {
        Fault::Healthy => {
            assert_eq!(secondary_internet.tx[&c.primary_if], BURST);
            assert_eq!(secondary_internet.reply_dst, IpAddr::V4(c.primary_ip));
            assert_eq!(secondary_internet.received, BURST);
        }
        Fault::StrictRpFilter => assert_eq!(secondary_internet.received, 0),
        Fault::MissingSnat | Fault::InvertedReturn => {
            assert_ne!(secondary_internet.reply_dst, IpAddr::V4(c.primary_ip))
        }
        Fault::MissingNatConnmark | Fault::MissingMangleConnmark => {
            assert!(secondary_internet.tx["eth1"] > 0)
        }
        Fault::Missing1536 => {
            let vpc = seen
                .iter()
                .find(|(_, p, w, _, _)| p.eni_device != 0 && *w == "vpc-peer")
                .map(|(_, _, _, _, o)| o)
                .unwrap();
            assert_eq!(vpc.tx[&c.primary_if], BURST);
        }
    }
}

#[test]
fn healthy() {
    case(Fault::Healthy);
}

#[test]
fn missing_1536_rule() {
    case(Fault::Missing1536);
}

#[test]
fn missing_snat_rule() {
    case(Fault::MissingSnat);
}

#[test]
fn missing_nat_connmark_rules() {
    case(Fault::MissingNatConnmark);
}

#[test]
fn missing_mangle_connmark_rules() {
    case(Fault::MissingMangleConnmark);
}

#[test]
fn strict_rp_filter_on_primary_eni() {
    case(Fault::StrictRpFilter);
}

#[test]
fn inverted_return() {
    case(Fault::InvertedReturn);
}

#[test]
fn conntrack_reader_reads_both_tuples() {
    let v = read_conntrack(
        "icmp     1 29 src=10.0.2.10 dst=203.0.113.10 type=8 code=0 id=7 src=203.0.113.10 dst=10.0.1.251 type=0 code=0 id=7 mark=128 use=1\n\
         conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n",
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].orig_src, "10.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!(v[0].reply_dst, "10.0.1.251".parse::<IpAddr>().unwrap());
}
