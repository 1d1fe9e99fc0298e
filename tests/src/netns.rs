//! Network namespaces and the one place that spawns processes for the harness.
//!
//! Every namespace the harness creates is named `ekd-<pid>-<counter>-<role>` (tests) or
//! `ekd-emu-<name>-<role>` (`emulate-node`), deleted by name on drop, and every process the
//! harness starts inside one is killed by PID before the namespace goes away. Interfaces are
//! created directly inside their namespaces (`ip -n A link add … peer … netns B`), so the root
//! namespace never sees them and their names only need to be unique per namespace.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Default bound for one harness command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix shared by every namespace the harness creates.
pub const NS_PREFIX: &str = "ekd-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh `ekd-<pid>-<counter>` stem, unique on this machine while this process lives.
pub fn unique_stem() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{NS_PREFIX}{}-{n}", std::process::id())
}

/// The harness changes kernel state in namespaces it creates: it needs root (CAP_NET_ADMIN,
/// CAP_SYS_ADMIN) and iproute2. Fails with a message saying so.
pub fn require_root() -> Result<()> {
    let uid = check(&["id", "-u"]).context("running `id -u`")?;
    if uid.trim() != "0" {
        bail!(
            "these tests create network namespaces and must run as root (uid is {})",
            uid.trim()
        );
    }
    check(&["ip", "-V"]).context("iproute2 (`ip`) is required")?;
    Ok(())
}

/// Run `argv` with a deadline; the child is killed when the deadline passes. Never goes
/// through a shell. Stdout/stderr are captured.
pub fn run_with(argv: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning `{}`", argv.join(" ")))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .with_context(|| format!("writing stdin of `{}`", argv.join(" ")))?;
    }
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let out_t = drain(child.stdout.take());
    let err_t = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().context("waiting for child")? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{}` timed out after {:?}", argv.join(" "), timeout);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Run and require exit status 0; returns stdout as text.
pub fn check(argv: &[&str]) -> Result<String> {
    check_with(argv, None)
}

/// [`check`] with data on stdin.
pub fn check_with(argv: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let out = run_with(argv, stdin, CMD_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("non-UTF-8 output of `{}`", argv[0]))
}

/// A named network namespace owned by this handle: deleted (after killing every process
/// still inside it) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    owned: bool,
}

impl NetNs {
    /// Create `name`. Fails if it already exists.
    pub fn create(name: &str) -> Result<NetNs> {
        if !name.starts_with(NS_PREFIX) {
            bail!("namespace name {name:?} must start with {NS_PREFIX:?}");
        }
        check(&["ip", "netns", "add", name]).with_context(|| format!("creating netns {name}"))?;
        let ns = NetNs {
            name: name.to_string(),
            owned: true,
        };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A handle to an existing namespace that is not deleted on drop.
    pub fn attach(name: &str) -> NetNs {
        NetNs {
            name: name.to_string(),
            owned: false,
        }
    }

    /// Stop deleting the namespace on drop (used by `emulate-node up`).
    pub fn persist(&mut self) {
        self.owned = false;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <ns> argv…` with the default timeout.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.exec_timeout(argv, CMD_TIMEOUT)
    }

    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Result<Output> {
        run_with(&self.argv(argv), None, timeout)
    }

    /// Run inside the namespace, require success, return stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> Result<String> {
        check(&self.argv(argv))
    }

    /// [`NetNs::exec_ok`] with data on stdin (`ip -batch -`, `iptables-restore`).
    pub fn exec_stdin(&self, argv: &[&str], stdin: &str) -> Result<String> {
        check_with(&self.argv(argv), Some(stdin.as_bytes()))
    }

    /// Run a batch of `ip` commands (one per line, without the leading `ip`) in this netns.
    pub fn ip_batch(&self, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let script = lines.join("\n") + "\n";
        check_with(
            &["ip", "-n", &self.name, "-batch", "-"],
            Some(script.as_bytes()),
        )
        .with_context(|| format!("ip -batch in {}:\n{script}", self.name))?;
        Ok(())
    }

    /// Write a sysctl inside the namespace (`net.ipv4.ip_forward` → /proc/sys/net/ipv4/ip_forward).
    pub fn sysctl_set(&self, key: &str, value: &str) -> Result<()> {
        self.exec_ok(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(|_| ())
    }

    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        Ok(self.exec_ok(&["sysctl", "-n", key])?.trim().to_string())
    }

    /// Start a long-running process inside the namespace with stdout piped and stderr
    /// appended to `log`. The caller owns the child and must kill it; [`NetNs`] drop also
    /// kills anything left inside.
    pub fn spawn(&self, argv: &[&str], log: &std::path::Path) -> Result<Child> {
        let full = self.argv(argv);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        Command::new(full[0])
            .args(&full[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning `{}` in {}", argv.join(" "), self.name))
    }

    /// PIDs of processes inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        check(&["ip", "netns", "pids", &self.name])
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn argv<'a>(&'a self, argv: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(argv);
        v
    }
}

/// Kill one PID (SIGKILL) that this harness started.
pub fn kill_pid(pid: u32) {
    let _ = run_with(
        &["kill", "-9", &pid.to_string()],
        None,
        Duration::from_secs(5),
    );
}

/// Kill every process inside `name` and delete the namespace. Missing namespaces are fine.
pub fn delete_ns(name: &str) {
    let ns = NetNs::attach(name);
    for pid in ns.pids() {
        kill_pid(pid);
    }
    let _ = run_with(&["ip", "netns", "del", name], None, Duration::from_secs(10));
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.owned {
            delete_ns(&self.name);
        }
    }
}

/// Names of all namespaces (`ip netns list`).
pub fn list_namespaces() -> Vec<String> {
    check(&["ip", "netns", "list"])
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Delete namespaces left behind by harness processes that no longer run
/// (`ekd-<pid>-<n>-…` whose `<pid>` is gone, e.g. after SIGKILL). Namespaces of living
/// processes and of `emulate-node` are left alone.
pub fn cleanup_stale() {
    for name in list_namespaces() {
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(n)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(pid), true) = (pid.parse::<u32>(), n.chars().all(|c| c.is_ascii_digit())) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            delete_ns(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_timeouts_and_failures() {
        let err = run_with(&["sleep", "5"], None, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(check(&["false"]).is_err());
        assert_eq!(check_with(&["cat"], Some(b"hi")).unwrap(), "hi");
    }

    #[test]
    fn stems_are_unique() {
        assert_ne!(unique_stem(), unique_stem());
    }
}
