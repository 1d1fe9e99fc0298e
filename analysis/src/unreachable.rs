//! `fleet.node-unreachable`: one finding per node a fleet run could not collect. Fed with the
//! runner's plain per-node outcomes, so every command that reaches remote nodes (`diag
//! analyze`, `snat`, `routes`, `check`) reports a lost node the same way.

use model::{Evidence, EvidenceKind, Finding, NodeOutcome, Outcome, Severity};

/// The rule id (see the catalogue in [`crate::rules`]).
pub const RULE: &str = "fleet.node-unreachable";

/// What to try for each kind of failure.
fn remedy(o: Outcome) -> &'static str {
    match o {
        Outcome::Unreachable => "Check the node is running, that its security group allows SSH from here (or the bastion), and the address/port.",
        Outcome::AuthFailed => "Pass the right key with -i, load it into ssh-agent, or set the login user with -l.",
        Outcome::HostkeyMismatch => "Verify the node's host key out of band (EC2 console output); if the node was replaced, remove its stale known_hosts line.",
        Outcome::HostkeyUnknown => "Add the node's host key to known_hosts (verified out of band), or pass --accept-new-host-keys.",
        Outcome::Timeout => "Raise --connect-timeout/--command-timeout, or check the node's load and network path.",
        Outcome::AgentMissing => "Install node-agent on the node, or use --push-agent or --agentless.",
        Outcome::SsmUndeliverable => "Check the SSM agent is running on the node and its instance profile allows SSM.",
        Outcome::Truncated => "Pass --s3-bucket so the full output can be read back.",
        _ => "See the error and stderr excerpt in fleet.json.",
    }
}

/// One finding per node whose outcome is not a success (`ok`/`partial` give none).
pub fn findings(nodes: &[NodeOutcome]) -> Vec<Finding> {
    nodes
        .iter()
        .filter(|n| !n.outcome.is_success())
        .map(|n| {
            let mut evidence = vec![Evidence::new(
                EvidenceKind::Note,
                n.error.clone().unwrap_or_else(|| n.outcome.to_string()),
            )
            .at(n.target.clone())];
            if let Some(e) = &n.stderr {
                evidence.push(Evidence::new(EvidenceKind::Log, e.clone()).at("stderr"));
            }
            Finding {
                rule: RULE.to_string(),
                severity: Severity::Error,
                node: n.name.clone(),
                summary: format!("node was not collected: {}", n.outcome),
                evidence,
                explanation: "Nothing is known about this node's network state, so no check covered it; a fleet-wide result that omits it may hide the faulty node.".to_string(),
                remedy: remedy(n.outcome).to_string(),
                inferred: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn node(name: &str, o: Outcome, stderr: Option<&str>) -> NodeOutcome {
        NodeOutcome {
            name: name.into(),
            target: format!("{name}:22"),
            outcome: o,
            error: Some(format!("{name} failed")),
            stderr: stderr.map(str::to_string),
            connect_ms: 0,
            total_ms: 0,
            snapshot: None,
            failed_sections: vec![],
        }
    }

    #[test]
    fn one_error_per_failed_node() {
        let nodes = vec![
            node("a", Outcome::Ok, None),
            node("b", Outcome::Partial, None),
            node("c", Outcome::Unreachable, None),
            node("d", Outcome::HostkeyMismatch, Some("key changed")),
        ];
        let f = findings(&nodes);
        assert_eq!(f.len(), 2);
        assert!(f
            .iter()
            .all(|f| f.rule == RULE && f.severity == Severity::Error));
        assert_eq!(f[0].node, "c");
        assert_eq!(f[0].evidence[0].text, "c failed");
        assert_eq!(f[1].evidence.len(), 2, "stderr becomes evidence");
        assert!(f[1].remedy.contains("known_hosts"));
        assert!(crate::catalogue().iter().any(|r| r.id == RULE));
    }
}
