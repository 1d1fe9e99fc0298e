//! ipamd configuration problems visible on the node (groundtruth §3.3, §7 F11):
//! `ipamd.missing-iam-permission`, `ipamd.eniconfig-missing`,
//! `ipamd.custom-networking-primary-subnet`.

use model::{LogEventKind, Severity};

use super::ipamd_logs::{events, log_ev};
use crate::rule::{config_ev, Ctx, RuleResult};

pub(crate) const IAM_ID: &str = "ipamd.missing-iam-permission";
pub(crate) const ENICONFIG_ID: &str = "ipamd.eniconfig-missing";
pub(crate) const CUSTOM_NET_ID: &str = "ipamd.custom-networking-primary-subnet";

pub(crate) fn check_iam(ctx: &Ctx<'_>) -> RuleResult {
    let evs = events(ctx, LogEventKind::MissingIamPermission)?;
    if evs.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(IAM_ID, Severity::Error, format!("ipamd lacks IAM permissions ({} event(s))", evs.len()))
        .evs(evs.iter().rev().take(5).map(|e| log_ev(e)))
        .explain("ipamd calls EC2 (AssignPrivateIpAddresses, CreateNetworkInterface, AttachNetworkInterface, DescribeNetworkInterfaces, CreateTags) with the node role or the aws-node IRSA role; a denied call means no new IPs or ENIs, so new pods stay in ContainerCreating.")
        .remedy("Attach AmazonEKS_CNI_Policy (or the IPv6 policy) to the role aws-node uses (node role or the IRSA role of the aws-node service account); see docs/iam-policy.md in amazon-vpc-cni-k8s.")
        .done()])
}

pub(crate) fn check_eniconfig(ctx: &Ctx<'_>) -> RuleResult {
    let evs = events(ctx, LogEventKind::EniConfigMissing)?;
    if evs.is_empty() {
        return Ok(vec![]);
    }
    let custom = ctx.f.custom_networking.as_ref().map(|k| k.value);
    let sev = if custom == Some(false) {
        Severity::Info
    } else {
        Severity::Warning
    };
    let mut f = ctx
        .finding(
            ENICONFIG_ID,
            sev,
            format!(
                "ipamd could not find the node's ENIConfig ({} event(s))",
                evs.len()
            ),
        )
        .evs(evs.iter().rev().take(5).map(|e| log_ev(e)));
    if let Some(name) = ctx.s.cni.get().and_then(|c| c.eni_config.clone()) {
        f = f.evs([config_ev(format!("/v1/eni-configs = {name:?}")).at("ipamd introspection")]);
    }
    Ok(vec![f
        .explain("With custom networking, secondary ENIs are created in the subnet and security groups of the node's ENIConfig (label/annotation, or `default`). Without it ipamd cannot attach ENIs (`Failed to attach any ENIs for custom networking`) and pods get no IPs, or they land in the primary subnet.")
        .remedy("Create the ENIConfig named by the node's label/annotation (ENI_CONFIG_LABEL_DEF, usually the AZ name), then replace the node (ENIs and IPs allocated before it existed stay).")
        .done()])
}

pub(crate) fn check_custom_net(ctx: &Ctx<'_>) -> RuleResult {
    let Some(custom) = &ctx.f.custom_networking else {
        return Err("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG unknown".into());
    };
    if !custom.value {
        return Ok(vec![]);
    }
    let Some(subnet) = ctx
        .f
        .enis
        .iter()
        .find(|e| e.is_primary)
        .and_then(|e| e.subnet_cidr)
    else {
        return Err("primary ENI subnet unknown (IMDS subnet-ipv4-cidr-block)".into());
    };
    let hits: Vec<_> = ctx
        .f
        .pods
        .iter()
        .filter(|p| p.in_ipamd)
        .filter(|p| matches!(p.ip, std::net::IpAddr::V4(v4) if subnet.contains(&v4)))
        .collect();
    if hits.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(CUSTOM_NET_ID, Severity::Warning, format!("custom networking is on but {} pod IP(s) are in the primary ENI subnet {subnet}", hits.len()))
        .evs([config_ev(format!("{}=true", model::vpccni::env::CUSTOM_NETWORK_CFG))])
        .evs(hits.iter().take(8).map(|p| config_ev(format!("{} assigned on {} (primary subnet {subnet})", p.ip, p.eni.clone().unwrap_or_default())).at("ipamd /v1/enis")))
        .explain("Custom networking puts pods in the ENIConfig's subnet (often a secondary CIDR such as 100.64.0.0/16) to save node-subnet addresses and to apply other security groups. Pods in the primary subnet mean their ENIs or IPs were allocated before the ENIConfig or label existed; they bypass the intended security groups and routing.")
        .remedy("Cordon, drain and replace the node (ipamd does not move existing ENIs or IPs), after making sure the ENIConfig for its AZ exists and the node carries the label.")
        .done()])
}
