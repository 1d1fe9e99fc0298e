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
    // A grep'd chained/single-chain dump can hide the RETURN rows (the v1.0–v1.2 single rule
    // carries its own `! -d <VPC>`, so a filter cannot split it).
    if let Some(cmd) = nat.paste_filter_for("nat") {
        if !super::snat_common::legacy_layout(ctx, nat) {
            return Err(format!("the nat capture is a filtered paste (`{cmd}`): RETURN rules it hides are not missing; the unfiltered iptables-save.txt would let it run"));
        }
    }
    let vpc_from_imds = ctx
        .f
        .vpc_cidrs
        .as_ref()
        .is_some_and(|k| k.source != crate::facts::Provenance::Inferred);
    if !vpc_from_imds {
        // Inferred: the SNAT rule's --to-source is the node's primary IP, so it lies inside
        // the VPC. When the rules exclude no CIDR holding it, the node's own (secondary) VPC
        // CIDR is SNATed.
        if let Some(f) = own_cidr_snated(ctx, nat) {
            return Ok(vec![f]);
        }
    }
    let Some(vpc) = &ctx.f.vpc_cidrs else {
        return Err("VPC CIDRs unknown (no IMDS vpc-ipv4-cidr-blocks, no VPC RETURN rule to infer them from, and the SNAT rule's --to-source is excluded); imds.json (or `curl 169.254.169.254/latest/meta-data/network/interfaces/macs/<mac>/vpc-ipv4-cidr-blocks`) would let it run".into());
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
    // A grep'd chained/single-chain dump can hide the RETURN rows (the v1.0–v1.2 single rule
    // carries its own `! -d <VPC>`, so a filter cannot split it).
    if let Some(cmd) = nat.paste_filter_for("nat") {
        if !super::snat_common::legacy_layout(ctx, nat) {
            return Err(format!("the nat capture is a filtered paste (`{cmd}`): RETURN rules it hides are not missing; the unfiltered iptables-save.txt would let it run"));
        }
    }
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

/// The SNAT rule's `--to-source` (the node's primary IP, inside the VPC by definition) would
/// itself be SNATed: no excluded CIDR holds it. Probes a neighbour of the address (the address
/// itself is LOCAL and skipped by `addrtype`).
fn own_cidr_snated(ctx: &Ctx<'_>, nat: &AwsNat<'_>) -> Option<model::Finding> {
    // An inverted `! -d X -j RETURN` is snat.return-inverted's finding, not this one.
    if reachable_rules(nat)
        .iter()
        .any(|r| r.target() == "RETURN" && matches!(r.dst(), Some((_, true))))
    {
        return None;
    }
    let rules = super::snat_common::reachable_snat_rules(nat);
    for r in rules {
        let ts = r
            .rule
            .target_arg("--to-source")
            .and_then(|a| a.values.first())
            .and_then(|v| crate::views::to_source_ip(v))?;
        let probe = Ipv4Addr::from(u32::from(ts) ^ 1);
        let snated = if r.rule.chain == "POSTROUTING" {
            // v1.0–v1.2: `! -d <VPC> … -j SNAT` is the whole decision.
            match r.dst() {
                Some((Some(c), true)) => !c.contains(&probe),
                _ => false,
            }
        } else {
            matches!(nat.evaluate(probe), Verdict::Snat(x) if x.location() == r.location())
        };
        if !snated {
            continue;
        }
        let excluded: Vec<String> = if r.rule.chain == "POSTROUTING" {
            r.dst()
                .and_then(|(c, _)| c)
                .map(|c| vec![c.to_string()])
                .unwrap_or_default()
        } else {
            returned(nat).iter().map(|(c, _)| c.to_string()).collect()
        };
        return Some(
            ctx.finding(
                VPC_ID,
                Severity::Error,
                format!(
                    "the node's own address {ts} (the SNAT --to-source) is outside every CIDR the SNAT rules exclude ({}): pod traffic to the node's own VPC CIDR is SNATed",
                    if excluded.is_empty() { "none".to_string() } else { excluded.join(", ") }
                ),
            )
            .evs([r.evidence()])
            .evs(reachable_rules(nat).iter().map(|x| x.evidence()))
            .note(format!(
                "inferred: --to-source {ts} is the node's primary IP, which is always inside a VPC CIDR; a pod packet to {probe} (same subnet) reaches this SNAT rule"
            ))
            .explain("The SNAT rules exclude the VPC CIDRs the CNI knew when it wrote them. The node's primary IP is in none of them, so the node sits in a VPC CIDR that is not excluded (typically a secondary CIDR added after the rules were written, or a CNI that only knew the primary CIDR): traffic from pods to peers in that CIDR is source-NATed to the node IP, which breaks pod-IP allow-lists, security groups for pods and return paths.")
            .remedy("Restart aws-node so ipamd re-reads vpc-ipv4-cidr-blocks from IMDS (CNI v1.0–v1.2 only knows the primary VPC CIDR: upgrade), or add the CIDR to AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS.")
            .inferred(vec!["vpc_cidrs (the SNAT rule's --to-source lies inside the VPC)".to_string()])
            .done(),
        );
    }
    None
}
