//! `diag snat` over several nodes starts with a fleet summary: one row per node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn snat_fleet_summary_on_top_for_several_nodes() {
    let r = diag(&["snat", "--from", "captures/node-a", "captures/node-b"]);
    assert_eq!(r.code, 1, "node-b has errors: {}", r.all());
    let first_node_block = r.stdout.find("── node-a").unwrap();
    let summary = &r.stdout[..first_node_block];
    assert!(summary.starts_with("SNAT across 2 nodes"), "{summary}");
    let row_a = summary
        .lines()
        .find(|l| l.trim_start().starts_with("node-a"))
        .unwrap();
    assert!(
        row_a.contains("192.168.1.251 (ok)") && row_a.trim_end().ends_with("ok"),
        "{row_a}"
    );
    let row_b = summary
        .lines()
        .find(|l| l.trim_start().starts_with("node-b"))
        .unwrap();
    assert!(
        row_b.contains("MISMATCH") && row_b.contains("1 missing"),
        "{row_b}"
    );
    assert!(row_b.trim_end().ends_with("error"), "{row_b}");

    let md = diag(&[
        "snat",
        "-o",
        "markdown",
        "--from",
        "captures/node-a",
        "captures/node-b",
    ]);
    assert!(
        md.stdout.contains("## Fleet summary (2 nodes)"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("| node-b | snat | 10.0.9.9 (MISMATCH) |"),
        "{}",
        md.stdout
    );
}

#[test]
fn snat_single_node_has_no_fleet_summary() {
    let r = diag(&["snat", "--from", "captures/node-a"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stdout.contains("SNAT across"), "{}", r.stdout);
}
