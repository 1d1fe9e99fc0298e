//! `snat.chain-missing`: with EXTERNALSNAT=false the POSTROUTING jump into AWS-SNAT-CHAIN-0 and
//! the final "AWS, SNAT" rule must exist (groundtruth §1.1 N1/N4, §7 F1).

use model::{Evidence, EvidenceKind, Severity};

use super::snat_common::{
    external_snat_text, legacy_layout, legacy_snat_rules, reachable_snat_rules, snat_expected,
};
use crate::rule::{config_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "snat.chain-missing";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    if !snat_expected(ctx)? {
        return Ok(vec![]);
    }
    let nat = ctx.need_nat()?;
    let Some(nat_table) = nat.dump.table("nat") else {
        return Err(format!(
            "the {} iptables dump has no nat table",
            nat.backend
        ));
    };
    if legacy_layout(ctx, nat) {
        // v1.0–v1.2: one POSTROUTING rule, no AWS-SNAT-CHAIN (v1.0.0 `SetupHostNetwork`).
        if !legacy_snat_rules(nat).is_empty() {
            return Ok(vec![]);
        }
        if let Some(why) = nat.filtered_table("nat") {
            return Err(why);
        }
        let mut ev: Vec<Evidence> = vec![config_ev(external_snat_text(ctx))];
        if let Some(post) = nat_table.chain("POSTROUTING") {
            ev.extend(post.rules.iter().enumerate().map(|(i, r)| {
                Evidence::new(EvidenceKind::Iptables, r.evidence_line()).at(format!(
                    "{} nat POSTROUTING #{}",
                    nat.backend,
                    i + 1
                ))
            }));
        }
        return Ok(vec![ctx
            .finding(ID, Severity::Error, format!("AWS SNAT missing in the {} backend: the v1.0–v1.2 POSTROUTING \"AWS, SNAT\" rule is missing", nat.backend))
            .evs(ev)
            .note(ctx.f.layout_line().unwrap_or_default())
            .explain("CNI v1.0–v1.2 SNATs pod traffic leaving the VPC with one nat POSTROUTING rule `! -d <VPC> -m comment --comment \"AWS, SNAT\" -j SNAT --to-source <primary IP>`. Without it, pod traffic to the internet leaves with the pod IP and is dropped.")
            .remedy("Restart aws-node on this node so ipamd re-adds the rule, and plan an upgrade: CNI v1.0–v1.2 is long out of support.")
            .inferred(ctx.f.inferred_names(&["external_snat"]))
            .done()]);
    }
    let jump_missing = nat.postrouting_jumps.is_empty();
    let snat_missing = reachable_snat_rules(nat)
        .iter()
        .all(|r| r.rule.chain == "POSTROUTING");
    if !jump_missing && !snat_missing {
        return Ok(vec![]);
    }
    if let Some(why) = nat.filtered_table("nat") {
        return Err(why);
    }
    if !jump_missing && !nat.has_snat_chain0() {
        // A complete dump cannot hold a jump to a chain it does not list.
        return Err(format!(
            "the {} nat capture has the POSTROUTING jump but does not list AWS-SNAT-CHAIN-0 (one chain listed?): the SNAT rule cannot be checked",
            nat.backend
        ));
    }
    let what = match (jump_missing, snat_missing) {
        (true, true) => {
            "the POSTROUTING jump to AWS-SNAT-CHAIN-0 and the \"AWS, SNAT\" rule are missing"
        }
        (true, false) => "the POSTROUTING jump to AWS-SNAT-CHAIN-0 is missing",
        _ => "the \"AWS, SNAT\" rule is missing from the AWS SNAT chains",
    };
    let mut ev: Vec<Evidence> = Vec::new();
    ev.push(config_ev(external_snat_text(ctx)));
    if let Some(post) = nat_table.chain("POSTROUTING") {
        if post.rules.is_empty() {
            ev.push(
                Evidence::new(EvidenceKind::Iptables, ":POSTROUTING (no rules)")
                    .at(format!("{} nat POSTROUTING", nat.backend)),
            );
        }
        for (i, r) in post.rules.iter().enumerate() {
            ev.push(
                Evidence::new(EvidenceKind::Iptables, r.evidence_line()).at(format!(
                    "{} nat POSTROUTING #{}",
                    nat.backend,
                    i + 1
                )),
            );
        }
    }
    if nat.has_snat_chain0() {
        let rules = nat.chain_rules(model::vpccni::SNAT_CHAIN_0);
        if rules.is_empty() {
            ev.push(
                Evidence::new(EvidenceKind::Iptables, ":AWS-SNAT-CHAIN-0 - (empty chain)")
                    .at(format!("{} nat AWS-SNAT-CHAIN-0", nat.backend)),
            );
        }
        ev.extend(rules.iter().map(|r| r.evidence()));
    } else {
        ev.push(
            Evidence::new(
                EvidenceKind::Note,
                "no chain AWS-SNAT-CHAIN-0 in the nat table",
            )
            .at(format!("{} nat", nat.backend)),
        );
    }
    // Corroboration: pod flows to non-VPC destinations that left without NAT.
    if let Some(ct) = ctx.s.conntrack.get() {
        let unnated = ct.summary.pairs.iter().filter(|p| {
            p.nat_source.is_none()
                && ctx.f.pod(&p.src).is_some()
                && !crate::views::is_dnat(p)
                && ctx.f.is_no_snat_destination(&p.dst) == Some(false)
        });
        for p in unnated.take(3) {
            ev.push(
                Evidence::new(EvidenceKind::Conntrack, p.example.clone())
                    .at(format!("conntrack ({} flow(s), not source-NATed)", p.flows)),
            );
        }
    }
    Ok(vec![ctx
        .finding(ID, Severity::Error, format!("AWS SNAT missing in the {} backend: {what}", nat.backend))
        .evs(ev)
        .explain("With EXTERNALSNAT=false ipamd SNATs pod traffic leaving the VPC to the node's primary IP. Without the jump or the SNAT rule, traffic from pods to the internet and other non-VPC destinations leaves with the pod IP: it is dropped (secondary-ENI IPs have no public mapping, the NAT/IGW only translates the primary IP) and replies never return. ipamd does not repair flushed rules until aws-node restarts.")
        .remedy("Find what flushed the nat table (iptables-restore without --noflush, firewalld, another agent), then restart aws-node on this node so ipamd rewrites the rules: `kubectl -n kube-system delete pod -l k8s-app=aws-node --field-selector spec.nodeName=<node>`. If a NAT gateway is meant to do this, set AWS_VPC_K8S_CNI_EXTERNALSNAT=true instead.")
        .inferred(ctx.f.inferred_names(&["external_snat"]))
        .done()])
}
