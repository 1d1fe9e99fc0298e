//! `diag check --wait` with an input that changes between rounds: the rollout it exists for
//! (`kubectl set env … RANDOMIZESNAT=prng`, aws-node restarts, the SNAT rule is rewritten).
//! Round 1 sees `--random`, the test rewrites the capture to `--random-fully` after round 1 is
//! reported, and a later round must re-read the input and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::fixtures;

#[test]
fn check_wait_rereads_an_input_that_changes_between_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixtures().join("captures/node-a")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let save = dir.join("iptables-save.txt");
    let fully = std::fs::read_to_string(&save).unwrap();
    let snat = "--to-source 192.168.1.251 --random-fully";
    assert!(fully.contains(snat), "node-a's SNAT rule changed");
    std::fs::write(
        &save,
        fully.replace(snat, "--to-source 192.168.1.251 --random"),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_diag"))
        .args(["check", "--from"])
        .arg(&dir)
        .args([
            "--expect",
            "random=prng",
            "--wait",
            "60s",
            "--interval",
            "1s",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Round 1 must fail on the `--random` rule; only then change the input.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no round-1 progress line");
    assert!(
        first.starts_with("diag check: round 1:") && first.contains("0 passed, 1 failed"),
        "{first}"
    );
    std::fs::write(&save, &fully).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("diag check --wait did not stop after the input was fixed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}\n{stdout}");
    let last = rest.last().expect("a final round line");
    assert!(
        last.contains("1 passed, 0 failed") && !last.contains("next round"),
        "{rest:?}"
    );
    assert!(
        !last.starts_with("diag check: round 1:"),
        "a later round passed: {rest:?}"
    );
    assert!(stdout.contains("PASS"), "{stdout}");
}
