//! Conntrack evidence of what SNAT really did (groundtruth §7 F1/F3):
//! `snat.observed-unexpected` (pod → VPC/excluded destination was source-NATed) and
//! `snat.observed-missing` (pod → outside destination not source-NATed while SNAT is expected).
//!
//! Both only fire when the AWS rules as collected do not already explain the observation (that
//! is the job of the iptables rules), and they ignore DNATed flows (services), whose SNAT is
//! decided on the translated destination and by kube-proxy's masquerade.

use std::net::IpAddr;

use model::conntrack::FlowPair;
use model::{Evidence, EvidenceKind, Severity};

use crate::nat::Verdict;
use crate::rule::{Ctx, RuleResult};
use crate::views::is_dnat;

pub(crate) const UNEXPECTED_ID: &str = "snat.observed-unexpected";
pub(crate) const MISSING_ID: &str = "snat.observed-missing";

/// A pod whose egress the AWS SNAT rule handles: assigned by ipamd, or (without ipamd) not a
/// security-group-for-pods branch pod (1536 rule into a VLAN table 100+vlanID), whose traffic
/// leaves via `vlan+` and is exempt from SNAT (`! -o vlan+`).
fn snat_eligible(ctx: &Ctx<'_>, ip: &IpAddr) -> bool {
    let Some(p) = ctx.f.pod(ip) else { return false };
    if p.in_ipamd {
        return true;
    }
    if ctx.s.cni.get().is_some_and(|c| c.ipamd_enis.is_some()) {
        return false;
    }
    let eni_tables: Vec<u32> = ctx.f.enis.iter().map(|e| e.expected_table).collect();
    !ctx.s.rules.get().is_some_and(|rs| {
        rs.iter().any(|r| {
            r.priority == model::vpccni::PRIO_FROM_POD
                && crate::views::host_net(&r.src) == Some(*ip)
                && r.table
                    .is_some_and(|t| (100..10000).contains(&t) && !eni_tables.contains(&t))
        })
    })
}

/// A node-local destination (`addrtype --dst-type LOCAL`, e.g. node-local DNS 169.254.20.10):
/// the SNAT rule never applies to it.
fn is_local(ctx: &Ctx<'_>, ip: &IpAddr) -> bool {
    let in_addrs = ctx
        .s
        .addresses
        .get()
        .is_some_and(|a| a.iter().any(|a| &a.local == ip));
    let in_local_table = ctx.s.routes.get().is_some_and(|rs| {
        rs.iter().any(|r| {
            r.table == model::net::RT_TABLE_LOCAL && r.route_type == "local" && r.dst.contains(ip)
        })
    });
    in_addrs || in_local_table
}

fn pairs<'a>(ctx: &Ctx<'a>) -> Result<&'a [FlowPair], String> {
    ctx.skip_if_ipv6()?;
    let ct = ctx.need_conntrack()?;
    if ctx.f.pods.is_empty() {
        return Err("no pod IPs known (no ipamd /v1/enis and no host-veth routes)".into());
    }
    if ctx.f.vpc_cidrs.is_none() {
        return Err("VPC CIDRs unknown".into());
    }
    Ok(&ct.summary.pairs)
}

fn ev(p: &FlowPair) -> Evidence {
    Evidence::new(EvidenceKind::Conntrack, p.example.clone()).at(format!(
        "conntrack ({} flow(s) {} -> {})",
        p.flows, p.src, p.dst
    ))
}

pub(crate) fn check_unexpected(ctx: &Ctx<'_>) -> RuleResult {
    let pairs = pairs(ctx)?;
    let mut hits: Vec<&FlowPair> = Vec::new();
    for p in pairs {
        let Some(ns) = p.nat_source else { continue };
        if !snat_eligible(ctx, &p.src)
            || is_dnat(p)
            || ctx.f.pod(&p.dst).is_some()
            || is_local(ctx, &p.dst)
        {
            continue;
        }
        if ctx.f.is_no_snat_destination(&p.dst) != Some(true) {
            continue;
        }
        // Explained by the rules (missing/shadowed RETURN) → reported by the iptables rules.
        if let (Some(nat), IpAddr::V4(d)) = (&ctx.nat, p.dst) {
            if matches!(nat.evaluate(d), Verdict::Snat(_)) {
                continue;
            }
        }
        let _ = ns;
        hits.push(p);
    }
    if hits.is_empty() {
        return Ok(vec![]);
    }
    let flows: u64 = hits.iter().map(|p| p.flows).sum();
    Ok(vec![ctx
        .finding(UNEXPECTED_ID, Severity::Warning, format!("{flows} conntrack flow(s) from pods to VPC/excluded destinations were source-NATed"))
        .evs(hits.iter().take(8).map(|p| ev(p)))
        .note("the AWS SNAT chain as collected RETURNs these destinations, so another rule (another backend, a MASQUERADE from another agent) translated them")
        .explain("Traffic from pods to the VPC and to excluded CIDRs must keep the pod IP. These flows left with another source address: peers see the node IP, and security groups for pods, NetworkPolicies and allow-lists keyed on pod IPs no longer match.")
        .remedy("Find the translating rule: `iptables-legacy-save -t nat` and `iptables-nft-save -t nat` (look for MASQUERADE/SNAT ahead of AWS-SNAT-CHAIN-0) and `nft list ruleset`; remove it, then `conntrack -D -s <pod IP>` to drop the stale entries.")
        .inferred(ctx.f.inferred_names(&["vpc_cidrs", "pods"]))
        .done()])
}

pub(crate) fn check_missing(ctx: &Ctx<'_>) -> RuleResult {
    let pairs = pairs(ctx)?;
    match &ctx.f.external_snat {
        Some(k) if k.value => return Ok(vec![]),
        Some(_) => {}
        None => return Err("EXTERNALSNAT unknown".into()),
    }
    let mut hits: Vec<&FlowPair> = Vec::new();
    for p in pairs {
        if p.nat_source.is_some()
            || !snat_eligible(ctx, &p.src)
            || is_dnat(p)
            || is_local(ctx, &p.dst)
        {
            continue;
        }
        if ctx.f.is_no_snat_destination(&p.dst) != Some(false) {
            continue;
        }
        let IpAddr::V4(d) = p.dst else { continue };
        // Explained by the rules (chain missing, inverted RETURN, extra exclusion).
        match &ctx.nat {
            Some(nat) if !matches!(nat.evaluate(d), Verdict::Snat(_)) => continue,
            _ => {}
        }
        hits.push(p);
    }
    if hits.is_empty() {
        return Ok(vec![]);
    }
    let flows: u64 = hits.iter().map(|p| p.flows).sum();
    Ok(vec![ctx
        .finding(MISSING_ID, Severity::Warning, format!("{flows} conntrack flow(s) from pods to non-VPC destinations were not source-NATed"))
        .evs(hits.iter().take(8).map(|p| ev(p)))
        .note("the AWS SNAT chain as collected would SNAT these destinations; the flows predate the rules or another rule accepted them first")
        .explain("With EXTERNALSNAT=false pod traffic leaving the VPC must be SNATed to the node's primary IP; these flows leave with the pod IP and their replies do not come back (no public mapping for secondary IPs). Flows created before the SNAT rule existed keep their old translation until they expire.")
        .remedy("Check `iptables -t nat -S POSTROUTING` in both backends for rules ahead of the AWS jump that ACCEPT/RETURN pod traffic, then flush the stale entries with `conntrack -D -s <pod IP>`.")
        .inferred(ctx.f.inferred_names(&["vpc_cidrs", "pods", "external_snat"]))
        .done()])
}
