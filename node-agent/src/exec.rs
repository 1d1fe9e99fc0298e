//! The one place that spawns processes.
//!
//! Every external tool the agent runs goes through [`run`]: argv only (never a shell), a
//! cleared environment (only `PATH` and `LC_ALL=C`, so output is not localised and nothing
//! from the caller's environment changes the tool's behaviour), stdin closed, a timeout, and
//! `kill_on_drop` so a tool that hangs is killed when its collector gives up.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Longest stderr excerpt carried into an error.
const STDERR_EXCERPT: usize = 300;

/// Output of a command that ran to completion (any exit status).
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The command line, for `sources` and messages.
    pub command: String,
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_string(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout as text, taking the buffer (no copy when it is valid UTF-8, as tool output is).
    pub fn take_stdout(&mut self) -> String {
        match String::from_utf8(std::mem::take(&mut self.stdout)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// A short, single-line excerpt of stderr for reasons and warnings.
    pub fn stderr_excerpt(&self) -> String {
        excerpt(&self.stderr)
    }

    /// Fail unless the exit status is 0.
    pub fn check(self) -> Result<ExecOutput, ExecError> {
        if self.success() {
            Ok(self)
        } else {
            Err(ExecError::Status {
                command: self.command.clone(),
                status: self.status,
                stderr: self.stderr_excerpt(),
            })
        }
    }
}

/// Why a command produced no usable output.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The binary is not installed (not on PATH): the source is `unavailable`.
    #[error("{binary} not found on PATH")]
    NotFound { binary: String },
    #[error("{command} timed out after {}", crate::duration::format(*.after))]
    Timeout { command: String, after: Duration },
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} exited with {}{}", status_text(*.status), stderr_suffix(.stderr))]
    Status {
        command: String,
        status: Option<i32>,
        stderr: String,
    },
}

impl ExecError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ExecError::NotFound { .. })
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, ExecError::Timeout { .. })
    }
}

fn status_text(status: Option<i32>) -> String {
    match status {
        Some(c) => format!("status {c}"),
        None => "a signal".to_string(),
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// First [`STDERR_EXCERPT`] characters of `bytes`, lines joined with ` | `.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut out: String = joined.chars().take(STDERR_EXCERPT).collect();
    if out.len() < joined.len() {
        out.push('…');
    }
    out
}

/// The PATH the agent searches and passes on: the caller's, else a standard one.
pub fn search_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        })
}

/// Full path of `binary` on PATH (or `binary` itself when it contains a `/` and exists).
pub fn which(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        let p = Path::new(binary);
        return is_executable(p).then(|| p.to_path_buf());
    }
    std::env::split_paths(&search_path())
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Run `binary args…` with a timeout. Never goes through a shell.
///
/// A missing binary is [`ExecError::NotFound`]; a command still running after `timeout` is
/// killed and reported as [`ExecError::Timeout`]. A non-zero exit is *not* an error here
/// (some tools print useful output and exit 1); use [`ExecOutput::check`].
pub async fn run(binary: &str, args: &[&str], timeout: Duration) -> Result<ExecOutput, ExecError> {
    let command = std::iter::once(binary)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let path = which(binary).ok_or_else(|| ExecError::NotFound {
        binary: binary.to_string(),
    })?;
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .env_clear()
        .env("PATH", search_path())
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| ExecError::Spawn {
        command: command.clone(),
        source,
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(ExecOutput {
            command,
            status: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Ok(Err(source)) => Err(ExecError::Spawn { command, source }),
        // Dropping the future drops the child, and kill_on_drop kills it.
        Err(_) => Err(ExecError::Timeout {
            command,
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn missing_binary_is_not_found() {
        let err = run(
            "definitely-not-a-binary-eksdiag",
            &["-x"],
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("definitely-not-a-binary-eksdiag"));
    }

    #[tokio::test]
    async fn hang_is_killed_at_timeout() {
        let start = Instant::now();
        let err = run("sleep", &["30"], Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(err.to_string().contains("timed out after 300ms"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn captures_output_status_and_clears_env() {
        // `env` prints the environment the child got: only PATH and LC_ALL.
        let out = run("env", &[], Duration::from_secs(5)).await.unwrap();
        assert!(out.success());
        let mut names: Vec<String> = out
            .stdout_string()
            .lines()
            .filter_map(|l| l.split('=').next().map(str::to_string))
            .collect();
        names.sort();
        assert_eq!(names, vec!["LC_ALL".to_string(), "PATH".to_string()]);

        let out = run("ls", &["/definitely/not/here"], Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!out.success());
        let err = out.check().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("ls /definitely/not/here exited with status"),
            "{text}"
        );
        assert!(text.contains("No such file"), "{text}");
    }

    #[test]
    fn excerpt_joins_and_bounds() {
        assert_eq!(excerpt(b"a\n\n b \n"), "a | b");
        let long = vec![b'x'; 1000];
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), STDERR_EXCERPT + 1);
    }
}
