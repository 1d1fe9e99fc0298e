//! Sysctls (groundtruth §2.6, §7 F4): `sysctl.rp-filter-strict`, `sysctl.ip-forward-disabled`.

use model::Severity;

use crate::rule::{sysctl_ev, Ctx, RuleResult};

pub(crate) const RP_ID: &str = "sysctl.rp-filter-strict";
pub(crate) const FWD_ID: &str = "sysctl.ip-forward-disabled";

pub(crate) fn check_rp(ctx: &Ctx<'_>) -> RuleResult {
    let sys = ctx.need_sysctls()?;
    let (primary, inferred) = match &ctx.f.primary_interface {
        Some(p) => (
            p.value.clone(),
            ctx.f.inferred_names(&["primary_interface"]),
        ),
        None => {
            match primary_from_sysctl_names(sys)? {
                Pick::One(i) => {
                    let why = format!("primary interface {i} (the only ENI-named interface in the sysctl capture)");
                    (i, vec![why])
                }
                Pick::NoneStrict => return Ok(vec![]),
            }
        }
    };
    let mut ifaces: Vec<(String, bool)> = vec![(primary, true)];
    for e in ctx.f.enis.iter().filter(|e| !e.is_primary) {
        if let Some(i) = &e.interface {
            if !ifaces.iter().any(|(x, _)| x == i) {
                ifaces.push((i.clone(), false));
            }
        }
    }
    judge_rp(ctx, sys, ifaces, inferred)
}

enum Pick {
    /// The only ENI-named interface: it is the primary.
    One(String),
    /// Several ENI-named interfaces, none of them strict: whichever is primary, it passes.
    NoneStrict,
}

/// A kernel name an ENI gets on EC2 (`eth0`, `ens5`, `enp39s0`, `enX0`); not a pod veth (`eni…`).
fn eni_like(name: &str) -> bool {
    let digits_after = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.chars().next().is_some_and(|c| c.is_ascii_digit()))
    };
    digits_after("eth") || digits_after("ens") || digits_after("enp") || digits_after("enX")
}

/// Without node facts, a `sysctl -a` paste still names the interfaces: one ENI-named interface
/// is the primary; several that are all non-strict pass whichever is primary.
fn primary_from_sysctl_names(sys: &model::Sysctls) -> Result<Pick, String> {
    let cands: Vec<String> = sys
        .rp_filter_interfaces()
        .into_iter()
        .filter(|i| eni_like(i))
        .collect();
    match cands.as_slice() {
        [] => Err("primary interface unknown (no imds.json / ip addr, and no eth*/ens* rp_filter entry in the sysctl capture)".into()),
        [one] => Ok(Pick::One(one.clone())),
        many => {
            if many.iter().all(|i| determined_rp_filter(sys, i).is_some_and(|v| v != 1)) {
                Ok(Pick::NoneStrict)
            } else {
                Err(format!(
                    "primary interface unknown and not all of {} are loose; add imds.json or ip-addr.txt",
                    many.join(", ")
                ))
            }
        }
    }
}

fn judge_rp(
    ctx: &Ctx<'_>,
    sys: &model::Sysctls,
    ifaces: Vec<(String, bool)>,
    inferred: Vec<String>,
) -> RuleResult {
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
                .inferred(inferred.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(pairs: &[(&str, &str)]) -> model::Sysctls {
        let mut s = model::Sysctls::default();
        for (k, v) in pairs {
            s.values.insert((*k).into(), (*v).into());
        }
        s
    }

    #[test]
    fn eni_names_are_not_veths() {
        assert!(eni_like("eth0") && eni_like("ens5") && eni_like("enp39s0") && eni_like("enX0"));
        assert!(!eni_like("eni2bc5020d5a5") && !eni_like("ethx") && !eni_like("lo"));
        assert!(!eni_like("lxc_health") && !eni_like("cilium_host"));
    }

    #[test]
    fn primary_from_a_grepped_sysctl_paste() {
        // cilium-19761-sysctl-grep-rp-filter: one ENI-named interface.
        let s = sys(&[
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.eth0.rp_filter", "0"),
            ("net.ipv4.conf.lxc_health.rp_filter", "0"),
        ]);
        assert!(matches!(primary_from_sysctl_names(&s), Ok(Pick::One(i)) if i == "eth0"));
        // Two ENIs, both loose: passes whichever is primary.
        let s = sys(&[
            ("net.ipv4.conf.all.rp_filter", "1"),
            ("net.ipv4.conf.eth0.rp_filter", "2"),
            ("net.ipv4.conf.eth1.rp_filter", "2"),
        ]);
        assert!(matches!(
            primary_from_sysctl_names(&s),
            Ok(Pick::NoneStrict)
        ));
        // Two ENIs, one strict: which one is primary decides, so the check cannot run.
        let s = sys(&[
            ("net.ipv4.conf.all.rp_filter", "1"),
            ("net.ipv4.conf.eth0.rp_filter", "2"),
            ("net.ipv4.conf.eth1.rp_filter", "1"),
        ]);
        assert!(primary_from_sysctl_names(&s).is_err());
        // No ENI-named interface at all.
        let s = sys(&[("net.ipv4.conf.all.rp_filter", "1")]);
        assert!(primary_from_sysctl_names(&s).is_err());
    }
}
