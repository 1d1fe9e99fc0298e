//! `node-agent collect` inside emulated EKS nodes, checked against the kernel read
//! independently (iproute2 JSON, `iptables-save -c`, `conntrack -L`) and against the facts the
//! IMDS/ipamd doubles serve.
//!
//! Needs root, iproute2, iptables (nft and legacy), conntrack, and the `node-agent` binary next
//! to the test executable (`cargo build -p node-agent`, same profile; `cargo test --workspace`
//! builds it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use model::net::{table_id_from_name, RT_TABLE_MAIN};
use model::{Family, SectionStatus, Snapshot};
use serde_json::Value;

use e2e::agent::{collect, conntrack_flows, line_diff, read_only_state, tool_dir};
use e2e::netns::require_root;
use e2e::node::{Backend, EksNode, Layout, Random};

fn ip_json(node: &EksNode, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["ip", "-j"];
    argv.extend_from_slice(args);
    let text = node.exec_ok(&argv).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {text}"))
}

fn net(s: &str, family: Family, len: Option<u64>) -> IpNet {
    if s == "default" || s == "all" {
        return match family {
            Family::Inet => "0.0.0.0/0".parse().unwrap(),
            Family::Inet6 => "::/0".parse().unwrap(),
        };
    }
    if s.contains('/') {
        return s.parse().unwrap();
    }
    let addr: IpAddr = s.parse().unwrap();
    let max = if addr.is_ipv4() { 32 } else { 128 };
    IpNet::new(addr, len.map_or(max, |l| l as u8)).unwrap()
}

type RouteKey = (Family, u32, String, IpNet, Option<IpAddr>, Option<String>);

fn kernel_routes(node: &EksNode) -> Vec<RouteKey> {
    let mut out = Vec::new();
    for (fam, flag) in [(Family::Inet, "-4"), (Family::Inet6, "-6")] {
        for r in ip_json(node, &[flag, "route", "show", "table", "all"]) {
            let table = r["table"]
                .as_str()
                .map_or(RT_TABLE_MAIN, |t| table_id_from_name(t).unwrap());
            out.push((
                fam,
                table,
                r["type"].as_str().unwrap_or("unicast").to_string(),
                net(r["dst"].as_str().unwrap(), fam, None),
                r["gateway"].as_str().map(|g| g.parse().unwrap()),
                r["dev"].as_str().map(str::to_string),
            ));
        }
    }
    out.sort_by_key(|k| format!("{k:?}"));
    out
}

fn snapshot_routes(s: &Snapshot) -> Vec<RouteKey> {
    let mut out: Vec<RouteKey> = s
        .routes
        .get()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.family,
                r.table,
                r.route_type.clone(),
                r.dst,
                r.gateway,
                r.dev.clone(),
            )
        })
        .collect();
    out.sort_by_key(|k| format!("{k:?}"));
    out
}

type RuleKey = (
    Family,
    u32,
    Option<IpNet>,
    Option<IpNet>,
    Option<u32>,
    Option<u32>,
);

fn kernel_rules(node: &EksNode) -> Vec<RuleKey> {
    let mut out = Vec::new();
    for (fam, flag) in [(Family::Inet, "-4"), (Family::Inet6, "-6")] {
        for r in ip_json(node, &[flag, "rule"]) {
            let sel = |k: &str, l: &str| {
                r[k].as_str()
                    .filter(|v| *v != "all")
                    .map(|v| net(v, fam, r[l].as_u64()))
            };
            let hex = |k: &str| {
                r[k].as_str()
                    .map(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap())
            };
            out.push((
                fam,
                r["priority"].as_u64().unwrap() as u32,
                sel("src", "srclen"),
                sel("dst", "dstlen"),
                hex("fwmark"),
                r["table"].as_str().map(|t| table_id_from_name(t).unwrap()),
            ));
        }
    }
    out.sort_by_key(|k| format!("{k:?}"));
    out
}

fn snapshot_rules(s: &Snapshot) -> Vec<RuleKey> {
    let mut out: Vec<RuleKey> = s
        .rules
        .get()
        .unwrap()
        .iter()
        .map(|r| (r.family, r.priority, r.src, r.dst, r.fwmark, r.table))
        .collect();
    out.sort_by_key(|k| format!("{k:?}"));
    out
}

fn kernel_addresses(node: &EksNode) -> Vec<(String, IpAddr, u8)> {
    let mut out = Vec::new();
    for l in ip_json(node, &["addr"]) {
        for a in l["addr_info"].as_array().unwrap() {
            out.push((
                l["ifname"].as_str().unwrap().to_string(),
                a["local"].as_str().unwrap().parse().unwrap(),
                a["prefixlen"].as_u64().unwrap() as u8,
            ));
        }
    }
    out.sort();
    out
}

/// Rule lines of `<backend>-save -c`, per table, in order.
fn save_rules(node: &EksNode, save: &str) -> BTreeMap<String, Vec<String>> {
    let text = node.exec_ok(&[save, "-c"]).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut table = String::new();
    for l in text.lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = t.to_string();
            out.entry(table.clone()).or_default();
        } else if l.starts_with('[') || l.starts_with("-A ") {
            out.entry(table.clone())
                .or_default()
                .push(l.trim().to_string());
        }
    }
    out
}

/// The snapshot's parsed rules rendered back to save lines from their fields (chain, counters,
/// matches, target, target options) by the save-line renderer — never the stored raw text, so
/// comparing with `iptables-save -c` checks what was parsed, not what was copied.
fn snapshot_iptables(s: &Snapshot, backend: model::Backend) -> BTreeMap<String, Vec<String>> {
    let dump = s
        .iptables
        .get()
        .unwrap()
        .backend(backend)
        .unwrap_or_else(|| panic!("no {backend} dump in the snapshot"));
    dump.tables
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.chains
                    .iter()
                    .flat_map(|c| {
                        c.rules.iter().map(|r| {
                            let mut r = r.clone();
                            r.raw.clear();
                            parsers::iptables::to_save_line(&r)
                        })
                    })
                    .collect(),
            )
        })
        .collect()
}

fn strip_counters(m: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    m.iter()
        .map(|(t, v)| {
            let rules = v
                .iter()
                .map(|l| match l.split_once("] ") {
                    Some((c, rest)) if c.starts_with('[') => rest.to_string(),
                    _ => l.clone(),
                })
                .collect();
            (t.clone(), rules)
        })
        .collect()
}

/// A node with traffic, the state before, one full collect, the state after.
fn collect_checked(node: &mut EksNode) -> Snapshot {
    node.generate_traffic().unwrap();
    let before = read_only_state(node.ns()).unwrap();
    let (snap, _) = collect(node, &["--conntrack-sample", "5000"], None).unwrap();
    let after = read_only_state(node.ns()).unwrap();
    assert!(
        before == after,
        "node-agent collect changed the node's state:\n{}",
        line_diff(&before, &after)
    );
    for (name, status, reason) in snap.section_statuses() {
        assert_eq!(status, SectionStatus::Ok, "section {name}: {reason:?}");
    }
    snap
}

#[test]
fn snapshot_matches_the_kernel_and_the_doubles() {
    require_root().unwrap();
    let mut node = EksNode::builder()
        .vpc_cidrs(["192.168.0.0/16", "100.64.0.0/16"])
        .exclude_snat(["10.10.0.0/16"])
        .pods_on_primary(2)
        .pods_on_secondary(2)
        .build()
        .unwrap();
    let snap = collect_checked(&mut node);
    let c = node.config().clone();

    // Every route of every table, every rule, every address.
    assert_eq!(snapshot_routes(&snap), kernel_routes(&node));
    assert_eq!(snapshot_rules(&snap), kernel_rules(&node));
    let mut addrs: Vec<(String, IpAddr, u8)> = snap
        .addresses
        .get()
        .unwrap()
        .iter()
        .map(|a| (a.ifname.clone(), a.local, a.prefixlen))
        .collect();
    addrs.sort();
    assert_eq!(addrs, kernel_addresses(&node));
    let links = snap.links.get().unwrap();
    for p in &c.pods {
        let l = links.iter().find(|l| l.ifname == p.veth).unwrap();
        assert_eq!(l.address.as_deref(), Some(p.veth_mac.as_str()));
        assert_eq!(l.kind.as_deref(), Some("veth"));
    }

    // iptables: the parsed rules, rendered from their fields, are the kernel's lines in the
    // kernel's order (counters move with the agent's own loopback connections, see the
    // per-backend test for counters).
    let snap_nft = snapshot_iptables(&snap, model::Backend::Nft);
    assert_eq!(
        strip_counters(&snap_nft),
        strip_counters(&save_rules(&node, "iptables-nft-save"))
    );

    // conntrack: every flow conntrack -L shows (but the agent's own loopback connections,
    // which come and go while it runs) is in the snapshot with the same NAT verdict.
    let ct = snap.conntrack.get().unwrap();
    let flows: Vec<_> = conntrack_flows(node.ns())
        .unwrap()
        .into_iter()
        .filter(|f| !f.orig_src.is_loopback())
        .collect();
    let sample: Vec<_> = ct
        .sample
        .iter()
        .filter(|e| !e.original.src.is_loopback())
        .collect();
    assert_eq!(sample.len(), flows.len(), "{flows:?}");
    for f in &flows {
        assert!(
            sample.iter().any(|e| e.original.src == f.orig_src
                && e.original.dst == f.orig_dst
                && e.reply.dst == f.reply_dst
                && e.protocol == f.protocol),
            "{f:?} missing from the snapshot"
        );
    }
    let loopback = ct.sample.len() - sample.len();
    assert_eq!(ct.summary.total as usize, flows.len() + loopback);
    let snat = flows.iter().filter(|f| f.is_snat()).count();
    assert_eq!(snat, 2 * c.pods.len(), "icmp+tcp to the internet per pod");
    assert_eq!(ct.summary.snat as usize, snat);
    let to_primary = ct
        .summary
        .pairs
        .iter()
        .filter(|p| p.nat_source == Some(IpAddr::V4(c.primary_ip)))
        .map(|p| p.flows)
        .sum::<u64>();
    assert_eq!(to_primary as usize, snat);

    // Node identity from the IMDS double, interfaces resolved by MAC.
    let id = snap.node.get().unwrap();
    assert_eq!(id.instance_id.as_deref(), Some(c.instance_id.as_str()));
    assert_eq!(id.primary_ipv4, Some(c.primary_ip));
    assert_eq!(id.primary_interface.as_deref(), Some("eth0"));
    assert_eq!(id.vpc_cidrs, c.vpc_cidrs);
    assert!(id.inferred.is_empty());
    assert_eq!(id.enis.len(), 2);
    for e in &c.enis {
        let s = id.enis.iter().find(|x| x.mac == e.mac).unwrap();
        assert_eq!(s.device_number, Some(e.device_number));
        assert_eq!(s.interface.as_deref(), Some(e.ifname.as_str()));
        assert_eq!(s.subnet_cidr, Some(e.subnet));
        assert_eq!(s.ipv4_addresses.first(), Some(&e.primary_ip));
    }

    // CNI env and ENIs from the ipamd double.
    let cni = snap.cni.get().unwrap();
    assert_eq!(cni.get("AWS_VPC_K8S_CNI_EXTERNALSNAT"), Some("false"));
    assert_eq!(cni.get("AWS_VPC_K8S_CNI_CONNMARK"), Some("128"));
    assert_eq!(
        cni.get("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"),
        Some("10.10.0.0/16")
    );
    let enis = cni.ipamd_enis.as_ref().unwrap();
    let mut assigned: Vec<(u32, IpAddr, String)> = enis
        .assigned()
        .map(|(e, a)| (e.device_number, a.address, a.pod_name.clone().unwrap()))
        .collect();
    assigned.sort();
    let mut expected: Vec<(u32, IpAddr, String)> = c
        .pods
        .iter()
        .map(|p| (p.eni_device, IpAddr::V4(p.ip), p.name.clone()))
        .collect();
    expected.sort();
    assert_eq!(assigned, expected);
    assert_eq!(enis.network_cards[0].total_ips, 8);
    assert_eq!(
        enis.network_cards[0]
            .enis
            .iter()
            .find(|e| e.device_number == 1)
            .unwrap()
            .route_table_id,
        Some(2)
    );

    // Sysctls.
    let sys = snap.sysctls.get().unwrap();
    assert_eq!(sys.rp_filter("eth0"), Some(2));
    assert_eq!(sys.get("net.ipv4.ip_forward"), Some("1"));
}

/// Full collect (all sections ok, nothing changed) plus an iptables-only collect whose rules
/// and counters equal `iptables-save -c` of both backends, for one layout/backend pair.
fn layout_backend(layout: Layout, backend: Backend, random: Random, primary_if: &str) {
    require_root().unwrap();
    let mut node = EksNode::builder()
        .layout(layout)
        .backend(backend)
        .randomize(random)
        .primary_if(primary_if)
        .exclude_snat(["10.0.0.0/8"])
        .pods_on_primary(1)
        .pods_on_secondary(1)
        .build()
        .unwrap();
    let full = collect_checked(&mut node);
    let c = node.config().clone();
    let ipt = full.iptables.get().unwrap();
    let mine = ipt.backend(backend.to_model()).unwrap();
    let other = ipt.backend(backend.other().to_model()).unwrap();
    let nat = mine.table("nat").unwrap();
    let snat_chain = match layout {
        Layout::Current => "AWS-SNAT-CHAIN-0".to_string(),
        Layout::Chained => "AWS-SNAT-CHAIN-2".to_string(),
    };
    let snat = nat
        .chain(&snat_chain)
        .unwrap()
        .rules
        .last()
        .unwrap()
        .clone();
    assert_eq!(snat.target.as_deref(), Some("SNAT"));
    assert_eq!(
        snat.target_arg("--to-source").unwrap().values,
        vec![c.primary_ip.to_string()]
    );
    let flag = match random {
        Random::Fully => Some("--random-fully"),
        Random::Hash => Some("--random"),
        Random::None => None,
    };
    for f in ["--random-fully", "--random"] {
        assert_eq!(snat.has_target_option(f), flag == Some(f), "{}", snat.raw);
    }
    assert!(snat.packets.unwrap() > 0, "SNAT counter: {}", snat.raw);
    assert!(!other
        .tables
        .iter()
        .any(|t| t.chain("AWS-SNAT-CHAIN-0").is_some()));
    assert!(mine
        .table("filter")
        .unwrap()
        .chain("KUBE-KUBELET-CANARY")
        .is_some());
    assert_eq!(
        full.node.get().unwrap().primary_interface.as_deref(),
        Some(primary_if)
    );
    // The --cni-env file (the aws-node env) wins over ipamd's numeric snatType.
    let want = match random {
        Random::Fully => "prng",
        Random::Hash => "hashrandom",
        Random::None => "none",
    };
    assert_eq!(
        full.cni.get().unwrap().get("AWS_VPC_K8S_CNI_RANDOMIZESNAT"),
        Some(want)
    );

    // Counters: an iptables-only collect makes no connections, so they stay put.
    let (only, _) = collect(&node, &["--sections", "iptables"], None).unwrap();
    for (name, status, _) in only.section_statuses() {
        let want = if name == "iptables" {
            SectionStatus::Ok
        } else {
            SectionStatus::Skipped
        };
        assert_eq!(status, want, "{name}");
    }
    assert_eq!(
        snapshot_iptables(&only, backend.to_model()),
        save_rules(&node, backend.save()),
        "{backend:?} rules with counters"
    );
    assert_eq!(
        snapshot_iptables(&only, backend.other().to_model()),
        save_rules(&node, backend.other().save())
    );
}

#[test]
fn current_layout_nft_backend() {
    layout_backend(Layout::Current, Backend::Nft, Random::Fully, "eth0");
}

#[test]
fn current_layout_legacy_backend() {
    layout_backend(Layout::Current, Backend::Legacy, Random::None, "ens5");
}

#[test]
fn chained_layout_nft_backend() {
    layout_backend(Layout::Chained, Backend::Nft, Random::Hash, "ens5");
}

#[test]
fn chained_layout_legacy_backend() {
    layout_backend(Layout::Chained, Backend::Legacy, Random::Fully, "eth0");
}

const TOOLS: &[&str] = &[
    "iptables",
    "iptables-save",
    "iptables-nft-save",
    "iptables-legacy-save",
    "conntrack",
    // for the hanging stand-ins
    "sleep",
];

#[test]
fn missing_iptables_is_unavailable_and_the_rest_is_complete() {
    require_root().unwrap();
    let node = EksNode::builder().build().unwrap();
    let dir = node.config().workdir.join("bin-missing");
    tool_dir(
        &dir,
        TOOLS,
        &[
            "iptables",
            "iptables-save",
            "iptables-nft-save",
            "iptables-legacy-save",
        ],
        &[],
    )
    .unwrap();
    let (snap, _) = collect(&node, &[], Some(&dir)).unwrap();
    for (name, status, reason) in snap.section_statuses() {
        if name == "iptables" {
            assert_eq!(status, SectionStatus::Unavailable, "{reason:?}");
            assert!(reason.unwrap().contains("not found"), "{reason:?}");
        } else {
            assert_eq!(status, SectionStatus::Ok, "{name}: {reason:?}");
        }
    }
    // The rest is the kernel's state, not merely non-empty.
    assert_eq!(snapshot_routes(&snap), kernel_routes(&node));
    assert_eq!(snapshot_rules(&snap), kernel_rules(&node));
    assert!(!snap.rules.get().unwrap().is_empty());
}

#[test]
fn hanging_iptables_fails_within_the_budget_and_the_rest_is_complete() {
    require_root().unwrap();
    let node = EksNode::builder().build().unwrap();
    let dir = node.config().workdir.join("bin-hang");
    let hang = "exec sleep 60";
    tool_dir(
        &dir,
        TOOLS,
        &["iptables-nft-save", "iptables-legacy-save", "iptables-save"],
        &[
            ("iptables-nft-save", hang),
            ("iptables-legacy-save", hang),
            ("iptables-save", hang),
        ],
    )
    .unwrap();
    let start = Instant::now();
    let (snap, _) = collect(&node, &["--timeout", "3s"], Some(&dir)).unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "collect took {took:?}");
    for (name, status, reason) in snap.section_statuses() {
        if name == "iptables" {
            assert_eq!(status, SectionStatus::Failed, "{reason:?}");
            assert!(reason.unwrap().contains("timed out"), "{reason:?}");
        } else {
            assert_eq!(status, SectionStatus::Ok, "{name}: {reason:?}");
        }
    }
    // The hung children were killed (no sleep left in the node's namespace).
    let left = node.ns().pids().len();
    // The doubles' `serve` process is the only thing that should still run there.
    assert_eq!(left, 1, "processes left in the node namespace");
}
