//! `connmark.mark-conflict`: AWS_VPC_K8S_CNI_CONNMARK must not share bits with the marks other
//! components use (groundtruth §1.5: portmap 0x2000, kube-proxy 0x4000/0x8000, Calico
//! 0xffff0000).

use model::Severity;

use crate::rule::{config_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "connmark.mark-conflict";

const OWNERS: [(u32, &str); 4] = [
    (0x2000, "CNI portmap masquerade mark (0x2000)"),
    (0x4000, "kube-proxy KUBE-MARK-MASQ (0x4000)"),
    (0x8000, "kube-proxy/kubelet KUBE-MARK-DROP (0x8000)"),
    (0xffff_0000, "Calico (0xffff0000)"),
];

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let Some(mark) = &ctx.f.connmark else {
        return Err("AWS_VPC_K8S_CNI_CONNMARK unknown: no CNI env".into());
    };
    let clashes: Vec<&str> = OWNERS
        .iter()
        .filter(|(bits, _)| mark.value & bits != 0)
        .map(|(_, who)| *who)
        .collect();
    if clashes.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(ID, Severity::Warning, format!("connmark {:#x} overlaps {}", mark.value, clashes.join(", ")))
        .evs([config_ev(mark.detail.clone().unwrap_or_else(|| format!("{}={:#x}", model::vpccni::env::CONNMARK, mark.value)))])
        .explain("The CNI restores its connmark into the packet mark and routes marked packets through the main table (rule 1024). Sharing bits with another component's mark makes its packets match the CNI's fwmark rule (or the CNI's packets match its MASQUERADE/DROP), so traffic is masqueraded, dropped or routed through the wrong ENI.")
        .remedy("Set AWS_VPC_K8S_CNI_CONNMARK to a free bit (the default 0x80) and restart aws-node.")
        .done()])
}
