//! `route.dangling`: pod rules and host routes left behind after pods were deleted (groundtruth
//! §7 F8: DEL while ipamd was unreachable, force-deleted SGP pods), rules pointing at tables
//! that no longer exist, and `[detached]` iif rules.

use std::collections::BTreeSet;
use std::net::IpAddr;

use model::vpccni;
use model::Severity;

use crate::rule::{route_ev, rule_ev, Ctx, RuleResult};
use crate::views::host_net;

pub(crate) const ID: &str = "route.dangling";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let rules = ctx.need_rules()?;
    let routes = match ctx.need_routes() {
        Ok(r) => r,
        // `[detached]` rules are visible in `ip rule` alone: report them without routes.
        Err(why) => {
            let out = detached(ctx, rules);
            return if out.is_empty() { Err(why) } else { Ok(out) };
        }
    };
    let ipamd = ctx.s.cni.get().is_some_and(|c| c.ipamd_enis.is_some());
    let links = ctx.s.links.get();
    let tables: BTreeSet<u32> = routes.iter().map(|r| r.table).collect();
    let known = |ip: &IpAddr| ctx.f.pod(ip).is_some();
    let mut out = Vec::new();
    let mut stale_ips: BTreeSet<IpAddr> = BTreeSet::new();
    for r in rules {
        let ip = match r.priority {
            vpccni::PRIO_TO_POD if r.src.is_none() => host_net(&r.dst),
            vpccni::PRIO_FROM_POD => host_net(&r.src),
            _ => None,
        };
        if let Some(ip) = ip {
            if !known(&ip) {
                stale_ips.insert(ip);
            }
        }
    }
    for ip in &stale_ips {
        let ev: Vec<_> = rules
            .iter()
            .filter(|r| {
                (r.priority == vpccni::PRIO_TO_POD && host_net(&r.dst) == Some(*ip))
                    || (r.priority == vpccni::PRIO_FROM_POD && host_net(&r.src) == Some(*ip))
            })
            .map(rule_ev)
            .collect();
        let basis = if ipamd {
            "not assigned in ipamd /v1/enis and no host route"
        } else {
            "no host route"
        };
        out.push(
            ctx.finding(ID, Severity::Warning, format!("stale policy rule(s) for {ip}: {basis}"))
                .evs(ev)
                .explain("These rules belong to a pod that no longer exists. When ipamd hands the IP to a new pod, a leftover 1536 rule can send its traffic through the wrong ENI table and a leftover 512 rule hides nothing but misleads; same-node pod-to-pod traffic to the reused IP can fail.")
                .remedy(format!("`ip rule del to {ip} priority 512` and `ip rule del from {ip} priority 1536` (check `ip rule | grep -w {ip}` first)."))
                .inferred(if ipamd { vec![] } else { vec!["pods (ipamd /v1/enis not collected; a pod is an IP with a host-veth route)".into()] })
                .done(),
        );
    }
    // 1536 rules of known pods pointing at tables with no routes at all (only when the capture
    // holds tables other than main: a plain `ip route` paste shows no ENI table at all).
    for r in rules.iter().filter(|r| r.priority == vpccni::PRIO_FROM_POD) {
        let (Some(ip), Some(t)) = (host_net(&r.src), r.table) else {
            continue;
        };
        if stale_ips.contains(&ip)
            || tables.contains(&t)
            || t == model::net::RT_TABLE_MAIN
            || !super::route_common::table_captured(ctx, routes, t)
        {
            continue;
        }
        if ctx.f.pod(&ip).is_some_and(|p| p.in_ipamd) {
            // Right table for its ENI, table empty: route.eni-table-broken.
            continue;
        }
        out.push(
            ctx.finding(ID, Severity::Warning, format!("rule for {ip} looks up table {t}, which has no routes (its ENI is gone)"))
                .evs([rule_ev(r)])
                .explain("A lookup in an empty table falls through to the next rules; the pod's traffic then leaves through the main table and the primary ENI with a source address it does not own, and the VPC drops it.")
                .remedy("Recreate the pod, or restart aws-node so ipamd rewrites the pod rules for the current ENIs.")
                .done(),
        );
    }
    // Host routes through veths that no longer exist, for IPs ipamd does not assign.
    if let Some(links) = links {
        for p in ctx.f.pods.iter().filter(|p| !p.in_ipamd && p.has_route) {
            let Some(veth) = &p.host_veth else { continue };
            if links.iter().any(|l| &l.ifname == veth) {
                continue;
            }
            let route = routes.iter().find(|r| {
                r.table == model::net::RT_TABLE_MAIN
                    && r.dst.addr() == p.ip
                    && r.dev.as_deref() == Some(veth.as_str())
            });
            out.push(
                ctx.finding(ID, Severity::Warning, format!("host route for {} through {veth}, which does not exist", p.ip))
                    .evs(route.map(route_ev))
                    .explain("A leftover host route for a deleted pod; a new pod with the same IP gets its own route, but until then traffic to the IP is blackholed.")
                    .remedy(format!("`ip route del {} dev {veth}`", p.ip))
                    .done(),
            );
        }
    }
    out.extend(detached(ctx, rules));
    Ok(out)
}

/// `[detached]` iif/oif rules: their interface is gone.
fn detached(ctx: &Ctx<'_>, rules: &[model::IpRule]) -> Vec<model::Finding> {
    rules
        .iter()
        .filter(|r| r.detached)
        .map(|r| {
            ctx.finding(ID, Severity::Warning, format!("policy rule {} refers to an interface that no longer exists", r.priority))
                .evs([rule_ev(r)])
                .explain("`[detached]` iif/oif rules are left when a security-group-for-pods vlan interface or veth is deleted without its rules; a new interface with the same name inherits them.")
                .remedy("Delete the rule with `ip rule del priority <prio> iif <name>`.")
                .done()
        })
        .collect()
}
