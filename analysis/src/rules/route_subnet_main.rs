//! `route.subnet-route-in-main`: the CNI deletes the kernel's subnet route for each secondary
//! ENI from main (groundtruth §2.2); one that is back was re-added by networkd/ec2-net-utils.

use model::{Family, Severity};

use super::route_common::{managed_secondary_enis, routes_and_rules_with_enis};
use crate::rule::{route_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "route.subnet-route-in-main";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let (routes, rules) = routes_and_rules_with_enis(ctx)?;
    let mut out = Vec::new();
    for (e, inferred) in managed_secondary_enis(ctx, rules) {
        let Some(iface) = &e.interface else { continue };
        for r in routes.iter().filter(|r| {
            r.table == model::net::RT_TABLE_MAIN
                && r.family == Family::Inet
                && r.dev.as_deref() == Some(iface.as_str())
                && !r.is_default()
                && r.dst.prefix_len() < 32
                && r.gateway.is_none()
        }) {
            out.push(
                ctx.finding(ID, Severity::Warning, format!("main table has subnet route {} via secondary ENI {iface}", r.dst))
                    .evs([route_ev(r)])
                    .explain("With this route, traffic from the node and from primary-ENI pods to that subnet leaves via the secondary ENI with a source address it does not own (dropped by the VPC source/destination check), and replies to pods can take asymmetric paths. ipamd deletes it when it sets up the ENI; something (systemd-networkd, ec2-net-utils, NetworkManager) added it back.")
                    .remedy(format!("`ip route del {} dev {iface} table main`, and stop the network manager from managing {iface} (AL2023: the EKS AMI's networkd config; AL2: ec2-net-utils).", r.dst))
                    .inferred(if inferred { vec!["ENI managed by the CNI (inferred from rules using its table)".to_string()] } else { vec![] })
                    .done(),
            );
        }
    }
    Ok(out)
}
