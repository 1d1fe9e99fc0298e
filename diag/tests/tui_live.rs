//! `diag tui` on a live emulated fleet over SSH: an emulated EKS node (harness `EksNode`: the
//! VPC CNI's iptables, policy routing, IMDS/ipamd doubles) with a real sshd, reached from its
//! VPC namespace. A fault is injected while the TUI runs; it appears after a `--refresh`
//! round, marked as new, with the offending rule in the node view.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::sshd::{sshd_available, SshFleet};
use tui_common::*;

const DIAG: &str = env!("CARGO_BIN_EXE_diag");

fn node_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NODE_AGENT_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let mut cands = vec![exe.parent()?.parent()?.join("node-agent")];
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for prof in ["debug", "release"] {
        cands.push(ws.join("target").join(prof).join("node-agent"));
    }
    cands.into_iter().find(|p| p.is_file())
}

fn make_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn fault_injected_while_the_tui_runs_appears_after_a_refresh() {
    for (ok, what) in [
        (have("tmux"), "tmux"),
        (sshd_available(), "sshd and ssh-keygen"),
        (
            node_agent().is_some(),
            "node-agent (cargo build -p node-agent)",
        ),
    ] {
        if !ok {
            not_on_ci(what);
            return;
        }
    }
    let agent = node_agent().unwrap();
    let node = match e2e::node::EksNode::builder().build() {
        Ok(n) => n,
        Err(e) => {
            not_on_ci(&format!("an emulated EKS node (root?): {e:#}"));
            return;
        }
    };
    let cfg = node.config().clone();
    let mut fleet = SshFleet::new(0).unwrap();
    let addr = cfg.primary_ip.to_string();
    let i = fleet
        .attach_sshd(&cfg.namespaces.node, &addr, &cfg.namespaces.vpc)
        .unwrap();
    // The agent needs the node's double endpoints: a wrapper replaces the `collect` argv.
    let wrapper = fleet
        .write(
            "agent-wrapper",
            &format!(
                "#!/bin/sh\nexec {} collect {}\n",
                fleet::shell_quote(agent.to_str().unwrap()),
                fleet::shell_join(&cfg.agent_args())
            ),
        )
        .unwrap();
    make_exec(&wrapper);
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines([i]))
        .unwrap();
    let hosts = fleet.write("hosts", &format!("root@{addr}\n")).unwrap();
    let cmd = format!(
        "ip netns exec {} env HOME={} {} tui --hosts {} -i {} --no-ssh-agent --known-hosts {} \
         --agent-path {} --refresh 2s; echo DIAG-EXITED-$?; sleep 60",
        cfg.namespaces.vpc,
        sh_quote(fleet.dir.path()),
        sh_quote(Path::new(DIAG)),
        sh_quote(&hosts),
        sh_quote(&fleet.client_key),
        sh_quote(&kh),
        sh_quote(&wrapper),
    );
    let t = Tmux::start("live", 120, 40, &cmd);
    let limit = Duration::from_secs(60);
    // Healthy first: collected over SSH, no error.
    let p = t.wait_for("the healthy node", limit, |p| {
        line_with(p, &addr).is_some_and(|l| l.contains(" ok ") || l.contains("OK"))
    });
    let row = line_with(&p, &addr).unwrap().to_string();
    assert!(!row.contains("ERR"), "healthy node shows an error: {p}");

    // Break it for real while the TUI runs.
    node.fault_delete_snat_rule().unwrap();
    let p = t.wait_for("the fault after a refresh", limit, |p| {
        line_with(p, &addr).is_some_and(|l| l.contains("ERR") && l.contains('+'))
    });
    assert!(line_with(&p, &addr).unwrap().contains("snat."), "{p}");

    // Drill in: the new finding, its evidence and remedy.
    t.type_text(" "); // freeze so the view holds still
    t.keys(&["Enter"]);
    let p = t.wait_for("the node view", limit, |p| p.contains("> Findings"));
    assert!(p.contains(" NEW"), "{p}");
    assert!(p.contains("fix:"), "{p}");
    t.keys(&["q"]);
    let p = t.wait_for("the exit", Duration::from_secs(10), |p| {
        p.contains("DIAG-EXITED-")
    });
    assert!(p.contains("DIAG-EXITED-0"), "{p}");
}
