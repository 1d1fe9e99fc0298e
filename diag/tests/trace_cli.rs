//! `diag trace` on pasted captures (`tests/fixtures/captures/`): text, JSON (checked against
//! the published schema shape), Markdown, `--all-pods`, unknown inputs and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::diag;
use serde_json::Value;

#[test]
fn secondary_pod_to_the_internet_from_a_capture_dir() {
    let r = diag(&[
        "trace",
        "--from",
        "captures/node-a",
        "--src",
        "192.168.2.17",
        "--dst",
        "34.117.59.81:443",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let t = &v["nodes"][0]["traces"][0];
    assert_eq!(t["route"]["rule_priority"], 1024);
    assert_eq!(t["route"]["table"], 254);
    assert_eq!(t["route"]["egress_interface"], "eth0");
    assert_eq!(t["route"]["next_hop"], "192.168.0.1");
    assert_eq!(t["source_after_nat"], "192.168.1.251");
    assert_eq!(t["reply_accepted"], true);
    assert!(t["steps"].as_array().unwrap().len() > 5);
    assert!(t["verdict"].as_str().unwrap().starts_with(
        "192.168.2.17 → 34.117.59.81:443 leaves eth0 via 192.168.0.1, SNATed to 192.168.1.251"
    ));
}

#[test]
fn text_and_markdown_name_the_evidence_and_the_verdict() {
    let args = [
        "trace",
        "--from",
        "captures/node-a",
        "--src",
        "192.168.2.17",
        "--dst",
        "172.20.1.100:5432",
        "--dst",
        "34.117.59.81",
    ];
    let r = diag(&args);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("rule 1536 matches"), "{}", r.stdout);
    assert!(
        r.stdout.contains("1536:\tfrom 192.168.2.17 lookup 2")
            || r.stdout.contains("1536: from 192.168.2.17 lookup 2")
    );
    assert!(r
        .stdout
        .contains("verdict     192.168.2.17 → 172.20.1.100:5432 leaves eth1"));
    assert!(r
        .stdout
        .contains("verdict     192.168.2.17 → 34.117.59.81 leaves eth0"));
    let mut md = args.to_vec();
    md.extend(["-o", "markdown"]);
    let r = diag(&md);
    assert!(
        r.stdout.contains("| phase | decision | evidence |"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("**Verdict:**"));
}

#[test]
fn all_pods_groups_by_outcome() {
    let r = diag(&[
        "trace",
        "--from",
        "captures/node-a",
        "--all-pods",
        "--dst",
        "192.168.40.5",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let groups = v["nodes"][0]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:#?}");
    assert!(groups.iter().any(
        |g| g["outcome"].as_str().unwrap().starts_with("leaves eth1")
            && g["pods"] == serde_json::json!(["192.168.2.17"])
    ));
}

#[test]
fn a_partial_capture_states_what_it_could_not_evaluate() {
    // node-b has no conntrack and no addresses; nat only from `iptables -t nat -S`.
    let r = diag(&[
        "trace",
        "--from",
        "captures/node-b",
        "--src",
        "10.0.1.20",
        "--dst",
        "8.8.8.8",
    ]);
    assert!(r.stdout.contains("unknown"), "{}", r.all());
    assert!(r.stdout.contains("verdict"), "{}", r.all());
    let r = diag(&["trace", "--from", "captures/node-b", "--dst", "8.8.8.8"]);
    assert_eq!(r.code, 2, "--src or --all-pods is required: {}", r.all());
}

#[test]
fn schema_is_published() {
    let r = diag(&["schema", "trace"]);
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../model/schema/trace.v1.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v, committed);
}
