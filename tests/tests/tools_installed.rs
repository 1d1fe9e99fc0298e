//! The fresh-machine contract (issue 7 item 0): every external tool the workspace executes —
//! the product (node-agent collectors, fleet's agentless command list), the harness and the
//! tests — is installed by `scripts/install-deps.sh`, which the README's `scripts/demo.sh` and
//! `.ci/run` call. A test that execs `nft` while install-deps.sh forgets nftables fails here,
//! on any machine, before the scenario that needs it fails on a newcomer's.
//!
//! How: scan every `.rs` file of the workspace for executed names (string literals in
//! `Command::new("…")`, `exec::run("…")`, `binary: "…"`, argv-shaped string arrays whose
//! first element is a program name followed by flags, the harness's exec helpers
//! `.exec(&[…])`/`.sh(&[…])`/…, and absolute paths under `/usr/bin`, `/usr/sbin`, `/bin`,
//! `/sbin`). Each name must be either a known tool mapped to the Debian package that ships it
//! ([`TOOLS`]), or a known non-tool (our own binaries and subcommands, [`NOT_TOOLS`]); an
//! unknown name fails the test until someone classifies it.
//! Every mapped package must be in install-deps.sh's `PKGS=(…)` (or be Essential: always on
//! Debian), and moto must be in `PIP_PKGS` and installed without `--ci`.
//! Where dpkg exists, the mapping itself is checked: the installed binary belongs to that package.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// Executed tool → the Debian package that ships it (`pip:` = installed with pip).
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("curl", "curl"),
    ("sysctl", "procps"),
    ("kill", "procps"),
    ("conntrack", "conntrack"),
    ("iptables", "iptables"),
    ("iptables-save", "iptables"),
    ("iptables-nft-save", "iptables"),
    ("iptables-nft", "iptables"),
    ("iptables-nft-restore", "iptables"),
    ("iptables-legacy-save", "iptables"),
    ("iptables-legacy-restore", "iptables"),
    ("ip6tables-nft-save", "iptables"),
    ("ip6tables-legacy-save", "iptables"),
    ("nft", "nftables"),
    ("sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("ssh-agent", "openssh-client"),
    ("ssh-add", "openssh-client"),
    ("time", "time"),
    ("moto_server", "pip:moto[server]"),
    // Essential packages (present on every Debian system).
    ("sh", "dash"),
    ("bash", "bash"),
    ("cat", "coreutils"),
    ("mkfifo", "coreutils"),
    ("setpriv", "util-linux"),
    ("tmux", "tmux"),
    ("python3", "python3-minimal"),
    ("env", "coreutils"),
    ("id", "coreutils"),
    ("sleep", "coreutils"),
    ("tail", "coreutils"),
    ("head", "coreutils"),
    ("unshare", "util-linux"),
    ("dpkg-query", "dpkg"),
];

/// Priority "required"/Essential: dpkg refuses to remove them, every Debian has them.
const ESSENTIAL: &[&str] = &[
    "dash",
    "coreutils",
    "util-linux",
    "bash",
    "grep",
    "sed",
    "dpkg",
];

/// Names that appear where a tool could, but are not external tools: our own binaries and
/// their subcommands/arguments, and optional benchmark comparators the tests look up and
/// report as absent (benchmarks, not tests: `bench_child`).
const NOT_TOOLS: &[&str] = &[
    // tmux subcommands (diag/tests/tui_common)
    "capture-pane",
    "kill-session",
    "new-session",
    "send-keys",
    // diag / node-agent / diag-fleet / cni-doubles subcommands and our own binaries
    "trace",
    "tui",
    "bundle",
    "changes",
    "analyze",
    "check",
    "collect",
    "routes",
    "rules",
    "snat",
    "serve",
    "listen",
    "diag",
    "node-agent",
    "diag-fleet",
    "cni-doubles",
    "emulate-node",
    "schema",
    "completions",
    // test names passed to our own test binary (`--exact relay_child`)
    "relay_child",
    "bench_child",
    // `cargo tree` (cargo is the toolchain, installed by install-deps.sh's rustup step)
    "tree",
    "cargo",
    // optional comparators in benchmarks; never required by a test
    "parallel-ssh",
    "pssh",
    "hyperfine",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "fixtures" {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// Every executed name with the first place it was seen (`file:line`), scanned once.
fn executed_names() -> &'static BTreeMap<String, String> {
    static NAMES: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(scan)
}

fn scan() -> BTreeMap<String, String> {
    let ws = workspace();
    let mut files = Vec::new();
    rust_files(&ws, &mut files);
    assert!(files.len() > 50, "scanned only {} .rs files", files.len());
    let patterns = [
        r#"Command::new\(\s*"([^"]+)""#,
        r#"\bexec::run\(\s*"([^"]+)""#,
        r#"\bbinary:\s*"([^"]+)""#,
        // argv-shaped: a bare word followed by a flag
        r#"\[\s*"([a-z][\w.+-]*)"\s*,\s*"-"#,
        // the harness's exec helpers on a node/namespace
        r#"\.(?:exec|exec_ok|sh|json|exec_in|exec_json)\(\s*(?:[^()\[\];"]{0,60},\s*)?&?(?:vec!)?\[\s*"([^"]+)""#,
        r#""(?:/usr)?/s?bin/([\w.+-]+)""#,
    ];
    let res: Vec<Regex> = patterns.iter().map(|p| Regex::new(p).unwrap()).collect();
    let mut found = BTreeMap::new();
    for f in files {
        // Comments are not executed (this file's docs name tools too); blank them, keep lines.
        let text: String = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    ""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for re in &res {
            for c in re.captures_iter(&text) {
                let m = c.get(1).unwrap();
                let name = m.as_str().rsplit('/').next().unwrap().to_string();
                let line = text[..m.start()].matches('\n').count() + 1;
                let rel = f.strip_prefix(&ws).unwrap().display().to_string();
                found.entry(name).or_insert(format!("{rel}:{line}"));
            }
        }
    }
    found
}

/// The words of a bash array assignment `NAME=( … )` in install-deps.sh.
fn bash_array(script: &str, name: &str) -> BTreeSet<String> {
    let re = Regex::new(&format!(r"(?ms)^{name}=\((.*?)\)")).unwrap();
    let body = re
        .captures(script)
        .unwrap_or_else(|| panic!("install-deps.sh has no {name}=(…) array"))
        .get(1)
        .unwrap()
        .as_str();
    body.lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(str::split_whitespace)
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

fn install_deps() -> String {
    std::fs::read_to_string(workspace().join("scripts/install-deps.sh")).unwrap()
}

/// Does the script run `pip install` only under `--ci`? (It must not: a newcomer runs it bare.)
fn pip_only_with_ci(script: &str) -> bool {
    let mut depth_ci = 0usize;
    let mut nesting: Vec<bool> = Vec::new();
    for line in script.lines() {
        let t = line.trim();
        if t.starts_with("if ") {
            let ci = t.contains("--ci");
            nesting.push(ci);
            if ci {
                depth_ci += 1;
            }
        } else if t == "fi" || t.starts_with("fi ") || t.starts_with("fi;") {
            if nesting.pop() == Some(true) {
                depth_ci -= 1;
            }
        } else if t.contains("pip install") && depth_ci > 0 {
            return true;
        }
    }
    false
}

#[test]
fn every_executed_tool_is_installed_by_install_deps() {
    let tools: BTreeMap<&str, &str> = TOOLS.iter().copied().collect();
    let not_tools: BTreeSet<&str> = NOT_TOOLS.iter().copied().collect();
    let script = install_deps();
    let pkgs = bash_array(&script, "PKGS");
    let pip = bash_array(&script, "PIP_PKGS");

    let names = executed_names();
    // The scan must see what we know the suite execs; an empty scan would pass vacuously.
    for must in [
        "ip",
        "iptables-nft-save",
        "conntrack",
        "nft",
        "moto_server",
        "sshd",
    ] {
        assert!(
            names.contains_key(must),
            "the scan no longer finds `{must}`; the patterns in this test are stale: {names:?}"
        );
    }

    let mut unknown = Vec::new();
    let mut not_installed = Vec::new();
    for (name, at) in names {
        if not_tools.contains(name.as_str()) {
            continue;
        }
        let Some(pkg) = tools.get(name.as_str()) else {
            unknown.push(format!("{name} ({at})"));
            continue;
        };
        let ok = match pkg.strip_prefix("pip:") {
            Some(p) => pip.contains(p),
            None => pkgs.contains(*pkg) || ESSENTIAL.contains(pkg),
        };
        if !ok {
            not_installed.push(format!("{name} → {pkg} ({at})"));
        }
    }
    assert!(
        unknown.is_empty(),
        "executed names this test does not know; add each to TOOLS with its Debian package \
         (and to scripts/install-deps.sh) or to NOT_TOOLS: {unknown:#?}"
    );
    assert!(
        not_installed.is_empty(),
        "the suite executes tools scripts/install-deps.sh does not install \
         (PKGS={pkgs:?}, PIP_PKGS={pip:?}): {not_installed:#?}"
    );
    assert!(
        !pip_only_with_ci(&script),
        "install-deps.sh installs pip packages (moto_server) only with --ci: a newcomer's \
         `cargo test` would skip the moto tests"
    );
}

/// Where the machine is Debian with the tools installed (CI, after install-deps.sh), check the
/// mapping itself: each tool resolves, and dpkg says it belongs to the package TOOLS names.
/// Without dpkg or off CI a missing tool is reported via the one CI-aware skip helper.
#[test]
fn tool_to_package_mapping_matches_dpkg() {
    if e2e::prereq::missing(
        e2e::prereq::which("dpkg-query").is_none(),
        "dpkg-query not found (not a Debian system)",
    ) {
        return;
    }
    let mut wrong = Vec::new();
    let mut missing = Vec::new();
    for (tool, pkg) in TOOLS {
        if pkg.starts_with("pip:") {
            if e2e::prereq::which(tool).is_none() {
                missing.push(tool.to_string());
            }
            continue;
        }
        let Some(path) = e2e::prereq::which(tool) else {
            missing.push(tool.to_string());
            continue;
        };
        let real = std::fs::canonicalize(&path).unwrap_or(path.clone());
        // A shim earlier on PATH (pyenv's python3) can shadow the packaged binary: the
        // Debian one in /usr/bin counts too.
        let packaged = std::path::PathBuf::from(format!("/usr/bin/{tool}"));
        let owners = [path.clone(), real, packaged]
            .into_iter()
            .flat_map(|p| {
                let s = p.display().to_string();
                let unmerged = s.strip_prefix("/usr").map(str::to_string);
                std::iter::once(s).chain(unmerged)
            })
            .filter_map(|p| {
                let out = Command::new("dpkg-query").args(["-S", &p]).output().ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            })
            .collect::<String>();
        let owned = owners
            .lines()
            .filter_map(|l| l.split(':').next())
            .flat_map(|l| l.split(','))
            .any(|p| p.trim() == *pkg);
        if !owned {
            wrong.push(format!(
                "{tool} ({}) is not from {pkg}: dpkg says {owners:?}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "TOOLS mapping is wrong: {wrong:#?}");
    if !missing.is_empty() {
        e2e::prereq::skip(&format!(
            "tools not installed here (run scripts/install-deps.sh): {missing:?}"
        ));
    }
}
