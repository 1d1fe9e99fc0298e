//! Cross-node rules: `fleet.config-drift` (CNI version and SNAT/routing settings differ between
//! nodes of one cluster) and `fleet.duplicate-pod-ip` (one pod IP on two nodes).

use std::collections::BTreeMap;
use std::net::IpAddr;

use model::vpccni::env;
use model::{Evidence, EvidenceKind, Finding, Severity, Snapshot};

use crate::facts::{parse_bool, parse_cidr_list, parse_randomize, parse_u32, Facts};

pub(crate) const DRIFT_ID: &str = "fleet.config-drift";
pub(crate) const DUP_ID: &str = "fleet.duplicate-pod-ip";

/// Settings compared across nodes, with the CNI default used when a node does not set them.
const COMPARED: &[(&str, Option<&str>)] = &[
    (env::EXTERNALSNAT, Some("false")),
    (env::EXCLUDE_SNAT_CIDRS, Some("")),
    (env::RANDOMIZESNAT, Some("prng")),
    (env::NODE_PORT_SUPPORT, Some("true")),
    (env::CONNMARK, Some("0x80")),
    (env::VETHPREFIX, Some("eni")),
    (env::CUSTOM_NETWORK_CFG, Some("false")),
    (env::EXTERNAL_SERVICE_CIDRS, Some("")),
    (env::ENABLE_IPV6, Some("false")),
    (env::ENABLE_POD_ENI, Some("false")),
    (env::ENABLE_PREFIX_DELEGATION, Some("false")),
    (env::ENI_MTU, Some("9001")),
    (env::WARM_IP_TARGET, None),
    (env::WARM_ENI_TARGET, None),
    (env::MINIMUM_IP_TARGET, None),
    (env::WARM_PREFIX_TARGET, None),
];

/// Normalised value so that `2`/`prng`, `128`/`0x80`, `True`/`true` and CIDR order compare equal.
fn normalise(key: &str, v: &str) -> String {
    let v = v.trim();
    match key {
        env::RANDOMIZESNAT => parse_randomize(v).as_str().to_string(),
        env::CONNMARK => parse_u32(v)
            .map(|m| format!("{m:#x}"))
            .unwrap_or_else(|| v.to_string()),
        env::EXCLUDE_SNAT_CIDRS | env::EXTERNAL_SERVICE_CIDRS => {
            let mut c: Vec<String> = parse_cidr_list(v).0.iter().map(|c| c.to_string()).collect();
            c.sort();
            c.join(",")
        }
        _ => match parse_bool(v) {
            Some(b) if !v.chars().all(|c| c.is_ascii_digit()) => b.to_string(),
            _ => v.to_string(),
        },
    }
}

/// Run the fleet rules.
pub fn check(snapshots: &[&Snapshot]) -> Vec<Finding> {
    let mut out = drift(snapshots);
    out.extend(duplicates(snapshots));
    out
}

fn finding(node: String, rule: &str, severity: Severity, summary: String) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        node,
        summary,
        evidence: Vec::new(),
        explanation: String::new(),
        remedy: String::new(),
        inferred: Vec::new(),
    }
}

fn drift(snapshots: &[&Snapshot]) -> Vec<Finding> {
    // (node, settings) for nodes whose CNI env or programmed SNAT state is known.
    let mut nodes: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for s in snapshots {
        let mut m = programmed(s);
        let Some(cni) = s.cni.get() else {
            if !m.is_empty() {
                nodes.push((s.display_name(), m));
            }
            continue;
        };
        if cni.env.is_empty() && cni.version.is_none() {
            if !m.is_empty() {
                nodes.push((s.display_name(), m));
            }
            continue;
        }
        if let Some(v) = &cni.version {
            // `v1.21.2`, `1.21.2-eksbuild.1` and an image tag are the same version.
            let norm = crate::facts::parse_version(v)
                .map(|(a, b, c)| format!("v{a}.{b}.{c}"))
                .unwrap_or_else(|| v.clone());
            m.insert("CNI version".to_string(), norm);
        }
        if !cni.env.is_empty() {
            for (k, default) in COMPARED {
                match (cni.get(k), default) {
                    (Some(v), _) => {
                        m.insert(k.to_string(), normalise(k, v));
                    }
                    (None, Some(d)) => {
                        m.insert(k.to_string(), normalise(k, d));
                    }
                    (None, None) => {
                        m.insert(k.to_string(), "(unset)".to_string());
                    }
                }
            }
        }
        nodes.push((s.display_name(), m));
    }
    let mut out = Vec::new();
    if nodes.len() < 2 {
        return out;
    }
    let keys: Vec<String> = nodes
        .iter()
        .flat_map(|(_, m)| m.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for key in keys {
        let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (n, m) in &nodes {
            if let Some(v) = m.get(&key) {
                by_value.entry(v.as_str()).or_default().push(n.as_str());
            }
        }
        if by_value.len() < 2 {
            continue;
        }
        // The majority value is the reference; every other node gets a finding.
        let Some((major, major_nodes)) = by_value
            .iter()
            .max_by_key(|(_, v)| v.len())
            .map(|(k, v)| (*k, v.clone()))
        else {
            continue;
        };
        for (value, ns) in &by_value {
            if *value == major {
                continue;
            }
            for n in ns {
                let mut f = finding(
                    n.to_string(),
                    DRIFT_ID,
                    Severity::Warning,
                    format!(
                        "{key} is {} here but {} on {} other node(s)",
                        show(value),
                        show(major),
                        major_nodes.len()
                    ),
                );
                f.evidence.push(
                    Evidence::new(EvidenceKind::Config, format!("{key}={value}")).at(n.to_string()),
                );
                f.evidence.push(
                    Evidence::new(EvidenceKind::Config, format!("{key}={major}")).at(major_nodes
                        .iter()
                        .take(5)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")),
                );
                f.explanation = "aws-node is one DaemonSet, so every node should run the same CNI version and settings. A difference means an aws-node pod has not restarted since a DaemonSet change (env is read at start), a rollout is stuck, or someone edited a node by hand; SNAT, connmark and routing then differ between nodes and pods behave differently depending on where they run.".into();
                f.remedy = format!("Compare `kubectl -n kube-system get ds aws-node -o yaml` with this node's aws-node pod; restart the aws-node pod on {n} (or finish the rollout).");
                out.push(f);
            }
        }
    }
    out
}

/// What the kernel holds, normalised: SNAT rule present, chain layout, random flag and the
/// set of RETURNed CIDRs (VPC + exclusions). After a half-rolled env change these differ
/// between nodes even where the env cannot be read (agentless runs, captures).
fn programmed(s: &Snapshot) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if s.iptables.get().is_none_or(|i| i.backends.is_empty()) {
        return m;
    }
    let v = crate::views::snat_view(s, &model::NodeReport::default());
    m.insert("programmed SNAT layout".to_string(), serde_name(&v.layout));
    let present = !v.to_source.is_empty();
    m.insert(
        "programmed SNAT rule".to_string(),
        if present { "present" } else { "absent" }.to_string(),
    );
    if present {
        let mut cidrs: Vec<String> = v
            .cidrs
            .iter()
            .filter(|c| c.returned)
            .map(|c| c.cidr.to_string())
            .collect();
        cidrs.sort();
        m.insert("programmed SNAT RETURN CIDRs".to_string(), cidrs.join(","));
        if let Some(r) = &v.random_flag {
            m.insert("programmed SNAT random flag".to_string(), r.clone());
        }
    }
    m
}

/// An enum's serde name (`SnatLayout::Single` → `single`).
fn serde_name<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn show(v: &str) -> String {
    if v.is_empty() {
        "(empty)".into()
    } else {
        v.to_string()
    }
}

fn duplicates(snapshots: &[&Snapshot]) -> Vec<Finding> {
    let mut owners: BTreeMap<IpAddr, Vec<(String, String)>> = BTreeMap::new();
    for s in snapshots {
        let f = Facts::from_snapshot(s);
        let name = s.display_name();
        for p in &f.pods {
            let how = match (p.in_ipamd, &p.host_veth) {
                (true, Some(v)) => format!("assigned in ipamd, host route via {v}"),
                (true, None) => "assigned in ipamd".to_string(),
                (false, Some(v)) => format!("host route via {v}"),
                (false, None) => continue,
            };
            owners.entry(p.ip).or_default().push((name.clone(), how));
        }
    }
    let mut out = Vec::new();
    for (ip, nodes) in owners {
        let mut distinct: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < 2 {
            continue;
        }
        for n in &distinct {
            let mut f = finding(
                n.to_string(),
                DUP_ID,
                Severity::Error,
                format!(
                    "pod IP {ip} is in use on {} nodes: {}",
                    distinct.len(),
                    distinct.join(", ")
                ),
            );
            for (m, how) in &nodes {
                f.evidence.push(
                    Evidence::new(EvidenceKind::Config, format!("{ip}: {how}")).at(m.clone()),
                );
            }
            f.explanation = "A VPC IP belongs to one ENI at a time. Two nodes both routing it means one of them holds a stale assignment (IP moved after an ENI detach, a restored checkpoint, rules left behind); traffic to the pod reaches whichever node the VPC maps the IP to, so the other pod is unreachable.".into();
            f.remedy = "Find the ENI owning the IP (`aws ec2 describe-network-interfaces --filters Name=addresses.private-ip-address,Values=<ip>`); on the other node delete the stale pod or restart aws-node so ipamd reconciles with EC2.".into();
            out.push(f);
        }
    }
    out
}
