//! Per-pod routing (groundtruth §2.1, §2.3, §9 invariants 6 and 8):
//! `route.pod-rule-missing`, `route.pod-rule-wrong-table`, `route.pod-route-missing`.

use model::vpccni;
use model::{Evidence, EvidenceKind, Severity};

use super::route_common::{rules_1536, rules_512};
use crate::facts::PodFact;
use crate::rule::{route_ev, rule_ev, Ctx, RuleResult};

pub(crate) const RULE_MISSING_ID: &str = "route.pod-rule-missing";
pub(crate) const WRONG_TABLE_ID: &str = "route.pod-rule-wrong-table";
pub(crate) const ROUTE_MISSING_ID: &str = "route.pod-route-missing";

fn pod_label(p: &PodFact) -> String {
    match (&p.namespace, &p.name) {
        (Some(ns), Some(n)) => format!("{} ({ns}/{n})", p.ip),
        _ => p.ip.to_string(),
    }
}

fn ipamd_ev(p: &PodFact) -> Option<Evidence> {
    p.in_ipamd.then(|| {
        Evidence::new(
            EvidenceKind::Config,
            format!(
                "{} assigned on {} (device {}, table {})",
                p.ip,
                p.eni.clone().unwrap_or_default(),
                p.device_number.map(|d| d.to_string()).unwrap_or_default(),
                p.table.map(model::net::table_name).unwrap_or_default()
            ),
        )
        .at("ipamd /v1/enis")
    })
}

/// The log line that handed the pod its IP (inferred from log).
fn log_ev(p: &PodFact) -> Option<Evidence> {
    p.from_log.as_ref().map(|l| {
        Evidence::new(EvidenceKind::Log, format!("inferred from log: {l}")).at(l
            .split(' ')
            .next()
            .unwrap_or("cni log")
            .trim_end_matches(':'))
    })
}

fn route_of<'a>(routes: &'a [model::Route], p: &PodFact) -> Option<&'a model::Route> {
    routes.iter().find(|r| {
        r.table == model::net::RT_TABLE_MAIN
            && r.dst.prefix_len() == r.dst.max_prefix_len()
            && r.dst.addr() == p.ip
    })
}

pub(crate) fn check_rule_missing(ctx: &Ctx<'_>) -> RuleResult {
    let rules = ctx.need_rules()?;
    if ctx.s.rules.status == model::SectionStatus::Partial
        && ctx
            .s
            .rules
            .warnings
            .iter()
            .any(|w| w.contains("filtered paste"))
    {
        return Err(format!(
            "the ip rule capture is filtered ({}): rules it hides are not missing; the unfiltered `ip rule` output would let it run",
            ctx.s.rules.reason.clone().unwrap_or_default()
        ));
    }
    // Without routes, the pods the CNI logs show handed an IP (and not released) are the
    // only ones known; with routes, a pod without a host route is route.pod-route-missing's.
    let routes = match ctx.need_routes() {
        Ok(r) => r,
        Err(_) if !ctx.f.log_pods.is_empty() => &[],
        Err(e) => {
            return Err(format!(
                "{e}; ip-route.txt (`ip route show table all`) or /var/log/aws-routed-eni/ipamd.log (pod IPs it hands out) would let it run"
            ))
        }
    };
    if ctx.f.pods.is_empty() && ctx.f.log_pods.is_empty() {
        return Err("no pods known (no ipamd /v1/enis, no host-veth routes, no pod IPs in ipamd.log/plugin.log); ip-route.txt or /var/log/aws-routed-eni/ipamd.log would let it run".into());
    }
    let mut out = Vec::new();
    let log_only = ctx.s.routes.get().is_none();
    let candidates: Vec<&PodFact> = if log_only {
        ctx.f
            .log_pods
            .iter()
            .filter(|p| p.ip.is_ipv4() && p.table.is_some())
            .collect()
    } else {
        ctx.f.pods.iter().filter(|p| p.has_route).collect()
    };
    for p in candidates {
        let mut missing = Vec::new();
        if rules_512(rules, &p.ip).is_empty() {
            missing.push(format!(
                "{}: from all to {} lookup main",
                vpccni::PRIO_TO_POD,
                p.ip
            ));
        }
        if let Some(t) = p.table.filter(|t| *t != model::net::RT_TABLE_MAIN) {
            if rules_1536(rules, &p.ip).is_empty() {
                missing.push(format!(
                    "{}: from {} lookup {t}",
                    vpccni::PRIO_FROM_POD,
                    p.ip
                ));
            }
        }
        if missing.is_empty() {
            continue;
        }
        let to_missing = missing.iter().any(|m| m.starts_with("512"));
        let has_some = !rules_512(rules, &p.ip).is_empty() || !rules_1536(rules, &p.ip).is_empty();
        // A pod known only from the log whose IP has no rule at all may have been deleted
        // after the log's last line: a warning. Half of its rules present is a fault.
        let sev = if log_only && !has_some {
            Severity::Warning
        } else {
            Severity::Error
        };
        let mut f = ctx
            .finding(
                RULE_MISSING_ID,
                sev,
                format!(
                    "pod {} is missing policy rule(s): {}",
                    pod_label(p),
                    missing.join("; ")
                ),
            )
            .evs(ipamd_ev(p))
            .evs(log_ev(p))
            .evs(route_of(routes, p).map(route_ev))
            .evs(
                rules
                    .iter()
                    .filter(|r| {
                        r.priority == vpccni::PRIO_TO_POD || r.priority == vpccni::PRIO_FROM_POD
                    })
                    .filter(|r| {
                        r.src.map(|s| s.addr()) == Some(p.ip)
                            || r.dst.map(|d| d.addr()) == Some(p.ip)
                    })
                    .map(rule_ev),
            );
        for m in &missing {
            f = f.note(format!("expected: {m}"));
        }
        if log_only {
            f = f.note("pod inferred from log: no ip route capture; the CNI log hands this IP to a pod and no later line releases it (ip-route.txt would show whether the pod still exists)".to_string());
        }
        out.push(
            f.explain(if to_missing {
                "Rule 512 sends traffic *to* the pod through the main table (its host-veth route) before any ENI table; without it, traffic to the pod from other pods or the node can be looked up in a secondary ENI's table and leave the node instead. Rule 1536 sends the pod's own traffic out through its ENI's table; without it a secondary-ENI pod's VPC traffic leaves via the primary ENI and is dropped by the source/destination check."
            } else {
                "Rule 1536 sends the pod's traffic out through the table of the ENI that owns its IP. Without it a secondary-ENI pod's VPC traffic leaves through the primary ENI with a source address that ENI does not own: the VPC source/destination check drops it (asymmetric routing), so pod-to-VPC traffic fails for this pod only."
            })
            .remedy(format!("Recreate the pod (the CNI re-adds the rules), or restart aws-node (ipamd normalises 1536 rules at start), or add them by hand: {}.", missing.iter().map(|m| { let (prio, rest) = m.split_once(": ").unwrap_or(("", m)); format!("`ip rule add {rest} priority {prio}`") }).collect::<Vec<_>>().join(", ")))
            .inferred(if log_only { vec![format!("pod {} (inferred from log)", p.ip)] } else if p.source == crate::facts::Provenance::Inferred { vec![format!("pod {} (known only from its host route)", p.ip)] } else { vec![] })
            .done(),
        );
    }
    Ok(out)
}

pub(crate) fn check_wrong_table(ctx: &Ctx<'_>) -> RuleResult {
    let rules = ctx.need_rules()?;
    if ctx.s.cni.get().is_none_or(|c| c.ipamd_enis.is_none()) {
        return Err("ipamd /v1/enis not collected: the ENI of each pod IP is unknown".into());
    }
    let mut out = Vec::new();
    for p in ctx.f.pods.iter().filter(|p| p.in_ipamd) {
        let Some(want) = p.table else { continue };
        for r in rules_1536(rules, &p.ip) {
            let have = r.table.unwrap_or(0);
            if have == want || r.action != "lookup" {
                continue;
            }
            let want_s = if want == model::net::RT_TABLE_MAIN {
                "no 1536 rule (primary ENI)".to_string()
            } else {
                format!("table {want}")
            };
            out.push(
                ctx.finding(WRONG_TABLE_ID, Severity::Error, format!("pod {} rule 1536 looks up table {} but its ENI expects {want_s}", pod_label(p), model::net::table_name(have)))
                    .evs([rule_ev(r)])
                    .evs(ipamd_ev(p))
                    .explain("The pod's traffic leaves through an ENI that does not own its IP; the VPC source/destination check drops it. Typical after an IP moved between ENIs or a table renumbering (multi-NIC v1.20.3) while rules were left behind.")
                    .remedy(format!("`ip rule del from {} priority 1536; ip rule add from {} lookup {} priority 1536`, or restart aws-node (ipamd rewrites every pod's 1536 rule at start).", p.ip, p.ip, model::net::table_name(want)))
                    .done(),
            );
        }
    }
    Ok(out)
}

pub(crate) fn check_route_missing(ctx: &Ctx<'_>) -> RuleResult {
    let routes = ctx.need_routes()?;
    let rules = ctx.s.rules.get().map(Vec::as_slice).unwrap_or(&[]);
    let links = ctx.s.links.get();
    if !ctx.f.pods.iter().any(|p| p.in_ipamd) && links.is_none() {
        return Err(
            "neither ipamd /v1/enis nor links collected: no way to tell a pod route is missing"
                .into(),
        );
    }
    let mut out = Vec::new();
    for p in &ctx.f.pods {
        if p.in_ipamd && !p.has_route {
            let has_rules =
                !rules_512(rules, &p.ip).is_empty() || !rules_1536(rules, &p.ip).is_empty();
            let (sev, what) = if has_rules {
                (
                    Severity::Error,
                    "has policy rules but no main-table host route",
                )
            } else {
                (Severity::Info, "is assigned by ipamd but has no host route or rules (a pod being set up, or a leaked IP assignment)")
            };
            out.push(
                ctx.finding(ROUTE_MISSING_ID, sev, format!("pod {} {what}", pod_label(p)))
                    .evs(ipamd_ev(p))
                    .evs(rules_512(rules, &p.ip).into_iter().chain(rules_1536(rules, &p.ip)).map(rule_ev))
                    .note(format!("no `{} dev {}… scope link` route in table main", p.ip, ctx.f.veth_prefix.value))
                    .explain("Traffic to the pod is routed by the main-table host route through its veth; without it, packets to the pod follow the default route and leave the node, so the pod is unreachable (readiness probes, services, other pods).")
                    .remedy(format!("Recreate the pod so the CNI re-plumbs it; if the pod no longer exists, restart aws-node so ipamd reconciles its assignment. By hand: `ip route replace {} dev <host veth> scope link`.", p.ip))
                    .done(),
            );
            continue;
        }
        let (Some(veth), Some(links)) = (&p.host_veth, links) else {
            continue;
        };
        if !p.in_ipamd
            && p.source == crate::facts::Provenance::Inferred
            && !links.iter().any(|l| &l.ifname == veth)
        {
            // A route-only pod through a vanished veth is route.dangling.
            continue;
        }
        match links.iter().find(|l| &l.ifname == veth) {
            None => out.push(
                ctx.finding(ROUTE_MISSING_ID, Severity::Error, format!("pod {} routes through {veth}, which does not exist", pod_label(p)))
                    .evs(route_of(routes, p).map(route_ev))
                    .evs(ipamd_ev(p))
                    .explain("The host route points at a veth that is gone, so traffic to the pod is dropped.")
                    .remedy("Recreate the pod; if it is gone, restart aws-node so ipamd releases the IP.")
                    .done(),
            ),
            Some(l) if link_down(l) => out.push(
                ctx.finding(ROUTE_MISSING_ID, Severity::Error, format!("pod {} host veth {veth} is down", pod_label(p)))
                    .evs(route_of(routes, p).map(route_ev))
                    .ev(EvidenceKind::Link, Some("ip link".into()), format!("{}: {} state {} flags {}", l.ifindex, l.ifname, l.operstate, l.flags.join(",")))
                    .explain("A down host veth drops every packet to and from the pod.")
                    .remedy(format!("`ip link set {veth} up`, then find what downed it (udev/networkd managing veths)."))
                    .done(),
            ),
            Some(_) => {}
        }
    }
    Ok(out)
}

/// A host veth is down when the capture says so. `ip -br addr` / `ip -br link` give the
/// operational state but no interface flags; with no flags captured, only an explicit `DOWN`
/// state counts (otherwise every veth of a brief capture would look down).
fn link_down(l: &model::Link) -> bool {
    if l.flags.is_empty() {
        l.operstate.eq_ignore_ascii_case("DOWN")
    } else {
        !l.is_up()
    }
}
