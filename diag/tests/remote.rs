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
