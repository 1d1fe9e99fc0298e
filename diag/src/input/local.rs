//! `--local`: run `node-agent collect` on this machine; its stdout is the snapshot.
//!
//! The agent is looked up as `--agent-path` / `DIAG_AGENT_PATH`, else next to the `diag`
//! executable, else on `PATH`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{snapshot_json, InputError, Loaded};

const AGENT: &str = "node-agent";
/// Generous: the agent bounds each collector itself.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Find the agent binary, or say where it was looked for.
pub fn find_agent(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "--agent-path / DIAG_AGENT_PATH {} is not a file",
                p.display()
            ))
        };
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(AGENT);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(AGENT);
            if p.is_file() {
                return Ok(p);
            }
        }
        tried.push("$PATH".into());
    }
    Err(format!(
        "{AGENT} not found (looked in {}); install it or pass --agent-path",
        tried.join(", ")
    ))
}

/// Run the agent and read its snapshot.
pub fn collect(explicit: Option<&Path>) -> Loaded {
    let agent_err = |message: String| Loaded::err("local", InputError::Agent { message });
    let agent = match find_agent(explicit) {
        Ok(a) => a,
        Err(m) => return agent_err(m),
    };
    let mut child = match Command::new(&agent)
        .arg("collect")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return agent_err(format!("cannot run {}: {e}", agent.display())),
    };
    // Drain both pipes on threads so a chatty agent cannot block on a full pipe.
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = s.read_to_end(&mut b);
            b
        })
    });
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = s.read_to_end(&mut b);
            b
        })
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "{} collect timed out after {}s",
                    agent.display(),
                    TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(format!("waiting for {}: {e}", agent.display())),
        }
    };
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let status = match status {
        Ok(s) => s,
        Err(m) => return agent_err(m),
    };
    let err_text = String::from_utf8_lossy(&err);
    if out.iter().all(u8::is_ascii_whitespace) {
        return agent_err(format!(
            "{} collect exited with {status} and printed no snapshot{}",
            agent.display(),
            excerpt(&err_text)
        ));
    }
    let mut loaded = snapshot_json::parse_document("local", &String::from_utf8_lossy(&out));
    match loaded.len() {
        1 => loaded
            .pop()
            .unwrap_or_else(|| agent_err("no snapshot".into())),
        _ => agent_err(format!(
            "{} collect printed {} documents; expected one snapshot",
            agent.display(),
            loaded.len()
        )),
    }
}

fn excerpt(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = s.lines().rev().take(3).collect();
    let lines: Vec<&str> = lines.into_iter().rev().collect();
    format!(" (stderr: {})", lines.join(" | "))
}
