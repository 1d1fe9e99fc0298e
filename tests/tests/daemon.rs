//! `node-agent serve` inside an emulated EKS node: kernel changes show up in `/v1/changes`
//! and on disk by content, a fault shows up in findings and metrics and clears when it is
//! repaired, the socket refuses non-root clients, bad clients do not stop the daemon, a
//! corrupt history file is skipped, and SIGTERM flushes the history.
//!
//! Needs root, iproute2, iptables, util-linux `setpriv`, and the `node-agent` binary next to
//! the test executable (`cargo build -p node-agent`, same profile). Fails without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use e2e::agent::agent_bin;
use e2e::netns::{self, require_root};
use e2e::node::EksNode;
use serde_json::Value;

const INTERVAL_MS: u64 = 1000;

/// Raw HTTP/1.1 GET over the unix socket (the test is its own client, so that it can also
/// send garbage and stall).
fn get(socket: &Path, target: &str) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn get_json(socket: &Path, target: &str) -> Value {
    let (status, body) = get(socket, target);
    assert_eq!(status, 200, "GET {target}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {target}: {e}: {body}"))
}

/// Poll `f` every 100 ms until it returns Some or `within` passes.
fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn changes(socket: &Path) -> Vec<Value> {
    get_json(socket, "/v1/changes")["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find_change(socket: &Path, op: &str, needle: &str) -> Option<Value> {
    changes(socket).into_iter().find(|c| {
        c["kind"] == "iptables-rule"
            && c["op"] == op
            && c["subject"] == "nat/AWS-SNAT-CHAIN-0"
            && c["content"].as_str().is_some_and(|t| t.contains(needle))
    })
}

fn finding_metric(socket: &Path, rule: &str) -> Option<f64> {
    let (status, text) = get(socket, "/metrics");
    assert_eq!(status, 200);
    let prefix = format!("eksdiag_findings{{rule=\"{rule}\",");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        netns::kill_pid(self.child.id());
        let _ = self.child.wait();
    }
}

fn start(node: &EksNode, state: &Path, socket: &Path, log: &Path) -> Daemon {
    let bin = agent_bin().unwrap().display().to_string();
    let interval = format!("{INTERVAL_MS}ms");
    let (state, socket) = (state.display().to_string(), socket.display().to_string());
    let mut argv: Vec<&str> = vec![
        &bin,
        "serve",
        "--interval",
        &interval,
        "--jitter-pct",
        "0",
        "--state-dir",
        &state,
        "--socket",
        &socket,
    ];
    let args = node.config().agent_args();
    argv.extend(args.iter().map(String::as_str));
    Daemon {
        child: node.ns().spawn(&argv, log).unwrap(),
    }
}

fn as_nobody(argv: &[&str]) -> std::process::Output {
    let mut full = vec![
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
    ];
    full.extend_from_slice(argv);
    netns::run_with(&full, None, Duration::from_secs(20)).unwrap()
}

#[test]
fn serve_records_changes_clears_findings_and_survives_bad_clients() {
    require_root().unwrap();
    let node = EksNode::builder().pods_on_primary(2).build().unwrap();
    let work = tempfile::tempdir().unwrap();
    let state: PathBuf = work.path().join("state");
    let socket = work.path().join("agent.sock");
    let log = work.path().join("serve.log");

    // A corrupt history from "before": a torn line and a truncated snapshot.
    std::fs::create_dir_all(state.join("snapshots")).unwrap();
    std::fs::write(state.join("changes.jsonl"), "{\"at\":\"2026-12-01T1").unwrap();
    std::fs::write(
        state.join("snapshots/snapshot-100.json"),
        "{\"schema_version\":1,",
    )
    .unwrap();

    let mut daemon = start(&node, &state, &socket, &log);
    let (health, _) = wait_for("first round", Duration::from_secs(60), || {
        socket
            .exists()
            .then(|| get(&socket, "/v1/health"))
            .filter(|(s, _)| *s == 200)
    });
    let health: Value = serde_json::from_str(&health.1).unwrap();
    let problems = health["history_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "both corrupt files reported: {health}");
    let mode = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    // Wait for a second round so that changes are diffs against this node's own state.
    wait_for("second round", Duration::from_secs(30), || {
        (get_json(&socket, "/v1/health")["rounds"].as_u64() >= Some(2)).then_some(())
    });
    let round_ms = get_json(&socket, "/v1/snapshot")["duration_ms"]
        .as_u64()
        .unwrap();
    // One interval plus one collection (and polling slack) after the kernel changed.
    let within = Duration::from_millis(INTERVAL_MS + 2 * round_ms + 2000);

    // A rule inserted at the top of AWS-SNAT-CHAIN-0: exactly one added rule, by content.
    node.fault_insert_negated_return("100.64.0.0/16").unwrap();
    let (added, took) = wait_for("the added rule in /v1/changes", within, || {
        find_change(&socket, "added", "! -d 100.64.0.0/16")
    });
    eprintln!("added rule seen after {took:?}: {added}");
    let rule_changes: Vec<Value> = changes(&socket)
        .into_iter()
        .filter(|c| c["kind"] == "iptables-rule")
        .collect();
    assert_eq!(
        rule_changes.len(),
        1,
        "only the inserted rule: {rule_changes:#?}"
    );
    let on_disk = std::fs::read_to_string(state.join("changes.jsonl")).unwrap();
    assert!(on_disk.contains("! -d 100.64.0.0/16"), "{on_disk}");

    node.iptables(&["-t", "nat", "-D", "AWS-SNAT-CHAIN-0", "1"])
        .unwrap();
    let (_, took) = wait_for("the removed rule in /v1/changes", within, || {
        find_change(&socket, "removed", "! -d 100.64.0.0/16")
    });
    eprintln!("removed rule seen after {took:?}");
    let on_disk = std::fs::read_to_string(state.join("changes.jsonl")).unwrap();
    assert_eq!(
        on_disk.matches("! -d 100.64.0.0/16").count(),
        2,
        "{on_disk}"
    );
    // ?since= filters by time and a bad value is a 400.
    let at = added["at"].as_str().unwrap();
    let since = get_json(&socket, &format!("/v1/changes?since={at}"));
    assert!(since["changes"].as_array().unwrap().len() >= 2, "{since}");
    let (status, body) = get(&socket, "/v1/changes?since=yesterday");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("RFC 3339"), "{body}");

    // A fault injected then repaired: the finding and its gauge appear, then clear.
    let rule = "sysctl.ip-forward-disabled";
    assert_eq!(finding_metric(&socket, rule), Some(0.0));
    node.fault_ip_forward_off().unwrap();
    wait_for("the finding", within, || {
        let f = get_json(&socket, "/v1/findings");
        f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == rule)
            .then_some(())
    });
    assert_eq!(finding_metric(&socket, rule), Some(1.0));
    node.ns().sysctl_set("net.ipv4.ip_forward", "1").unwrap();
    wait_for("the finding to clear", within, || {
        let f = get_json(&socket, "/v1/findings");
        (!f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == rule))
        .then_some(())
    });
    assert_eq!(finding_metric(&socket, rule), Some(0.0));
    let (_, metrics) = get(&socket, "/metrics");
    assert!(
        metrics.contains("node_nf_conntrack_entries_limit"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eksdiag_changes_total{kind=\"iptables-rule\"} 2"),
        "{metrics}"
    );

    // A non-root client: the 0600 socket refuses the connection...
    let bin = agent_bin().unwrap().display().to_string();
    let sock = socket.display().to_string();
    let out = as_nobody(&[&bin, "api", "/v1/health", "--socket", &sock]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ermission denied"), "{err}");
    // ...and with the mode opened up, SO_PEERCRED still does.
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let out = as_nobody(&[&bin, "api", "/v1/health", "--socket", &sock]);
    assert!(!out.status.success());
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("only root"),
        "{body} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    // Garbage, a slow client that never finishes its head, unknown paths and methods.
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"\x00\x01GARBAGE\r\n\r\n").unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = garbage.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let mut slow = UnixStream::connect(&socket).unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        get(&socket, "/v1/health").0,
        200,
        "served beside a stalled client"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(get(&socket, "/nope").0, 404);
    let mut post = UnixStream::connect(&socket).unwrap();
    post.write_all(b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    post.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    drop(slow);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );

    // SIGTERM: exits 0, history flushed, socket gone.
    let rounds = get_json(&socket, "/v1/health")["rounds"].as_u64().unwrap();
    let pid = daemon.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let (status, _) = wait_for("exit after SIGTERM", Duration::from_secs(15), || {
        daemon.child.try_wait().unwrap()
    });
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(!socket.exists());
    let text = std::fs::read_to_string(state.join("changes.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        serde_json::from_str::<model::diff::Change>(l).unwrap();
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("history flushed"), "{log_text}");
    eprintln!("{rounds} rounds; log:\n{log_text}");
}
