//! One module per rule (or tight group of rules over the same objects). `ls` this directory to
//! find a check; [`CATALOGUE`] lists them all.

use model::Severity::{Error, Info, Warning};

use crate::rule::{Ctx, RuleResult};
use crate::RuleInfo;

pub mod fleet;

mod connmark;
mod connmark_bits;
mod conntrack;
mod ipamd_config;
mod ipamd_logs;
mod route_branch_eni;
mod route_common;
mod route_dangling;
mod route_duplicate;
mod route_eni_table;
mod route_foreign;
mod route_pod;
mod route_subnet_main;
mod snat_backend_split;
mod snat_chain_missing;
mod snat_cidrs;
mod snat_common;
mod snat_external_conflict;
mod snat_observed;
mod snat_random;
mod snat_return_inverted;
mod snat_rule_order;
mod snat_stale_chains;
mod snat_to_source;
mod sysctl;

type Check = fn(&Ctx<'_>) -> RuleResult;

/// Node-level rules in evaluation order.
pub(crate) static NODE_RULES: &[(&str, Check)] = &[
    (snat_chain_missing::ID, snat_chain_missing::check),
    (snat_to_source::ID, snat_to_source::check),
    (snat_cidrs::VPC_ID, snat_cidrs::check_vpc),
    (snat_cidrs::MISSING_ID, snat_cidrs::check_missing),
    (snat_cidrs::UNEXPECTED_ID, snat_cidrs::check_unexpected),
    (snat_return_inverted::ID, snat_return_inverted::check),
    (snat_rule_order::ID, snat_rule_order::check),
    (snat_random::ID, snat_random::check),
    (snat_external_conflict::ID, snat_external_conflict::check),
    (snat_stale_chains::ID, snat_stale_chains::check),
    (snat_backend_split::ID, snat_backend_split::check),
    (
        snat_observed::UNEXPECTED_ID,
        snat_observed::check_unexpected,
    ),
    (snat_observed::MISSING_ID, snat_observed::check_missing),
    (connmark::ID, connmark::check),
    (connmark_bits::ID, connmark_bits::check),
    (conntrack::INSERT_ID, conntrack::check_insert),
    (conntrack::PRESSURE_ID, conntrack::check_pressure),
    (route_pod::RULE_MISSING_ID, route_pod::check_rule_missing),
    (route_pod::WRONG_TABLE_ID, route_pod::check_wrong_table),
    (route_pod::ROUTE_MISSING_ID, route_pod::check_route_missing),
    (route_dangling::ID, route_dangling::check),
    (route_duplicate::ID, route_duplicate::check),
    (route_eni_table::ID, route_eni_table::check),
    (route_branch_eni::ID, route_branch_eni::check),
    (route_subnet_main::ID, route_subnet_main::check),
    (route_foreign::ID, route_foreign::check),
    (sysctl::RP_ID, sysctl::check_rp),
    (sysctl::FWD_ID, sysctl::check_forward),
    (ipamd_logs::EXHAUSTION_ID, ipamd_logs::check_exhaustion),
    (ipamd_logs::THROTTLING_ID, ipamd_logs::check_throttling),
    (ipamd_logs::ATTACH_ID, ipamd_logs::check_attach),
    (ipamd_logs::NOT_READY_ID, ipamd_logs::check_not_ready),
    (ipamd_config::IAM_ID, ipamd_config::check_iam),
    (ipamd_config::ENICONFIG_ID, ipamd_config::check_eniconfig),
    (ipamd_config::CUSTOM_NET_ID, ipamd_config::check_custom_net),
];

macro_rules! info {
    ($id:expr, $sev:expr, $title:expr, $checks:expr, [$($need:expr),*]) => {
        RuleInfo { id: $id, default_severity: $sev, title: $title, checks: $checks, needs: &[$($need),*] }
    };
}

pub(crate) static CATALOGUE: &[RuleInfo] = &[
    info!("snat.chain-missing", Error, "AWS SNAT chain or rule missing", "With EXTERNALSNAT=false the nat POSTROUTING jump to AWS-SNAT-CHAIN-0 and the final \"AWS, SNAT\" rule must exist in the backend the kubelet uses", ["iptables", "cni"]),
    info!("snat.to-source-mismatch", Error, "SNAT --to-source is not the primary IP", "--to-source of every \"AWS, SNAT\" rule equals IMDS local-ipv4; at most one such rule", ["iptables", "node"]),
    info!("snat.vpc-cidr-not-excluded", Error, "VPC CIDR is SNATed", "Every VPC CIDR (IMDS vpc-ipv4-cidr-blocks) RETURNs before the SNAT rule", ["iptables", "node"]),
    info!("snat.exclusion-missing", Warning, "Configured SNAT exclusion not programmed", "Every valid AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS entry has a RETURN before the SNAT rule", ["iptables", "cni"]),
    info!("snat.exclusion-unexpected", Info, "SNAT exclusion not in the configuration", "RETURN rules for CIDRs that are neither VPC CIDRs nor configured exclusions", ["iptables", "cni", "node"]),
    info!("snat.return-inverted", Error, "Inverted RETURN in the SNAT chain", "`! -d <CIDR> -j RETURN` in AWS-SNAT-CHAIN-*: VPC traffic SNATed, internet traffic not", ["iptables"]),
    info!("snat.rule-order", Error, "SNAT rule not last / duplicate jumps", "The SNAT rule is the last rule of its chain and no RETURN follows it; one POSTROUTING jump", ["iptables"]),
    info!("snat.random-mismatch", Warning, "SNAT port randomisation differs from RANDOMIZESNAT", "--random-fully/--random/none on the SNAT rule matches AWS_VPC_K8S_CNI_RANDOMIZESNAT", ["iptables", "cni"]),
    info!("snat.external-snat-conflict", Warning, "SNAT rules present with EXTERNALSNAT=true", "With EXTERNALSNAT=true the AWS SNAT chain is empty and not jumped to", ["iptables", "cni"]),
    info!("snat.stale-chains", Warning, "Stale chained AWS chains on a single-chain node", "AWS-SNAT-CHAIN-1..N / AWS-CONNMARK-CHAIN-1..N next to a single-chain (v1.16.2+) layout", ["iptables"]),
    info!("snat.backend-split", Error, "AWS rules in the wrong iptables backend", "AWS rules live only in the backend holding KUBE-KUBELET-CANARY, not in both", ["iptables"]),
    info!("snat.observed-unexpected", Warning, "Conntrack: pod to VPC/excluded destination was SNATed", "Conntrack flows from pod IPs to VPC or excluded CIDRs carry a NAT source", ["conntrack", "node"]),
    info!("snat.observed-missing", Warning, "Conntrack: pod to outside-VPC destination not SNATed", "Conntrack flows from pod IPs to non-VPC destinations are source-NATed when SNAT is expected", ["conntrack", "node", "cni"]),
    info!("connmark.rules-missing", Error, "Connmark rules or fwmark rule missing", "nat/mangle CONNMARK rules and `ip rule 1024 fwmark <mark>/<mark> lookup main` required by EXTERNALSNAT/NODE_PORT_SUPPORT", ["iptables", "rules", "cni"]),
    info!("connmark.mark-conflict", Warning, "Connmark bit shared with another component", "AWS_VPC_K8S_CNI_CONNMARK does not overlap portmap 0x2000, kube-proxy 0x4000/0x8000 or Calico 0xffff0000", ["cni"]),
    info!("conntrack.insert-failed", Warning, "Conntrack insert failures / drops", "conntrack -S insert_failed, drop, early_drop are zero", ["conntrack"]),
    info!("conntrack.table-pressure", Warning, "Conntrack table nearly full", "nf_conntrack_count < 80% of nf_conntrack_max", ["conntrack", "sysctls"]),
    info!("route.pod-rule-missing", Error, "Pod policy rule missing", "512 `to <pod>` rule per pod; 1536 `from <pod> lookup <d+1>` per pod on a secondary ENI", ["rules", "routes", "cni"]),
    info!("route.pod-rule-wrong-table", Error, "Pod 1536 rule looks up the wrong table", "1536 `from <pod>` looks up the table of the pod's ENI", ["rules", "cni"]),
    info!("route.pod-route-missing", Error, "Pod host route missing", "main-table `<pod> dev <veth>` per assigned pod IP, through an existing veth that is up", ["routes", "links", "cni"]),
    info!("route.dangling", Warning, "Stale pod rule or route", "512/1536 rules and host routes for IPs ipamd does not assign, or whose veth/table is gone", ["rules", "routes", "links"]),
    info!("route.duplicate-rule", Warning, "Duplicate pod policy rules", "At most one 512 and one 1536 rule per pod IP", ["rules"]),
    info!("route.eni-table-broken", Error, "Secondary ENI route table broken", "Table d+1 holds `default via <gw> dev <ethN>` and the gateway link route", ["routes", "node"]),
    info!("route.branch-eni", Error, "Branch ENI (security groups for pods) routing broken", "Each vlan.eth.<id> is up, has `10: iif vlan.eth.<id> lookup <100+id>` and a default route in table 100+id; each branch pod's `iif vlan<hash>` table routes to its veth", ["rules", "routes", "links"]),
    info!("route.subnet-route-in-main", Warning, "Secondary ENI subnet route in main", "No main-table subnet route via a secondary ENI (the CNI deletes it)", ["routes", "node"]),
    info!("route.nm-cloud-setup", Warning, "nm-cloud-setup manages ENI routing", "No nm-cloud-setup routing tables 30200/30400 (it deletes the CNI's rules)", ["routes", "rules"]),
    info!("sysctl.rp-filter-strict", Error, "Strict rp_filter on an ENI", "effective max(all, <if>) rp_filter is not 1 on the primary/secondary ENIs", ["sysctls"]),
    info!("sysctl.ip-forward-disabled", Error, "IPv4 forwarding disabled", "net.ipv4.ip_forward = 1", ["sysctls"]),
    info!("ipamd.ip-exhaustion", Warning, "IP address exhaustion", "ipamd/plugin log events of no free IPs or exhausted subnets; /v1/enis assigned == total", ["cni_logs", "cni"]),
    info!("ipamd.ec2-throttling", Warning, "EC2 API throttling", "RequestLimitExceeded in ipamd logs", ["cni_logs"]),
    info!("ipamd.eni-attach-failure", Warning, "ENI create/attach failures", "ENI attach/create errors and AttachmentLimitExceeded in ipamd logs", ["cni_logs"]),
    info!("ipamd.not-ready", Error, "ipamd not ready / unreachable", "plugin cannot reach ipamd, ipamd start timeouts, version skew; ipamd introspection unreachable", ["cni_logs", "cni"]),
    info!("ipamd.missing-iam-permission", Error, "ipamd lacks IAM permissions", "No `Unauthorized operation` / MissingIAMPermissions events in ipamd logs", ["cni_logs"]),
    info!("ipamd.eniconfig-missing", Warning, "ENIConfig for the node not found", "No `eniconfig is not available` / `No ENIConfig could be found` events (custom networking)", ["cni_logs", "cni"]),
    info!("ipamd.custom-networking-primary-subnet", Warning, "Custom networking pods in the primary subnet", "With CUSTOM_NETWORK_CFG=true no ipamd-assigned pod IP lies in the primary ENI's subnet", ["cni", "node"]),
    info!("fleet.config-drift", Warning, "CNI configuration differs across nodes", "CNI version and SNAT/routing env values are the same on every node", ["cni"]),
    info!("fleet.duplicate-pod-ip", Error, "Same pod IP on two nodes", "No pod IP (ipamd assignment or host route) appears on more than one node", ["cni", "routes"]),
    info!("fleet.node-unreachable", Error, "Node could not be collected", "Emitted by the fleet runner when a node's snapshot could not be collected", []),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_rule_is_in_the_catalogue_and_back() {
        for (id, _) in NODE_RULES {
            assert!(
                CATALOGUE.iter().any(|r| r.id == *id),
                "{id} not in catalogue"
            );
        }
        for r in CATALOGUE.iter().filter(|r| !r.id.starts_with("fleet.")) {
            assert!(
                NODE_RULES.iter().any(|(id, _)| *id == r.id),
                "{} has no check",
                r.id
            );
        }
        assert!(CATALOGUE.iter().any(|r| r.id == fleet::DRIFT_ID));
        assert!(CATALOGUE.iter().any(|r| r.id == fleet::DUP_ID));
    }
}
