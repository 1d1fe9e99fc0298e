#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Published `ip` output (fixtures/ip/realworld, see PROVENANCE.md), including truncated and
//! prompt-laden pastes.

use std::fs;
use std::path::PathBuf;

use model::net::Family;
use parsers::ip::{parse_addr, parse_route, parse_rule};

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ip/realworld")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn groundtruth_al2023_rules() {
    let p = parse_rule(&fixture("groundtruth-al2023-rule.txt")).unwrap();
    assert!(p.warnings.is_empty());
    let prios: Vec<u32> = p.value.iter().map(|r| r.priority).collect();
    assert_eq!(prios, vec![0, 512, 512, 1024, 32765, 32766, 32767]);
    assert_eq!(p.value[2].dst.unwrap().to_string(), "192.168.4.248/32");
    let r = &p.value[4];
    assert_eq!(
        (r.src.unwrap().to_string(), r.table),
        ("192.168.7.41/32".into(), Some(2))
    );
    assert_eq!(p.value[6].table, Some(253));
}

#[test]
fn groundtruth_sgp_strict_rules() {
    let p = parse_rule(&fixture("groundtruth-sgp-strict-rule.txt")).unwrap();
    assert!(p.warnings.is_empty());
    let r: Vec<_> = p
        .value
        .iter()
        .map(|r| (r.priority, r.iif.clone(), r.table))
        .collect();
    assert_eq!(
        r,
        vec![
            (10, Some("vlan.eth.2".into()), Some(102)),
            (10, Some("vlan1c357e15edb".into()), Some(102)),
            (20, None, Some(255)),
            (512, None, Some(254)),
            (1024, None, Some(254)),
        ]
    );
}

#[test]
fn groundtruth_al2023_main_table() {
    let p = parse_route(&fixture("groundtruth-al2023-route.txt")).unwrap();
    assert!(p.warnings.is_empty());
    let rs = &p.value;
    assert_eq!(rs.len(), 6);
    assert!(rs
        .iter()
        .all(|r| r.table == 254 && r.family == Family::Inet));
    assert_eq!(rs[0].protocol, "dhcp");
    assert_eq!(rs[0].metric, Some(512));
    assert_eq!(rs[2].dst.to_string(), "192.168.0.1/32");
    assert_eq!(rs[2].scope, "link");
    assert_eq!(rs[4].dev.as_deref(), Some("eni4d2fe644677"));
    assert_eq!(
        rs[5].to_ip_line(),
        "192.168.3.22 dev enia7cc107bbb9 scope link"
    );
}

#[test]
fn old_cni_rules_with_to_vpc_cidr() {
    let p = parse_rule(&fixture("vpc-cni-705-rule.txt")).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.value.len(), 12);
    let r = &p.value[8];
    assert_eq!(r.priority, 1536);
    assert_eq!(r.src.unwrap().to_string(), "10.80.38.149/32");
    assert_eq!(r.dst.unwrap().to_string(), "10.80.0.0/16");
    assert_eq!(r.table, Some(3));
}

#[test]
fn truncated_rule_paste_with_fence_and_trailing_spaces() {
    let p = parse_rule(&fixture("vpc-cni-641-rule-truncated.txt")).unwrap();
    assert_eq!(p.value.len(), 5);
    assert_eq!(p.value[4].dst.unwrap().to_string(), "10.200.206.165/32");
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 8);
    assert_eq!(p.warnings[0].text, "512:\tfr");
}

#[test]
fn desktop_route_table_all_truncated() {
    let p = parse_route(&fixture("genieparser-171-route-all-truncated.txt")).unwrap();
    assert_eq!(p.value.len(), 15);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 17);
    assert_eq!(p.value[2].flags, vec!["linkdown"]);
    assert_eq!(p.value[1].metric, Some(1000));
    let b = &p.value[5];
    assert_eq!(
        (b.route_type.as_str(), b.table, b.dst.to_string()),
        ("broadcast", 255, "127.0.0.0/32".into())
    );
    assert_eq!(p.value.iter().filter(|r| r.table == 255).count(), 10);
}

#[test]
fn al2023_addr_with_altnames_truncated() {
    let p = parse_addr(&fixture("ec2-net-utils-74-al2023-addr-truncated.txt")).unwrap();
    let (links, addrs) = &p.value;
    assert_eq!(
        links.iter().map(|l| l.ifname.as_str()).collect::<Vec<_>>(),
        vec!["lo", "ens5", "ens6"]
    );
    assert_eq!(addrs.len(), 6);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert_eq!(p.warnings[0].line, 26);
    let a = &addrs[2];
    assert_eq!(
        (a.local.to_string(), a.prefixlen, a.flags.clone()),
        ("172.31.7.134".into(), 20, vec!["dynamic".to_string()])
    );
    assert_eq!(a.broadcast.unwrap().to_string(), "172.31.15.255");
    assert_eq!(a.label, None);
    assert_eq!(addrs[3].flags, vec!["noprefixroute", "dynamic"]);
    assert_eq!(addrs[5].flags, vec!["noprefixroute", "dynamic"]);
    assert_eq!(addrs[5].ifname, "ens6");
}

#[test]
fn pod_netns_addr_with_prompt() {
    let p = parse_addr(&fixture("cniguru-2-pod-addr.txt")).unwrap();
    assert!(p.warnings.is_empty());
    let eth0 = &p.value.0[1];
    assert_eq!(
        (
            eth0.ifindex,
            eth0.ifname.as_str(),
            eth0.link_index,
            eth0.link_netnsid
        ),
        (3, "eth0", Some(126), Some(0))
    );
    assert_eq!(p.value.1[1].local.to_string(), "10.244.0.7");
}

#[test]
fn several_pretty_json_arrays_with_prompts() {
    let p = parse_route(&fixture("iproute2mac-64-json-route.txt")).unwrap();
    assert!(p.warnings.is_empty());
    assert_eq!(p.value.len(), 5);
    assert!(p.value[0].is_default());
    assert_eq!(p.value[1].prefsrc.unwrap().to_string(), "172.17.0.2");
    assert_eq!(p.value[4].route_type, "local");
    assert_eq!(p.value[4].dst.to_string(), "0.0.0.0/32");
}
