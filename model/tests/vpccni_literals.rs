//! `model::vpccni` pinned to literal values from the ground-truth document
//! (`shared/docs/vpc-cni-groundtruth.md`, sourced from aws/amazon-vpc-cni-k8s v1.12–v1.23).
//!
//! The harness (`tests/src/node.rs`) programs the emulated node from these constants and the
//! analysis derives the expected state from the same constants, so a wrong constant passes
//! every scenario. These literals are typed from the document, not from the code: a change to a
//! constant must be a change to the document first.

use model::net::RT_TABLE_MAIN;
use model::vpccni;

#[test]
fn chain_names_and_comments_are_the_cni_s_literal_strings() {
    // §1.1 N1–N9, M1–M3 and the §1.2 samples (iptables-save rendering).
    assert_eq!(vpccni::SNAT_CHAIN_PREFIX, "AWS-SNAT-CHAIN-");
    assert_eq!(vpccni::SNAT_CHAIN_0, "AWS-SNAT-CHAIN-0");
    assert_eq!(vpccni::CONNMARK_CHAIN_PREFIX, "AWS-CONNMARK-CHAIN-");
    assert_eq!(vpccni::CONNMARK_CHAIN_0, "AWS-CONNMARK-CHAIN-0");
    assert_eq!(vpccni::COMMENT_SNAT_JUMP, "AWS SNAT CHAIN"); // N1
    assert_eq!(vpccni::COMMENT_SNAT_VPC, "AWS SNAT CHAIN"); // N2
    assert_eq!(vpccni::COMMENT_SNAT_EXCLUSION, "AWS SNAT CHAIN EXCLUSION"); // N3
    assert_eq!(vpccni::COMMENT_SNAT_RULE, "AWS, SNAT"); // N4
    assert_eq!(vpccni::COMMENT_OUTBOUND, "AWS, outbound connections"); // N5
    assert_eq!(vpccni::COMMENT_CONNMARK, "AWS, CONNMARK"); // N6, N9
    assert_eq!(vpccni::COMMENT_CONNMARK_VPC, "AWS CONNMARK CHAIN, VPC CIDR"); // N7
    assert_eq!(
        vpccni::COMMENT_CONNMARK_EXCLUDED,
        "AWS CONNMARK CHAIN, EXCLUDED CIDR"
    ); // N8
    assert_eq!(vpccni::COMMENT_CONNMARK_PLAIN, "AWS CONNMARK CHAIN"); // v1.23 legacy backend
    assert_eq!(vpccni::COMMENT_PRIMARY_ENI, "AWS, primary ENI"); // M1–M3
    assert_eq!(vpccni::KUBELET_CANARY, "KUBE-KUBELET-CANARY"); // §9 invariant 5
    assert_eq!(vpccni::DEFAULT_VETH_PREFIX, "eni"); // N5 `-i eni+`
}

#[test]
fn connmark_and_pod_gateway() {
    // `network.go` `defaultConnmark = 0x80` (bit 7).
    assert_eq!(vpccni::DEFAULT_CONNMARK, 0x80);
    assert_eq!(vpccni::DEFAULT_CONNMARK, 128);
    // §2.4: pod default route `via 169.254.1.1`.
    assert_eq!(vpccni::POD_GATEWAY, "169.254.1.1");
}

#[test]
fn ip_rule_priorities() {
    // §2.1 table: 10 (SGP iif vlan), 20 (local, SGP strict), 512 (to pod), 1024 (fwmark),
    // 1535 (AWS_EXTERNAL_SERVICE_CIDRS), 1536 (from pod), 32765 (from ENI primary IP, v1.20+).
    assert_eq!(vpccni::PRIO_VLAN_IIF, 10);
    assert_eq!(vpccni::PRIO_LOCAL_SGP, 20);
    assert_eq!(vpccni::PRIO_TO_POD, 512);
    assert_eq!(vpccni::PRIO_FWMARK, 1024);
    assert_eq!(vpccni::PRIO_EXTERNAL_SERVICE, 1535);
    assert_eq!(vpccni::PRIO_FROM_POD, 1536);
    assert_eq!(vpccni::PRIO_FROM_ENI_PRIMARY, 32765);
}

#[test]
fn eni_route_tables_follow_calculate_route_table_id() {
    // §2.2: primary ENI → main (254); NIC 0 device d ≥ 1 → d + 1; NIC c ≥ 1 → 10000 + d + 100c.
    assert_eq!(RT_TABLE_MAIN, 254);
    assert_eq!(vpccni::eni_route_table(0, 0), 254);
    assert_eq!(vpccni::eni_route_table(1, 0), 2);
    assert_eq!(vpccni::eni_route_table(2, 0), 3);
    assert_eq!(vpccni::eni_route_table(14, 0), 15);
    assert_eq!(vpccni::eni_route_table(0, 1), 10100);
    assert_eq!(vpccni::eni_route_table(1, 1), 10101);
    assert_eq!(vpccni::eni_route_table(3, 2), 10203);
}

#[test]
fn env_variable_names() {
    use vpccni::env;
    assert_eq!(env::EXTERNALSNAT, "AWS_VPC_K8S_CNI_EXTERNALSNAT");
    assert_eq!(
        env::EXCLUDE_SNAT_CIDRS,
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"
    );
    assert_eq!(env::RANDOMIZESNAT, "AWS_VPC_K8S_CNI_RANDOMIZESNAT");
    assert_eq!(env::NODE_PORT_SUPPORT, "AWS_VPC_CNI_NODE_PORT_SUPPORT");
    assert_eq!(env::CONNMARK, "AWS_VPC_K8S_CNI_CONNMARK");
    assert_eq!(env::VETHPREFIX, "AWS_VPC_K8S_CNI_VETHPREFIX");
    assert_eq!(
        env::CUSTOM_NETWORK_CFG,
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"
    );
    assert_eq!(env::EXTERNAL_SERVICE_CIDRS, "AWS_EXTERNAL_SERVICE_CIDRS");
    assert_eq!(env::POD_MTU, "POD_MTU");
    assert_eq!(env::ENABLE_POD_ENI, "ENABLE_POD_ENI");
    assert_eq!(env::ENABLE_PREFIX_DELEGATION, "ENABLE_PREFIX_DELEGATION");
    assert_eq!(env::DISABLE_TCP_EARLY_DEMUX, "DISABLE_TCP_EARLY_DEMUX");
}
