//! `snat.to-source-mismatch`: every reachable "AWS, SNAT" rule must translate to the primary
//! ENI's primary IPv4 (IMDS `local-ipv4`; groundtruth §1.1 N4, §7 F2).

use model::Severity;

use super::snat_common::{reachable_snat_rules, snat_expected};
use crate::rule::{Ctx, RuleResult};
use crate::views::to_source_ip;

pub(crate) const ID: &str = "snat.to-source-mismatch";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    if !snat_expected(ctx)? {
        return Ok(vec![]);
    }
    let nat = ctx.need_nat()?;
    let Some(primary) = &ctx.f.primary_ipv4 else {
        return Err("primary IPv4 unknown (no IMDS local-ipv4 and no default route src); imds.json or ip-route.txt would let it run".into());
    };
    let mut out = Vec::new();
    for r in reachable_snat_rules(nat) {
        let ts = r
            .rule
            .target_arg("--to-source")
            .and_then(|a| a.values.first())
            .map(|v| v.as_str());
        let ok = ts.and_then(to_source_ip) == Some(primary.value);
        if ok {
            continue;
        }
        let shown = ts.unwrap_or("(none)");
        out.push(
            ctx.finding(
                ID,
                Severity::Error,
                format!("SNAT --to-source {shown} is not the primary IP {}", primary.value),
            )
            .evs([r.evidence()])
            .ev(
                model::EvidenceKind::Imds,
                Some(format!("{:?}", primary.source).to_lowercase()),
                format!("local-ipv4 {}", primary.value),
            )
            .explain("Pod traffic to non-VPC destinations leaves with a source address this instance does not own, so the VPC drops it or replies go elsewhere. The primary private IPv4 cannot change during an instance's life: the rule was restored from another node (baked AMI with saved iptables, iptables-services) or left by an old CNI version.")
            .remedy("Remove the restored rules (disable iptables-services / saved rule files), then restart aws-node on this node so ipamd rewrites AWS-SNAT-CHAIN-0 with the right --to-source.")
            .inferred(ctx.f.inferred_names(&["primary_ipv4", "external_snat"]))
            .done(),
        );
    }
    Ok(out)
}
