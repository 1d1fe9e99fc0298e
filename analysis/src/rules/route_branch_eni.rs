//! `route.branch-eni`: security groups for pods (strict mode) — each branch ENI's
//! `vlan.eth.<id>` link is up, `10: from all iif vlan.eth.<id> lookup <100+id>` exists and
//! table `100+id` holds `default via <gw> dev vlan.eth.<id>`; each branch pod's
//! `10: iif vlan<hash> lookup <100+id>` has its `<pod> dev vlan<hash>` route in that table
//! (groundtruth §2.1, §2.2; v1.23 `cmd/routed-eni-cni-plugin/driver/driver.go`
//! `setupVlan`/`buildRoutesForVlan`/`setupIIFBasedContainerRouteRules`, `rtTable := vlanID + 100`).

use std::collections::BTreeSet;

use model::{EvidenceKind, Family, Severity};

use crate::rule::{route_ev, rule_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "route.branch-eni";

/// `vlan.eth.<id>` → id (driver.go `buildVlanLinkName`).
fn vlan_id(name: &str) -> Option<u32> {
    name.strip_prefix("vlan.eth.")?.parse().ok()
}

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let rules = ctx.need_rules()?;
    let links = ctx.s.links.get();
    let routes = ctx.s.routes.get();
    let mut ids: BTreeSet<u32> = BTreeSet::new();
    ids.extend(
        links
            .into_iter()
            .flatten()
            .filter_map(|l| vlan_id(&l.ifname)),
    );
    ids.extend(
        rules
            .iter()
            .filter_map(|r| r.iif.as_deref().and_then(vlan_id)),
    );
    let mut out = Vec::new();
    for id in ids {
        let name = format!("vlan.eth.{id}");
        let table = 100 + id;
        let mut problems = Vec::new();
        let link = links.and_then(|ls| ls.iter().find(|l| l.ifname == name));
        match (links, link) {
            (Some(_), None) => problems.push(format!("{name} does not exist")),
            (_, Some(l)) if !l.is_up() => problems.push(format!("{name} is down")),
            _ => {}
        }
        let vlan_rule = rules.iter().find(|r| {
            r.priority == model::vpccni::PRIO_VLAN_IIF && r.iif.as_deref() == Some(name.as_str())
        });
        match vlan_rule {
            None => problems.push(format!(
                "no `{}: from all iif {name} lookup {table}` rule",
                model::vpccni::PRIO_VLAN_IIF
            )),
            Some(r) if r.table != Some(table) => problems.push(format!(
                "`iif {name}` looks up table {}, not {table}",
                r.table.map(model::net::table_name).unwrap_or_default()
            )),
            Some(_) => {}
        }
        let in_table: Vec<&model::Route> = routes
            .into_iter()
            .flatten()
            .filter(|r| r.table == table)
            .collect();
        // Host-veth rules of the branch pods using this table.
        let veth_rules: Vec<&model::IpRule> = rules
            .iter()
            .filter(|r| {
                r.priority == model::vpccni::PRIO_VLAN_IIF
                    && r.table == Some(table)
                    && r.iif.as_deref().is_some_and(|i| vlan_id(i).is_none())
            })
            .collect();
        if let Some(rs) = routes {
            if !rs.is_empty() {
                let default = in_table
                    .iter()
                    .any(|r| r.is_default() && r.dev.as_deref() == Some(name.as_str()));
                if !default {
                    problems.push(format!(
                        "table {table} has no `default via <gw> dev {name}`"
                    ));
                }
                for vr in &veth_rules {
                    let veth = vr.iif.as_deref().unwrap_or_default();
                    let pod_route = in_table.iter().any(|r| {
                        r.dev.as_deref() == Some(veth)
                            && r.dst.prefix_len() == r.dst.max_prefix_len()
                    });
                    if !pod_route {
                        problems.push(format!(
                            "table {table} has no `<pod> dev {veth}` route for the pod behind `iif {veth}`"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            continue;
        }
        let mut f = ctx
            .finding(
                ID,
                Severity::Error,
                format!("branch ENI {name} (table {table}): {}", problems.join("; ")),
            )
            .evs(
                vlan_rule
                    .into_iter()
                    .chain(veth_rules.iter().copied())
                    .map(rule_ev),
            )
            .evs(
                in_table
                    .iter()
                    .filter(|r| r.family == Family::Inet || r.family == Family::Inet6)
                    .map(|r| route_ev(r)),
            );
        if let Some(l) = link {
            f = f.ev(
                EvidenceKind::Link,
                Some("ip link".into()),
                format!(
                    "{}: {} state {} flags {}",
                    l.ifindex,
                    l.ifname,
                    l.operstate,
                    l.flags.join(",")
                ),
            );
        }
        if in_table.is_empty() {
            f = f.note(format!("table {table} is empty"));
        }
        out.push(
            f.explain("A security-groups-for-pods pod (strict mode) sends and receives through its branch ENI, a VLAN on the trunk ENI: `iif vlan<hash>` sends the pod's packets to table 100+VLAN, whose default route leaves via vlan.eth.<VLAN>, and `iif vlan.eth.<VLAN>` sends what arrives on the branch ENI to the same table, which routes it to the pod's veth. With the link down, the rule gone or the table emptied, traffic of that pod is dropped or leaves through the wrong ENI, where the VPC drops it.")
                .remedy(format!("Recreate the pod (the CNI rebuilds the VLAN, table and rules); by hand: `ip link set {name} up; ip rule add iif {name} lookup {table} priority 10; ip route replace default via <subnet gw> dev {name} table {table}`. Check what touched the interface (networkd/NetworkManager managing `vlan.eth.*`)."))
                .done(),
        );
    }
    Ok(out)
}
