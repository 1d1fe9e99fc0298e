//! The emulated node itself: its kernel state is what the VPC CNI would program, its datapath
//! SNATs like a real node, its fault injectors really change the kernel, and it cleans up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use e2e::agent::conntrack_flows;
use e2e::netns::{list_namespaces, require_root};
use e2e::node::{Backend, EksNode, Layout, Random};

fn aws_lines(save: &str) -> Vec<String> {
    save.lines()
        .filter(|l| l.starts_with("-A AWS-") || (l.starts_with("-A ") && l.contains("AWS")))
        .map(str::to_string)
        .collect()
}

fn ns_of(stem: &str) -> Vec<String> {
    list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{stem}-")))
        .collect()
}

#[test]
fn healthy_current_nft_node_has_the_cni_state_and_snats_to_the_internet() {
    require_root().unwrap();
    let mut node = EksNode::builder()
        .vpc_cidrs(["192.168.0.0/16", "100.64.0.0/16"])
        .exclude_snat(["10.10.0.0/16"])
        .build()
        .unwrap();
    let c = node.config().clone();

    // iptables: exactly the generated AWS rules, in order, in nft; nothing in legacy.
    let save = node.exec_ok(&["iptables-nft-save"]).unwrap();
    let expected: Vec<String> = c.aws_rules().iter().map(|r| r.save_line()).collect();
    let mut got = aws_lines(&save);
    got.sort();
    let mut exp = expected.clone();
    exp.sort();
    assert_eq!(got, exp, "{save}");
    let snat_chain: Vec<&str> = save
        .lines()
        .filter(|l| l.starts_with("-A AWS-SNAT-CHAIN-0"))
        .collect();
    assert!(snat_chain[0].contains("-d 10.10.0.0/16"), "exclusion first");
    assert!(snat_chain[1].contains("-d 100.64.0.0/16"));
    assert!(snat_chain[3].contains("--to-source 192.168.1.251 --random-fully"));
    assert!(save.contains(":KUBE-KUBELET-CANARY - [0:0]"));
    let legacy = node.exec_ok(&["iptables-legacy-save"]).unwrap();
    assert!(!legacy.contains("AWS"), "{legacy}");

    // Policy routing, table 2, pod routes, sysctls.
    let rules = node.ip(&["rule"]).unwrap();
    for p in &c.pods {
        assert!(rules.contains(&format!("512:\tfrom all to {} lookup main", p.ip)));
        let from = format!("1536:\tfrom {} lookup 2", p.ip);
        assert_eq!(rules.contains(&from), p.eni_device == 1, "{rules}");
    }
    assert!(rules.contains("1024:\tfrom all fwmark 0x80/0x80 lookup main"));
    assert!(rules.contains(&format!("32765:\tfrom {} lookup 2", c.enis[1].primary_ip)));
    let t2 = node.ip(&["route", "show", "table", "2"]).unwrap();
    assert!(t2.contains("default via 192.168.32.1 dev eth1"), "{t2}");
    assert!(t2.contains("192.168.32.1 dev eth1 scope link"), "{t2}");
    let main = node.ip(&["route", "show", "table", "main"]).unwrap();
    assert!(!main.contains("192.168.32.0/19"), "{main}");
    for p in &c.pods {
        assert!(main.contains(&format!("{} dev {} scope link", p.ip, p.veth)));
    }
    assert_eq!(
        node.ns()
            .sysctl_get("net.ipv4.conf.eth0.rp_filter")
            .unwrap(),
        "2"
    );
    assert_eq!(node.ns().sysctl_get("net.ipv4.ip_forward").unwrap(), "1");

    // Inside a pod: /32, 169.254.1.1 gateway, permanent neighbour = host veth MAC.
    let pod = node.pod_ns(0).unwrap();
    let neigh = pod.exec_ok(&["ip", "neigh"]).unwrap();
    assert!(
        neigh.contains(&format!(
            "169.254.1.1 dev eth0 lladdr {} PERMANENT",
            c.pods[0].veth_mac
        )),
        "{neigh}"
    );
    let link = node.ip(&["link", "show", &c.pods[0].veth]).unwrap();
    assert!(link.contains(&c.pods[0].veth_mac), "{link}");

    // Real traffic: internet flows are SNATed to the primary IP, VPC flows keep the pod IP.
    node.generate_traffic().unwrap();
    let flows = conntrack_flows(node.ns()).unwrap();
    for p in &c.pods {
        let to_inet = flows
            .iter()
            .filter(|f| f.orig_src == p.ip && f.orig_dst == c.internet_host)
            .collect::<Vec<_>>();
        assert_eq!(to_inet.len(), 2, "icmp+tcp from {}: {flows:?}", p.ip);
        assert!(to_inet.iter().all(|f| f.reply_dst == c.primary_ip));
        let to_peer = flows
            .iter()
            .filter(|f| f.orig_src == p.ip && f.orig_dst == c.vpc_peer)
            .collect::<Vec<_>>();
        assert_eq!(to_peer.len(), 2);
        assert!(to_peer.iter().all(|f| !f.is_snat()));
    }

    // The emulated IGW drops un-SNATed pod traffic: without the SNAT rule the internet is
    // unreachable while the VPC still is.
    assert!(node.ping_from(0, c.internet_host).unwrap());
    node.fault_delete_snat_rule().unwrap();
    assert!(!node.ping_from(0, c.internet_host).unwrap());
    assert!(node.ping_from(0, c.vpc_peer).unwrap());

    let stem = c.stem.clone();
    assert_eq!(ns_of(&stem).len(), 4 + c.pods.len());
    drop(node);
    assert!(
        ns_of(&stem).is_empty(),
        "namespaces left: {:?}",
        ns_of(&stem)
    );
    assert!(!c.workdir.exists());
}

#[test]
fn chained_legacy_node_round_trips_its_rules() {
    require_root().unwrap();
    let mut node = EksNode::builder()
        .layout(Layout::Chained)
        .backend(Backend::Legacy)
        .primary_if("ens5")
        .randomize(Random::Hash)
        .exclude_snat(["10.0.0.0/8", "172.16.0.0/12"])
        .pods_on_primary(1)
        .pods_on_secondary(1)
        .build()
        .unwrap();
    let c = node.config().clone();
    let save = node.exec_ok(&["iptables-legacy-save"]).unwrap();
    let expected: Vec<String> = c.aws_rules().iter().map(|r| r.save_line()).collect();
    let mut got = aws_lines(&save);
    got.sort();
    let mut exp = expected;
    exp.sort();
    assert_eq!(got, exp, "{save}");
    for i in 0..=3 {
        assert!(
            save.contains(&format!(":AWS-SNAT-CHAIN-{i} - [0:0]")),
            "{save}"
        );
    }
    assert!(save.contains("-A AWS-SNAT-CHAIN-3 ! -o vlan+"));
    assert!(save.contains("--to-source 192.168.1.251 --random\n"));
    assert!(save.contains("-A PREROUTING -i ens5 -m comment"));
    assert!(!node
        .exec_ok(&["iptables-nft-save"])
        .unwrap()
        .contains("AWS"));
    assert_eq!(
        node.ns()
            .sysctl_get("net.ipv4.conf.ens5.rp_filter")
            .unwrap(),
        "2"
    );
    // The chained layout SNATs too.
    node.generate_traffic().unwrap();
    let flows = conntrack_flows(node.ns()).unwrap();
    assert!(flows
        .iter()
        .any(|f| f.orig_dst == c.internet_host && f.reply_dst == c.primary_ip));
}

#[test]
fn fault_injectors_change_kernel_state() {
    require_root().unwrap();
    let node = EksNode::builder()
        .vpc_cidrs(["192.168.0.0/16", "100.64.0.0/16"])
        .pods_on_primary(2)
        .pods_on_secondary(2)
        .doubles(false)
        .build()
        .unwrap();
    let c = node.config().clone();
    let nat = |n: &EksNode| n.iptables(&["-t", "nat", "-S"]).unwrap();
    let rules = |n: &EksNode| n.ip(&["rule"]).unwrap();

    node.fault_snat_random(Random::None).unwrap();
    let s = nat(&node);
    assert!(s.contains("--to-source 192.168.1.251\n") || s.ends_with("--to-source 192.168.1.251"));
    assert!(!s.contains("--random-fully\n-A KUBE"), "{s}");
    node.fault_snat_to_source(Ipv4Addr::new(10, 9, 9, 9))
        .unwrap();
    assert!(nat(&node).contains("--to-source 10.9.9.9"));
    node.fault_insert_negated_return("192.168.0.0/16").unwrap();
    let first = nat(&node)
        .lines()
        .find(|l| l.starts_with("-A AWS-SNAT-CHAIN-0"))
        .unwrap()
        .to_string();
    assert!(
        first.contains("! -d 192.168.0.0/16") && first.ends_with("-j RETURN"),
        "{first}"
    );
    node.fault_drop_vpc_return("100.64.0.0/16", true).unwrap();
    assert!(!nat(&node).contains("-d 100.64.0.0/16"));
    node.fault_add_unexpected_return("8.8.8.0/24").unwrap();
    assert!(nat(&node).contains("-A AWS-SNAT-CHAIN-0 -d 8.8.8.0/24 -j RETURN"));
    node.fault_duplicate_postrouting_jump().unwrap();
    assert_eq!(nat(&node).matches("-j AWS-SNAT-CHAIN-0").count(), 2);
    node.fault_stale_snat_chain_1().unwrap();
    assert!(nat(&node).contains("-N AWS-SNAT-CHAIN-1"));
    node.fault_copy_rules_to_other_backend().unwrap();
    let legacy = node.exec_ok(&["iptables-legacy-save"]).unwrap();
    assert!(legacy.contains("-A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\""));
    assert!(!legacy.contains("KUBE-KUBELET-CANARY"));
    node.fault_delete_nat_connmark_rules().unwrap();
    assert!(!nat(&node).contains("AWS, outbound connections"));
    node.fault_delete_mangle_connmark_rules().unwrap();
    assert!(!node
        .iptables(&["-t", "mangle", "-S"])
        .unwrap()
        .contains("AWS"));
    node.fault_delete_snat_rule().unwrap();
    assert!(!nat(&node)
        .lines()
        .any(|l| l.starts_with("-A AWS-SNAT-CHAIN-0") && l.contains("AWS, SNAT")));
    node.fault_delete_postrouting_jump().unwrap();
    assert_eq!(nat(&node).matches("-j AWS-SNAT-CHAIN-0").count(), 1);

    node.fault_delete_fwmark_rule().unwrap();
    assert!(!rules(&node).contains("fwmark"));
    node.fault_delete_to_pod_rule(0).unwrap();
    assert!(!rules(&node).contains(&format!("to {} lookup", c.pods[0].ip)));
    node.fault_delete_from_pod_rule(2).unwrap();
    assert!(!rules(&node).contains(&format!("from {} lookup", c.pods[2].ip)));
    node.fault_point_from_rule_at(3, 7).unwrap();
    assert!(rules(&node).contains(&format!("1536:\tfrom {} lookup 7", c.pods[3].ip)));
    node.fault_duplicate_to_pod_rule(3, 2).unwrap();
    assert_eq!(
        rules(&node)
            .matches(&format!("to {} lookup", c.pods[3].ip))
            .count(),
        2
    );
    node.fault_delete_pod_route(1).unwrap();
    assert!(!node
        .ip(&["route"])
        .unwrap()
        .contains(&c.pods[1].ip.to_string()));
    node.fault_veth_down(0).unwrap();
    assert!(
        node.ip(&["link", "show", &c.pods[0].veth])
            .unwrap()
            .contains("state DOWN")
            || !node
                .ip(&["link", "show", &c.pods[0].veth])
                .unwrap()
                .contains(",UP")
    );
    node.fault_delete_veth(2).unwrap();
    assert!(
        node.exec(&["ip", "link", "show", &c.pods[2].veth])
            .unwrap()
            .status
            .code()
            != Some(0)
    );
    assert!(
        rules(&node).contains(&format!("to {} lookup main", c.pods[2].ip)),
        "rules dangle"
    );
    node.fault_delete_eni_default_route(1).unwrap();
    assert!(!node
        .ip(&["route", "show", "table", "2"])
        .unwrap()
        .contains("default"));
    node.fault_add_eni_subnet_route_to_main(1).unwrap();
    assert!(node
        .ip(&["route"])
        .unwrap()
        .contains("192.168.32.0/19 dev eth1"));
    node.fault_rp_filter(1).unwrap();
    assert_eq!(
        node.ns()
            .sysctl_get("net.ipv4.conf.eth0.rp_filter")
            .unwrap(),
        "1"
    );
    node.fault_ip_forward_off().unwrap();
    assert_eq!(node.ns().sysctl_get("net.ipv4.ip_forward").unwrap(), "0");
}

#[test]
fn move_to_other_backend_leaves_only_the_canary() {
    require_root().unwrap();
    let node = EksNode::builder().doubles(false).build().unwrap();
    node.fault_move_rules_to_other_backend().unwrap();
    let nft = node.exec_ok(&["iptables-nft-save"]).unwrap();
    assert!(!nft.contains("-A AWS-") && !nft.contains("AWS, "), "{nft}");
    assert!(nft.contains("KUBE-KUBELET-CANARY"));
    let legacy = node.exec_ok(&["iptables-legacy-save"]).unwrap();
    assert!(legacy.contains("AWS, SNAT"));
}

#[test]
fn several_nodes_coexist_and_a_panicking_test_cleans_up() {
    require_root().unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let mut n = EksNode::builder()
                    .pods_on_primary(1)
                    .pods_on_secondary(1)
                    .build()?;
                n.generate_traffic()?;
                anyhow::Ok(n)
            })
        })
        .collect();
    let nodes: Vec<EksNode> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let stems: Vec<String> = nodes.iter().map(|n| n.config().stem.clone()).collect();
    for (n, s) in nodes.iter().zip(&stems) {
        assert_eq!(ns_of(s).len(), 6);
        // Each node's conntrack only holds its own flows (same addresses, separate kernels).
        assert_eq!(conntrack_flows(n.ns()).unwrap().len(), 8);
    }
    drop(nodes);
    for s in &stems {
        assert!(ns_of(s).is_empty());
    }

    let stem = std::thread::spawn(|| {
        let n = EksNode::builder()
            .pods_on_primary(1)
            .doubles(false)
            .build()
            .unwrap();
        let stem = n.config().stem.clone();
        assert_eq!(ns_of(&stem).len(), 5);
        std::panic::panic_any(stem);
    })
    .join()
    .unwrap_err();
    let stem = stem.downcast_ref::<String>().unwrap();
    assert!(ns_of(stem).is_empty(), "left behind: {:?}", ns_of(stem));
}

#[test]
fn doubles_answer_over_http_inside_the_node() {
    require_root().unwrap();
    let node = EksNode::builder().build().unwrap();
    let c = node.config();
    if !node
        .exec(&["curl", "--version"])
        .is_ok_and(|o| o.status.success())
    {
        panic!("curl is required for this test (apt-get install curl)");
    }
    let imds = c.imds_endpoint();
    let token = node
        .exec_ok(&[
            "curl",
            "-sf",
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            &format!("{imds}/latest/api/token"),
        ])
        .unwrap();
    let get = |p: &str| {
        node.exec_ok(&[
            "curl",
            "-sf",
            "-H",
            &format!("X-aws-ec2-metadata-token: {token}"),
            &format!("{imds}/latest/meta-data/{p}"),
        ])
        .unwrap()
    };
    assert_eq!(get("local-ipv4"), c.primary_ip.to_string());
    assert_eq!(get("mac"), c.enis[0].mac);
    assert_eq!(
        get(&format!(
            "network/interfaces/macs/{}/vpc-ipv4-cidr-blocks",
            c.enis[0].mac
        )),
        "192.168.0.0/16"
    );
    // Without a token: 401.
    let out = node
        .exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{imds}/latest/meta-data/mac"),
        ])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    let enis = node
        .exec_ok(&["curl", "-sf", &format!("{}/v1/enis", c.ipamd_endpoint())])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&enis).unwrap();
    assert_eq!(v["0"]["AssignedIPs"], 3);
    assert!(v["0"]["ENIs"][&c.enis[1].id]["AvailableIPv4Cidrs"]
        .get(format!("{}/32", c.pods[2].ip))
        .is_some());
}
