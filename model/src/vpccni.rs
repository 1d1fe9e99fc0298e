//! Names the Amazon VPC CNI programs into the kernel, in one place.
//!
//! Source: aws/amazon-vpc-cni-k8s `pkg/networkutils/network.go` (`buildIptablesSNATRules`,
//! `buildIptablesConnmarkRules`, rule priorities) and `helper.go` (`CalculateRouteTableId`);
//! see `shared/docs/vpc-cni-groundtruth.md` §1–2 for the per-version details.

/// nat chain holding the CIDR RETURNs and the final SNAT rule (`AWS-SNAT-CHAIN-0..N` ≤ v1.16.0).
pub const SNAT_CHAIN_PREFIX: &str = "AWS-SNAT-CHAIN-";
pub const SNAT_CHAIN_0: &str = "AWS-SNAT-CHAIN-0";
pub const CONNMARK_CHAIN_PREFIX: &str = "AWS-CONNMARK-CHAIN-";
pub const CONNMARK_CHAIN_0: &str = "AWS-CONNMARK-CHAIN-0";

/// Comments, exactly as `iptables-save` prints them (unquoted).
pub const COMMENT_SNAT_JUMP: &str = "AWS SNAT CHAIN";
pub const COMMENT_SNAT_VPC: &str = "AWS SNAT CHAIN";
pub const COMMENT_SNAT_EXCLUSION: &str = "AWS SNAT CHAIN EXCLUSION";
pub const COMMENT_SNAT_RULE: &str = "AWS, SNAT";
pub const COMMENT_OUTBOUND: &str = "AWS, outbound connections";
pub const COMMENT_CONNMARK: &str = "AWS, CONNMARK";
pub const COMMENT_CONNMARK_VPC: &str = "AWS CONNMARK CHAIN, VPC CIDR";
pub const COMMENT_CONNMARK_EXCLUDED: &str = "AWS CONNMARK CHAIN, EXCLUDED CIDR";
/// v1.23 plain connmark comment.
pub const COMMENT_CONNMARK_PLAIN: &str = "AWS CONNMARK CHAIN";
pub const COMMENT_PRIMARY_ENI: &str = "AWS, primary ENI";

/// Kubelet canary chain: marks the backend the kubelet uses.
pub const KUBELET_CANARY: &str = "KUBE-KUBELET-CANARY";

/// Default connmark/fwmark bit (`AWS_VPC_K8S_CNI_CONNMARK`).
pub const DEFAULT_CONNMARK: u32 = 0x80;

/// `ip rule` priorities.
pub const PRIO_VLAN_IIF: u32 = 10;
pub const PRIO_LOCAL_SGP: u32 = 20;
pub const PRIO_TO_POD: u32 = 512;
pub const PRIO_FWMARK: u32 = 1024;
pub const PRIO_EXTERNAL_SERVICE: u32 = 1535;
pub const PRIO_FROM_POD: u32 = 1536;
pub const PRIO_FROM_ENI_PRIMARY: u32 = 32765;

/// Pod-side gateway and its static neighbour.
pub const POD_GATEWAY: &str = "169.254.1.1";

/// Default host veth prefix (`AWS_VPC_K8S_CNI_VETHPREFIX`).
pub const DEFAULT_VETH_PREFIX: &str = "eni";

/// Route table of an ENI on network card 0 with device index `d ≥ 1` (v1.20.3+ for NIC > 0:
/// `10000 + d + 100*nic`).
pub fn eni_route_table(device_number: u32, network_card: u32) -> u32 {
    if network_card == 0 {
        if device_number == 0 {
            crate::net::RT_TABLE_MAIN
        } else {
            device_number + 1
        }
    } else {
        10000 + device_number + 100 * network_card
    }
}

/// Env var names.
pub mod env {
    pub const EXTERNALSNAT: &str = "AWS_VPC_K8S_CNI_EXTERNALSNAT";
    pub const EXCLUDE_SNAT_CIDRS: &str = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS";
    pub const RANDOMIZESNAT: &str = "AWS_VPC_K8S_CNI_RANDOMIZESNAT";
    pub const NODE_PORT_SUPPORT: &str = "AWS_VPC_CNI_NODE_PORT_SUPPORT";
    pub const CONNMARK: &str = "AWS_VPC_K8S_CNI_CONNMARK";
    pub const VETHPREFIX: &str = "AWS_VPC_K8S_CNI_VETHPREFIX";
    pub const CUSTOM_NETWORK_CFG: &str = "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG";
    pub const EXTERNAL_SERVICE_CIDRS: &str = "AWS_EXTERNAL_SERVICE_CIDRS";
    pub const ENI_MTU: &str = "AWS_VPC_ENI_MTU";
    pub const POD_MTU: &str = "POD_MTU";
    pub const ENABLE_IPV6: &str = "ENABLE_IPv6";
    pub const ENABLE_IPV4: &str = "ENABLE_IPv4";
    pub const ENABLE_POD_ENI: &str = "ENABLE_POD_ENI";
    pub const ENABLE_PREFIX_DELEGATION: &str = "ENABLE_PREFIX_DELEGATION";
    pub const DISABLE_TCP_EARLY_DEMUX: &str = "DISABLE_TCP_EARLY_DEMUX";
    pub const WARM_IP_TARGET: &str = "WARM_IP_TARGET";
    pub const WARM_ENI_TARGET: &str = "WARM_ENI_TARGET";
    pub const MINIMUM_IP_TARGET: &str = "MINIMUM_IP_TARGET";
    pub const WARM_PREFIX_TARGET: &str = "WARM_PREFIX_TARGET";
}

/// True for env var names the CNI reads that matter for diagnosis.
pub fn is_relevant_env(name: &str) -> bool {
    name.starts_with("AWS_VPC_")
        || name.starts_with("WARM_")
        || name.starts_with("ENABLE_")
        || name.starts_with("DISABLE_")
        || name.starts_with("AWS_EXTERNAL_SERVICE")
        || name.starts_with("MINIMUM_IP")
        || name == "MAX_ENI"
        || name == "POD_MTU"
        || name == "POD_SECURITY_GROUP_ENFORCING_MODE"
        || name == "CLUSTER_NAME"
        || name == "IP_COOLDOWN_PERIOD"
        || name == "INTROSPECTION_BIND_ADDRESS"
}

/// Directory of the VPC CNI logs on a node (`ipamd.log`, `plugin.log`, …).
pub const CNI_LOG_DIR: &str = "/var/log/aws-routed-eni";
