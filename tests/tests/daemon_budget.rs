//! `node-agent serve` stays bounded over many rounds on an emulated EKS node, and the slow
//! cadence and the textfile output do what they say:
//!
//! - 200 fast rounds (200 ms) with a kernel change every round: the change log stays at
//!   `--max-changes`, the snapshot ring at `--keep-snapshots`, and the RSS (from /proc)
//!   grows by less than a fixed bound after the warm-up. Not a timing test: nothing asserts
//!   how long a round takes.
//! - `--slow-interval 1h`: after the first round iptables is carried forward (a warning says
//!   from when) and a rule added to the kernel is not seen, while a sysctl change is.
//! - `--textfile-dir`: `eks-diag.prom` is there, complete, with no temporary files beside it.
//!
//! Needs root, iproute2, iptables and the built `node-agent`; fails on CI without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use e2e::daemon::Serve;
use e2e::node::EksNode;
use serde_json::Value;

fn node() -> Option<EksNode> {
    if e2e::prereq::missing(!e2e::prereq::is_root(), "root (network namespaces)") {
        return None;
    }
    if e2e::prereq::missing(e2e::agent::agent_bin().is_err(), "node-agent binary") {
        return None;
    }
    match EksNode::builder().pods_on_primary(2).build() {
        Ok(n) => Some(n),
        Err(e) => {
            e2e::prereq::skip(&format!("cannot build an emulated EKS node: {e:#}"));
            None
        }
    }
}

#[test]
fn history_and_rss_stay_bounded_over_200_rounds() {
    let Some(node) = node() else { return };
    let work = tempfile::tempdir().unwrap();
    const MAX_CHANGES: usize = 40;
    const KEEP: usize = 2;
    const ROUNDS: u64 = 200;
    let serve = Serve::start(
        &node,
        work.path(),
        "200ms",
        &[
            "--max-changes",
            &MAX_CHANGES.to_string(),
            "--keep-snapshots",
            &KEEP.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
        ],
    )
    .unwrap();
    serve.wait_rounds(2, Duration::from_secs(60)).unwrap();
    // A change every round: rp_filter of the primary interface flips.
    let mut flip = 0u8;
    let mut warm_rss = None;
    let mut max_rss = 0u64;
    let mut last_round = 0;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the daemon stopped making progress at round {last_round}"
        );
        let Some(h) = serve.health() else {
            if serve_exited(&serve) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let round = h["rounds"].as_u64().unwrap_or(0);
        if round != last_round {
            flip ^= 1;
            node.fault_rp_filter(flip).unwrap();
            last_round = round;
        }
        let rss = serve.rss_kib().unwrap_or(0);
        if round >= 30 && warm_rss.is_none() {
            warm_rss = Some(rss);
        }
        if warm_rss.is_some() {
            max_rss = max_rss.max(rss);
        }
        // Caps hold at every point, not only at the end.
        let lines = std::fs::read_to_string(serve.state.join("changes.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        assert!(
            lines <= MAX_CHANGES,
            "{lines} changes on disk at round {round}"
        );
        let snaps = std::fs::read_dir(serve.state.join("snapshots"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count();
        assert!(snaps <= KEEP, "{snaps} snapshots at round {round}");
        if round >= ROUNDS - 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let warm = warm_rss.expect("RSS read after the warm-up");
    eprintln!("RSS after warm-up {warm} KiB, max over the run {max_rss} KiB, {last_round} rounds");
    assert!(last_round >= ROUNDS - 1, "ran {last_round} rounds");
    let text = std::fs::read_to_string(serve.state.join("changes.jsonl")).unwrap();
    assert_eq!(
        text.lines().count(),
        MAX_CHANGES,
        "the change log is full and capped"
    );
    // Flat: the history is bounded, so memory may not grow with the rounds. 8 MiB leaves
    // room for allocator noise; an unbounded history of whole snapshots would grow by far
    // more over 170 rounds.
    assert!(
        max_rss <= warm + 8 * 1024,
        "RSS grew from {warm} KiB to {max_rss} KiB"
    );
    assert!(
        max_rss <= 40 * 1024,
        "RSS {max_rss} KiB is over the 40 MB budget"
    );
}

fn serve_exited(serve: &Serve) -> bool {
    !std::path::Path::new(&format!("/proc/{}", serve.child.id())).exists()
        || std::fs::read_to_string(format!("/proc/{}/stat", serve.child.id()))
            .is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn slow_sections_are_carried_and_the_textfile_is_written() {
    let Some(node) = node() else { return };
    let work = tempfile::tempdir().unwrap();
    let textfile = work.path().join("textfile");
    std::fs::create_dir_all(&textfile).unwrap();
    let tf = textfile.display().to_string();
    let serve = Serve::start(
        &node,
        work.path(),
        "300ms",
        &["--slow-interval", "1h", "--textfile-dir", &tf],
    )
    .unwrap();
    serve.wait_rounds(3, Duration::from_secs(60)).unwrap();
    let snap: Value = serde_json::from_str(&serve.api("/v1/snapshot").unwrap()).unwrap();
    let warnings = snap["iptables"]["warnings"].to_string();
    assert!(
        warnings.contains("carried over from the collection at"),
        "{warnings}"
    );
    assert!(
        snap["iptables"]["data"].is_object(),
        "the carried data is kept"
    );
    assert!(snap["conntrack"]["warnings"]
        .to_string()
        .contains("--slow-interval 1h"));
    let rounds = serve.health().unwrap()["rounds"].as_u64().unwrap();
    node.fault_insert_negated_return("100.64.0.0/16").unwrap();
    node.fault_ip_forward_off().unwrap();
    serve
        .wait_rounds(rounds + 3, Duration::from_secs(60))
        .unwrap();
    let changes: Value = serde_json::from_str(&serve.api("/v1/changes").unwrap()).unwrap();
    let list = changes["changes"].as_array().unwrap();
    assert!(
        list.iter().any(|c| c["subject"] == "net.ipv4.ip_forward"),
        "the fast sections still run: {changes:#}"
    );
    assert!(
        !list.iter().any(|c| c["kind"] == "iptables-rule"),
        "iptables waits for its slow interval: {changes:#}"
    );
    assert!(
        !list.iter().any(|c| c["kind"] == "section-status"),
        "carried sections are not 'skipped': {changes:#}"
    );

    let prom = std::fs::read_to_string(textfile.join("eks-diag.prom")).unwrap();
    assert!(prom.contains("node_nf_conntrack_entries_limit"), "{prom}");
    assert!(prom.contains("eksdiag_rounds_total"), "{prom}");
    assert!(prom.trim_end().ends_with("# EOF"), "complete file");
    let names: Vec<String> = std::fs::read_dir(&textfile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["eks-diag.prom"]);
}
