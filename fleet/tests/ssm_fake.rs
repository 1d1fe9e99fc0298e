#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SSM runner logic against a scripted fake of the API. The fake "executes" each command by
//! running the real generated script with `sh` locally (spool dir in a temp dir, a fake agent
//! printing a prepared snapshot per instance), cuts stdout at 24,000 characters like SSM, and
//! answers polls with scripted status sequences (InvocationDoesNotExist, InProgress, ...).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::sync::Arc;

use fleet::ssm::{InvStatus, Invocation, SendRequest, SsmApi, SsmError, SsmOptions, SsmTransport};
use fleet::targets::Target;
use fleet::{FleetEvent, NodeResult};
use model::{NodeOutcome, Outcome, Snapshot};

/// Runs the SSM transport through the fleet runner's event stream: every node starts before
/// it finishes and finishes exactly once; `on_done` sees each finish as it arrives. Results
/// in target order.
async fn run_ssm<A: SsmApi + 'static>(
    api: &Arc<A>,
    targets: &[Target],
    opts: &SsmOptions,
    on_done: &(dyn Fn(&NodeOutcome) + Sync),
) -> Vec<NodeResult> {
    let t = Arc::new(SsmTransport::new(api.clone(), opts.clone()));
    let mut run = fleet::run(t, targets.to_vec());
    let mut started = vec![false; targets.len()];
    let mut out: Vec<Option<NodeResult>> = vec![None; targets.len()];
    while let Some(ev) = run.next_event().await {
        match ev {
            FleetEvent::Started { index, name } => {
                assert_eq!(name, targets[index].name);
                started[index] = true;
            }
            FleetEvent::Finished {
                index,
                outcome,
                snapshot,
                ..
            } => {
                assert!(out[index].is_none(), "node {index} finished twice");
                on_done(&outcome);
                out[index] = Some((outcome, snapshot.map(|s| *s)));
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("node {i} never finished")))
        .collect()
}

#[derive(Clone)]
enum Behaviour {
    /// Run the script; the poll sequence before the final answer.
    Run(Vec<&'static str>),
    /// Final status without running anything (status, details, stderr).
    Status(&'static str, &'static str, &'static str),
}

struct Fake {
    dir: tempfile::TempDir,
    behaviour: HashMap<String, Behaviour>,
    sends: Mutex<Vec<SendRequest>>,
    throttle_sends: AtomicUsize,
    list_supported: bool,
    seq: Mutex<HashMap<(String, String), VecDeque<&'static str>>>,
    finals: Mutex<HashMap<(String, String), Invocation>>,
    s3: Mutex<HashMap<String, Vec<u8>>>,
    corrupt_chunks: bool,
    gets: AtomicUsize,
    /// Prepended to PATH of the "node" shell (a recording `sudo` lives there).
    path_prefix: Option<PathBuf>,
}

impl Fake {
    fn new(behaviour: HashMap<String, Behaviour>) -> Fake {
        Fake {
            dir: tempfile::tempdir().unwrap(),
            behaviour,
            sends: Mutex::new(Vec::new()),
            throttle_sends: AtomicUsize::new(0),
            list_supported: false,
            seq: Mutex::new(HashMap::new()),
            finals: Mutex::new(HashMap::new()),
            s3: Mutex::new(HashMap::new()),
            corrupt_chunks: false,
            gets: AtomicUsize::new(0),
            path_prefix: None,
        }
    }

    fn agent(&self) -> PathBuf {
        let p = self.dir.path().join("agent");
        if !p.exists() {
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\ncat {}/\"$FAKE_IID\".json\n",
                    self.dir.path().display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    fn put_snapshot(&self, iid: &str, s: &Snapshot) {
        std::fs::write(
            self.dir.path().join(format!("{iid}.json")),
            serde_json::to_vec(s).unwrap(),
        )
        .unwrap();
    }

    fn opts(&self) -> SsmOptions {
        SsmOptions {
            agent_path: self.agent().display().to_string(),
            command_timeout: Duration::from_secs(20),
            poll_initial: Duration::from_millis(5),
            poll_max: Duration::from_millis(20),
            poll_slack: Duration::from_secs(5),
            spool_dir: self.dir.path().join("spool").display().to_string(),
            ..Default::default()
        }
    }
}

fn run_local(script: &str, iid: &str, path_prefix: Option<&PathBuf>) -> (String, String, i32) {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script).env("FAKE_IID", iid);
    if let Some(p) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", p.display()));
    }
    let o = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl SsmApi for Fake {
    async fn send_command(&self, req: &SendRequest) -> Result<String, SsmError> {
        if self
            .throttle_sends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
        {
            return Err(SsmError::Throttled("Rate exceeded".into()));
        }
        let mut sends = self.sends.lock().unwrap();
        sends.push(req.clone());
        let cid = format!("cmd-{}", sends.len());
        let script = req.commands.join("\n");
        let is_fetch = req.comment != "eks-diag collect";
        for iid in &req.instance_ids {
            let b = self
                .behaviour
                .get(iid)
                .cloned()
                .unwrap_or(Behaviour::Run(vec![]));
            let (seq, inv) = match b {
                Behaviour::Status(st, det, err) if !is_fetch => (
                    vec!["InProgress"],
                    Invocation {
                        instance_id: iid.clone(),
                        status: InvStatus::from_parts(st, det),
                        status_details: det.into(),
                        response_code: if st == "Failed" { 1 } else { -1 },
                        stdout: String::new(),
                        stderr: err.into(),
                    },
                ),
                b => {
                    let seq = match b {
                        Behaviour::Run(s) if !is_fetch => s,
                        _ => vec![],
                    };
                    // Every instance has its own filesystem: give each its own spool dir.
                    let spool = self.dir.path().join("spool").display().to_string();
                    let own = script.replace(&spool, &format!("{spool}/{iid}"));
                    let (mut out, err, rc) = run_local(&own, iid, self.path_prefix.as_ref());
                    if let Some(bucket) = &req.s3_bucket {
                        let key = format!(
                            "{}/{cid}/{iid}/awsrunShellScript/0.awsrunShellScript/stdout",
                            req.s3_prefix.clone().unwrap_or_default()
                        );
                        self.s3
                            .lock()
                            .unwrap()
                            .insert(format!("{bucket}/{key}"), out.clone().into_bytes());
                    }
                    if is_fetch && self.corrupt_chunks && out.len() > 10 {
                        out.replace_range(5..6, if &out[5..6] == "A" { "B" } else { "A" });
                    }
                    (
                        seq,
                        Invocation {
                            instance_id: iid.clone(),
                            status: if rc == 0 {
                                InvStatus::Success
                            } else {
                                InvStatus::Failed
                            },
                            status_details: if rc == 0 { "Success" } else { "Failed" }.into(),
                            response_code: rc,
                            // SSM keeps 24,000 characters of stdout and 8,000 of stderr.
                            stdout: cut(&out, 24_000),
                            stderr: cut(&err, 8_000),
                        },
                    )
                }
            };
            let mut q: VecDeque<&'static str> = VecDeque::new();
            q.push_back("InvocationDoesNotExist");
            q.extend(seq);
            self.seq
                .lock()
                .unwrap()
                .insert((cid.clone(), iid.clone()), q);
            self.finals
                .lock()
                .unwrap()
                .insert((cid.clone(), iid.clone()), inv);
        }
        Ok(cid)
    }

    async fn get_invocation(&self, cid: &str, iid: &str) -> Result<Invocation, SsmError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let key = (cid.to_string(), iid.to_string());
        let next = self
            .seq
            .lock()
            .unwrap()
            .get_mut(&key)
            .ok_or(SsmError::InvocationDoesNotExist)?
            .pop_front();
        match next {
            Some("InvocationDoesNotExist") => Err(SsmError::InvocationDoesNotExist),
            Some("Throttle") => Err(SsmError::Throttled("Rate exceeded".into())),
            Some(st) => Ok(Invocation {
                instance_id: iid.into(),
                status: InvStatus::from_parts(st, st),
                status_details: st.into(),
                response_code: -1,
                stdout: String::new(),
                stderr: String::new(),
            }),
            None => Ok(self.finals.lock().unwrap()[&key].clone()),
        }
    }

    async fn list_invocations(&self, cid: &str) -> Result<Vec<Invocation>, SsmError> {
        if !self.list_supported {
            return Err(SsmError::NotImplemented("ListCommandInvocations".into()));
        }
        // Each List call is one step of time for every invocation of the command.
        let mut seq = self.seq.lock().unwrap();
        let finals = self.finals.lock().unwrap();
        Ok(finals
            .iter()
            .filter(|((c, _), _)| c == cid)
            .map(|((c, i), f)| {
                let q = seq.get_mut(&(c.clone(), i.clone()));
                let pending = match q {
                    Some(q) => {
                        q.pop_front();
                        !q.is_empty()
                    }
                    None => false,
                };
                Invocation {
                    stdout: String::new(),
                    stderr: String::new(),
                    status: if pending {
                        InvStatus::InProgress
                    } else {
                        f.status.clone()
                    },
                    ..f.clone()
                }
            })
            .collect())
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, SsmError> {
        self.s3
            .lock()
            .unwrap()
            .get(&format!("{bucket}/{key}"))
            .cloned()
            .ok_or_else(|| SsmError::Other(format!("NoSuchKey {key}")))
    }
}

fn target(iid: &str) -> Target {
    Target {
        name: format!("ip-{iid}.ec2.internal"),
        host: iid.into(),
        port: 22,
        instance_id: Some(iid.into()),
        ..Default::default()
    }
}

fn snapshot(name: &str, filler_bytes: usize) -> Snapshot {
    let mut s = Snapshot::new(model::AgentInfo {
        name: "node-agent".into(),
        version: "1".into(),
        inputs: vec![],
    });
    s.hostname = name.into();
    let mut values = std::collections::BTreeMap::new();
    // Incompressible filler so the gzip+base64 output really exceeds the inline limit.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ filler_bytes as u64;
    let mut i = 0;
    while i * 40 < filler_bytes {
        let mut v = String::new();
        for _ in 0..5 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push_str(&format!("{x:016x}"));
        }
        values.insert(format!("net.filler.k{i}"), v);
        i += 1;
    }
    s.sysctls = model::Section::ok(model::Sysctls { values });
    s
}

#[tokio::test]
async fn statuses_map_to_outcomes() {
    let mut b = HashMap::new();
    b.insert(
        "i-ok".to_string(),
        Behaviour::Run(vec!["Pending", "InProgress", "Throttle", "InProgress"]),
    );
    b.insert(
        "i-failed".to_string(),
        Behaviour::Status("Failed", "Failed", "node-agent: permission denied"),
    );
    b.insert(
        "i-deliv".to_string(),
        Behaviour::Status("TimedOut", "DeliveryTimedOut", ""),
    );
    b.insert(
        "i-undeliv".to_string(),
        Behaviour::Status("Failed", "Undeliverable", ""),
    );
    b.insert(
        "i-exec-to".to_string(),
        Behaviour::Status("TimedOut", "ExecutionTimedOut", ""),
    );
    b.insert(
        "i-cancel".to_string(),
        Behaviour::Status("Cancelled", "Cancelled", ""),
    );
    b.insert(
        "i-term".to_string(),
        Behaviour::Status("Failed", "Terminated", ""),
    );
    let fake = Arc::new(Fake::new(b));
    fake.put_snapshot("i-ok", &snapshot("ip-ok", 100));
    // i-empty runs but its agent prints nothing: exit 0, no snapshot.
    std::fs::write(fake.dir.path().join("i-empty.json"), "").unwrap();
    let ids = [
        "i-ok",
        "i-failed",
        "i-deliv",
        "i-undeliv",
        "i-exec-to",
        "i-cancel",
        "i-term",
        "i-empty",
    ];
    let targets: Vec<Target> = ids.iter().map(|i| target(i)).collect();
    let seen = Mutex::new(0usize);
    let r = run_ssm(&fake, &targets, &fake.opts(), &|_| {
        *seen.lock().unwrap() += 1
    })
    .await;
    let got: Vec<Outcome> = r.iter().map(|(n, _)| n.outcome).collect();
    assert_eq!(
        got,
        vec![
            Outcome::Ok,
            Outcome::SsmFailed,
            Outcome::SsmUndeliverable,
            Outcome::SsmUndeliverable,
            Outcome::Timeout,
            Outcome::SsmFailed,
            Outcome::SsmFailed,
            Outcome::InvalidOutput,
        ],
        "{r:#?}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ids.len(),
        "progress called once per node"
    );
    assert_eq!(r[0].1.as_ref().unwrap().hostname, "ip-ok");
    assert_eq!(
        r[1].0.stderr.as_deref(),
        Some("node-agent: permission denied")
    );
    assert!(r[6].0.error.as_deref().unwrap().contains("terminated"));
    assert_eq!(r[0].0.target, "i-ok");
}

#[tokio::test]
async fn batches_of_fifty_and_throttling() {
    let fake = Arc::new(Fake::new(HashMap::new()));
    fake.throttle_sends.store(2, Ordering::SeqCst);
    let ids: Vec<String> = (0..120).map(|i| format!("i-{i:04}")).collect();
    for i in &ids {
        fake.put_snapshot(i, &snapshot(i, 50));
    }
    let targets: Vec<Target> = ids.iter().map(|i| target(i)).collect();
    let r = run_ssm(&fake, &targets, &fake.opts(), &|_| {}).await;
    assert!(
        r.iter().all(|(n, _)| n.outcome == Outcome::Ok),
        "{:?}",
        r.iter().find(|(n, _)| n.outcome != Outcome::Ok)
    );
    let sends = fake.sends.lock().unwrap();
    let sizes: Vec<usize> = sends.iter().map(|s| s.instance_ids.len()).collect();
    assert_eq!(sizes, vec![50, 50, 20]);
    assert_eq!(sends[0].max_errors, "100%");
    for (t, (n, s)) in targets.iter().zip(&r) {
        assert_eq!(n.name, t.name);
        assert_eq!(s.as_ref().unwrap().hostname, t.host);
    }
}

#[tokio::test]
async fn list_invocations_reduces_polling_when_supported() {
    let mut b = HashMap::new();
    for i in 0..10 {
        b.insert(
            format!("i-{i}"),
            Behaviour::Run(vec!["InProgress", "InProgress", "InProgress"]),
        );
    }
    let mut fake = Fake::new(b);
    fake.list_supported = true;
    let fake = Arc::new(fake);
    let targets: Vec<Target> = (0..10).map(|i| target(&format!("i-{i}"))).collect();
    for t in &targets {
        fake.put_snapshot(t.instance_id.as_deref().unwrap(), &snapshot(&t.host, 10));
    }
    let r = run_ssm(&fake, &targets, &fake.opts(), &|_| {}).await;
    assert!(r.iter().all(|(n, _)| n.outcome == Outcome::Ok), "{r:?}");
    // With List, GetCommandInvocation is called once per instance (for the output), not on
    // every poll round.
    assert_eq!(fake.gets.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn large_snapshot_arrives_in_chunks_or_is_truncated() {
    let fake = Arc::new(Fake::new(HashMap::new()));
    let big = snapshot("ip-big", 120_000);
    fake.put_snapshot("i-big", &big);
    fake.put_snapshot("i-small", &snapshot("ip-small", 10));
    let targets = vec![target("i-big"), target("i-small")];
    let r = run_ssm(&fake, &targets, &fake.opts(), &|_| {}).await;
    assert_eq!(r[0].0.outcome, Outcome::Ok, "{:?}", r[0].0);
    assert_eq!(r[0].1.as_ref().unwrap(), &big, "arrives whole");
    assert_eq!(r[1].0.outcome, Outcome::Ok);
    let sends = fake.sends.lock().unwrap().clone();
    let fetches: Vec<&SendRequest> = sends
        .iter()
        .filter(|s| s.comment == "eks-diag fetch")
        .collect();
    assert!(
        fetches.len() >= 4,
        "several chunk commands plus cleanup: {}",
        fetches.len()
    );
    assert!(fetches
        .iter()
        .all(|s| s.instance_ids == vec!["i-big".to_string()]));
    // The spool file was removed by the cleanup command.
    let spool = fake.dir.path().join("spool").join("i-big");
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // A chunk that arrives damaged is caught by the sha256: truncated, never a cut snapshot.
    let mut fake2 = Fake::new(HashMap::new());
    fake2.corrupt_chunks = true;
    let fake2 = Arc::new(fake2);
    fake2.put_snapshot("i-big", &big);
    let r = run_ssm(&fake2, &[target("i-big")], &fake2.opts(), &|_| {}).await;
    assert_eq!(r[0].0.outcome, Outcome::Truncated, "{:?}", r[0].0);
    assert!(r[0].1.is_none());
    assert!(r[0].0.error.as_deref().unwrap().contains("sha256"));
}

#[tokio::test]
async fn large_snapshot_via_s3() {
    let fake = Arc::new(Fake::new(HashMap::new()));
    let big = snapshot("ip-big", 120_000);
    fake.put_snapshot("i-big", &big);
    let mut opts = fake.opts();
    opts.s3_bucket = Some("diag-bucket".into());
    opts.s3_prefix = "runs".into();
    let r = run_ssm(&fake, &[target("i-big")], &opts, &|_| {}).await;
    assert_eq!(r[0].0.outcome, Outcome::Ok, "{:?}", r[0].0);
    assert_eq!(r[0].1.as_ref().unwrap(), &big);
    let sends = fake.sends.lock().unwrap();
    assert_eq!(sends.len(), 1, "no chunk commands with S3");
    assert_eq!(sends[0].s3_bucket.as_deref(), Some("diag-bucket"));
}

#[tokio::test]
async fn no_instance_id_is_reported_not_dropped() {
    let fake = Arc::new(Fake::new(HashMap::new()));
    let t = Target {
        name: "plain-host".into(),
        host: "10.0.0.1".into(),
        port: 22,
        ..Default::default()
    };
    let r = run_ssm(&fake, &[t], &fake.opts(), &|_| {}).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0.outcome, Outcome::SsmUndeliverable);
}

/// `--sudo` reaches SSM: the agent runs through `sudo -n` (here a recording `sudo` on the
/// node's PATH), and without it, not. Before the fix `SsmOptions.sudo` was never read.
#[tokio::test]
async fn sudo_is_honoured_over_ssm() {
    let mut fake = Fake::new(HashMap::new());
    let bin = fake.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = fake.dir.path().join("sudo.log");
    let shim = bin.join("sudo");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake.path_prefix = Some(bin);
    let fake = Arc::new(fake);
    fake.put_snapshot("i-a", &snapshot("ip-a", 10));

    let r = run_ssm(&fake, &[target("i-a")], &fake.opts(), &|_| {}).await;
    assert_eq!(r[0].0.outcome, Outcome::Ok, "{:?}", r[0].0);
    assert!(!log.exists(), "no sudo without --sudo");

    let mut opts = fake.opts();
    opts.sudo = true;
    let r = run_ssm(&fake, &[target("i-a")], &opts, &|_| {}).await;
    assert_eq!(r[0].0.outcome, Outcome::Ok, "{:?}", r[0].0);
    assert_eq!(r[0].1.as_ref().unwrap().hostname, "ip-a");
    let calls = std::fs::read_to_string(&log).expect("sudo was run");
    assert_eq!(
        calls.trim(),
        format!("-n {} collect", fake.agent().display()),
        "the agent, and only it, runs under sudo -n"
    );
}

/// Raw runs (`diag changes`): the agent's own arguments reach it intact through the SSM
/// script, and its stdout and exit status come back as they are, "no daemon" (3) included.
#[tokio::test]
async fn raw_runs_carry_the_agent_arguments_and_output() {
    let mut b = HashMap::new();
    b.insert("i-one".to_string(), Behaviour::Run(vec!["InProgress"]));
    b.insert("i-nod".to_string(), Behaviour::Run(vec![]));
    let fake = Arc::new(Fake::new(b));
    let agent = fake.dir.path().join("raw-agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\nif [ \"$FAKE_IID\" = i-nod ]; then echo 'node-agent: connecting: No such file' >&2; exit 3; fi\nprintf '%s\\n' \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = vec![
        "api".to_string(),
        "/v1/changes?since=2026-12-01T14:02:11Z".to_string(),
        "it's $(not run) `either`".to_string(),
    ];
    let opts = SsmOptions {
        agent_path: agent.display().to_string(),
        agent_args: args.clone(),
        raw_output: true,
        ..fake.opts()
    };
    let targets = vec![target("i-one"), target("i-nod")];
    let t = Arc::new(SsmTransport::new(fake.clone(), opts));
    let mut run = fleet::run(t, targets);
    let mut raws = [None, None];
    while let Some(ev) = run.next_event().await {
        if let FleetEvent::Finished {
            index,
            outcome,
            snapshot,
            raw,
        } = ev
        {
            assert!(snapshot.is_none());
            raws[index] = Some((outcome, raw.expect("raw output in a raw run")));
        }
    }
    let (o, raw) = raws[0].take().unwrap();
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(raw.exit_status, Some(0));
    assert_eq!(raw.stdout.lines().collect::<Vec<_>>(), args);
    let (o, raw) = raws[1].take().unwrap();
    assert_eq!(o.outcome, Outcome::AgentError);
    assert_eq!(raw.exit_status, Some(3));
    assert!(raw.stderr.contains("No such file"), "{raw:?}");
}
