//! `snat.rule-order`: the "AWS, SNAT" rule must be the last rule of its chain (a RETURN after it
//! is dead for everything the SNAT rule matches), there must be one reachable SNAT rule, and
//! one POSTROUTING jump into AWS-SNAT-CHAIN-0 (groundtruth §1.1, §9 invariant 1).

use model::Severity;

use super::snat_common::{reachable_rules, reachable_snat_rules};
use crate::rule::{Ctx, RuleResult};

pub(crate) const ID: &str = "snat.rule-order";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    ctx.skip_if_ipv6()?;
    let nat = ctx.need_nat()?;
    let mut out = Vec::new();
    let rules = reachable_rules(nat);
    let snats = reachable_snat_rules(nat);
    for s in &snats {
        let after: Vec<_> = rules
            .iter()
            .filter(|r| r.rule.chain == s.rule.chain && r.index > s.index)
            .collect();
        if after.is_empty() {
            continue;
        }
        let shadowed: Vec<_> = after.iter().filter(|r| r.target() == "RETURN").collect();
        let sev = if shadowed.is_empty() {
            Severity::Warning
        } else {
            Severity::Error
        };
        let summary = if shadowed.is_empty() {
            format!(
                "the SNAT rule is not last in {} ({} rule(s) after it)",
                s.rule.chain,
                after.len()
            )
        } else {
            format!(
                "the SNAT rule in {} shadows {} RETURN rule(s) after it: those destinations are SNATed",
                s.rule.chain,
                shadowed.len()
            )
        };
        out.push(
            ctx.finding(ID, sev, summary)
                .evs([s.evidence()])
                .evs(after.iter().map(|r| r.evidence()))
                .explain("netfilter stops at the first matching terminal target. The SNAT rule matches every non-local destination not leaving via vlan+, so RETURNs below it never apply: traffic to those VPC or excluded CIDRs is SNATed to the node IP. ipamd inserts RETURNs at position 1 and appends the SNAT rule; this order comes from a manual edit or a restore of saved rules.")
                .remedy(format!("Restart aws-node on this node so ipamd rebuilds {}, or move the SNAT rule to the end (`iptables -t nat -D` it and `-A` it again).", s.rule.chain))
                .done(),
        );
    }
    if snats.len() > 1 {
        out.push(
            ctx.finding(ID, Severity::Warning, format!("{} reachable \"AWS, SNAT\" rules (expected one)", snats.len()))
                .evs(snats.iter().map(|r| r.evidence()))
                .explain("Only the first SNAT rule on a packet's path applies; more than one means rules were restored or re-added outside ipamd and may carry an old --to-source or randomisation flag.")
                .remedy("Delete the extra rules and restart aws-node so ipamd writes a single SNAT rule.")
                .done(),
        );
    }
    if nat.postrouting_jumps.len() > 1 {
        out.push(
            ctx.finding(ID, Severity::Warning, format!("{} POSTROUTING jumps into AWS-SNAT-CHAIN-0 (expected one)", nat.postrouting_jumps.len()))
                .evs(nat.postrouting_jumps.iter().map(|r| r.evidence()))
                .explain("ipamd appends exactly one jump and checks for its existence; duplicates come from rules restored on top of ipamd's (iptables-restore of a saved file, iptables-services). They are harmless by themselves but show that saved rules are being replayed, which also replays stale SNAT settings.")
                .remedy("Stop the component restoring saved rules, delete the duplicates (`iptables -t nat -D POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0`) and restart aws-node.")
                .done(),
        );
    }
    Ok(out)
}
