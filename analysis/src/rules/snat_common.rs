//! Helpers shared by the SNAT rules: which AWS SNAT chains are reachable, and the standard
//! preconditions (IPv4 cluster, EXTERNALSNAT known and false).

use std::collections::BTreeSet;

use model::vpccni;

use crate::nat::{AwsNat, RuleRef};
use crate::rule::Ctx;

/// Names of the `AWS-SNAT-CHAIN-*` chains reachable from `AWS-SNAT-CHAIN-0`.
pub(crate) fn reachable_snat_chains(nat: &AwsNat<'_>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![vpccni::SNAT_CHAIN_0.to_string()];
    while let Some(c) = todo.pop() {
        if !nat.snat_chains.iter().any(|x| *x == c) || !seen.insert(c.clone()) {
            continue;
        }
        for r in nat.chain_rules(&c) {
            let t = r.target();
            if t.starts_with(vpccni::SNAT_CHAIN_PREFIX) {
                todo.push(t.to_string());
            }
        }
    }
    seen
}

/// Rules of the reachable SNAT chains, in chain order.
pub(crate) fn reachable_rules<'a>(nat: &AwsNat<'a>) -> Vec<RuleRef<'a>> {
    let reach = reachable_snat_chains(nat);
    nat.snat_chain_rules
        .iter()
        .filter(|r| reach.contains(r.rule.chain.as_str()))
        .copied()
        .collect()
}

/// The reachable "AWS, SNAT" rules.
pub(crate) fn reachable_snat_rules<'a>(nat: &AwsNat<'a>) -> Vec<RuleRef<'a>> {
    let reach = reachable_snat_chains(nat);
    nat.snat_rules
        .iter()
        .filter(|r| reach.contains(r.rule.chain.as_str()) || r.rule.chain == "POSTROUTING")
        .copied()
        .collect()
}

/// The v1.0–v1.2 layout's `"AWS, SNAT"` SNAT rules written directly in nat POSTROUTING
/// (v1.0.0 `SetupHostNetwork` `natCmd`; removed by v1.3.0's "remove pre-1.3 AWS SNAT rules").
pub(crate) fn legacy_snat_rules<'a>(nat: &AwsNat<'a>) -> Vec<RuleRef<'a>> {
    nat.snat_rules
        .iter()
        .filter(|r| r.rule.chain == "POSTROUTING")
        .copied()
        .collect()
}

/// The legacy layout applies: the node's version or inferred era is v1.0–v1.2, or nothing
/// says otherwise and the only SNAT rules are the legacy POSTROUTING ones.
pub(crate) fn legacy_layout(ctx: &Ctx<'_>, nat: &AwsNat<'_>) -> bool {
    match ctx.f.rule_era() {
        Some(e) => e == vpccni::RuleEra::SingleRule,
        None => !legacy_snat_rules(nat).is_empty() && nat.snat_chains.is_empty(),
    }
}

/// IPv4 cluster and EXTERNALSNAT known false; otherwise the reason to skip (or `Ok(false)` when
/// the rule simply does not apply because EXTERNALSNAT=true).
pub(crate) fn snat_expected(ctx: &Ctx<'_>) -> Result<bool, String> {
    ctx.skip_if_ipv6()?;
    match &ctx.f.external_snat {
        Some(k) => Ok(!k.value),
        None => Err("EXTERNALSNAT is unknown: no CNI env in the snapshot and no AWS SNAT rule to infer it from; cni-env (the aws-node container env) or an unfiltered iptables-save.txt would let it run".into()),
    }
}

/// `AWS_VPC_K8S_CNI_EXTERNALSNAT=false (default)` style evidence text.
pub(crate) fn external_snat_text(ctx: &Ctx<'_>) -> String {
    match &ctx.f.external_snat {
        Some(k) => {
            let shown = format!("{}={}", vpccni::env::EXTERNALSNAT, k.value);
            // The detail is often the raw env line itself; then name the source instead.
            let why = k
                .detail
                .clone()
                .filter(|d| !d.is_empty() && *d != shown)
                .unwrap_or_else(|| format!("{:?}", k.source).to_lowercase());
            format!("{shown} ({why})")
        }
        None => format!("{} unknown", vpccni::env::EXTERNALSNAT),
    }
}
