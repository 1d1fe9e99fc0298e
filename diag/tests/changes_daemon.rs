//! `diag` reading a node's `node-agent serve` over real SSH: an emulated EKS node (harness
//! `EksNode`) runs the real daemon and a real sshd, reached from its VPC namespace.
//!
//! - a rule inserted in the kernel shows up in `diag changes` by content (text and JSON);
//!   pointed at a socket where nothing listens, the node says "no daemon" and exit 0;
//! - `diag analyze` takes the daemon's latest snapshot (same `collected_at`, `daemon` set in
//!   the JSON, noted in the text), `--no-daemon` collects afresh.
//!
//! Needs root, iproute2, iptables, OpenSSH sshd and the built `node-agent`; fails on CI
//! without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use e2e::daemon::Serve;
use e2e::sshd::{sshd_available, SshFleet};
use serde_json::Value;

const DIAG: &str = env!("CARGO_BIN_EXE_diag");

fn make_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for `/usr/local/bin/node-agent` on the node: passes diag's argv through
/// (`collect --from-daemon`, `api /v1/changes?since=…`) with the test's socket, and the
/// node's IMDS/ipamd doubles for a collection.
fn wrapper(
    fleet: &SshFleet,
    name: &str,
    agent: &Path,
    socket: &Path,
    collect: &[String],
) -> String {
    let a = fleet::shell_quote(agent.to_str().unwrap());
    let s = fleet::shell_quote(socket.to_str().unwrap());
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  collect) shift; exec {a} collect \"$@\" --socket {s} {c} ;;\n  \
         api) shift; exec {a} api \"$@\" --socket {s} ;;\n  *) exec {a} \"$@\" ;;\nesac\n",
        c = fleet::shell_join(collect)
    );
    let p = fleet.write(name, &script).unwrap();
    make_exec(&p);
    p.display().to_string()
}

#[test]
fn diag_reads_the_daemon_over_ssh() {
    if e2e::prereq::missing(!sshd_available(), "sshd and ssh-keygen") {
        return;
    }
    let Some(agent) = e2e::prereq::need(
        e2e::agent::agent_bin().ok(),
        "node-agent (cargo build --workspace --bins)",
    ) else {
        return;
    };
    let node = match e2e::node::EksNode::builder().pods_on_primary(2).build() {
        Ok(n) => n,
        Err(e) => {
            e2e::prereq::skip(&format!("cannot build an emulated EKS node (root?): {e:#}"));
            return;
        }
    };
    let cfg = node.config().clone();
    let work = tempfile::tempdir().unwrap();
    let serve = Serve::start(&node, work.path(), "1s", &[]).unwrap();
    serve.wait_rounds(2, Duration::from_secs(90)).unwrap();

    let mut fleet = SshFleet::new(0).unwrap();
    let addr = cfg.primary_ip.to_string();
    let i = fleet
        .attach_sshd(&cfg.namespaces.node, &addr, &cfg.namespaces.vpc)
        .unwrap();
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines([i]))
        .unwrap();
    let hosts = fleet.write("hosts", &format!("root@{addr}\n")).unwrap();
    let with_daemon = wrapper(&fleet, "agent", &agent, &serve.socket, &cfg.agent_args());
    let nowhere = work.path().join("nothing-listens.sock");
    let no_daemon = wrapper(&fleet, "agent-none", &agent, &nowhere, &cfg.agent_args());
    let diag = |agent_path: &str, args: &[&str]| -> Output {
        let o = SshFleet::ns_command(&cfg.namespaces.vpc, Path::new(DIAG))
            .args(args)
            .arg("--hosts")
            .arg(&hosts)
            .arg("-i")
            .arg(&fleet.client_key)
            .args(["--no-ssh-agent", "--known-hosts"])
            .arg(&kh)
            .args(["--agent-path", agent_path])
            .env("HOME", fleet.dir.path())
            .env_remove("DIAG_NO_DAEMON")
            .output()
            .unwrap();
        eprintln!(
            "diag {args:?}: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };

    // A kernel change while the daemon runs: one inserted rule at the top of the chain.
    let before = Instant::now();
    node.fault_insert_negated_return("100.64.0.0/16").unwrap();
    let find = |v: &Value| -> Option<Value> {
        v["changes"]
            .as_array()?
            .iter()
            .find(|c| {
                c["kind"] == "iptables-rule"
                    && c["op"] == "added"
                    && c["subject"] == "nat/AWS-SNAT-CHAIN-0"
                    && c["content"]
                        .as_str()
                        .is_some_and(|t| t.contains("! -d 100.64.0.0/16"))
            })
            .cloned()
    };
    let mut report = Value::Null;
    while before.elapsed() < Duration::from_secs(60) {
        let o = diag(&with_daemon, &["-o", "json", "changes", "--since", "10m"]);
        assert!(o.status.success(), "{o:?}");
        report = serde_json::from_slice(&o.stdout).unwrap();
        if find(&report).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let change = find(&report).unwrap_or_else(|| panic!("the inserted rule: {report:#}"));
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["nodes"][0]["status"], "ok", "{report:#}");
    let node_name = report["nodes"][0]["node"].as_str().unwrap().to_string();
    assert_eq!(change["node"], node_name.as_str());
    let rules: Vec<&Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "iptables-rule")
        .collect();
    assert_eq!(rules.len(), 1, "by content, not position: {rules:#?}");
    // Text: one line per change, by content.
    let o = diag(&with_daemon, &["changes", "--since", "10m"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("iptables-rule") && l.contains("! -d 100.64.0.0/16"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&node_name), "{line}");
    assert!(line.contains("nat/AWS-SNAT-CHAIN-0: +"), "{line}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("change(s)"));
    // A --since after the change: not listed.
    let later = diag(
        &with_daemon,
        &["-o", "json", "changes", "--since", "2099-01-01T00:00:00Z"],
    );
    let later: Value = serde_json::from_slice(&later.stdout).unwrap();
    assert!(find(&later).is_none(), "{later:#}");

    // Nothing listens on the socket: "no daemon", not a failure.
    let o = diag(&no_daemon, &["changes", "--since", "1h"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("no daemon on this node"), "{text}");
    assert!(text.contains("1 without"), "{text}");

    // analyze: the daemon's latest snapshot, said so; --no-daemon a fresh collection.
    let o = diag(&with_daemon, &["-o", "json", "analyze"]);
    let daemon_snap: Value = serde_json::from_str(&serve.api("/v1/snapshot").unwrap()).unwrap();
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = &a["nodes"][0];
    assert_eq!(
        n["daemon"]["socket"],
        serve.socket.display().to_string(),
        "{n:#}"
    );
    assert!(n["daemon"]["age_seconds"].as_i64().unwrap() >= 0);
    // The daemon's snapshot, or the one it took since (1 s interval): never a fresh one.
    let at = n["collected_at"].as_str().unwrap();
    let latest = daemon_snap["collected_at"].as_str().unwrap();
    assert!(at <= latest, "{at} vs daemon {latest}");
    let rules: Vec<&str> = n["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(!rules.is_empty(), "the inserted RETURN is a finding: {n:#}");
    let o = diag(&with_daemon, &["analyze"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("from the node's daemon ("), "{text}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("snapshot from the node's daemon"));

    // collected_at has whole seconds: let one pass so that a fresh collection is later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = diag(&with_daemon, &["-o", "json", "analyze", "--no-daemon"]);
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = &a["nodes"][0];
    assert!(n.get("daemon").is_none(), "{n:#}");
    assert!(
        n["collected_at"].as_str().unwrap() > latest,
        "a fresh collection"
    );
    // check --since-change: without a CNI change in the log, the latest snapshot, said so.
    let check = |agent_path: &str| -> (Option<i32>, Value) {
        let o = diag(
            agent_path,
            &[
                "-o",
                "json",
                "check",
                "--since-change",
                "--expect",
                "external-snat=false",
            ],
        );
        (o.status.code(), serde_json::from_slice(&o.stdout).unwrap())
    };
    let (code, r) = check(&with_daemon);
    assert_eq!(code, Some(0), "{r:#}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("no CNI env/version change"),
        "{r:#}"
    );
    // A CNI env change (the aws-node env the node reports): the state after it is checked.
    let env_file = cfg.cni_env_file();
    let mut env = std::fs::read_to_string(&env_file).unwrap();
    env.push_str("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.99.0.0/16\n");
    std::fs::write(&env_file, env).unwrap();
    let t0 = Instant::now();
    let cni_change = loop {
        let v: Value = serde_json::from_str(&serve.api("/v1/changes").unwrap()).unwrap();
        if let Some(c) = v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "cni-env")
        {
            break c.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no cni-env change: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (code, r) = check(&with_daemon);
    assert_eq!(code, Some(0), "{r:#}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "state after the CNI change at {}",
            cni_change["at"].as_str().unwrap()
        )),
        "{r:#}"
    );
    assert!(msg.contains("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"), "{msg}");
    // No daemon: that node cannot be checked "after the change" (exit 2, says why).
    let (code, r) = check(&no_daemon);
    assert_eq!(code, Some(2), "{r:#}");
    assert!(
        r["input_errors"]
            .to_string()
            .contains("no daemon on this node"),
        "{r:#}"
    );

    // No daemon on the node: analyze falls back to a fresh collection.
    let o = diag(&no_daemon, &["-o", "json", "analyze"]);
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(a["nodes"][0].get("daemon").is_none());
    assert_eq!(
        a["nodes"][0]["report"]["findings"]
            .as_array()
            .map(|f| f.is_empty()),
        Some(false)
    );
}
