//! The fleet runner wired into `diag`: `diag collect`, remote targets for the analysing
//! commands (an unreachable node is a `fleet.node-unreachable` finding and exit 2, never a lost
//! node), argument errors, and `diag check --wait` re-polling.
//!
//! Full SSH fleets (real sshd per namespace) are exercised in fleet/tests/ssh_fleet.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// A hosts file whose only node refuses connections (port 1 on loopback is closed).
fn dead_hosts(dir: &std::path::Path) -> (String, String) {
    let hosts = dir.join("hosts.txt");
    std::fs::write(&hosts, "# a node that is down\nroot@127.0.0.1:1\n").unwrap();
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    (hosts.display().to_string(), kh.display().to_string())
}

#[test]
fn collect_without_targets_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let r = diag(&["collect", "-d", out.path().to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("no targets"), "{}", r.all());
}

#[test]
fn collect_reports_an_unreachable_node_in_fleet_json() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, kh) = dead_hosts(dir.path());
    let out = dir.path().join("out");
    let r = diag(&[
        "collect",
        "--hosts",
        &hosts,
        "--known-hosts",
        &kh,
        "--no-ssh-agent",
        "--connect-timeout",
        "2",
        "--retries",
        "0",
        "-d",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "no node reachable: {}", r.all());
    let fleet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
    let nodes = fleet["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["outcome"], "unreachable", "{fleet:#}");
}

#[test]
fn analyze_remote_target_down_is_a_finding_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, kh) = dead_hosts(dir.path());
    let r = diag(&[
        "analyze",
        "captures/node-a",
        "--hosts",
        &hosts,
        "--known-hosts",
        &kh,
        "--no-ssh-agent",
        "--connect-timeout",
        "2",
        "--retries",
        "0",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // The healthy capture is still analysed next to the dead node.
    assert!(v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["node"] == "node-a"));
    let fleet = &v["fleet"]["findings"];
    assert!(
        fleet
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "fleet.node-unreachable" && f["node"] == "127.0.0.1"),
        "{v:#}"
    );
}

#[test]
fn views_without_any_source_say_what_to_give() {
    let r = diag(&["snat"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("--from"), "{}", r.all());
    let r = diag(&["check", "--expect", "external-snat=false"]);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn check_wait_polls_until_the_time_is_up_then_fails() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "external-snat=true",
        "--wait",
        "2s",
        "--interval",
        "1s",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    let rounds = r.stderr.matches("diag check: round").count();
    assert!(rounds >= 2, "expected several rounds: {}", r.stderr);
    assert!(r.stderr.contains("next round in"), "{}", r.stderr);
}

#[test]
fn check_wait_stops_at_the_first_passing_round() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "external-snat=false",
        "--wait",
        "30s",
        "--interval",
        "10s",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.stderr.matches("diag check: round").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn bad_wait_duration_is_a_usage_error() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "external-snat=false",
        "--wait",
        "5x",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("unknown unit"), "{}", r.stderr);
}

/// `diag snat` and `diag check` report a dead remote node as `fleet.node-unreachable`, the
/// same finding `diag analyze` puts in its fleet summary, and exit 2.
#[test]
fn views_and_check_report_unreachable_nodes_like_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, kh) = dead_hosts(dir.path());
    let remote = [
        "--hosts",
        hosts.as_str(),
        "--known-hosts",
        kh.as_str(),
        "--no-ssh-agent",
        "--connect-timeout",
        "2",
        "--retries",
        "0",
        "-o",
        "json",
    ];
    let unreachable = |v: &serde_json::Value| {
        v["fleet_findings"].as_array().is_some_and(|a| {
            a.iter()
                .any(|f| f["rule"] == "fleet.node-unreachable" && f["node"] == "127.0.0.1")
        })
    };
    for cmd in ["snat", "routes"] {
        let mut args = vec![cmd, "--from", "captures/node-a"];
        args.extend(remote);
        let r = diag(&args);
        assert_eq!(r.code, 2, "{cmd}: {}", r.all());
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(unreachable(&v), "{cmd}: {v:#}");
        assert_eq!(
            v["nodes"].as_array().unwrap().len(),
            1,
            "node-a still shown"
        );
    }
    let mut args = vec![
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "external-snat=false",
    ];
    args.extend(remote);
    let r = diag(&args);
    assert_eq!(r.code, 2, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(unreachable(&v), "{v:#}");
    // And in text, under the node's name.
    let mut args = vec!["check", "--expect", "external-snat=false"];
    args.extend(&remote[..remote.len() - 2]);
    let r = diag(&args);
    assert!(
        r.stdout.contains("127.0.0.1  fleet.node-unreachable"),
        "{}",
        r.all()
    );
}

/// `check --wait` resolves a hosts file once: removing it after the first round changes
/// nothing for the later rounds (they still try the same node).
#[test]
fn check_wait_resolves_static_targets_once() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (hosts, kh) = dead_hosts(dir.path());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_diag"))
        .args([
            "check",
            "--expect",
            "external-snat=false",
            "--hosts",
            &hosts,
            "--known-hosts",
            &kh,
            "--no-ssh-agent",
            "--connect-timeout",
            "2",
            "--retries",
            "0",
            "--wait",
            "4s",
            "--interval",
            "2s",
        ])
        .current_dir(fixtures())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Up to the end of round 1 (its progress line), then the hosts file goes away.
    for l in lines.by_ref() {
        let l = l.unwrap();
        let done = l.contains("diag check: round 1:");
        seen.push(l);
        if done {
            break;
        }
    }
    std::fs::remove_file(&hosts).unwrap();
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(2), "{all}");
    assert!(all.contains("diag check: round 2:"), "{all}");
    assert!(!all.contains("hosts.txt"), "hosts file read again: {all}");
    assert!(
        all.matches("0 ok, 1 failed (1 unreachable)").count() >= 2,
        "every round tried the node: {all}"
    );
}
