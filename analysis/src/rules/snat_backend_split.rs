//! `snat.backend-split`: AWS rules must live in one backend, the one the kubelet uses
//! (KUBE-KUBELET-CANARY; groundtruth §1.6, §9 invariant 5, #1847).

use model::{Backend, Evidence, EvidenceKind, Severity};

use crate::facts::is_aws_rule;
use crate::rule::{section_reason, Ctx, RuleResult};

pub(crate) const ID: &str = "snat.backend-split";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    let Some(ipt) = ctx.s.iptables.get() else {
        return Err(section_reason(
            "iptables",
            ctx.s.iptables.status,
            ctx.s.iptables.reason.as_deref(),
        ));
    };
    let known: Vec<_> = ipt
        .backends
        .iter()
        .filter(|d| d.backend != Backend::Unknown)
        .collect();
    if known.len() < 2 && ctx.f.kubelet_backend.is_none() {
        return Err(
            "only one iptables backend was dumped and the kubelet's backend is unknown".into(),
        );
    }
    let with_rules: Vec<_> = known
        .iter()
        .filter(|d| {
            d.tables
                .iter()
                .any(|t| t.chains.iter().any(|c| c.rules.iter().any(is_aws_rule)))
        })
        .collect();
    let sample =
        |d: &model::IptablesBackendDump| -> Vec<Evidence> {
            let mut v = Vec::new();
            for t in &d.tables {
                for c in &t.chains {
                    for (i, r) in c.rules.iter().enumerate() {
                        if is_aws_rule(r) && v.len() < 6 {
                            v.push(
                                Evidence::new(EvidenceKind::Iptables, r.evidence_line())
                                    .at(format!("{} {} {} #{}", d.backend, t.name, c.name, i + 1)),
                            );
                        }
                    }
                }
            }
            v
        };
    let kubelet = ctx.f.kubelet_backend;
    let mut out = Vec::new();
    if with_rules.len() > 1 {
        let names: Vec<String> = with_rules.iter().map(|d| d.backend.to_string()).collect();
        let mut f = ctx.finding(
            ID,
            Severity::Error,
            format!(
                "AWS rules exist in both iptables backends ({})",
                names.join(" and ")
            ),
        );
        for d in &with_rules {
            f = f.evs(sample(d));
        }
        if let Some(k) = kubelet {
            f = f.note(format!("KUBE-KUBELET-CANARY is in the {k} backend"));
        }
        out.push(
            f.explain("Both backends' rules are evaluated by the kernel, each with its own SNAT and connmark chains. Rules in the backend nobody maintains are stale (old --to-source, old CIDRs) and SNAT or mark traffic the current rules would not; fixes applied with the host's `iptables` only touch one of them.")
                .remedy("Remove the AWS chains from the backend the kubelet does not use (`iptables-legacy-save | grep AWS` / `iptables-nft-save | grep AWS`, then flush and delete them there) and restart aws-node so iptables-wrapper programs the kubelet's backend.")
                .done(),
        );
    } else if let (Some(k), Some(d)) = (kubelet, with_rules.first()) {
        if d.backend != k {
            out.push(
                ctx.finding(ID, Severity::Error, format!("AWS rules are in the {} backend but the kubelet uses {k}", d.backend))
                    .evs(sample(d))
                    .note(format!("KUBE-KUBELET-CANARY is in the {k} backend"))
                    .explain("The VPC CNI picks the backend the kubelet uses (iptables-wrapper). Rules in the other backend mean aws-node ran with a different iptables mode (ENABLE_NFTABLES on old versions, an image without iptables-wrapper) and kube-proxy's rules and the AWS rules are split across backends, which breaks ordering assumptions and makes the host `iptables` show an incomplete picture.")
                    .remedy("Upgrade aws-node to a version with iptables-wrapper (v1.13.2+) or set the matching mode, clean the AWS chains from the wrong backend and restart aws-node.")
                    .done(),
            );
        }
    }
    Ok(out)
}
