//! `route.duplicate-rule`: at most one 512 and one 1536 rule per pod IP (groundtruth §7 F8,
//! aws/amazon-vpc-cni-k8s#641).

use std::collections::BTreeMap;
use std::net::IpAddr;

use model::vpccni;
use model::{IpRule, Severity};

use crate::rule::{rule_ev, Ctx, RuleResult};
use crate::views::host_net;

pub(crate) const ID: &str = "route.duplicate-rule";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let rules = ctx.need_rules()?;
    let mut groups: BTreeMap<(u32, IpAddr), Vec<&IpRule>> = BTreeMap::new();
    for r in rules {
        let ip = match r.priority {
            vpccni::PRIO_TO_POD if r.src.is_none() => host_net(&r.dst),
            vpccni::PRIO_FROM_POD => host_net(&r.src),
            _ => None,
        };
        if let Some(ip) = ip {
            groups.entry((r.priority, ip)).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for ((prio, ip), rs) in groups.into_iter().filter(|(_, v)| v.len() > 1) {
        let tables: Vec<String> = rs
            .iter()
            .map(|r| r.table.map(model::net::table_name).unwrap_or_default())
            .collect();
        let differ = tables.iter().any(|t| t != &tables[0]);
        out.push(
            ctx.finding(ID, if differ { Severity::Error } else { Severity::Warning }, format!("{} priority-{prio} rules for {ip}{}", rs.len(), if differ { format!(" with different tables ({})", tables.join(", ")) } else { String::new() }))
                .evs(rs.iter().map(|r| rule_ev(r)))
                .explain(if differ { "Only the first matching rule applies; with different tables the pod's traffic may leave through an ENI that does not own its IP and be dropped by the VPC source/destination check." } else { "Duplicate identical rules are left by pod deletes that failed half-way (DEL while ipamd was unreachable) and reuse of the IP; deleting one copy on the next pod DEL leaves the other behind, and a later pod with the same IP inherits it." })
                .remedy(format!("Delete the extra rules (`ip rule del priority {prio} {} {ip}` until one is left), or restart aws-node so ipamd normalises the pod rules.", if prio == vpccni::PRIO_TO_POD { "to" } else { "from" }))
                .done(),
        );
    }
    Ok(out)
}
