//! `diag collect` streams: each snapshot is on disk as soon as its node finished, while a
//! slow node is still running, over a fleet of real sshds (one per network namespace, see
//! `tests/src/sshd.rs`). Needs root and OpenSSH's sshd; fails instead of skipping when CI is
//! set.
//!
//! `rss_child` is the memory benchmark behind `bench/collect_rss.sh` (runs only when
//! COLLECT_RSS_N is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::sshd::{sshd_available, SshFleet};
use model::{FleetReport, Outcome, Snapshot};

const DIAG: &str = env!("CARGO_BIN_EXE_diag");

fn prerequisites() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root && sshd_available() {
        return true;
    }
    !e2e::prereq::skip("needs root and sshd (apt-get install openssh-server)")
}

/// A snapshot for node `name`, padded with `filler_kb` KiB of incompressible sysctls.
fn snapshot(name: &str, filler_kb: usize) -> Snapshot {
    let mut s = Snapshot::new(model::AgentInfo {
        name: "fake-agent".into(),
        version: "1".into(),
        inputs: vec![],
    });
    s.hostname = name.into();
    let mut values = std::collections::BTreeMap::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..filler_kb * 1024 / 80 {
        let mut v = String::new();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push_str(&format!("{x:016x}"));
        }
        values.insert(format!("net.filler.k{i}"), v);
    }
    s.sysctls = model::Section::ok(model::Sysctls { values });
    s
}

/// An agent script on the shared filesystem: prints `snap-<server ip>.json`; on the node
/// whose address is `hold`, first waits (bounded, 60 s) for the file `release`.
fn fake_agent(dir: &Path, hold: Option<&str>) -> PathBuf {
    let p = dir.join("fake-agent");
    let d = dir.display();
    let hold = hold.unwrap_or("none");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nset -- $SSH_CONNECTION\nip=$3\n\
             if [ \"$ip\" = \"{hold}\" ]; then i=0; while [ ! -e {d}/release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; fi\n\
             exec cat {d}/snap-$ip.json\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn prepare(
    n: usize,
    filler_kb: usize,
    hold: Option<usize>,
) -> (SshFleet, PathBuf, PathBuf, PathBuf) {
    let fleet = SshFleet::new(n).unwrap();
    for node in &fleet.nodes {
        std::fs::write(
            fleet.dir.path().join(format!("snap-{}.json", node.addr)),
            serde_json::to_vec(&snapshot(&node.addr, filler_kb)).unwrap(),
        )
        .unwrap();
    }
    let hold = hold.map(|i| fleet.nodes[i].addr.clone());
    let agent = fake_agent(fleet.dir.path(), hold.as_deref());
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(0..n))
        .unwrap();
    let hosts: String = fleet
        .nodes
        .iter()
        .map(|x| format!("root@{}\n", x.addr))
        .collect();
    let hosts = fleet.write("hosts", &hosts).unwrap();
    (fleet, agent, kh, hosts)
}

fn collect_command(
    fleet: &SshFleet,
    agent: &Path,
    kh: &Path,
    hosts: &Path,
    out: &Path,
    jobs: &str,
) -> Command {
    let mut c = fleet.ops_command(Path::new(DIAG));
    c.arg("collect")
        .arg("--hosts")
        .arg(hosts)
        .arg("-i")
        .arg(&fleet.client_key)
        .args(["--no-ssh-agent", "--known-hosts"])
        .arg(kh)
        .arg("--agent-path")
        .arg(agent)
        .args(["-j", jobs, "--no-progress", "--connect-timeout", "20"])
        .arg("-d")
        .arg(out)
        .env("HOME", fleet.dir.path())
        .stdin(Stdio::null());
    c
}

fn snapshot_files(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json") && n != "fleet.json" && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// 16 nodes, node 5 held back by its agent: the other 15 snapshots are on disk, whole, while
/// `diag collect` is still running and before fleet.json exists; then node 5 is released and
/// the run ends with all 16.
#[test]
fn snapshots_are_written_as_nodes_finish() {
    if !prerequisites() {
        return;
    }
    let n = 16;
    let (fleet, agent, kh, hosts) = prepare(n, 4, Some(5));
    fleet.wait_ready(Duration::from_secs(30)).unwrap();
    let out = fleet.dir.path().join("out");
    let mut child = collect_command(&fleet, &agent, &kh, &hosts, &out, "64")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut files = Vec::new();
    while Instant::now() < deadline {
        files = snapshot_files(&out);
        if files.len() >= n - 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "diag collect ended before the held node was released ({} files)",
            files.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        files.len(),
        n - 1,
        "15 snapshots written while one node is held: {files:?}"
    );
    let held = format!("{}.json", fleet.nodes[5].addr);
    assert!(!files.contains(&held), "{files:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still going"
    );
    assert!(
        !out.join("fleet.json").exists(),
        "fleet.json is written last"
    );
    for f in &files {
        let s = Snapshot::from_json(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap();
        assert_eq!(
            format!("{}.json", s.hostname),
            *f,
            "each file is that node's, whole"
        );
    }

    std::fs::write(fleet.dir.path().join("release"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "diag collect did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report: FleetReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(report.nodes.len(), n);
    for (node, r) in fleet.nodes.iter().zip(&report.nodes) {
        assert_eq!(r.name, node.addr, "fleet.json in target order");
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(
            r.snapshot.as_deref(),
            Some(format!("{}.json", node.addr).as_str())
        );
    }
    assert_eq!(snapshot_files(&out).len(), n);
}

/// Benchmark child for `bench/collect_rss.sh`: for each N in COLLECT_RSS_N, collects N nodes
/// whose snapshots are COLLECT_RSS_KB KiB each with `-j COLLECT_RSS_JOBS`, under GNU time, and
/// prints `BENCH collect n=.. jobs=.. snapshot_kb=.. peak_rss_kb=.. wall_s=.. ok=..`.
#[test]
fn rss_child() {
    let Ok(sizes) = std::env::var("COLLECT_RSS_N") else {
        return;
    };
    let kb: usize = std::env::var("COLLECT_RSS_KB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let jobs = std::env::var("COLLECT_RSS_JOBS").unwrap_or_else(|_| "4".into());
    for n in sizes.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
        let (fleet, agent, kh, hosts) = prepare(n, kb, None);
        fleet.wait_ready(Duration::from_secs(60)).unwrap();
        let out = fleet.dir.path().join("out");
        let timefile = fleet.dir.path().join("time");
        let cmd = collect_command(&fleet, &agent, &kh, &hosts, &out, &jobs);
        // ip netns exec OPS /usr/bin/time -f ... -o FILE diag collect ...
        let mut args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
        let prog_at = args.iter().position(|a| a == DIAG).unwrap();
        let tail = args.split_off(prog_at);
        let st = Command::new("ip")
            .args(&args[..])
            .args(["/usr/bin/time", "-f", "%e %M", "-o"])
            .arg(&timefile)
            .args(&tail)
            .env("HOME", fleet.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let t = std::fs::read_to_string(&timefile).unwrap();
        let mut it = t.split_whitespace();
        let wall = it.next().unwrap_or("?");
        let rss = it.next().unwrap_or("?");
        let report: FleetReport =
            serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap())
                .unwrap();
        let ok = report
            .nodes
            .iter()
            .filter(|x| x.outcome.is_success())
            .count();
        println!(
            "BENCH collect n={n} jobs={jobs} snapshot_kb={kb} peak_rss_kb={rss} wall_s={wall} ok={ok} exit={}",
            st.code().unwrap_or(-1)
        );
    }
}
