//! Conntrack health (groundtruth §7 F6/F7): `conntrack.insert-failed`, `conntrack.table-pressure`.

use model::{EvidenceKind, Severity};

use crate::rule::{sysctl_ev, Ctx, RuleResult};

pub(crate) const INSERT_ID: &str = "conntrack.insert-failed";
pub(crate) const PRESSURE_ID: &str = "conntrack.table-pressure";

pub(crate) fn check_insert(ctx: &Ctx<'_>) -> RuleResult {
    let ct = ctx.need_conntrack()?;
    let mut totals = ct.totals.clone();
    if totals.is_empty() {
        totals = model::conntrack::sum_stats(&ct.stats);
    }
    if totals.is_empty() {
        return Err(
            "no conntrack statistics (conntrack -S / /proc/net/stat/nf_conntrack) in the snapshot"
                .into(),
        );
    }
    let keys = ["insert_failed", "drop", "early_drop"];
    let bad: Vec<(&str, u64)> = keys
        .iter()
        .filter_map(|k| totals.get(*k).filter(|v| **v > 0).map(|v| (*k, *v)))
        .collect();
    if bad.is_empty() {
        return Ok(vec![]);
    }
    let text = bad
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut f = ctx
        .finding(
            INSERT_ID,
            Severity::Warning,
            format!("conntrack reports {text}"),
        )
        .ev(
            EvidenceKind::Conntrack,
            Some("conntrack -S (sum over CPUs)".into()),
            text.clone(),
        );
    for s in ct
        .stats
        .iter()
        .filter(|s| keys.iter().any(|k| s.get(k) > 0))
        .take(8)
    {
        let cpu = s.cpu.map(|c| format!("cpu={c} ")).unwrap_or_default();
        f = f.ev(
            EvidenceKind::Conntrack,
            Some("conntrack -S".into()),
            format!(
                "{cpu}{}",
                keys.iter()
                    .map(|k| format!("{k}={}", s.get(k)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
    if let Some(nat) = &ctx.nat {
        for r in super::snat_common::reachable_snat_rules(nat) {
            if !r.rule.has_target_option("--random-fully") {
                f = f.evs([r.evidence()]).note("the AWS SNAT rule does not use --random-fully: SNAT port collisions are likely");
            }
        }
    }
    Ok(vec![f
        .explain("insert_failed counts new connections whose NAT mapping collided with an existing entry (typically many pods connecting to one destination through SNAT/MASQUERADE without --random-fully); drop/early_drop count packets dropped because the table was full. Each one is a lost SYN: intermittent connect timeouts to external endpoints. These counters are cumulative since boot; compare two collections to see if they are still rising.")
        .remedy("Keep AWS_VPC_K8S_CNI_RANDOMIZESNAT=prng (--random-fully) and kube-proxy MASQUERADE --random-fully; for drops raise net.netfilter.nf_conntrack_max (kube-proxy --conntrack-max-per-core) or reduce connection churn.")
        .done()])
}

pub(crate) fn check_pressure(ctx: &Ctx<'_>) -> RuleResult {
    let ct = ctx.s.conntrack.get();
    let sys = ctx.s.sysctls.get();
    let count = ct
        .and_then(|c| c.count)
        .or_else(|| sys.and_then(|s| s.get_u64("net.netfilter.nf_conntrack_count")));
    let max = ct
        .and_then(|c| c.max)
        .or_else(|| sys.and_then(|s| s.get_u64("net.netfilter.nf_conntrack_max")));
    let (Some(count), Some(max)) = (count, max) else {
        return Err("nf_conntrack_count / nf_conntrack_max not collected".into());
    };
    if max == 0 {
        return Err("nf_conntrack_max is 0".into());
    }
    let ratio = count as f64 / max as f64;
    if ratio < 0.8 {
        return Ok(vec![]);
    }
    let sev = if ratio >= 0.95 {
        Severity::Error
    } else {
        Severity::Warning
    };
    Ok(vec![ctx
        .finding(PRESSURE_ID, sev, format!("conntrack table {:.0}% full ({count}/{max})", ratio * 100.0))
        .evs([sysctl_ev("net.netfilter.nf_conntrack_count", &count.to_string()), sysctl_ev("net.netfilter.nf_conntrack_max", &max.to_string())])
        .explain("When the table is full the kernel drops new connections node-wide (`nf_conntrack: table full, dropping packet` in dmesg): random connection failures for every pod on the node.")
        .remedy("Raise net.netfilter.nf_conntrack_max (kube-proxy --conntrack-max-per-core / conntrack.maxPerCore), shorten timeouts for idle flows, or find the pod creating the connection churn (`conntrack -L | awk '{print $5}' | sort | uniq -c | sort -n`).")
        .done()])
}
