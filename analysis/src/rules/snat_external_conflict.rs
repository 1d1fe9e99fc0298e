//! `snat.external-snat-conflict`: with EXTERNALSNAT=true ipamd leaves AWS-SNAT-CHAIN-0 empty
//! and adds no jump (groundtruth §1.2 D/E). SNAT rules there mean the env change did not take
//! effect or the rules were restored.

use model::Severity;

use crate::facts::Provenance;
use crate::rule::{config_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "snat.external-snat-conflict";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    ctx.skip_if_ipv6()?;
    let nat = ctx.need_nat()?;
    let Some(ext) = ctx
        .f
        .external_snat
        .as_ref()
        .filter(|k| k.source != Provenance::Inferred)
    else {
        return Err("EXTERNALSNAT not known from the CNI env".into());
    };
    if !ext.value {
        return Ok(vec![]);
    }
    let rules: Vec<_> = nat
        .postrouting_jumps
        .iter()
        .chain(nat.snat_rules.iter())
        .collect();
    if rules.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(ID, Severity::Warning, "AWS SNAT rules are active although AWS_VPC_K8S_CNI_EXTERNALSNAT=true")
        .evs([config_ev(ext.detail.clone().unwrap_or_else(|| "AWS_VPC_K8S_CNI_EXTERNALSNAT=true".into()))])
        .evs(rules.iter().map(|r| r.evidence()))
        .explain("With external SNAT the node must send pod traffic with the pod IP so the NAT gateway translates it. These rules still SNAT it to the node IP, so the NAT gateway/firewall sees the node IP, and traffic to peered or on-prem networks loses the pod IP. The env is read at aws-node start; the change has not been applied, or the rules were restored.")
        .remedy("Restart aws-node on this node (ipamd removes the rules when EXTERNALSNAT=true), and make sure nothing restores saved iptables rules.")
        .done()])
}
