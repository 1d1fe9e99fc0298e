//! Shared by the tmux tests of `diag tui`: a tmux session driven like a person would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A missing prerequisite: SKIPPED locally, a failure on CI — the one CI-aware rule,
/// `e2e::prereq::skip`, so a green CI run means the test ran.
#[track_caller]
pub fn not_on_ci(what: &str) {
    e2e::prereq::skip(&format!("needs {what}"));
}

pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// One detached tmux session (unique name), killed on drop.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// `tmux new-session -d -x W -y H` running `cmd` through `sh -c`.
    pub fn start(tag: &str, w: u16, h: u16, cmd: &str) -> Tmux {
        let name = format!("diagtui-{tag}-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .arg(cmd)
            .env_remove("TMUX")
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        Tmux { name }
    }

    pub fn pane(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `send-keys` with tmux key names (`Enter`, `Escape`, `C-r`).
    pub fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Literal text, one key at a time as typed.
    pub fn type_text(&self, text: &str) {
        let st = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.name, text])
            .status()
            .unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Wait (bounded) until the pane satisfies `pred`; panics with the pane otherwise.
    pub fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let p = self.pane();
            if pred(&p) {
                return p;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; pane:\n{p}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// A TUI fixture snapshot (collected from an emulated node) under another hostname.
pub fn fixture_as(fixture: &str, hostname: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tui/tests/fixtures")
        .join(format!("{fixture}.json"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["hostname"] = serde_json::Value::String(hostname.into());
    serde_json::to_string_pretty(&v).unwrap()
}

/// The line of the pane holding `needle`.
pub fn line_with<'a>(pane: &'a str, needle: &str) -> Option<&'a str> {
    pane.lines().find(|l| l.contains(needle))
}
