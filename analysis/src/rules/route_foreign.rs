//! `route.nm-cloud-setup`: NetworkManager's nm-cloud-setup manages ENI routing with its own
//! tables 30200/30400 and deletes rules it does not know, including the CNI's
//! (`docs/troubleshooting.md` of amazon-vpc-cni-k8s; groundtruth §7 F5).

use model::Severity;

use crate::rule::{route_ev, rule_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "route.nm-cloud-setup";

const NM_TABLES: [u32; 2] = [30200, 30400];

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let routes = ctx.need_routes()?;
    let rules = ctx.s.rules.get().map(Vec::as_slice).unwrap_or(&[]);
    let rs: Vec<_> = routes
        .iter()
        .filter(|r| NM_TABLES.contains(&r.table))
        .collect();
    let ru: Vec<_> = rules
        .iter()
        .filter(|r| r.table.is_some_and(|t| NM_TABLES.contains(&t)))
        .collect();
    if rs.is_empty() && ru.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(ID, Severity::Warning, "nm-cloud-setup routing tables 30200/30400 are present")
        .evs(ru.iter().map(|r| rule_ev(r)))
        .evs(rs.iter().take(6).map(|r| route_ev(r)))
        .explain("nm-cloud-setup configures policy routing for secondary ENIs itself and removes rules it did not create; it fights the VPC CNI's 512/1536 rules and ENI tables, so pod connectivity breaks intermittently after NetworkManager reconciles.")
        .remedy("Disable nm-cloud-setup on EKS nodes: `systemctl disable --now nm-cloud-setup.service nm-cloud-setup.timer`, then restart aws-node (or reboot).")
        .done()])
}
