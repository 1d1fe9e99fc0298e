//! The real `diag tui` binary in tmux against saved snapshots of emulated nodes (a `diag
//! collect` directory with an unreachable node), driven by keys as a person types them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_common;

use std::time::Duration;

use tui_common::*;

const DIAG: &str = env!("CARGO_BIN_EXE_diag");

fn write_fleet(dir: &std::path::Path) {
    let nodes = [
        ("ip-192-168-1-10", "healthy"),
        ("ip-192-168-1-11", "healthy"),
        ("ip-192-168-1-20", "no-snat-rule"),
        ("ip-192-168-2-21", "wrong-to-source"),
    ];
    let mut entries = Vec::new();
    for (name, fx) in nodes {
        std::fs::write(dir.join(format!("{name}.json")), fixture_as(fx, name)).unwrap();
        entries.push(serde_json::json!({
            "name": name, "target": format!("root@{name}"), "outcome": "ok",
            "snapshot": format!("{name}.json"),
        }));
    }
    entries.push(serde_json::json!({
        "name": "ip-192-168-3-30", "target": "root@192.168.3.30:22", "outcome": "unreachable",
        "error": "connect 192.168.3.30:22: connection refused",
    }));
    let fleet = serde_json::json!({
        "started_at": "2026-12-01T20:00:00Z", "duration_ms": 1200, "transport": "ssh",
        "nodes": entries,
    });
    std::fs::write(dir.join("fleet.json"), fleet.to_string()).unwrap();
}

#[test]
fn tui_in_tmux_browse_filter_drill_copy_refresh_quit() {
    if !have("tmux") {
        not_on_ci("tmux");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fleet_dir = dir.path().join("out");
    std::fs::create_dir_all(&fleet_dir).unwrap();
    write_fleet(&fleet_dir);
    let copy = dir.path().join("copied.txt");
    let cmd = format!(
        "env -u NO_COLOR DIAG_TUI_COPY_FILE={} {} tui --from {}; echo DIAG-EXITED-$?; sleep 60",
        sh_quote(&copy),
        sh_quote(std::path::Path::new(DIAG)),
        sh_quote(&fleet_dir)
    );
    let t = Tmux::start("files", 120, 40, &cmd);
    let limit = Duration::from_secs(20);

    // The fleet view, broken nodes first, the unreachable node with its outcome.
    let p = t.wait_for("the fleet view", limit, |p| p.contains("ip-192-168-3-30"));
    assert!(p.contains("5 nodes"), "{p}");
    let first_row = p
        .lines()
        .find(|l| l.contains("ip-192-168-"))
        .unwrap_or_default()
        .to_string();
    assert!(first_row.contains("ERR"), "worst first: {p}");
    assert!(
        line_with(&p, "ip-192-168-3-30")
            .unwrap()
            .contains("unreachable"),
        "{p}"
    );
    assert!(
        line_with(&p, "ip-192-168-1-10").unwrap().contains("OK"),
        "{p}"
    );

    // `/` filter by finding text, then `/!` inverted.
    t.type_text("/");
    t.type_text("to-source");
    t.keys(&["Enter"]);
    let p = t.wait_for("the filter", limit, |p| !p.contains("ip-192-168-1-10"));
    assert!(p.contains("ip-192-168-2-21"), "{p}");
    t.type_text("/");
    for _ in 0.."to-source".len() {
        t.keys(&["BSpace"]);
    }
    t.type_text("!ip-192-168-1-");
    t.keys(&["Enter"]);
    let p = t.wait_for("the inverted filter", limit, |p| {
        !p.contains("ip-192-168-1-1") && p.contains("ip-192-168-3-30")
    });
    assert!(p.contains("ip-192-168-2-21"), "{p}");
    t.keys(&["Escape"]);
    t.wait_for("the filter cleared", limit, |p| {
        p.contains("ip-192-168-1-10")
    });

    // Drill into the worst node: findings with evidence and remedy, then the SNAT tab.
    t.keys(&["g", "Enter"]);
    let p = t.wait_for("the node view", limit, |p| p.contains("> Findings"));
    assert!(p.contains("fix:"), "{p}");
    t.keys(&["y"]);
    let p = t.wait_for("the copy message", limit, |p| p.contains("copied"));
    let copied = std::fs::read_to_string(&copy).unwrap();
    assert!(copied.contains("snat."), "{copied}\n{p}");
    t.keys(&["2"]);
    let p = t.wait_for("the SNAT tab", limit, |p| p.contains("> SNAT"));
    assert!(p.contains("nat POSTROUTING"), "{p}");
    t.keys(&["Escape"]);
    t.wait_for("back in the fleet", limit, |p| {
        p.contains("ip-192-168-3-30")
    });

    // Help lists the keys.
    t.keys(&["?"]);
    t.wait_for("help", limit, |p| {
        p.contains("re-collect the selected node / the fleet")
    });
    t.keys(&["Escape"]);

    // A node turns bad on disk; `R` re-reads the inputs and it is marked.
    std::fs::write(
        fleet_dir.join("ip-192-168-1-10.json"),
        fixture_as("no-snat-rule", "ip-192-168-1-10"),
    )
    .unwrap();
    t.keys(&["R"]);
    let p = t.wait_for("the refreshed node", limit, |p| {
        line_with(p, "ip-192-168-1-10").is_some_and(|l| l.contains("ERR") && l.contains('+'))
    });
    assert!(p.contains("ERR"), "{p}");

    // q quits and restores the terminal (the alternate screen is gone, exit 0).
    t.keys(&["q"]);
    let p = t.wait_for("the exit", limit, |p| p.contains("DIAG-EXITED-"));
    assert!(p.contains("DIAG-EXITED-0"), "{p}");
    assert!(
        !p.contains("TOP FINDING"),
        "the TUI screen was left behind:\n{p}"
    );
}

#[test]
fn tui_without_a_terminal_says_what_to_use_instead() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    let o = std::process::Command::new(DIAG)
        .args(["tui", "--from"])
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("needs a terminal") && e.contains("diag snat"),
        "{e}"
    );
}

#[test]
fn sigterm_restores_the_terminal() {
    if !have("tmux") {
        not_on_ci("tmux");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    let pidfile = dir.path().join("pid");
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {} tui --from {}'; echo DIAG-EXITED-$?; sleep 60",
        pidfile.display(),
        DIAG,
        dir.path().display()
    );
    let t = Tmux::start("term", 100, 30, &cmd);
    t.wait_for("the fleet view", Duration::from_secs(20), |p| {
        p.contains("ip-192-168-3-30")
    });
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    let p = t.wait_for("the exit", Duration::from_secs(10), |p| {
        p.contains("DIAG-EXITED-")
    });
    assert!(
        !p.contains("TOP FINDING"),
        "the TUI screen was left behind:\n{p}"
    );
}
