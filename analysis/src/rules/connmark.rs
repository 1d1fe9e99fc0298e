//! `connmark.rules-missing`: the CONNMARK plumbing and the fwmark policy rule that send replies
//! and secondary-ENI pod egress through the main table (groundtruth §1.1 N5/N6/N9, M1–M3,
//! §1.5, §2.1 rule 1024, §7 F4). On v1.23+ with the nft backend the nat part lives in native
//! nftables (`table ip aws-cni`), which the iptables dump cannot show.

use model::vpccni;
use model::{Backend, Severity};

use crate::rule::{config_ev, rule_ev, Ctx, RuleResult};

pub(crate) const ID: &str = "connmark.rules-missing";

pub(crate) fn check(ctx: &Ctx<'_>) -> RuleResult {
    ctx.skip_if_ipv6()?;
    let nat = ctx.need_nat()?;
    let Some(ext) = &ctx.f.external_snat else {
        return Err("EXTERNALSNAT unknown: cannot tell which connmark rules are required; cni-env (the aws-node container env) or iptables-save.txt with the nat table would let it run".into());
    };
    let ext = ext.value;
    let nps = ctx.f.node_port_support.as_ref().map(|k| k.value);
    let mark = ctx
        .f
        .connmark
        .as_ref()
        .map(|k| k.value)
        .unwrap_or(vpccni::DEFAULT_CONNMARK);
    let mark_s = format!("{mark:#x}");
    let xmark = format!("{mark_s}/{mark_s}");
    let mut missing: Vec<String> = Vec::new();
    let mut nat_missing = 0;

    let nat_filtered = nat.filtered_table("nat");
    let mangle_filtered = nat.filtered_table("mangle");
    let have_nat = nat.dump.table("nat").is_some() && nat_filtered.is_none();
    let have_mangle = nat.dump.table("mangle").is_some() && mangle_filtered.is_none();
    let mut unchecked: Vec<&str> = Vec::new();
    if nat_filtered.is_some() {
        unchecked
            .push("nat table capture is partial (filtered or cut): nat connmark rules not checked");
    } else if !have_nat {
        unchecked.push("nat table not in the dump: nat connmark rules not checked");
    }
    if mangle_filtered.is_some() {
        unchecked.push(
            "mangle table capture is partial (filtered or cut): mangle CONNMARK rules not checked",
        );
    } else if !have_mangle {
        unchecked.push("mangle table not in the dump: mangle CONNMARK rules not checked");
    }
    // nat AWS-CONNMARK-CHAIN and its PREROUTING rules exist from v1.8.0 on; the mangle
    // `-i vlan+` restore from v1.7.0; the mangle rules and the fwmark rule from v1.2.0; the
    // `-i eni+` restore without NodePort support from v1.12.1 (vpccni::since).
    let want_nat_cm = ctx.f.expects_since(vpccni::since::NAT_CONNMARK);
    let want_vlan = ctx.f.expects_since(vpccni::since::VLAN_RESTORE);
    let want_mangle = ctx.f.expects_since(vpccni::since::NODEPORT_CONNMARK);
    let eni_restore_without_nps = ctx
        .f
        .expects_since(vpccni::since::ENI_RESTORE_WITHOUT_NODEPORT);
    if !ext && have_nat && want_nat_cm {
        if nat.connmark_jumps.is_empty() {
            missing.push(format!(
                "nat PREROUTING `-i {}+ … -j AWS-CONNMARK-CHAIN-0`",
                ctx.f.veth_prefix.value
            ));
            nat_missing += 1;
        }
        if nat.connmark_restores.is_empty() {
            missing.push("nat PREROUTING `\"AWS, CONNMARK\" -j CONNMARK --restore-mark`".into());
            nat_missing += 1;
        }
        let set = nat.connmark_chain_rules.iter().any(|r| {
            r.target() == "CONNMARK"
                && (r
                    .rule
                    .target_arg("--set-xmark")
                    .or_else(|| r.rule.target_arg("--set-mark")))
                .and_then(|a| a.values.first())
                .is_some_and(|v| v.eq_ignore_ascii_case(&xmark) || v.eq_ignore_ascii_case(&mark_s))
        });
        if !set {
            missing.push(format!(
                "AWS-CONNMARK-CHAIN `-j CONNMARK --set-xmark {xmark}`"
            ));
            nat_missing += 1;
        }
    }
    let prefix_match = format!("{}+", ctx.f.veth_prefix.value);
    let has_mangle = |iface: &str| {
        nat.mangle_rules
            .iter()
            .any(|r| r.rule.value("-i") == Some(iface))
    };
    // M2 (`-i eni+` restore) when NODE_PORT_SUPPORT or !EXTERNALSNAT (v1.12.1+).
    if have_mangle
        && want_mangle
        && (nps == Some(true) || (!ext && eni_restore_without_nps))
        && !has_mangle(&prefix_match)
    {
        missing.push(format!(
            "mangle PREROUTING `-i {prefix_match} \"AWS, primary ENI\" -j CONNMARK --restore-mark`"
        ));
    }
    if have_mangle && want_mangle && nps == Some(true) {
        if want_vlan && !has_mangle("vlan+") {
            missing.push(
                "mangle PREROUTING `-i vlan+ \"AWS, primary ENI\" -j CONNMARK --restore-mark`"
                    .into(),
            );
        }
        match &ctx.f.primary_interface {
            Some(p) if !has_mangle(&p.value) => missing.push(format!(
                "mangle PREROUTING `-i {} \"AWS, primary ENI\" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark {xmark}`",
                p.value
            )),
            _ => {}
        }
    }
    let mut rule_note = None;
    let rules_partial = ctx.s.rules.status == model::SectionStatus::Partial;
    if rules_partial && (nps == Some(true) || !ext) {
        unchecked.push("ip rule capture is partial (filtered with grep/head or cut): the fwmark rule was not checked");
    }
    if want_mangle && !rules_partial && (nps == Some(true) || (!ext && eni_restore_without_nps)) {
        match ctx.s.rules.get() {
            Some(rules) => {
                let ok = rules.iter().any(|r| {
                    r.family == model::Family::Inet
                        && r.fwmark == Some(mark)
                        && r.fwmask.unwrap_or(u32::MAX) & mark == mark
                        && r.table == Some(model::net::RT_TABLE_MAIN)
                });
                if !ok {
                    missing.push(format!(
                        "ip rule `{}: from all fwmark {xmark} lookup main`",
                        vpccni::PRIO_FWMARK
                    ));
                }
            }
            None => {
                rule_note =
                    Some("ip rules not collected: the fwmark rule was not checked".to_string())
            }
        }
    }
    if missing.is_empty() {
        return Ok(vec![]);
    }
    // v1.23+ on nft: the nat connmark rules live in `table ip aws-cni`.
    let nft = nat.backend == Backend::Nft;
    let only_nat = nat_missing == missing.len();
    let chain_absent = nat.connmark_chains.is_empty();
    let (sev, native_note) = if only_nat && nft && ctx.f.version_at_least((1, 23, 0)) {
        (Severity::Info, Some(format!("CNI {} on the nft backend programs connmark in native nftables (`nft list table ip aws-cni`), not in iptables", ctx.f.cni_version.clone().unwrap_or_default())))
    } else if only_nat && nft && chain_absent && ctx.f.version().is_none() {
        (Severity::Warning, Some("CNI version unknown: v1.23+ on nft keeps these rules in native nftables (`nft list table ip aws-cni`); check there before acting".to_string()))
    } else {
        (Severity::Error, None)
    };
    let mut f = ctx.finding(
        ID,
        sev,
        if sev == Severity::Info {
            "connmark rules are not in iptables (expected: v1.23+ keeps them in native nftables)"
                .to_string()
        } else {
            format!("{} required connmark/fwmark rule(s) missing", missing.len())
        },
    );
    for m in &missing {
        f = f.note(format!("missing: {m}"));
    }
    f = f.evs([config_ev(super::snat_common::external_snat_text(ctx))]);
    if let Some(n) = &ctx.f.node_port_support {
        f = f.evs([config_ev(format!(
            "{}={} ({})",
            vpccni::env::NODE_PORT_SUPPORT,
            n.value,
            format!("{:?}", n.source).to_lowercase()
        ))]);
    }
    f = f.evs(
        nat.connmark_jumps
            .iter()
            .chain(nat.connmark_restores.iter())
            .chain(nat.connmark_chain_rules.iter())
            .chain(nat.mangle_rules.iter())
            .map(|r| r.evidence()),
    );
    if let Some(rules) = ctx.s.rules.get() {
        f = f.evs(rules.iter().filter(|r| r.fwmark.is_some()).map(rule_ev));
    }
    if let Some(n) = native_note {
        f = f.note(n);
    }
    if let Some(n) = rule_note {
        f = f.note(n);
    }
    for n in unchecked {
        f = f.note(n);
    }
    Ok(vec![f
        .explain("The CNI marks connections that leave pods for non-VPC destinations (nat AWS-CONNMARK-CHAIN) and connections arriving on the primary ENI for the node (mangle M1), restores the mark on packets from pods (M2/M3), and `ip rule 1024 fwmark` sends marked packets through the main table. Without them, secondary-ENI pods' internet traffic and NodePort/LB replies from secondary-ENI pods leave via the pod's ENI table: rp_filter or the VPC source/destination check drops them (SYN retransmits, first-try timeouts).")
        .remedy("Restart aws-node on this node so ipamd re-creates the connmark rules and `ip rule add fwmark 0x80/0x80 lookup main priority 1024`; find what flushed them (iptables-restore without --noflush, networkd managing foreign rules: ManageForeignRoutingPolicyRules=no).")
        .inferred(ctx.f.inferred_names(&["external_snat", "primary_interface"]))
        .done()])
}
