//! `snat.return-inverted`: `! -d <CIDR> -j RETURN` in an AWS SNAT chain returns everything
//! *outside* the CIDR, so VPC traffic is SNATed and internet traffic is not. This exact line
//! circulates in blog pastes that mix up the chained form (`! -d X -j AWS-SNAT-CHAIN-1`) with
//! the single-chain form (`-d X -j RETURN`).

use model::Severity;

use super::snat_common::reachable_rules;
use crate::rule::{Ctx, RuleResult};

pub(crate) const ID: &str = "snat.return-inverted";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    ctx.skip_if_ipv6()?;
    let nat = ctx.need_nat()?;
    let mut out = Vec::new();
    for r in reachable_rules(nat) {
        let Some((cidr, true)) = r.dst() else {
            continue;
        };
        if r.target() != "RETURN" {
            continue;
        }
        let c = cidr.map(|c| c.to_string()).unwrap_or_else(|| "?".into());
        out.push(
            ctx.finding(ID, Severity::Error, format!("inverted RETURN `! -d {c} -j RETURN` in {}: traffic to {c} is SNATed, everything else is not", r.rule.chain))
                .evs([r.evidence()])
                .evs(reachable_rules(nat).iter().filter(|x| x.location() != r.location()).map(|x| x.evidence()))
                .explain(format!("The RETURN matches every destination outside {c}, so internet-bound pod traffic skips the SNAT rule and leaves with the pod IP (dropped: no public mapping), while pod traffic to {c} (normally the VPC) is SNATed to the node IP. The CNI writes `-d <CIDR> -j RETURN` (v1.16.2+) or `! -d <CIDR> -j AWS-SNAT-CHAIN-<n+1>` (≤ v1.16.0); the negated RETURN is a hand-made rule.")) 
                .remedy(format!("Delete the rule (`iptables -t nat -D {} ! -d {c} -m comment --comment \"{}\" -j RETURN`) and restart aws-node so ipamd re-creates `-d {c} -j RETURN`; find and fix the script or saved rules that added it.", r.rule.chain, r.rule.comment().unwrap_or("AWS SNAT CHAIN")))
                .done(),
        );
    }
    Ok(out)
}
