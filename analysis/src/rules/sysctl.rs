//! Sysctls (groundtruth §2.6, §7 F4): `sysctl.rp-filter-strict`, `sysctl.ip-forward-disabled`.

use model::Severity;

use crate::rule::{sysctl_ev, Ctx, RuleResult};

pub(crate) const RP_ID: &str = "sysctl.rp-filter-strict";
pub(crate) const FWD_ID: &str = "sysctl.ip-forward-disabled";

pub(crate) fn check_rp(ctx: &Ctx<'_>) -> RuleResult {
    let sys = ctx.need_sysctls()?;
    let Some(primary) = &ctx.f.primary_interface else {
        return Err("primary interface unknown".into());
    };
    let mut ifaces: Vec<(String, bool)> = vec![(primary.value.clone(), true)];
    for e in ctx.f.enis.iter().filter(|e| !e.is_primary) {
        if let Some(i) = &e.interface {
            if !ifaces.iter().any(|(x, _)| x == i) {
                ifaces.push((i.clone(), false));
            }
        }
    }
    let mut out = Vec::new();
    for (iface, is_primary) in ifaces {
        let Some(eff) = determined_rp_filter(sys, &iface) else {
            if is_primary {
                return Err(format!(
                    "effective rp_filter of {iface} not determined: net.ipv4.conf.{iface}.rp_filter not collected and conf.all.rp_filter is {} (the kernel applies max(all, {iface}); aws-vpc-cni-init sets {iface} to 2)",
                    sys.get("net.ipv4.conf.all.rp_filter").unwrap_or("not collected either")
                ));
            }
            continue;
        };
        if eff != 1 {
            continue;
        }
        let all = sys
            .get("net.ipv4.conf.all.rp_filter")
            .unwrap_or("?")
            .to_string();
        let own = sys
            .get(&format!("net.ipv4.conf.{iface}.rp_filter"))
            .unwrap_or("?")
            .to_string();
        let sev = if is_primary {
            Severity::Error
        } else {
            Severity::Info
        };
        out.push(
            ctx.finding(RP_ID, sev, format!("effective rp_filter on {iface} is 1 (strict): max(all={all}, {iface}={own})"))
                .evs([sysctl_ev("net.ipv4.conf.all.rp_filter", &all), sysctl_ev(&format!("net.ipv4.conf.{iface}.rp_filter"), &own)])
                .explain(if is_primary {
                    "The kernel applies max(conf.all, conf.<if>). With strict reverse-path filtering on the primary ENI, NodePort / instance-mode load-balancer traffic to pods on secondary ENIs is dropped: the reverse route for the client goes through the pod's ENI table, not the primary interface (SYN retransmits, externalTrafficPolicy: Local failures). The aws-vpc-cni-init container sets it to 2 at start; something (sysctl.d, tuning agents) overwrote it."
                } else {
                    "Strict reverse-path filtering on a secondary ENI. The CNI does not manage rp_filter there and its policy rules usually keep the reverse path on the same ENI, so this is only a problem if traffic for pods on this ENI arrives on another interface."
                })
                .remedy(format!("`sysctl -w net.ipv4.conf.{iface}.rp_filter=2` and make sure net.ipv4.conf.all.rp_filter is not 1 (fix the sysctl.d file that sets it), or restart aws-node so the init container sets it again."))
                .inferred(ctx.f.inferred_names(&["primary_interface"]))
                .done(),
        );
    }
    Ok(out)
}

/// `max(conf.all, conf.<iface>)` when the capture determines it. A missing per-interface value
/// only bounds it from below (`all=1` is the AL2 default and harmless when the init container
/// set the primary interface to 2), so without it the value is known only when `all` is 2.
fn determined_rp_filter(sys: &model::Sysctls, iface: &str) -> Option<u64> {
    match (sys.rp_filter("all"), sys.rp_filter(iface)) {
        (Some(a), Some(i)) => Some(a.max(i)),
        (Some(a), None) if a >= 2 => Some(a),
        (None, Some(i)) if i >= 2 => Some(i),
        _ => None,
    }
}

pub(crate) fn check_forward(ctx: &Ctx<'_>) -> RuleResult {
    let sys = ctx.need_sysctls()?;
    let (key, what) = if ctx.f.ipv6.value {
        ("net.ipv6.conf.all.forwarding", "IPv6 forwarding")
    } else {
        ("net.ipv4.ip_forward", "IPv4 forwarding")
    };
    let Some(v) = sys.get(key) else {
        return Err(format!("{key} not collected"));
    };
    if v != "0" {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(FWD_ID, Severity::Error, format!("{what} is disabled ({key} = 0)"))
        .evs([sysctl_ev(key, v)])
        .explain("Pod traffic is routed by the node between the host veths and the ENIs; with forwarding off every packet from and to pods that is not for the node itself is dropped: pods have no connectivity beyond the node.")
        .remedy(format!("`sysctl -w {key}=1` and persist it (the EKS AMI ships /etc/sysctl.d/99-kubernetes-cri.conf); find what reset it."))
        .done()])
}
