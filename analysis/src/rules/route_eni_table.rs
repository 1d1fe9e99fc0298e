//! `route.eni-table-broken`: each secondary ENI's table d+1 holds `default via <gw> dev <ethN>`
//! and `<gw> dev <ethN> scope link` (groundtruth §2.2, §9 invariant 7).

use model::{Family, Route, Severity};

use super::route_common::{
    managed_secondary_enis, routes_and_rules_with_enis, table_captured, ONLY_MAIN_TABLE,
};
use crate::rule::{route_ev, rule_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "route.eni-table-broken";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let (routes, rules) = routes_and_rules_with_enis(ctx)?;
    let mut out = Vec::new();
    let (mut checked, mut unknown) = (0, 0);
    for (e, inferred) in managed_secondary_enis(ctx, rules) {
        let t = e.expected_table;
        if !table_captured(ctx, routes, t) {
            unknown += 1;
            continue;
        }
        checked += 1;
        let table: Vec<&Route> = routes
            .iter()
            .filter(|r| r.table == t && r.family == Family::Inet)
            .collect();
        let default = table.iter().find(|r| r.is_default());
        let name = e
            .interface
            .clone()
            .unwrap_or_else(|| format!("device {}", e.device_number));
        let mut problems = Vec::new();
        let mut sev = Severity::Error;
        match default {
            None => problems.push(format!("table {t} has no default route")),
            Some(d) => {
                if let (Some(want), Some(have)) = (&e.interface, &d.dev) {
                    if want != have {
                        problems.push(format!(
                            "table {t} default route leaves via {have}, not {want}"
                        ));
                    }
                }
                if let Some(gw) = d.gateway {
                    let link = table
                        .iter()
                        .any(|r| r.dst.prefix_len() == 32 && r.dst.addr() == gw);
                    if !link && problems.is_empty() {
                        sev = Severity::Warning;
                        problems.push(format!(
                            "table {t} lacks the `{gw} dev {name} scope link` route"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            continue;
        }
        let label = format!("{} ({name})", e.id.clone().unwrap_or_else(|| "ENI".into()));
        let mut f = ctx
            .finding(ID, sev, format!("ENI {label}: {}", problems.join("; ")))
            .evs(table.iter().map(|r| route_ev(r)));
        if table.is_empty() {
            f = f.note(format!("table {t} is empty"));
        }
        if let Some(rs) = rules {
            f = f.evs(
                rs.iter()
                    .filter(|r| r.table == Some(t))
                    .take(6)
                    .map(rule_ev),
            );
        }
        out.push(
            f.explain("Pods whose IPs belong to this ENI send their traffic through its table (rule 1536 `from <pod> lookup <table>`). Without the default route via the ENI the lookup falls through to main and the traffic leaves via the primary ENI with a source it does not own, so the VPC drops it: pods on this ENI lose VPC and internet connectivity.")
                .remedy(format!("Restart aws-node (ipamd re-runs setupENINetwork for every ENI), or by hand: `ip route replace <gw> dev {name} scope link table {t}; ip route replace default via <gw> dev {name} table {t}` with gw = subnet base + 1. Look for what flushed it (nm-cloud-setup, networkd without ManageForeignRoutes=no)."))
                .inferred(if inferred { vec!["ENI managed by the CNI (inferred from rules using its table; ipamd /v1/enis not collected)".to_string()] } else { vec![] })
                .done(),
        );
    }
    if checked == 0 && unknown > 0 {
        return Err(ONLY_MAIN_TABLE.into());
    }
    Ok(out)
}
