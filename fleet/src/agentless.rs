//! `--agentless`: the standard commands (the table in [`capture::agentless::COMMANDS`]) run
//! in one remote script (one SSH exec), each output delimited by a per-run random token; the
//! snapshot is built by the `capture` crate.

use std::time::Duration;

use capture::agentless::{Needs, COMMANDS, NO_FILE_MARK, TOKEN_PREFIX};
use model::Outcome;

use crate::outcome::{failed_sections, sudo_prefix, with_timeout, Classified};
use crate::quote::shell_join;
use crate::ssh::ExecOutput;

pub use capture::agentless::{
    build_snapshot, split_sections, RawSection, CNI_LOG_DIR, CONNTRACK_LINES, CONNTRACK_SAMPLE,
    LOG_TAIL_BYTES,
};

/// The remote script. `$1` is the delimiter token. Each section prints
/// `TOKEN BEGIN name`, its stdout, `TOKEN END name rc` (`nofile` when the file it reads is
/// absent), then its stderr between `TOKEN STDERR name` and `TOKEN STDERR-END name`.
fn script() -> String {
    let mut s = r#"T=$1
e=$(mktemp) || exit 70
trap 'rm -f "$e"' EXIT
sec() {
  n=$1; k=$2; p=$3; shift 3
  printf '\n%s BEGIN %s\n' "$T" "$n"
  if [ "$k" = file ]; then
    if [ -e "$p" ]; then "$@" 2>"$e"; rc=$?; else rc=NOFILE; : >"$e"; fi
  elif command -v "$p" >/dev/null 2>&1; then "$@" 2>"$e"; rc=$?; else rc=127; printf '%s: command not found\n' "$p" >"$e"; fi
  printf '\n%s END %s %s\n' "$T" "$n" "$rc"
  printf '%s STDERR %s\n' "$T" "$n"; head -c 2000 "$e"; printf '\n%s STDERR-END %s\n' "$T" "$n"
}
"#
    .replace("NOFILE", NO_FILE_MARK);
    for c in COMMANDS {
        let (k, p) = match c.needs {
            Needs::Program(p) => ("program", p),
            Needs::File(p) => ("file", p),
        };
        s.push_str(&format!(
            "sec {} {k} {} {}\n",
            shell_join(&[c.id]),
            shell_join(&[p]),
            shell_join(c.argv)
        ));
    }
    s.push_str("exit 0\n");
    s
}

/// The exec string: `[sudo -n] sh -c <timeout wrapper> sh SECS sh -c <script> sh TOKEN`.
pub fn remote_command(sudo: bool, user: &str, timeout: Duration) -> String {
    let token = format!("{TOKEN_PREFIX}{:016x}", rand::random::<u64>());
    let mut argv = sudo_prefix(sudo, user);
    argv.extend(with_timeout(timeout));
    argv.extend(["sh".into(), "-c".into(), script(), "sh".into(), token]);
    shell_join(&argv)
}

/// Maps the agentless script's result to an outcome and a snapshot.
pub fn classify(out: &ExecOutput, name: &str) -> Classified {
    let text = String::from_utf8_lossy(&out.stdout);
    let raw = split_sections(&text);
    let stderr = if out.stderr.is_empty() {
        None
    } else {
        Some(
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect(),
        )
    };
    if raw.is_empty() {
        let (outcome, error) = match out.exit_status {
            Some(124) | Some(137) => (
                Outcome::Timeout,
                "agentless script exceeded the command timeout and was killed on the node"
                    .to_string(),
            ),
            Some(0) => (
                Outcome::InvalidOutput,
                "agentless script printed no sections".to_string(),
            ),
            Some(c) => (Outcome::AgentError, format!("agentless script exited {c}")),
            None => (
                Outcome::AgentError,
                "agentless script ended without an exit status".to_string(),
            ),
        };
        return Classified {
            outcome,
            error: Some(error),
            stderr,
            failed_sections: Vec::new(),
            snapshot: None,
        };
    }
    let snap = build_snapshot(&raw, name);
    let failed = failed_sections(&snap);
    let timed_out = matches!(out.exit_status, Some(124) | Some(137));
    let outcome = if failed.is_empty() && !timed_out {
        Outcome::Ok
    } else {
        Outcome::Partial
    };
    let error = if timed_out {
        Some("agentless script hit the command timeout; later sections are missing".to_string())
    } else if failed.is_empty() {
        None
    } else {
        Some(format!("{} section(s) not ok", failed.len()))
    };
    Classified {
        outcome,
        error,
        stderr,
        failed_sections: failed,
        snapshot: Some(snap),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use capture::status::CommandEnd;

    #[test]
    fn script_runs_and_splits_in_local_sh() {
        // Run the real script locally (in whatever namespace the test runs): sections must
        // all come back, each with an rc, whether or not the tool is installed here.
        let cmd = remote_command(false, "root", Duration::from_secs(30));
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        let raw = split_sections(&text);
        for c in COMMANDS {
            let r = raw
                .get(c.id)
                .unwrap_or_else(|| panic!("section {} missing", c.id));
            assert_ne!(r.end, CommandEnd::Unfinished, "{} did not finish", c.id);
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(raw["hostname"].stdout.trim(), host.trim());
        assert_eq!(raw["hostname"].end, CommandEnd::Exit(0));
        // A log file that does not exist here is reported as absent, not as a failure.
        for log in ["ipamd.log", "plugin.log"] {
            let path = std::path::Path::new(CNI_LOG_DIR).join(log);
            if !path.exists() {
                assert_eq!(raw[&format!("log:{log}")].end, CommandEnd::NoFile);
            }
        }
    }

    #[test]
    fn classify_empty_and_timeout() {
        let o = ExecOutput {
            exit_status: Some(124),
            ..Default::default()
        };
        assert_eq!(classify(&o, "n").outcome, Outcome::Timeout);
        let o = ExecOutput {
            exit_status: Some(0),
            stdout: b"garbage".to_vec(),
            ..Default::default()
        };
        assert_eq!(classify(&o, "n").outcome, Outcome::InvalidOutput);
    }
}
