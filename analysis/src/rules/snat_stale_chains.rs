//! `snat.stale-chains`: AWS-SNAT-CHAIN-1..N / AWS-CONNMARK-CHAIN-1..N left next to the
//! single-chain layout (v1.16.2+ deletes them via CleanUpStaleAWSChains; groundtruth §0, §1.2 C).

use model::vpccni;
use model::{Evidence, EvidenceKind, Severity};

use crate::facts::SnatLayout;
use crate::rule::{Ctx, RuleResult};

pub(crate) const ID: &str = "snat.stale-chains";

fn numbered(name: &str) -> bool {
    [vpccni::SNAT_CHAIN_PREFIX, vpccni::CONNMARK_CHAIN_PREFIX]
        .iter()
        .any(|p| {
            name.strip_prefix(p)
                .is_some_and(|n| n != "0" && n.parse::<u32>().is_ok())
        })
}

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let nat = ctx.need_nat()?;
    let stale: Vec<&str> = nat
        .snat_chains
        .iter()
        .chain(nat.connmark_chains.iter())
        .copied()
        .filter(|c| numbered(c))
        .collect();
    // In a backend the kubelet does not use, old chained rules are snat.backend-split's case.
    let kubelet_backend = ctx.f.kubelet_backend.is_none_or(|k| k == nat.backend);
    let chained_on_new = ctx.f.snat_layout == SnatLayout::Chained
        && ctx.f.version_at_least((1, 16, 2))
        && kubelet_backend;
    if stale.is_empty() || (ctx.f.snat_layout == SnatLayout::Chained && !chained_on_new) {
        return Ok(vec![]);
    }
    let mut ev = Vec::new();
    for c in &stale {
        let rules = nat.chain_rules(c);
        if rules.is_empty() {
            ev.push(
                Evidence::new(EvidenceKind::Iptables, format!(":{c} - [0:0]"))
                    .at(format!("{} nat {c}", nat.backend)),
            );
        }
        ev.extend(rules.iter().map(|r| r.evidence()));
    }
    let why = if chained_on_new {
        format!(
            "the chained layout (≤ v1.16.0) is still in use on CNI {}",
            ctx.f.cni_version.clone().unwrap_or_default()
        )
    } else {
        "the single-chain layout (v1.16.2+) is in use".to_string()
    };
    Ok(vec![ctx
        .finding(
            ID,
            // A fully chained layout still works; the version may come from a newer log line
            // than the rules. Only leftovers next to the single chain are a real anomaly.
            if chained_on_new { Severity::Info } else { Severity::Warning },
            format!("stale AWS chains {} although {why}", stale.join(", ")),
        )
        .evs(ev)
        .explain("CNI v1.16.2+ keeps everything in AWS-SNAT-CHAIN-0/AWS-CONNMARK-CHAIN-0 and deletes the numbered chains of the old chained layout; its cleanup errors are only logged at debug. Leftover chains mean a failed cleanup, a downgrade/upgrade mix, or rules restored from a saved file, and they can carry an old --to-source or CIDR list that becomes active again if anything jumps to them.")
        .remedy("Delete the chains (`iptables -t nat -F <chain>; iptables -t nat -X <chain>`) after checking nothing jumps to them, then restart aws-node.")
        .done()])
}
