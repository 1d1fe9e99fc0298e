//! `snat.random-mismatch`: the SNAT rule's `--random-fully` / `--random` / no flag must match
//! AWS_VPC_K8S_CNI_RANDOMIZESNAT (groundtruth §1.2 G).

use model::Severity;

use super::snat_common::{reachable_snat_rules, snat_expected};
use crate::facts::{Provenance, Randomize};
use crate::rule::{config_ev, Ctx, RuleResult};
use model::vpccni;

pub(crate) const ID: &str = "snat.random-mismatch";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    if !snat_expected(ctx)? {
        return Ok(vec![]);
    }
    let nat = ctx.need_nat()?;
    let Some(want) = &ctx.f.randomize else {
        return Err("AWS_VPC_K8S_CNI_RANDOMIZESNAT unknown: no CNI env in the snapshot".into());
    };
    // RANDOMIZESNAT unset: the default depends on the version (v1.4.0 `typeOfSNAT` default
    // hashrandom, v1.7.0 prng; v1.0–v1.3 have no flag at all). With the version unknown, any
    // default of the inferred era's versions is accepted.
    let defaults: Vec<&str> = if want.source == Provenance::Default {
        match (ctx.f.version(), ctx.f.rule_era()) {
            (Some(v), _) => vec![vpccni::default_random_flag(v).unwrap_or("none")],
            (None, Some(era)) => {
                let (lo, hi) = era.version_range();
                let mut d = vec![vpccni::default_random_flag(lo).unwrap_or("none")];
                let hi_flag = vpccni::default_random_flag(hi.unwrap_or(lo)).unwrap_or("none");
                if !d.contains(&hi_flag) {
                    d.push(hi_flag);
                }
                // v1.4–v1.6 (hashrandom) lie inside the v1.3–v1.7 era.
                if era == vpccni::RuleEra::ChainedMangleOnly && !d.contains(&"--random") {
                    d.push("--random");
                }
                d
            }
            (None, None) => vec![want.value.flag().unwrap_or("none")],
        }
    } else {
        vec![want.value.flag().unwrap_or("none")]
    };
    let expected = defaults[0];
    let mut out = Vec::new();
    for r in reachable_snat_rules(nat) {
        let have = Randomize::of_rule(r.rule).flag_or_none();
        if defaults.contains(&have) {
            continue;
        }
        // prng falls back to --random when iptables lacks --random-fully, with a WARN.
        let fallback = want.value == Randomize::Prng
            && have == "--random"
            && ctx.s.cni_logs.get().is_some_and(|l| {
                l.events
                    .iter()
                    .any(|e| e.msg.contains("Falling back to hashrandom"))
            });
        let sev = if fallback {
            Severity::Info
        } else {
            Severity::Warning
        };
        let mut f = ctx
            .finding(
                ID,
                sev,
                format!(
                    "SNAT rule uses {have} but RANDOMIZESNAT={} expects {expected}",
                    if want.source == Provenance::Default
                        && ctx.f.version().is_some_and(
                            |v| vpccni::default_random_flag(v) != Some("--random-fully")
                        )
                    {
                        "unset (default of this CNI version)"
                    } else {
                        want.value.as_str()
                    }
                ),
            )
            .evs([r.evidence()])
            .evs([config_ev(want.detail.clone().unwrap_or_else(|| {
                format!("RANDOMIZESNAT={}", want.value.as_str())
            }))]);
        if fallback {
            f = f.note("ipamd logged that iptables lacks --random-fully and fell back to --random");
        }
        out.push(
            f.explain("Without --random-fully, concurrent connections from many pods to the same destination collide on SNAT source ports; the losers show up as conntrack insert_failed and intermittent connect timeouts. A flag that differs from the setting also means the env change has not taken effect (aws-node not restarted) or the rule was restored from elsewhere.")
                .remedy("Restart aws-node on this node so ipamd rewrites the SNAT rule with the configured flag; keep AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng unless NACLs require the ephemeral port range.")
                .done(),
        );
    }
    Ok(out)
}
