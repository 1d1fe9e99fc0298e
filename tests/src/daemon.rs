//! `node-agent serve` inside an emulated node, for the daemon tests and the `diag` tests that
//! read a daemon over SSH: started with the node's doubles, killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::agent::agent_bin;
use crate::netns;
use crate::node::EksNode;

/// A running daemon; killed (by PID) on drop.
pub struct Serve {
    pub child: Child,
    pub socket: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        netns::kill_pid(self.child.id());
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `node-agent serve --interval INTERVAL --jitter-pct 0` in `node`, with its state dir,
    /// socket and stderr log under `dir`, the node's collect options, then `extra`.
    pub fn start(node: &EksNode, dir: &Path, interval: &str, extra: &[&str]) -> Result<Serve> {
        let bin = agent_bin()?.display().to_string();
        let state = dir.join("state");
        let socket = dir.join("agent.sock");
        let log = dir.join("serve.log");
        let (st, so) = (state.display().to_string(), socket.display().to_string());
        let mut argv: Vec<&str> = vec![
            &bin,
            "serve",
            "--interval",
            interval,
            "--jitter-pct",
            "0",
            "--state-dir",
            &st,
            "--socket",
            &so,
        ];
        argv.extend_from_slice(extra);
        let args = node.config().agent_args();
        argv.extend(args.iter().map(String::as_str));
        let child = node.ns().spawn(&argv, &log)?;
        Ok(Serve {
            child,
            socket,
            state,
            log,
        })
    }

    /// `node-agent api TARGET --socket …` (run here: the socket is a path, not per netns).
    pub fn api(&self, target: &str) -> Result<String> {
        let bin = agent_bin()?.display().to_string();
        let so = self.socket.display().to_string();
        let out = netns::run_with(
            &[&bin, "api", target, "--socket", &so],
            None,
            Duration::from_secs(20),
        )?;
        if !out.status.success() {
            bail!(
                "node-agent api {target}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `/v1/health` as JSON once it answers.
    pub fn health(&self) -> Option<serde_json::Value> {
        self.api("/v1/health")
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
    }

    /// Wait until the daemon finished `rounds` rounds (bounded by `within`).
    pub fn wait_rounds(&self, rounds: u64, within: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self
                .health()
                .and_then(|h| h["rounds"].as_u64())
                .is_some_and(|r| r >= rounds)
            {
                return Ok(());
            }
            if start.elapsed() > within {
                bail!(
                    "the daemon did not finish {rounds} rounds within {within:?}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's VmRSS in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }
}

/// VmRSS of `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
