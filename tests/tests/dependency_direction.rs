//! The architecture's dependency rules, enforced on the resolved graph (`cargo tree`):
//! the agent never links the AWS SDK, russh or a TUI (it may link the pure `analysis`, for
//! the findings of `node-agent serve`); analysis depends on the model only;
//! the model is a leaf of our crates; the bundle writer is pure (no tokio, clap, SDK, ssh, TUI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// Normal + build dependencies of `package` (what ends up in its binary), one name per line.
fn deps(package: &str) -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert!(
        names.iter().any(|n| n == package),
        "cargo tree output did not list {package} itself: {text}"
    );
    names
}

fn forbidden(package: &str, is_forbidden: impl Fn(&str) -> bool) -> Vec<String> {
    deps(package)
        .into_iter()
        .filter(|n| is_forbidden(n))
        .collect()
}

#[test]
fn node_agent_links_no_aws_sdk_no_ssh_no_tui() {
    let bad = forbidden("node-agent", |n| {
        n.starts_with("aws-")
            || n == "russh"
            || n == "ratatui"
            || n == "crossterm"
            || n == "fleet"
            || n == "diag"
            || n == "tui"
    });
    assert!(
        bad.is_empty(),
        "node-agent must stay small and read-only; it links {bad:?}"
    );
}

#[test]
fn analysis_depends_on_the_model_only() {
    let ours = ["parsers", "node-agent", "fleet", "diag", "e2e"];
    let bad = forbidden("analysis", |n| {
        ours.contains(&n) || n.starts_with("aws-") || n == "tokio" || n == "russh"
    });
    assert!(
        bad.is_empty(),
        "analysis must be pure over the model; it links {bad:?}"
    );
}

#[test]
fn model_is_a_leaf_without_io_crates() {
    let bad = forbidden("model", |n| {
        [
            "parsers",
            "analysis",
            "node-agent",
            "fleet",
            "diag",
            "e2e",
            "tokio",
            "nom",
        ]
        .contains(&n)
    });
    assert!(bad.is_empty(), "model must not depend on {bad:?}");
}

#[test]
fn parsers_do_not_reach_up_or_out() {
    let bad = forbidden("parsers", |n| {
        ["analysis", "node-agent", "fleet", "diag", "tokio"].contains(&n) || n.starts_with("aws-")
    });
    assert!(
        bad.is_empty(),
        "parsers must stay text-in/model-out; they link {bad:?}"
    );
}

/// The check itself must be able to fail: the fleet crate does link the SDK.
#[test]
fn the_check_sees_the_sdk_where_it_is() {
    assert!(deps("fleet").iter().any(|n| n == "aws-sdk-ec2"));
}

#[test]
fn bundle_is_pure_so_the_agent_can_link_it() {
    let bad = forbidden("bundle", |n| {
        ["node-agent", "fleet", "diag", "e2e", "tui", "capture"].contains(&n)
            || n.starts_with("aws-")
            || n == "tokio"
            || n == "clap"
            || n == "russh"
            || n == "ratatui"
            || n == "crossterm"
    });
    assert!(
        bad.is_empty(),
        "bundle must stay pure (node-agent links it); it links {bad:?}"
    );
}
