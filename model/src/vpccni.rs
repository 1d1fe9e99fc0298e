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

/// The CNI's rule layout across its history. Each era names the upstream tag whose
/// `pkg/networkutils/network.go` introduced it (read with `git show <tag>:pkg/networkutils/network.go`
/// in aws/amazon-vpc-cni-k8s). Used when the CNI version is known, and inferred from the layout
/// actually present when it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleEra {
    /// v1.0.0 – v1.2.1: one nat POSTROUTING rule `! -d <VPC> -m comment --comment "AWS, SNAT"
    /// -m addrtype ! --dst-type LOCAL -j SNAT --to-source <primary>`; no AWS-SNAT-CHAIN, no nat
    /// connmark, no random flag (v1.0.0 `SetupHostNetwork` `natCmd`).
    SingleRule,
    /// v1.3.0 – v1.7.x: chained `AWS-SNAT-CHAIN-0..N` (`! -d CIDR -j AWS-SNAT-CHAIN-(i+1)`,
    /// the SNAT rule in the last chain), connmark only in mangle (v1.3.0 `SetupHostNetwork`).
    ChainedMangleOnly,
    /// v1.8.0 – v1.16.0: chained SNAT plus the chained nat `AWS-CONNMARK-CHAIN-0..N`
    /// (v1.8.0 `buildIptablesConnmarkRules`).
    Chained,
    /// v1.16.2 – v1.22.x: single `AWS-SNAT-CHAIN-0` / `AWS-CONNMARK-CHAIN-0` with `-d CIDR -j
    /// RETURN` (v1.16.2, PR #2697 "Refactor IPTable Rules").
    SingleChain,
    /// v1.23.0+: single chain; on the nft backend the connmark rules live in native nftables
    /// `table ip aws-cni` (v1.23.0 `pkg/networkutils/nftables_connmark.go`, PR #3588).
    NftConnmark,
}

/// A CNI version as (major, minor, patch).
pub type Version = (u32, u32, u32);

/// Version boundaries (inclusive lower bounds), each with the tag that introduced it.
pub mod since {
    /// Mangle `"AWS, primary ENI"` CONNMARK rules and `ip rule 1024 fwmark 0x80/0x80 lookup
    /// main` (NodePort support). v1.0.0/v1.1.0 instead had `1024: not from all to <VPC> lookup
    /// main` (v1.0.0 `SetupHostNetwork` `hostRule.Invert`).
    pub const NODEPORT_CONNMARK: (u32, u32, u32) = (1, 2, 0);
    /// Chained AWS-SNAT-CHAIN-0..N (v1.3.0). v1.3.0–v1.5.x comment the jump and chain rules
    /// `"AWS SNAT CHAN"` (sic); v1.6.0 fixed it to `"AWS SNAT CHAIN"`.
    pub const CHAINED_SNAT: (u32, u32, u32) = (1, 3, 0);
    /// `AWS_VPC_K8S_CNI_RANDOMIZESNAT` exists, default `hashrandom` → `--random` (v1.4.0
    /// `typeOfSNAT`: `defaultString := "hashrandom"`). v1.3.x has no random flag.
    pub const RANDOMIZESNAT: (u32, u32, u32) = (1, 4, 0);
    /// Comment typo fixed: `"AWS SNAT CHAIN"` (v1.6.0).
    pub const SNAT_COMMENT_FIXED: (u32, u32, u32) = (1, 6, 0);
    /// Default RANDOMIZESNAT becomes `prng` → `--random-fully` (v1.7.0 `typeOfSNAT`); also the
    /// SNAT rule gains `! -o vlan+` and mangle gains the `-i vlan+` restore (v1.7.0).
    pub const PRNG_DEFAULT: (u32, u32, u32) = (1, 7, 0);
    pub const VLAN_RESTORE: (u32, u32, u32) = (1, 7, 0);
    /// nat `AWS-CONNMARK-CHAIN-0..N`, the PREROUTING `-i eni+ … -j AWS-CONNMARK-CHAIN-0` jump
    /// (with `-m state --state NEW` until v1.12.0) and the nat `"AWS, CONNMARK"` restore (v1.8.0).
    /// The per-pod `1536: from <pod> to <VPC> lookup N` rules became `from <pod> lookup N`.
    pub const NAT_CONNMARK: (u32, u32, u32) = (1, 8, 0);
    pub const FROM_POD_WITHOUT_TO: (u32, u32, u32) = (1, 8, 0);
    /// Mangle `-i eni+` restore also when NODE_PORT_SUPPORT=false but EXTERNALSNAT=false (v1.12.1).
    pub const ENI_RESTORE_WITHOUT_NODEPORT: (u32, u32, u32) = (1, 12, 1);
    /// Single-chain layout (v1.16.2).
    pub const SINGLE_CHAIN: (u32, u32, u32) = (1, 16, 2);
    /// Native nftables connmark on the nft backend (v1.23.0).
    pub const NFT_CONNMARK: (u32, u32, u32) = (1, 23, 0);
}

/// The comment v1.3.0–v1.5.x put on the POSTROUTING jump and the chained `! -d` rules.
pub const COMMENT_SNAT_CHAN_TYPO: &str = "AWS SNAT CHAN";

impl RuleEra {
    /// The era of a CNI version.
    pub fn of_version(v: (u32, u32, u32)) -> RuleEra {
        if v >= since::NFT_CONNMARK {
            RuleEra::NftConnmark
        } else if v >= since::SINGLE_CHAIN {
            RuleEra::SingleChain
        } else if v >= since::NAT_CONNMARK {
            RuleEra::Chained
        } else if v >= since::CHAINED_SNAT {
            RuleEra::ChainedMangleOnly
        } else {
            RuleEra::SingleRule
        }
    }

    /// Human name of the layout, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            RuleEra::SingleRule => "single \"AWS, SNAT\" POSTROUTING rule (CNI v1.0–v1.2 layout)",
            RuleEra::ChainedMangleOnly => {
                "chained AWS-SNAT-CHAIN-0..N, connmark in mangle only (CNI v1.3–v1.7 layout)"
            }
            RuleEra::Chained => {
                "chained AWS-SNAT-CHAIN-0..N and AWS-CONNMARK-CHAIN-0..N (CNI v1.8–v1.16.0 layout)"
            }
            RuleEra::SingleChain => {
                "single AWS-SNAT-CHAIN-0 with RETURN rules (CNI v1.16.2–v1.22 layout)"
            }
            RuleEra::NftConnmark => {
                "single AWS-SNAT-CHAIN-0, connmark in native nftables on nft (CNI v1.23+ layout)"
            }
        }
    }

    /// The oldest and newest versions of the era (for checks that differ inside an era).
    pub fn version_range(self) -> (Version, Option<Version>) {
        match self {
            RuleEra::SingleRule => ((1, 0, 0), Some((1, 2, 1))),
            RuleEra::ChainedMangleOnly => (since::CHAINED_SNAT, Some((1, 7, 10))),
            RuleEra::Chained => (since::NAT_CONNMARK, Some((1, 16, 0))),
            RuleEra::SingleChain => (since::SINGLE_CHAIN, Some((1, 22, 99))),
            RuleEra::NftConnmark => (since::NFT_CONNMARK, None),
        }
    }

    /// The era programs the nat AWS-CONNMARK chain (v1.8.0+).
    pub fn has_nat_connmark(self) -> bool {
        self >= RuleEra::Chained
    }

    /// The era programs AWS-SNAT-CHAIN-* chains (v1.3.0+).
    pub fn has_snat_chains(self) -> bool {
        self >= RuleEra::ChainedMangleOnly
    }
}

/// Default `RANDOMIZESNAT` flag of a version: `None` = no flag (≤ v1.3.x), `--random`
/// (v1.4.0–v1.6.x), `--random-fully` (v1.7.0+).
pub fn default_random_flag(v: (u32, u32, u32)) -> Option<&'static str> {
    if v >= since::PRNG_DEFAULT {
        Some("--random-fully")
    } else if v >= since::RANDOMIZESNAT {
        Some("--random")
    } else {
        None
    }
}

/// ipamd's pool statistics lines showing no free address, in every wording since v1.0 (read
/// from `ipamd/ipamd.go` and `datastore/data_store.go` at each release tag):
/// * `IP pool stats: total = 42, used = 42, c.currentMaxAddrsPerENI = 15, …` (v1.0–v1.4),
///   `IP pool stats: total = 14, used = 14, c.maxIPsPerENI = 14` (v1.5–v1.9 `logPoolStats`),
///   `…, IPs in Cooldown = 0, …` (v1.10–v1.11), `Prefix pool stats: …` under prefix delegation;
/// * `IP Address Pool stats: total: 9, assigned: 9` (v1.0–v1.8), `Datastore Pool stats:
///   total(/32): 9, assigned(/32): 9, …` and `IP/Prefix Address Pool stats: total: 9, assigned: 9,
///   …` (v1.9–v1.11);
/// * the datastore's `AssignIPv4Address: IP address pool stats: total:42, assigned 42` (v1.0–v1.3),
///   `total: 9, assigned 9` (v1.5–v1.15), `AssignPodIPv4Address: … total 9, assigned 9` (v1.16+);
/// * `IP pool stats: Total IPs/Prefixes = 14/0, AssignedIPs/CooldownIPs: 14/0, c.maxIPsPerENI = 14`
///   (v1.12+ `DataStoreStats.String`), with ` for network card N` from v1.20;
/// * `IP stats for Network Card 0 - total IPs: 28, assigned IPs: 28, cooldown IPs: 0` (v1.20+);
/// * `IP pool is too low: available (0) < ENI target (1) * addrsPerENI (14)` (v1.5+, ` for Network
///   Card N` from v1.20).
///
/// The `free N addresses` lines of an ENI being removed are not pressure: the pool shrank on purpose.
pub fn pool_exhausted(msg: &str) -> bool {
    fn num_after(hay: &str, key: &str) -> Option<u64> {
        let rest = &hay[hay.find(key)? + key.len()..];
        let rest = rest.trim_start_matches([' ', '\t', '=', ':', '(', ')']);
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }
    fn first_num(hay: &str, keys: &[&str]) -> Option<u64> {
        keys.iter()
            .find(|k| hay.contains(**k))
            .and_then(|k| num_after(hay, k))
    }
    let m = msg.to_ascii_lowercase();
    if m.contains("pool is too low") {
        return num_after(&m, "available").is_some_and(|a| a == 0);
    }
    if m.contains("free ") && m.contains(" addresses") {
        return false;
    }
    if !(m.contains("pool stats") || m.contains("ip stats for network card")) {
        return false;
    }
    // Most specific key first: `total ips/prefixes` before `total ips` before `total`.
    let total = first_num(
        &m,
        &["total ips/prefixes", "total(/32)", "total ips", "total"],
    );
    let used = first_num(
        &m,
        &[
            "assignedips/cooldownips",
            "assigned(/32)",
            "assigned ips",
            "assigned",
            "used",
        ],
    );
    matches!((total, used), (Some(t), Some(u)) if t > 0 && u >= t)
}
