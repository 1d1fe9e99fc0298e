//! The CIDRs the SNAT chain RETURNs versus the expected VPC CIDRs and exclusions
//! (groundtruth §1.1 N2/N3, §7 F3/F15):
//! `snat.vpc-cidr-not-excluded`, `snat.exclusion-missing`, `snat.exclusion-unexpected`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use model::vpccni;
use model::Severity;

use super::snat_common::{reachable_rules, snat_expected};
use crate::nat::{AwsNat, RuleRef, Verdict};
use crate::rule::{config_ev, Ctx, RuleResult};

pub(crate) const VPC_ID: &str = "snat.vpc-cidr-not-excluded";
pub(crate) const MISSING_ID: &str = "snat.exclusion-missing";
pub(crate) const UNEXPECTED_ID: &str = "snat.exclusion-unexpected";

/// Healthy-form RETURNs of the reachable chains.
fn returned<'a>(nat: &AwsNat<'a>) -> Vec<(Ipv4Net, RuleRef<'a>)> {
    let reach: Vec<_> = reachable_rules(nat).iter().map(|r| r.location()).collect();
    nat.returned_cidrs()
        .into_iter()
        .filter(|(_, r)| reach.contains(&r.location()))
        .collect()
}

fn covered(ret: &[(Ipv4Net, RuleRef<'_>)], c: &Ipv4Net) -> bool {
    ret.iter().any(|(r, _)| r.contains(c))
}

/// Some addresses inside `c` to test the chain with.
fn probes(c: &Ipv4Net) -> Vec<Ipv4Addr> {
    let first = u32::from(c.network());
    let last = u32::from(c.broadcast());
    let mid = first / 2 + last / 2;
    vec![
        Ipv4Addr::from(first),
        Ipv4Addr::from(mid),
        Ipv4Addr::from(last),
    ]
}

fn snat_rule_for<'a>(nat: &AwsNat<'a>, c: &Ipv4Net) -> Option<RuleRef<'a>> {
    probes(c).into_iter().find_map(|p| match nat.evaluate(p) {
        Verdict::Snat(r) => Some(r),
        _ => None,
    })
}

/// A `! -d <c> -j RETURN` (reported by snat.return-inverted instead).
fn inverted_for(nat: &AwsNat<'_>, c: &Ipv4Net) -> bool {
    reachable_rules(nat)
        .iter()
        .any(|r| r.target() == "RETURN" && matches!(r.dst(), Some((Some(x), true)) if x == *c))
}

pub(crate) fn check_vpc(ctx: &Ctx<'_>) -> RuleResult {
    if !snat_expected(ctx)? {
        return Ok(vec![]);
    }
    let nat = ctx.need_nat()?;
    let Some(vpc) = &ctx.f.vpc_cidrs else {
        return Err("VPC CIDRs unknown (no IMDS vpc-ipv4-cidr-blocks and no VPC RETURN rule to infer them from)".into());
    };
    let ret = returned(nat);
    let mut out = Vec::new();
    for c in &vpc.value {
        if covered(&ret, c) || inverted_for(nat, c) {
            continue;
        }
        // Only when the chain really SNATs it (a missing SNAT rule is snat.chain-missing).
        let Some(snat) = snat_rule_for(nat, c) else {
            continue;
        };
        let mut f = ctx
            .finding(
                VPC_ID,
                Severity::Error,
                format!(
                    "VPC CIDR {c} has no RETURN in the AWS SNAT chain: pod traffic to it is SNATed"
                ),
            )
            .ev(
                model::EvidenceKind::Imds,
                Some(format!("{:?}", vpc.source).to_lowercase()),
                format!(
                    "vpc-ipv4-cidr-blocks {}",
                    vpc.value
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            )
            .evs(reachable_rules(nat).iter().map(|r| r.evidence()));
        if !reachable_rules(nat)
            .iter()
            .any(|r| r.location() == snat.location())
        {
            f = f.evs([snat.evidence()]);
        }
        out.push(
            f.explain("Traffic from pods to this VPC CIDR is source-NATed to the node's primary IP. Peers in the VPC (including pods on other nodes and secondary VPC CIDRs used by custom networking) see the node IP instead of the pod IP: security groups for pods, NetworkPolicies and allow-lists keyed on pod IPs break, and return traffic to secondary-ENI pods takes asymmetric paths.")
                .remedy("Restart aws-node on this node so ipamd rebuilds AWS-SNAT-CHAIN-0 from IMDS vpc-ipv4-cidr-blocks (it only re-reads them every 30 s when the CIDR set changes).")
                .inferred(ctx.f.inferred_names(&["vpc_cidrs", "external_snat"]))
                .done(),
        );
    }
    Ok(out)
}

pub(crate) fn check_missing(ctx: &Ctx<'_>) -> RuleResult {
    if !snat_expected(ctx)? {
        return Ok(vec![]);
    }
    let nat = ctx.need_nat()?;
    let ex = &ctx.f.exclude_snat_cidrs;
    if !ctx.f.env_known {
        return Err("CNI env unknown: cannot tell which SNAT exclusions are configured".into());
    }
    if ex.value.is_empty() {
        return Ok(vec![]);
    }
    let ret = returned(nat);
    if nat.postrouting_jumps.is_empty() && super::snat_common::reachable_snat_rules(nat).is_empty()
    {
        // Nothing programmed at all: snat.chain-missing says so.
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for c in &ex.value {
        if covered(&ret, c) || inverted_for(nat, c) {
            continue;
        }
        let flap = c.prefix_len() == 0 && !ctx.f.version_at_least((1, 23, 0));
        let mut f = ctx
            .finding(
                MISSING_ID,
                Severity::Warning,
                format!("configured SNAT exclusion {c} has no RETURN in the AWS SNAT chain"),
            )
            .evs([config_ev(ex.detail.clone().unwrap_or_else(|| {
                format!("{}={c}", vpccni::env::EXCLUDE_SNAT_CIDRS)
            }))])
            .evs(reachable_rules(nat).iter().map(|r| r.evidence()));
        if flap {
            f = f.note("EXCLUDE_SNAT_CIDRS=0.0.0.0/0 on CNI < v1.23 is deleted on every other restart (aws/amazon-vpc-cni-k8s#3658)");
        }
        out.push(
            f.explain("Pod traffic to this destination (peered VPC, TGW, DX, on-prem) is SNATed to the node IP although the configuration says it must keep the pod IP; the remote side sees the node IP and allow-lists or return routing keyed on pod IPs break. Env changes only take effect when aws-node restarts.")
                .remedy(if flap { "Upgrade the CNI to v1.23+ (fix for #3658), or restart aws-node until the rule is present; consider AWS_VPC_K8S_CNI_EXTERNALSNAT=true with a NAT gateway instead of excluding 0.0.0.0/0." } else { "Restart aws-node on this node so ipamd re-reads AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS and programs the RETURN rules; check the aws-node logs for 'is not a valid CIDR'." })
                .inferred(ctx.f.inferred_names(&["external_snat"]))
                .done(),
        );
    }
    Ok(out)
}

pub(crate) fn check_unexpected(ctx: &Ctx<'_>) -> RuleResult {
    ctx.skip_if_ipv6()?;
    let nat = ctx.need_nat()?;
    if !ctx.f.env_known {
        return Err("CNI env unknown: cannot tell which SNAT exclusions are configured".into());
    }
    let Some(vpc) = &ctx.f.vpc_cidrs else {
        return Err("VPC CIDRs unknown".into());
    };
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (c, r) in returned(nat) {
        if vpc.value.contains(&c)
            || ctx.f.exclude_snat_cidrs.value.contains(&c)
            || seen.contains(&c)
        {
            continue;
        }
        seen.push(c);
        let comment = r.rule.comment().unwrap_or("");
        out.push(
            ctx.finding(UNEXPECTED_ID, Severity::Info, format!("AWS SNAT chain RETURNs {c}, which is neither a VPC CIDR nor a configured exclusion"))
                .evs([r.evidence()])
                .evs([config_ev(format!(
                    "{}={}",
                    vpccni::env::EXCLUDE_SNAT_CIDRS,
                    ctx.f.exclude_snat_cidrs.value.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
                ))])
                .note(format!("rule comment \"{comment}\"; VPC CIDRs {}", vpc.value.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")))
                .explain("Pod traffic to this CIDR leaves with the pod IP instead of the node IP. That is intended for routable private networks, but if the destination cannot route back to pod IPs (internet, a VPC CIDR that was disassociated) the traffic breaks. Usually the env was changed without restarting aws-node, or the rule was left from an older configuration.")
                .remedy("If the exclusion is wanted, add it to AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS; otherwise restart aws-node so ipamd rebuilds the chain from the current settings.")
                .inferred(ctx.f.inferred_names(&["vpc_cidrs"]))
                .done(),
        );
    }
    Ok(out)
}
