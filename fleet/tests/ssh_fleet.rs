#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SSH path end to end against real OpenSSH sshds, each in its own network namespace,
//! with the collector (`diag-fleet`) running in an "ops" namespace bridged to them.
//!
//! Needs root, `ip`, `/usr/sbin/sshd` and `ssh-keygen`; the agent tests need the node-agent
//! binary (`cargo build -p node-agent`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::sshd::{sshd_available, SshFleet};
use model::{FleetReport, NodeOutcome, Outcome, Snapshot};

/// `diag-fleet` (`diag collect` with `-o DIR`) lives in the diag crate since fleet became a
/// plain library: build it first (`cargo build -p diag --bin diag-fleet`) or set $EKD_DIAG_FLEET.
fn fleet_bin() -> std::path::PathBuf {
    e2e::doubles::sibling_bin(
        "diag-fleet",
        "EKD_DIAG_FLEET",
        "cargo build -p diag --bin diag-fleet",
    )
    .unwrap()
}

/// Missing prerequisites go through `e2e::prereq`: a skip locally, a failure on CI, so a
/// green CI run means the fleet tests really ran.
fn skip_without_sshd() -> bool {
    e2e::prereq::missing(
        !sshd_available(),
        "/usr/sbin/sshd or ssh-keygen not installed (apt-get install openssh-server)",
    )
}

/// The node-agent binary: $NODE_AGENT_BIN, next to this test's target dir, or the workspace
/// target dir.
fn node_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NODE_AGENT_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> → target/<profile>/node-agent
    let mut cands = vec![exe.parent()?.parent()?.join("node-agent")];
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for prof in ["debug", "release"] {
        cands.push(ws.join("target").join(prof).join("node-agent"));
    }
    let found = cands.into_iter().find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "node-agent binary not found; build it with `cargo build -p node-agent` \
             (or set NODE_AGENT_BIN)"
        );
    }
    found
}

struct Run {
    code: i32,
    report: FleetReport,
    out: PathBuf,
    stderr: String,
    wall: Duration,
}

impl Run {
    fn node(&self, name: &str) -> &NodeOutcome {
        self.report
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("node {name} not in report: {:#?}", self.report.nodes))
    }

    fn snapshot(&self, n: &NodeOutcome) -> Snapshot {
        let f = n.snapshot.as_ref().expect("snapshot file");
        Snapshot::from_json(&std::fs::read_to_string(self.out.join(f)).unwrap()).unwrap()
    }
}

/// Runs diag-fleet inside the ops namespace.
fn collect(fleet: &SshFleet, tag: &str, hosts: &str, extra: &[&str]) -> Run {
    let hosts_file = fleet.write(&format!("hosts-{tag}"), hosts).unwrap();
    let out = fleet.dir.path().join(format!("out-{tag}"));
    let mut cmd = fleet.ops_command(&fleet_bin());
    cmd.arg("--hosts")
        .arg(&hosts_file)
        .arg("-i")
        .arg(&fleet.client_key)
        .arg("--no-ssh-agent")
        .arg("-o")
        .arg(&out)
        .args(extra)
        .env("HOME", fleet.dir.path())
        .stdin(Stdio::null());
    let t = Instant::now();
    let o = cmd.output().unwrap();
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let report: FleetReport = serde_json::from_str(
        &std::fs::read_to_string(out.join("fleet.json"))
            .unwrap_or_else(|e| panic!("no fleet.json ({e}); stderr: {stderr}")),
    )
    .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        report,
        out,
        stderr,
        wall,
    }
}

fn hosts_for(fleet: &SshFleet, which: impl IntoIterator<Item = usize>) -> String {
    which
        .into_iter()
        .map(|i| format!("root@{}\n", fleet.nodes[i].addr))
        .collect()
}

/// Child mode, not a test: a userland TCP relay that delays every chunk (the kernel here has
/// no netem). `start_relay` runs it with `--ignored --exact relay_child` and
/// FLEET_TEST_RELAY="listen_addr|target_addr|delay_ms"; without that variable it fails.
#[test]
#[ignore = "child process of the latency tests (start_relay), not a test"]
fn relay_child() {
    let spec = std::env::var("FLEET_TEST_RELAY")
        .expect("relay_child is a child mode: set FLEET_TEST_RELAY=listen|target|delay_ms");
    let parts: Vec<&str> = spec.split('|').collect();
    let (listen, target, delay) = (
        parts[0].to_string(),
        parts[1].to_string(),
        Duration::from_millis(parts[2].parse().unwrap()),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind(&listen).await.unwrap();
        let serve = async {
            loop {
                let (down, _) = l.accept().await.unwrap();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(up) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut dr, mut dw) = down.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    let a = async move {
                        let mut b = vec![0u8; 16384];
                        while let Ok(n) = dr.read(&mut b).await {
                            if n == 0 {
                                break;
                            }
                            tokio::time::sleep(delay).await;
                            if uw.write_all(&b[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let c = async move {
                        let mut b = vec![0u8; 16384];
                        while let Ok(n) = ur.read(&mut b).await {
                            if n == 0 {
                                break;
                            }
                            tokio::time::sleep(delay).await;
                            if dw.write_all(&b[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::join!(a, c);
                });
            }
        };
        // Bounded: the relay stops by itself even if nobody kills it.
        let _ = tokio::time::timeout(Duration::from_secs(180), serve).await;
    });
}

fn start_relay(fleet: &mut SshFleet, listen: &str, target: &str, delay_ms: u64) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = fleet.ops_command(&exe);
    cmd.args([
        "relay_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("FLEET_TEST_RELAY", format!("{listen}|{target}|{delay_ms}"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    fleet.spawn_in_ops(cmd).unwrap();
    let (host, port) = listen.rsplit_once(':').unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", &fleet.ops, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{host}/{port}"))
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "relay did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 24 targets: 20 healthy, one stopped, one with a rotated host key, one missing from
/// known_hosts, one behind a slow relay. Every node ends with exactly one outcome, the
/// healthy ones with real node-agent snapshots, and the slow one times out within bound.
#[test]
fn fleet_of_sshds_end_to_end() {
    if skip_without_sshd() {
        return;
    }
    let Some(agent) = e2e::prereq::need(node_agent(), "fleet_of_sshds_end_to_end needs node-agent")
    else {
        return;
    };
    let mut fleet = SshFleet::new(23).unwrap();
    // known_hosts for 0..=22 except 21 (unknown); 22's key is rotated after recording.
    let kh_text = fleet.known_hosts_lines((0..23).filter(|i| *i != 21));
    let slow_target = format!("{}:22", fleet.nodes[0].addr);
    start_relay(&mut fleet, "127.0.0.1:2201", &slow_target, 2000);
    let kh_text = format!("{kh_text}[127.0.0.1]:2201 {}\n", fleet.nodes[0].host_key);
    let kh = fleet.write("known_hosts", &kh_text).unwrap();
    fleet.stop_node(20);
    fleet.rotate_host_key(22).unwrap();

    let mut hosts = hosts_for(&fleet, 0..23);
    hosts.push_str("# the slow path to node 0\nroot@127.0.0.1:2201\n");
    let connect_timeout = 5.0;
    let r = collect(
        &fleet,
        "main",
        &hosts,
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--agent-path",
            agent.to_str().unwrap(),
            "--connect-timeout",
            "5",
            "--command-timeout",
            "60",
            "--retries",
            "1",
        ],
    );
    assert_eq!(r.report.nodes.len(), 24, "{}", r.stderr);
    assert_eq!(r.code, 1, "some failed → exit 1; stderr: {}", r.stderr);
    for i in 0..20 {
        let n = r.node(&fleet.nodes[i].addr);
        assert!(
            n.outcome.is_success(),
            "node {i}: {:?} {:?} {:?}",
            n.outcome,
            n.error,
            n.stderr
        );
        let s = r.snapshot(n);
        assert_eq!(s.agent.name, "node-agent");
        // The agent ran inside the node's namespace: it saw that node's address.
        let addrs = serde_json::to_string(&s.addresses).unwrap();
        assert!(
            addrs.contains(&fleet.nodes[i].addr),
            "node {i} snapshot lacks its address"
        );
    }
    assert_eq!(r.node(&fleet.nodes[20].addr).outcome, Outcome::Unreachable);
    assert_eq!(
        r.node(&fleet.nodes[21].addr).outcome,
        Outcome::HostkeyUnknown
    );
    assert_eq!(
        r.node(&fleet.nodes[22].addr).outcome,
        Outcome::HostkeyMismatch
    );
    let slow = r.node("127.0.0.1");
    assert_eq!(slow.outcome, Outcome::Timeout, "{:?}", slow.error);
    assert!(
        slow.total_ms < (connect_timeout * 1000.0) as u64 + 2500,
        "timed out within its bound: {} ms",
        slow.total_ms
    );
    assert!(r.stderr.contains("20 ok"), "summary line: {}", r.stderr);
    assert!(r.stderr.contains("1 hostkey-mismatch"), "{}", r.stderr);
    // Strict mode never writes known_hosts.
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), kh_text);
    eprintln!("main run: {:.1}s", r.wall.as_secs_f64());

    // --accept-new-host-keys records the unknown key, and still refuses the changed one.
    let hosts = hosts_for(&fleet, [21, 22]);
    let r = collect(
        &fleet,
        "accept",
        &hosts,
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--agent-path",
            agent.to_str().unwrap(),
            "--accept-new-host-keys",
        ],
    );
    assert!(
        r.node(&fleet.nodes[21].addr).outcome.is_success(),
        "{:?}",
        r.report
    );
    assert_eq!(
        r.node(&fleet.nodes[22].addr).outcome,
        Outcome::HostkeyMismatch
    );
    let after = std::fs::read_to_string(&kh).unwrap();
    assert!(after.starts_with(&kh_text));
    assert!(after.contains(&fleet.nodes[21].addr));
    assert_eq!(after.lines().count(), kh_text.lines().count() + 1);
}

/// `-J`: nodes accept root only from the bastion's address; direct connections fail auth,
/// through the bastion they succeed, over one bastion connection.
#[test]
fn jump_host_multiplexes_one_bastion_connection() {
    if skip_without_sshd() {
        return;
    }
    let mut fleet = SshFleet::new(1).unwrap();
    let bastion = fleet.nodes[0].addr.clone();
    // Bastion logs accepted logins so they can be counted.
    fleet.stop_node(0);
    let b2 = fleet.add_node("LogLevel INFO").unwrap();
    let bastion_addr = fleet.nodes[b2].addr.clone();
    for _ in 0..4 {
        fleet
            .add_node(&format!("AllowUsers root@{bastion_addr}"))
            .unwrap();
    }
    fleet.wait_ready(Duration::from_secs(10)).unwrap();
    let _ = bastion;
    let agent = fleet
        .write(
            "agent.sh",
            "#!/bin/sh\necho \"$SSH_CONNECTION\" >&2\nexit 3\n",
        )
        .unwrap();
    make_exec(&agent);
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(1..6))
        .unwrap();
    let hosts = hosts_for(&fleet, 2..6);
    let common = [
        "--known-hosts",
        kh.to_str().unwrap(),
        "--agent-path",
        agent.to_str().unwrap(),
        "--connect-timeout",
        "5",
    ];
    let r = collect(&fleet, "direct", &hosts, &common);
    for n in &r.report.nodes {
        assert_eq!(n.outcome, Outcome::AuthFailed, "{n:?}");
    }
    assert_eq!(r.code, 2, "none reachable → exit 2");
    let jump = format!("root@{bastion_addr}");
    let mut args = common.to_vec();
    args.extend(["-J", &jump]);
    let r = collect(&fleet, "jump", &hosts, &args);
    for n in &r.report.nodes {
        // The script exits 3 with $SSH_CONNECTION on stderr: the connection came from the
        // bastion's address.
        assert_eq!(n.outcome, Outcome::AgentError, "{n:?}");
        let e = n.stderr.as_deref().unwrap_or("");
        assert!(e.starts_with(&bastion_addr), "connection source: {e}");
    }
    let log = fleet.nodes[b2].log();
    let logins = log.matches("Accepted publickey for root").count();
    assert_eq!(
        logins, 1,
        "one bastion connection for all nodes; log:\n{log}"
    );
}

fn make_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A command that outlives --command-timeout is reported `timeout` in bound and is killed
/// on the node; an absent agent is `agent-missing`.
#[test]
fn command_timeout_kills_remote_process_and_missing_agent() {
    if skip_without_sshd() {
        return;
    }
    let fleet = SshFleet::new(2).unwrap();
    let pidfile = fleet.dir.path().join("sleeper.pid");
    let agent = fleet
        .write(
            "sleepy-agent",
            // sshd runs in its own PID namespace; /proc is the host's, so /proc/self/stat
            // (opened by the shell itself) gives the host PID.
            &format!(
                "#!/bin/sh\nread -r p _ < /proc/self/stat\necho $p > {}\nexec sleep 47\n",
                pidfile.display()
            ),
        )
        .unwrap();
    make_exec(&agent);
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(0..2))
        .unwrap();
    let r = collect(
        &fleet,
        "slow",
        &hosts_for(&fleet, [0]),
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--agent-path",
            agent.to_str().unwrap(),
            "--command-timeout",
            "2",
        ],
    );
    let n = &r.report.nodes[0];
    assert_eq!(n.outcome, Outcome::Timeout, "{n:?}");
    assert!(n.total_ms < 2000 + 3000 + 3000, "{} ms", n.total_ms);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "remote sleep {pid} still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let r = collect(
        &fleet,
        "missing",
        &hosts_for(&fleet, [1]),
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--agent-path",
            "/nonexistent/node-agent",
        ],
    );
    assert_eq!(
        r.report.nodes[0].outcome,
        Outcome::AgentMissing,
        "{:?}",
        r.report
    );
    assert_eq!(r.code, 2);
}

/// --push-agent uploads the real agent and runs it; --agentless builds a snapshot from
/// command output; both see the same node.
#[test]
fn push_agent_and_agentless() {
    if skip_without_sshd() {
        return;
    }
    let Some(agent) = e2e::prereq::need(node_agent(), "push_agent_and_agentless needs node-agent")
    else {
        return;
    };
    if e2e::prereq::missing(
        e2e::prereq::which("iptables").is_none(),
        "iptables not installed: the SNAT comparison would compare [] with []",
    ) {
        return;
    }
    let fleet = SshFleet::new(3).unwrap();
    // A VPC-CNI-like SNAT rule in each node's namespace.
    for n in &fleet.nodes {
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &n.ns,
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
            ])
            .args([
                "!",
                "-d",
                "10.0.0.0/8",
                "-m",
                "comment",
                "--comment",
                "AWS SNAT CHAIN",
            ])
            .args(["-j", "SNAT", "--to-source", &n.addr])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "adding the SNAT rule in {} failed", n.ns);
    }
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(0..3))
        .unwrap();
    let hosts = hosts_for(&fleet, 0..3);
    let pushed = collect(
        &fleet,
        "push",
        &hosts,
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--push-agent",
            "--agent-binary",
            agent.to_str().unwrap(),
        ],
    );
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let agentless = collect(
        &fleet,
        "agentless",
        &hosts,
        &["--known-hosts", kh.to_str().unwrap(), "--agentless"],
    );
    for i in 0..3 {
        let name = &fleet.nodes[i].addr;
        let a = pushed.snapshot(pushed.node(name));
        let n = agentless.node(name);
        assert!(n.outcome.is_success(), "{n:?}");
        let b = agentless.snapshot(n);
        assert_eq!(b.agent.name, "diag-agentless");
        assert_eq!(a.hostname, b.hostname, "same node seen by both");
        // Same section statuses in both modes (node/cni are unavailable in both here).
        let sa: Vec<_> = a
            .section_statuses()
            .into_iter()
            .map(|(n, st, _)| (n, st))
            .collect();
        let sb: Vec<_> = b
            .section_statuses()
            .into_iter()
            .map(|(n, st, _)| (n, st))
            .collect();
        assert_eq!(sa, sb, "section statuses, agent vs agentless");
        // Same data where both have it.
        let addrs = |s: &Snapshot| {
            let mut v: Vec<(String, String, u8)> = s
                .addresses
                .get()
                .unwrap()
                .iter()
                .map(|a| (a.ifname.clone(), a.local.to_string(), a.prefixlen))
                .collect();
            v.sort();
            v
        };
        assert_eq!(addrs(&a), addrs(&b), "addresses");
        assert!(addrs(&b).iter().any(|(_, ip, _)| ip == name));
        let routes = |s: &Snapshot| {
            let mut v: Vec<(u32, String, String)> = s
                .routes
                .get()
                .unwrap()
                .iter()
                .map(|r| (r.table, r.dst.to_string(), r.route_type.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(routes(&a), routes(&b), "routes");
        let rules = |s: &Snapshot| {
            let mut v: Vec<(u32, String)> = s
                .rules
                .get()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.priority,
                        format!(
                            "{:?} {:?} {:?} {:?} {}",
                            r.family, r.table, r.fwmark, r.fwmask, r.action
                        ),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(rules(&a), rules(&b), "rules");
        let snat = |s: &Snapshot| -> Vec<String> {
            let mut v: Vec<String> = s
                .iptables
                .get()
                .unwrap()
                .backends
                .iter()
                .flat_map(|d| d.tables.iter().filter(|t| t.name == "nat"))
                .flat_map(|t| t.chains.iter().flat_map(|c| c.rules.iter()))
                .filter(|r| r.target.as_deref() == Some("SNAT"))
                .map(|r| format!("{} {:?} {:?}", r.chain, r.comment(), r.target_options))
                .collect();
            v.sort();
            v
        };
        assert_eq!(snat(&a), snat(&b), "SNAT rules");
        // The one rule added above, as added (not just "both sides agree").
        let snat_rules: Vec<&model::IptRule> = b
            .iptables
            .get()
            .unwrap()
            .backends
            .iter()
            .flat_map(|d| d.tables.iter().filter(|t| t.name == "nat"))
            .flat_map(|t| t.chains.iter().flat_map(|c| c.rules.iter()))
            .filter(|r| r.target.as_deref() == Some("SNAT"))
            .collect();
        assert_eq!(snat_rules.len(), 1, "the SNAT rule was collected");
        let r = snat_rules[0];
        assert_eq!(r.chain, "POSTROUTING");
        assert_eq!(r.comment(), Some("AWS SNAT CHAIN"));
        assert_eq!(r.value("-d"), Some("10.0.0.0/8"));
        assert!(r.arg("-d").is_some_and(|a| a.negated), "! -d");
        assert_eq!(
            r.target_arg("--to-source").map(|a| a.values.join(" ")),
            Some(name.clone()),
            "--to-source"
        );
        let (sya, syb) = (a.sysctls.get().unwrap(), b.sysctls.get().unwrap());
        for key in ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"] {
            assert_eq!(sya.get(key), syb.get(key), "{key}");
            assert!(syb.get(key).is_some(), "{key} collected agentless");
        }
        // Conntrack: both modes report the namespace's table.
        assert_eq!(
            a.conntrack.get().and_then(|c| c.max),
            b.conntrack.get().and_then(|c| c.max),
            "nf_conntrack_max"
        );
    }
    // No agent copies left behind in the temp dirs.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("eks-diag."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `diag snat` over real sshds analyses each node as it arrives (the snapshots are not held
/// for the whole fleet): every reachable node has its view, in target order whatever order
/// they finished in, the stopped node is a `fleet.node-unreachable` finding and an input
/// error, and each view equals the one `diag snat --from` builds from the same node's
/// snapshot written by `diag collect` (a prepared snapshot, so both read the same input).
#[test]
fn diag_snat_streams_views_in_target_order() {
    if skip_without_sshd() {
        return;
    }
    let Some(agent) = e2e::prereq::need(node_agent(), "diag_snat_streams needs node-agent") else {
        return;
    };
    let diag =
        e2e::doubles::sibling_bin("diag", "EKD_DIAG", "cargo build -p diag --bin diag").unwrap();
    let mut fleet = SshFleet::new(5).unwrap();
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(0..5))
        .unwrap();
    // Each node prints its own prepared snapshot, node 0 after a delay so it finishes last.
    let mut names = Vec::new();
    for i in 0..5 {
        let snap = Command::new("ip")
            .args(["netns", "exec", &fleet.nodes[i].ns])
            .arg(&agent)
            .args(["collect", "--no-imds"])
            .output()
            .unwrap();
        assert!(!snap.stdout.is_empty());
        let mut v: serde_json::Value = serde_json::from_slice(&snap.stdout).unwrap();
        let host = format!("streamed-node-{i}");
        v["hostname"] = serde_json::Value::String(host.clone());
        names.push(host);
        let f = fleet
            .write(&format!("snap-{i}.json"), &v.to_string())
            .unwrap();
        let delay = if i == 0 { "1" } else { "0" };
        let script = fleet
            .write(
                &format!("agent-{i}"),
                &format!("#!/bin/sh\nsleep {delay}\nexec cat {}\n", f.display()),
            )
            .unwrap();
        make_exec(&script);
    }
    fleet.stop_node(3);
    // The same agent path on every node: a dispatcher keyed on the node's address.
    let mut disp = String::from("#!/bin/sh\ncase \"$(ip -4 -o addr show dev eth0)\" in\n");
    for (i, n) in fleet.nodes.iter().enumerate() {
        disp.push_str(&format!(
            "  *\" {}/\"*) exec {} ;;\n",
            n.addr,
            fleet.dir.path().join(format!("agent-{i}")).display()
        ));
    }
    disp.push_str("esac\nexit 127\n");
    let dispatcher = fleet.write("dispatch-agent", &disp).unwrap();
    make_exec(&dispatcher);
    let hosts = fleet.write("hosts", &hosts_for(&fleet, 0..5)).unwrap();
    let o = fleet
        .ops_command(&diag)
        .args(["snat", "-o", "json", "--hosts"])
        .arg(&hosts)
        .arg("-i")
        .arg(&fleet.client_key)
        .args(["--no-ssh-agent", "--retries", "0", "--known-hosts"])
        .arg(&kh)
        .arg("--agent-path")
        .arg(&dispatcher)
        .env("HOME", fleet.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}; stderr: {stderr}"));
    assert_eq!(o.status.code(), Some(2), "an input error → 2; {stderr}");
    let views = report["nodes"].as_array().unwrap();
    let got: Vec<&str> = views
        .iter()
        .map(|v| v["node"].as_str().unwrap_or_default())
        .collect();
    let want: Vec<&str> = [0, 1, 2, 4].iter().map(|i| names[*i].as_str()).collect();
    assert_eq!(got, want, "views in target order; {stderr}");
    let errors = report["input_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let down = &fleet.nodes[3].addr;
    assert!(
        errors[0].to_string().contains(down.as_str()),
        "{errors:?} names {down}"
    );
    let unreachable = report["fleet_findings"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert_eq!(unreachable[0]["rule"], "fleet.node-unreachable");
    // The same views from the snapshots on disk.
    for (k, i) in [0usize, 1, 2, 4].iter().enumerate() {
        let f = fleet.dir.path().join(format!("snap-{i}.json"));
        let o = Command::new(&diag)
            .args(["snat", "-o", "json", "--from"])
            .arg(&f)
            .output()
            .unwrap();
        let local: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut lv = local["nodes"][0].clone();
        let mut rv = views[k].clone();
        // The label differs (file path vs node name); the analysis must not.
        for v in [&mut lv, &mut rv] {
            if let Some(m) = v.as_object_mut() {
                m.remove("input");
                m.remove("label");
            }
        }
        assert_eq!(lv, rv, "node {i}");
    }
}

/// The seven raw commands people run by hand on a node (bench/node_cost.sh lists their
/// source): what parallel-ssh collects as raw text in bench/fleet.sh.
const RAW_SEVEN: &str = "ip addr; ip route show table all; ip rule; iptables-nft-save -c; \
    iptables-legacy-save -c; conntrack -L; sysctl -a 2>/dev/null | grep -E \
    'ip_forward|tcp_early_demux|nf_conntrack_max|nf_conntrack_count|conf.all.forwarding|disable_ipv6|ip_local_port_range|ip_local_reserved_ports|rp_filter'; \
    cat /var/log/aws-routed-eni/*";

/// Counts the nodes a bench leg delivered (from its output).
type LegCount = Box<dyn Fn(&str) -> usize>;

/// Runs `argv` in the fleet's ops namespace under GNU time; (wall s, peak RSS KB, exit code).
fn bench_timed(fleet: &SshFleet, tag: &str, argv: &[std::ffi::OsString]) -> (String, String, i32) {
    let timefile = fleet.dir.path().join(format!("time-{tag}"));
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &fleet.ops,
            "/usr/bin/time",
            "-f",
            "%e %M",
            "-o",
        ])
        .arg(&timefile)
        .args(argv)
        .env("HOME", fleet.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let t = std::fs::read_to_string(&timefile).unwrap();
    let (wall, rss) = t.trim().lines().last().unwrap().split_once(' ').unwrap();
    (wall.to_string(), rss.to_string(), st.code().unwrap_or(-1))
}

/// Files in `dir` that hold a snapshot (parallel-ssh's per-host output of `node-agent collect`).
fn snapshots_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path()).is_ok_and(|s| Snapshot::from_json(&s).is_ok())
                })
                .count()
        })
        .unwrap_or(0)
}

/// Files in `dir` with the raw text of the seven commands (`ip rule` always prints the
/// `from all lookup local` rule).
fn raw_outputs_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains("lookup local"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Benchmark mode for bench/fleet.sh (not a test): `--ignored --exact bench_child` with
/// FLEET_BENCH_N set (comma-separated fleet sizes); without it, it fails. For each size it
/// builds a fleet of real sshds (one network namespace each; FLEET_BENCH_RULES, when set, is
/// an `iptables-restore` file loaded into every node, e.g. an emulated EKS node's VPC CNI
/// rules), then runs FLEET_BENCH_REPS rounds of the legs in FLEET_BENCH_LEGS (default all),
/// rotating their order each round, each in the ops namespace under /usr/bin/time:
///
/// - `snat`: `diag snat` (EKD_DIAG) over the fleet, `-j 64`, the installed agent;
/// - `pssh-raw`: parallel-ssh `-p 64` collecting the raw text of the seven commands;
/// - `collect`: `diag-fleet -o DIR` (EKD_DIAG_FLEET), snapshots written, no analysis;
/// - `pssh-agent`: parallel-ssh running `node-agent collect` (raw JSON, not parsed);
/// - `snat-cat` / `pssh-cat`: both with an "agent" that only prints a prepared snapshot
///   of a node (no collection cost on the nodes: transport + parsing + analysis);
/// - `snat-timed`: `diag snat` with the agent under GNU time on each node (its CPU-seconds,
///   summed over the fleet, in the `agent_cpu_s` field).
///
/// Prints one `BENCH` line per leg, size and round, with the load average.
#[test]
#[ignore = "benchmark driver for bench/fleet.sh, not a test"]
fn bench_child() {
    use std::ffi::OsString;
    let sizes = std::env::var("FLEET_BENCH_N")
        .expect("bench_child is bench/fleet.sh's driver: set FLEET_BENCH_N=10,30,60");
    let reps: usize = std::env::var("FLEET_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let legs_all = [
        "snat",
        "pssh-raw",
        "collect",
        "pssh-agent",
        "snat-cat",
        "pssh-cat",
        "snat-timed",
    ];
    let legs: Vec<String> = std::env::var("FLEET_BENCH_LEGS")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_else(|_| legs_all.iter().map(|s| s.to_string()).collect());
    let agent = node_agent().expect("node-agent binary (cargo build -p node-agent)");
    let diag =
        e2e::doubles::sibling_bin("diag", "EKD_DIAG", "cargo build -p diag --bin diag").unwrap();
    let rules = std::env::var_os("FLEET_BENCH_RULES").map(PathBuf::from);
    let pssh = ["parallel-ssh", "pssh"]
        .into_iter()
        .find(|p| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {p}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("parallel-ssh not installed (apt-get install pssh)");
    for n in sizes.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
        let fleet = SshFleet::new(n).unwrap();
        if let Some(r) = &rules {
            for node in &fleet.nodes {
                let f = std::fs::File::open(r).unwrap();
                let st = Command::new("ip")
                    .args(["netns", "exec", &node.ns, "iptables-nft-restore"])
                    .stdin(f)
                    .status()
                    .unwrap();
                assert!(st.success(), "loading {} into {}", r.display(), node.ns);
            }
        }
        let kh = fleet
            .write("known_hosts", &fleet.known_hosts_lines(0..n))
            .unwrap();
        let hosts = fleet.write("hosts", &hosts_for(&fleet, 0..n)).unwrap();
        // The prepared snapshot for the *-cat legs: node 0's own, collected once.
        let snap = Command::new("ip")
            .args(["netns", "exec", &fleet.nodes[0].ns])
            .arg(&agent)
            .arg("collect")
            .output()
            .unwrap();
        let snap_file = fleet.dir.path().join("snapshot.json");
        std::fs::write(&snap_file, &snap.stdout).unwrap();
        let cat_agent = fleet
            .write(
                "cat-agent",
                &format!("#!/bin/sh\nexec cat {}\n", snap_file.display()),
            )
            .unwrap();
        make_exec(&cat_agent);
        let cpu_file = fleet.dir.path().join("agent-cpu");
        let timed_agent = fleet
            .write(
                "timed-agent",
                &format!(
                    "#!/bin/sh\nexec /usr/bin/time -a -o {} -f '%U %S' {} \"$@\"\n",
                    cpu_file.display(),
                    agent.display()
                ),
            )
            .unwrap();
        make_exec(&timed_agent);
        let ssh_opts = format!(
            "-i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10",
            fleet.client_key.display(),
            kh.display()
        );
        let diag_argv = |head: &[OsString], agent_path: &Path, tail: &[&str]| -> Vec<OsString> {
            let mut v: Vec<OsString> = head.to_vec();
            v.extend([
                "--hosts".into(),
                hosts.clone().into(),
                "-i".into(),
                fleet.client_key.clone().into(),
                "--no-ssh-agent".into(),
                "--known-hosts".into(),
                kh.clone().into(),
                "--agent-path".into(),
                agent_path.into(),
                "-j".into(),
                "64".into(),
            ]);
            v.extend(tail.iter().map(OsString::from));
            v
        };
        let pssh_argv = |out: &Path, command: String| -> Vec<OsString> {
            vec![
                pssh.into(),
                "-h".into(),
                hosts.clone().into(),
                "-p".into(),
                "64".into(),
                "-t".into(),
                "120".into(),
                "-x".into(),
                ssh_opts.clone().into(),
                "-o".into(),
                out.into(),
                command.into(),
            ]
        };
        for rep in 0..reps {
            let mut order = legs.clone();
            let k = rep % order.len().max(1);
            order.rotate_left(k);
            for leg in &order {
                let load = std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or("?")
                    .to_string();
                let out = fleet.dir.path().join(format!("out-{leg}-{rep}"));
                let _ = std::fs::remove_file(&cpu_file);
                let (argv, count): (Vec<OsString>, LegCount) = match leg.as_str() {
                    "snat" | "snat-cat" | "snat-timed" => {
                        let a = match leg.as_str() {
                            "snat" => agent.clone(),
                            "snat-cat" => cat_agent.clone(),
                            _ => timed_agent.clone(),
                        };
                        let mut argv = vec![OsString::from("sh"), "-c".into()];
                        // stdout (the report) to a file, to count the nodes it covers.
                        argv.push(r#"exec "$@" > "$0""#.into());
                        argv.push(out.clone().into());
                        argv.extend(diag_argv(
                            &[
                                diag.clone().into(),
                                "snat".into(),
                                "-o".into(),
                                "json".into(),
                            ],
                            &a,
                            &[],
                        ));
                        let out2 = out.clone();
                        (
                            argv,
                            Box::new(move |_| {
                                let v: serde_json::Value = std::fs::read_to_string(&out2)
                                    .ok()
                                    .and_then(|s| serde_json::from_str(&s).ok())
                                    .unwrap_or_default();
                                v["nodes"].as_array().map_or(0, |a| a.len())
                            }),
                        )
                    }
                    "collect" => {
                        let argv = diag_argv(
                            &[fleet_bin().into()],
                            &agent,
                            &["-o", out.to_str().unwrap(), "--no-progress"],
                        );
                        let out2 = out.clone();
                        (
                            argv,
                            Box::new(move |_| {
                                std::fs::read_to_string(out2.join("fleet.json"))
                                    .ok()
                                    .and_then(|s| serde_json::from_str::<FleetReport>(&s).ok())
                                    .map_or(0, |r| {
                                        r.nodes.iter().filter(|n| n.outcome.is_success()).count()
                                    })
                            }),
                        )
                    }
                    "pssh-raw" => {
                        let out2 = out.clone();
                        (
                            pssh_argv(&out, RAW_SEVEN.to_string()),
                            Box::new(move |_| raw_outputs_in(&out2)),
                        )
                    }
                    "pssh-agent" | "pssh-cat" => {
                        let a = if leg == "pssh-agent" {
                            &agent
                        } else {
                            &cat_agent
                        };
                        let out2 = out.clone();
                        (
                            pssh_argv(&out, format!("{} collect", a.display())),
                            Box::new(move |_| snapshots_in(&out2)),
                        )
                    }
                    other => panic!("unknown FLEET_BENCH_LEGS leg {other}"),
                };
                let (wall, rss, code) = bench_timed(&fleet, &format!("{leg}-{rep}"), &argv);
                let ok = count(leg);
                let cpu = std::fs::read_to_string(&cpu_file)
                    .map(|t| {
                        let s: f64 = t
                            .lines()
                            .filter_map(|l| {
                                let mut it = l.split_whitespace().map(|x| x.parse::<f64>());
                                match (it.next(), it.next()) {
                                    (Some(Ok(u)), Some(Ok(s))) => Some(u + s),
                                    _ => None,
                                }
                            })
                            .sum();
                        format!(" agent_cpu_s={s:.2}")
                    })
                    .unwrap_or_default();
                println!(
                    "BENCH leg={leg} n={n} rep={rep} wall_s={wall} peak_rss_kb={rss} ok={ok} exit={code} load1={load}{cpu}"
                );
            }
        }
    }
}

/// On an emulated EKS node (harness `EksNode`: VPC CNI iptables, policy rules, per-ENI route
/// tables, IMDS/ipamd doubles) reached over SSH from its VPC namespace, agentless mode
/// yields the same kernel-state sections as the agent, and — given the same IMDS/ipamd facts
/// (node, cni, cni_logs taken from the agent run) — the same findings.
#[test]
fn agentless_matches_agent_on_emulated_eks_node() {
    if skip_without_sshd() {
        return;
    }
    let Some(agent) = e2e::prereq::need(
        node_agent(),
        "agentless_matches_agent_on_emulated_eks_node needs node-agent",
    ) else {
        return;
    };
    let node = match e2e::node::EksNode::builder().build() {
        Ok(n) => n,
        Err(e) => {
            e2e::prereq::skip(&format!("cannot build an emulated EKS node: {e:#}"));
            return;
        }
    };
    let cfg = node.config().clone();
    // A fault the analysis must see in both modes.
    node.fault_delete_snat_rule().unwrap();
    let mut fleet = SshFleet::new(0).unwrap();
    let addr = cfg.primary_ip.to_string();
    let i = fleet
        .attach_sshd(&cfg.namespaces.node, &addr, &cfg.namespaces.vpc)
        .unwrap();
    // The agent needs the node's double endpoints: a wrapper replaces our `collect` argv.
    let wrapper = fleet
        .write(
            "agent-wrapper",
            &format!(
                "#!/bin/sh\nexec {} collect {}\n",
                fleet::shell_quote(agent.to_str().unwrap()),
                fleet::shell_join(&cfg.agent_args())
            ),
        )
        .unwrap();
    make_exec(&wrapper);
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines([i]))
        .unwrap();
    let hosts = fleet.write("hosts", &format!("root@{addr}\n")).unwrap();
    let run = |tag: &str, extra: &[&str]| -> Snapshot {
        let out = fleet.dir.path().join(format!("out-{tag}"));
        let o = SshFleet::ns_command(&cfg.namespaces.vpc, &fleet_bin())
            .arg("--hosts")
            .arg(&hosts)
            .arg("-i")
            .arg(&fleet.client_key)
            .args(["--no-ssh-agent", "--known-hosts"])
            .arg(&kh)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .env("HOME", fleet.dir.path())
            .output()
            .unwrap();
        let report: FleetReport =
            serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap())
                .unwrap();
        let n = &report.nodes[0];
        assert!(
            n.outcome.is_success(),
            "{tag}: {n:?}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        Snapshot::from_json(
            &std::fs::read_to_string(out.join(n.snapshot.as_ref().unwrap())).unwrap(),
        )
        .unwrap()
    };
    let a = run("agent", &["--agent-path", wrapper.to_str().unwrap()]);
    let b = run("agentless", &["--agentless"]);
    for name in [
        "addresses",
        "routes",
        "rules",
        "iptables",
        "sysctls",
        "conntrack",
    ] {
        let st = |s: &Snapshot| {
            s.section_statuses()
                .into_iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, st, _)| st)
        };
        assert_eq!(st(&a), st(&b), "{name} status");
    }
    let routes = |s: &Snapshot| {
        let mut v: Vec<String> = s
            .routes
            .get()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {:?} {:?}",
                    r.table, r.dst, r.route_type, r.gateway, r.dev
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(routes(&a), routes(&b), "routes incl. per-ENI tables");
    let rules = |s: &Snapshot| {
        let mut v: Vec<String> = s
            .rules
            .get()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} not={} from={:?} to={:?} iif={:?} oif={:?} fwmark={:?}/{:?} \
                     table={:?} {}",
                    r.priority,
                    r.family,
                    r.not,
                    r.src,
                    r.dst,
                    r.iif,
                    r.oif,
                    r.fwmark,
                    r.fwmask,
                    r.table,
                    r.action
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(rules(&a), rules(&b), "policy rules");
    let ipt = |s: &Snapshot| {
        let mut v: Vec<String> = s
            .iptables
            .get()
            .unwrap()
            .backends
            .iter()
            .flat_map(|d| {
                d.tables.iter().flat_map(move |t| {
                    t.chains.iter().flat_map(move |c| {
                        c.rules.iter().map(move |r| {
                            format!(
                                "{} {} {} {:?} {:?}",
                                d.backend, t.name, c.name, r.matches, r.target
                            )
                        })
                    })
                })
            })
            .collect();
        v.sort();
        v
    };
    assert!(!ipt(&b).is_empty());
    assert_eq!(ipt(&a), ipt(&b), "iptables rules of every backend");
    // Findings: the agentless kernel state plus the agent's IMDS/ipamd facts must give the
    // same findings as the agent snapshot.
    let mut hybrid = b.clone();
    hybrid.node = a.node.clone();
    hybrid.cni = a.cni.clone();
    hybrid.cni_logs = a.cni_logs.clone();
    let fa = analysis::analyze(&a);
    let fb = analysis::analyze(&hybrid);
    let key = |r: &model::NodeReport| {
        let mut v: Vec<(String, String)> = r
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.summary.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&fa), key(&fb), "findings agent vs agentless");
    // Equal is not enough ([] == [] if both miss it): the injected fault is seen, in both.
    for (mode, r) in [("agent", &fa), ("agentless", &fb)] {
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == "snat.chain-missing" && f.severity == model::Severity::Error),
            "{mode}: the deleted SNAT rule must raise snat.chain-missing; findings: {:?}",
            key(r)
        );
    }
}

/// Authentication through ssh-agent (no -i): an agent started here on a socket in the
/// fleet's temp dir (killed by PID), holding the client key.
#[test]
fn ssh_agent_authentication() {
    if skip_without_sshd() {
        return;
    }
    let fleet = SshFleet::new(2).unwrap();
    let sock = fleet.dir.path().join("agent.sock");
    let mut agent_proc = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() {
        if Instant::now() > deadline {
            let _ = agent_proc.kill();
            panic!("ssh-agent did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _guard = Kill(agent_proc);
    let added = Command::new("ssh-add")
        .arg(&fleet.client_key)
        .env("SSH_AUTH_SOCK", &sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    let script = fleet
        .write("agent.sh", "#!/bin/sh\necho via-agent >&2\nexit 9\n")
        .unwrap();
    make_exec(&script);
    let kh = fleet
        .write("known_hosts", &fleet.known_hosts_lines(0..2))
        .unwrap();
    let hosts = fleet.write("hosts", &hosts_for(&fleet, 0..2)).unwrap();
    let out = fleet.dir.path().join("out");
    let o = fleet
        .ops_command(&fleet_bin())
        .arg("--hosts")
        .arg(&hosts)
        .arg("--known-hosts")
        .arg(&kh)
        .arg("--agent-path")
        .arg(&script)
        .arg("-o")
        .arg(&out)
        .env("SSH_AUTH_SOCK", &sock)
        .env("HOME", fleet.dir.path())
        .output()
        .unwrap();
    let report: FleetReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
    for n in &report.nodes {
        // Authenticated (the script ran and exited 9 → agent-error with its stderr).
        assert_eq!(
            n.outcome,
            Outcome::AgentError,
            "{n:?} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(n.stderr.as_deref(), Some("via-agent"));
    }
    // Without the agent and without -i: auth-failed, not a hang or a crash.
    let out2 = fleet.dir.path().join("out2");
    let o = fleet
        .ops_command(&fleet_bin())
        .arg("--hosts")
        .arg(&hosts)
        .arg("--known-hosts")
        .arg(&kh)
        .arg("-o")
        .arg(&out2)
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", fleet.dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let report: FleetReport =
        serde_json::from_str(&std::fs::read_to_string(out2.join("fleet.json")).unwrap()).unwrap();
    assert!(
        report
            .nodes
            .iter()
            .all(|n| n.outcome == Outcome::AuthFailed),
        "{report:?}"
    );
}

/// `--ssh-config FILE --host PATTERN`: aliases as display names, HostName, User,
/// IdentityFile, UserKnownHostsFile and ProxyJump all come from the config.
#[test]
fn ssh_config_targets() {
    if skip_without_sshd() {
        return;
    }
    let fleet = SshFleet::new(4).unwrap();
    let bastion = fleet.nodes[0].addr.clone();
    let kh = fleet
        .write("kh-from-config", &fleet.known_hosts_lines(0..4))
        .unwrap();
    let script = fleet
        .write(
            "agent.sh",
            "#!/bin/sh\necho \"$SSH_CONNECTION\" >&2\nexit 5\n",
        )
        .unwrap();
    make_exec(&script);
    let mut cfg = format!(
        "Host bastion\n  HostName {bastion}\n\nHost worker-*\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
        fleet.client_key.display(),
        kh.display()
    );
    // ProxyJump names the bastion by its alias: resolved through the config like ssh -J.
    cfg.push_str("Host worker-* !worker-1\n  ProxyJump bastion\n");
    for i in 1..4 {
        cfg.push_str(&format!(
            "Host worker-{i}\n  HostName {}\n",
            fleet.nodes[i].addr
        ));
    }
    cfg.push_str(&format!(
        "Host bastion\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
        fleet.client_key.display(),
        kh.display()
    ));
    let cfg_path = fleet.write("ssh_config", &cfg).unwrap();
    let out = fleet.dir.path().join("out");
    let o = fleet
        .ops_command(&fleet_bin())
        .arg("--ssh-config")
        .arg(&cfg_path)
        .args(["--host", "worker-*,!worker-3", "--no-ssh-agent"])
        .arg("--agent-path")
        .arg(&script)
        // The default known_hosts (in $HOME) is empty: only UserKnownHostsFile has the keys.
        .env("HOME", fleet.dir.path())
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let report: FleetReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
    let names: Vec<&str> = report.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["worker-1", "worker-2"], "{stderr}");
    for n in &report.nodes {
        assert_eq!(n.outcome, Outcome::AgentError, "{n:?}");
    }
    // worker-1 is excluded from the ProxyJump block: direct; worker-2 goes via the bastion.
    let src = |i: usize| {
        report.nodes[i]
            .stderr
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(src(0), fleet.ops_addr(), "direct from ops");
    assert_eq!(src(1), bastion, "via the bastion");
}
