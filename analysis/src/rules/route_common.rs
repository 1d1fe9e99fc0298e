//! Helpers shared by the routing rules.

use std::net::IpAddr;

use model::vpccni;
use model::IpRule;

use crate::facts::EniFact;
use crate::rule::Ctx;
use crate::views::host_net;

/// `512: from all to <ip>` rules.
pub(crate) fn rules_512<'a>(rules: &'a [IpRule], ip: &IpAddr) -> Vec<&'a IpRule> {
    rules
        .iter()
        .filter(|r| {
            r.priority == vpccni::PRIO_TO_POD && r.src.is_none() && host_net(&r.dst) == Some(*ip)
        })
        .collect()
}

/// `1536: from <ip> …` rules.
pub(crate) fn rules_1536<'a>(rules: &'a [IpRule], ip: &IpAddr) -> Vec<&'a IpRule> {
    rules
        .iter()
        .filter(|r| r.priority == vpccni::PRIO_FROM_POD && host_net(&r.src) == Some(*ip))
        .collect()
}

/// What the per-ENI routing rules read: the routes and the policy rules (when collected);
/// Err when the routes or the node's ENIs are not known.
pub(crate) fn routes_and_rules_with_enis<'a>(
    ctx: &Ctx<'a>,
) -> Result<(&'a [model::Route], Option<&'a [IpRule]>), String> {
    let routes = ctx.need_routes()?;
    let rules = ctx.s.rules.get().map(Vec::as_slice);
    if ctx.f.enis.is_empty() {
        return Err("no ENIs known (no IMDS ENI list and no ipamd /v1/enis)".into());
    }
    Ok((routes, rules))
}

/// Secondary ENIs whose table the CNI maintains: listed by ipamd, or (without ipamd) whose
/// table a 1536/32765 rule uses. Trunk ENIs (security groups for pods) are left out.
pub(crate) fn managed_secondary_enis<'a>(
    ctx: &Ctx<'a>,
    rules: Option<&[IpRule]>,
) -> Vec<(&'a EniFact, bool)> {
    let ipamd_known = ctx.s.cni.get().is_some_and(|c| c.ipamd_enis.is_some());
    ctx.f
        .enis
        .iter()
        .filter(|e| !e.is_primary && !e.is_trunk && e.expected_table != model::net::RT_TABLE_MAIN)
        .filter_map(|e| {
            if ipamd_known {
                e.managed.then_some((e, false))
            } else {
                let used = rules.is_some_and(|rs| {
                    rs.iter().any(|r| {
                        (r.priority == vpccni::PRIO_FROM_POD
                            || r.priority == vpccni::PRIO_FROM_ENI_PRIMARY)
                            && r.table == Some(e.expected_table)
                    })
                });
                used.then_some((e, true))
            }
        })
        .collect()
}

/// Whether routing table `t` is in the capture (so an absent route in it is real). Netlink
/// snapshots and `ip route show table all` pastes (recognised by their local-table routes, which
/// that command always lists) hold every table; otherwise only tables that have routes or a
/// per-table file (`ip-route-table-N.txt`) are known. A plain `ip route` paste is main only.
pub(crate) fn table_captured(ctx: &Ctx<'_>, routes: &[model::Route], t: u32) -> bool {
    let sources = &ctx.s.routes.sources;
    routes
        .iter()
        .any(|r| r.table == t || r.table == model::net::RT_TABLE_LOCAL)
        // No provenance recorded, or a live (netlink) snapshot: every table was read.
        || sources.is_empty()
        || sources.iter().any(|s| !s.starts_with("file:"))
        || sources.iter().any(|s| {
            let name = s.rsplit('/').next().unwrap_or(s);
            name.strip_suffix(".txt")
                .and_then(|n| n.rsplit("route-table-").next())
                .is_some_and(|n| n == t.to_string() || model::net::table_id_from_name(n) == Some(t))
        })
}

/// Skip reason for checks that need the per-ENI tables.
pub(crate) const ONLY_MAIN_TABLE: &str = "the per-ENI routing tables are not in the capture (`ip route` or `ip route show table main` instead of `ip route show table all`)";
