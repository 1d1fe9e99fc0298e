//! `deploy/daemonset.yaml` and `deploy/eks-diag-agent.service` carry what issue 9 asks of
//! the deployment: parsed as YAML (serde_norway), not grepped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_norway::Value;

fn deploy(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn daemonset_has_the_required_fields() {
    let doc: Value = serde_norway::from_str(&deploy("daemonset.yaml")).unwrap();
    assert_eq!(doc["kind"].as_str(), Some("DaemonSet"));
    let spec = &doc["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"].as_bool(), Some(true));
    assert_eq!(
        spec["priorityClassName"].as_str(),
        Some("system-node-critical")
    );
    let tol = spec["tolerations"].as_sequence().unwrap();
    assert!(
        tol.iter()
            .any(|t| t["operator"].as_str() == Some("Exists") && t.get("key").is_none()),
        "a toleration for every taint: {tol:?}"
    );
    let c = &spec["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args.first(), Some(&"serve"));
    let sc = &c["securityContext"];
    assert_ne!(
        sc["privileged"].as_bool(),
        Some(true),
        "no privileged container"
    );
    let caps: Vec<&str> = sc["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(caps.contains(&"NET_ADMIN"), "{caps:?}");
    assert!(
        caps.iter()
            .all(|c| ["NET_ADMIN", "NET_RAW", "SYS_PTRACE"].contains(c)),
        "{caps:?}"
    );
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    // Each added capability is justified by a comment right above it.
    let text = deploy("daemonset.yaml");
    for cap in &caps {
        let line = text
            .lines()
            .position(|l| l.trim() == format!("- {cap}"))
            .unwrap();
        let above = text.lines().nth(line - 1).unwrap();
        assert!(
            above.trim_start().starts_with('#'),
            "{cap} has no justification"
        );
    }
    let res = &c["resources"];
    for k in ["requests", "limits"] {
        assert!(
            res[k]["cpu"].as_str().is_some() && res[k]["memory"].as_str().is_some(),
            "{k}"
        );
    }
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/v1/health")
    );
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let volumes = spec["volumes"].as_sequence().unwrap();
    for host in ["/var/log/aws-routed-eni", "/run/xtables.lock"] {
        let vol = volumes
            .iter()
            .find(|v| v["hostPath"]["path"].as_str() == Some(host))
            .unwrap_or_else(|| panic!("no hostPath volume for {host}"));
        let name = vol["name"].as_str().unwrap();
        let m = mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .unwrap();
        assert_eq!(
            m["readOnly"].as_bool(),
            Some(true),
            "{host} must be mounted read-only"
        );
    }
}

#[test]
fn systemd_unit_runs_serve_and_stops_with_sigterm() {
    let unit = deploy("eks-diag-agent.service");
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains("node-agent serve"), "{exec}");
    assert!(unit.lines().any(|l| l == "KillSignal=SIGTERM"));
    assert!(unit.lines().any(|l| l.starts_with("WantedBy=")));
}
