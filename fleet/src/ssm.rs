//! SSM transport: `AWS-RunShellScript` in batches of ≤ 50 instances, polling with backoff and
//! jitter, status → outcome mapping, and output that survives SSM's 24,000-character cut.
//!
//! The agent's snapshot travels gzip+base64. When it fits, it is inline in the command
//! output; otherwise it is read back from S3 (`--s3-bucket`, OutputS3BucketName) or fetched
//! in chunks by follow-up commands (`dd` of the file the first command saved). A snapshot
//! arrives whole (sha256-checked) or the node is reported `truncated`.
//!
//! The AWS calls sit behind [`SsmApi`] so that this logic is tested with a scripted fake.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Read;
use std::time::{Duration, Instant};

#[cfg(feature = "aws")]
use aws_sdk_ssm::error::ProvideErrorMetadata;
use base64::Engine;
use model::{NodeOutcome, Outcome, Snapshot};
use sha2::Digest;

use crate::quote::shell_quote;
use crate::runner::{
    classify_agent_run, classify_raw_run, AgentRun, EventSink, RawOutput, Transport,
    DEFAULT_AGENT_PATH,
};
use crate::targets::Target;

/// SendCommand accepts at most 50 instance ids.
pub const MAX_BATCH: usize = 50;
/// SSM keeps at most 24,000 characters of stdout inline.
pub const SSM_STDOUT_LIMIT: usize = 24_000;
/// Base64 characters sent inline or per chunk (leaves room for the header lines).
pub const CHUNK: usize = 20_000;
const HEADER: &str = "EKSDIAG1";
const FOOTER: &str = "EKSDIAG1-END";
/// Where the node keeps the encoded output between the first command and chunk fetches.
pub const SPOOL_DIR: &str = "/var/tmp/eks-diag";

/// A SendCommand request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendRequest {
    pub instance_ids: Vec<String>,
    /// Lines of the `commands` parameter of AWS-RunShellScript.
    pub commands: Vec<String>,
    pub execution_timeout_secs: u64,
    pub max_concurrency: String,
    pub max_errors: String,
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
    pub comment: String,
}

/// Invocation status (SSM's `CommandInvocationStatus` plus `StatusDetails` refinements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvStatus {
    Pending,
    InProgress,
    Delayed,
    Success,
    Failed,
    TimedOut,
    Cancelled,
    Cancelling,
    DeliveryTimedOut,
    Undeliverable,
    Terminated,
    Other(String),
}

impl InvStatus {
    /// From `Status` and `StatusDetails` (the details are finer: DeliveryTimedOut,
    /// Undeliverable, Terminated, ExecutionTimedOut only appear there).
    pub fn from_parts(status: &str, details: &str) -> InvStatus {
        match details {
            "DeliveryTimedOut" => return InvStatus::DeliveryTimedOut,
            "Undeliverable" => return InvStatus::Undeliverable,
            "Terminated" => return InvStatus::Terminated,
            "ExecutionTimedOut" | "CommandTimedOut" => return InvStatus::TimedOut,
            _ => {}
        }
        match status {
            "Pending" => InvStatus::Pending,
            "InProgress" => InvStatus::InProgress,
            "Delayed" => InvStatus::Delayed,
            "Success" => InvStatus::Success,
            "Failed" => InvStatus::Failed,
            "TimedOut" => InvStatus::TimedOut,
            "Cancelled" => InvStatus::Cancelled,
            "Cancelling" => InvStatus::Cancelling,
            other => InvStatus::Other(other.to_string()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            InvStatus::Pending | InvStatus::InProgress | InvStatus::Delayed | InvStatus::Cancelling
        )
    }
}

/// One GetCommandInvocation / ListCommandInvocations answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub instance_id: String,
    pub status: InvStatus,
    pub status_details: String,
    pub response_code: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsmError {
    /// Right after SendCommand the invocation may not exist yet.
    #[error("invocation does not exist (yet)")]
    InvocationDoesNotExist,
    #[error("throttled: {0}")]
    Throttled(String),
    /// The endpoint does not implement the call (moto: ListCommandInvocations).
    #[error("not implemented by the endpoint: {0}")]
    NotImplemented(String),
    #[error("{0}")]
    Other(String),
}

/// The SSM (and S3) calls the runner needs.
pub trait SsmApi: Send + Sync {
    /// Returns the command id.
    fn send_command(
        &self,
        req: &SendRequest,
    ) -> impl Future<Output = Result<String, SsmError>> + Send;
    fn get_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<Invocation, SsmError>> + Send;
    /// Status of every invocation of a command (no output).
    fn list_invocations(
        &self,
        command_id: &str,
    ) -> impl Future<Output = Result<Vec<Invocation>, SsmError>> + Send;
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, SsmError>> + Send;
}

/// How to run over SSM.
#[derive(Debug, Clone)]
pub struct SsmOptions {
    pub agent_path: String,
    pub command_timeout: Duration,
    pub max_concurrency: String,
    pub max_errors: String,
    pub s3_bucket: Option<String>,
    pub s3_prefix: String,
    pub sudo: bool,
    /// How long to keep polling after the command timeout (delivery, start-up).
    pub poll_slack: Duration,
    /// First poll interval; it grows ×1.5 up to `poll_max`, with jitter.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// Spool directory on the node (see [`SPOOL_DIR`]).
    pub spool_dir: String,
    /// The agent's arguments (`collect` by default); see [`crate::runner::RunOptions`].
    pub agent_args: Vec<String>,
    /// Hand back the agent's output as it is instead of a snapshot.
    pub raw_output: bool,
}

impl Default for SsmOptions {
    fn default() -> Self {
        SsmOptions {
            agent_path: DEFAULT_AGENT_PATH.to_string(),
            command_timeout: Duration::from_secs(60),
            max_concurrency: "50".to_string(),
            max_errors: "100%".to_string(),
            s3_bucket: None,
            s3_prefix: "eks-diag".to_string(),
            sudo: false,
            poll_slack: Duration::from_secs(120),
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
            spool_dir: SPOOL_DIR.to_string(),
            agent_args: crate::runner::default_agent_args(),
            raw_output: false,
        }
    }
}

fn jitter(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(1000).max(1);
    Duration::from_millis(ms + rand::random::<u64>() % (ms / 4 + 1))
}

/// The script the first command runs. `token` names the spool file (same on every node of
/// the run, so chunk fetches batch across instances).
pub fn collect_script(opts: &SsmOptions, token: &str) -> Vec<String> {
    let secs = opts.command_timeout.as_secs().max(1);
    let inline = if opts.s3_bucket.is_some() {
        // S3 keeps the whole stdout: always print everything.
        usize::MAX / 2
    } else {
        CHUNK
    };
    let dir = shell_quote(&opts.spool_dir);
    let f = format!("{}/{token}", opts.spool_dir);
    // SSM runs the script as root; `sudo` is honoured anyway (a hardened node may run the
    // SSM agent as another user), as over SSH.
    let mut argv = vec![opts.agent_path.clone()];
    argv.extend(opts.agent_args.iter().cloned());
    let agent = if opts.sudo {
        format!("sudo -n {}", crate::quote::shell_join(&argv))
    } else {
        crate::quote::shell_join(&argv)
    };
    vec![
        format!("umask 077; mkdir -p {dir} || exit 70"),
        format!("find {dir} -type f -mmin +120 -delete 2>/dev/null"),
        format!("f={}", shell_quote(&f)),
        format!(
            "rc=0; if command -v timeout >/dev/null 2>&1; then timeout -k 3 {secs} {a} >\"$f.json\" 2>\"$f.err\" || rc=$?; else {a} >\"$f.json\" 2>\"$f.err\" || rc=$?; fi",
            a = agent
        ),
        "gzip -c \"$f.json\" | base64 -w0 >\"$f.b64\"".to_string(),
        "n=$(wc -c <\"$f.b64\"); s=$(sha256sum \"$f.b64\" | cut -d' ' -f1)".to_string(),
        format!("printf '{HEADER} rc=%s bytes=%s sha256=%s\\n' \"$rc\" \"$n\" \"$s\""),
        format!("if [ \"$n\" -le {inline} ]; then cat \"$f.b64\"; printf '\\n'; fi"),
        format!("printf '{FOOTER}\\n'"),
        "head -c 6000 \"$f.err\" >&2".to_string(),
        format!("rm -f \"$f.json\" \"$f.err\"; if [ \"$n\" -le {inline} ]; then rm -f \"$f.b64\"; fi"),
        "exit 0".to_string(),
    ]
}

/// Follow-up command printing chunk `i` of the spooled output.
pub fn chunk_script(spool_dir: &str, token: &str, i: usize) -> Vec<String> {
    vec![format!(
        "dd if={} bs={CHUNK} skip={i} count=1 2>/dev/null",
        shell_quote(&format!("{spool_dir}/{token}.b64"))
    )]
}

/// Removes the spooled output after the chunks were fetched.
pub fn cleanup_script(spool_dir: &str, token: &str) -> Vec<String> {
    vec![format!(
        "rm -f {}",
        shell_quote(&format!("{spool_dir}/{token}.b64"))
    )]
}

/// The parsed first-command output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub rc: i32,
    pub bytes: usize,
    pub sha256: String,
    /// Base64 text when it was printed inline.
    pub inline: Option<String>,
}

/// Parses the `EKSDIAG1 rc=.. bytes=.. sha256=..` header and the inline data.
pub fn parse_envelope(stdout: &str) -> Result<Envelope, String> {
    let mut lines = stdout.lines();
    let header = lines
        .by_ref()
        .find(|l| l.starts_with(HEADER) && !l.starts_with(FOOTER))
        .ok_or_else(|| {
            if stdout.trim().is_empty() {
                "the command printed nothing".to_string()
            } else {
                format!("no {HEADER} header in the command output")
            }
        })?;
    let mut rc = None;
    let mut bytes = None;
    let mut sha = None;
    for kv in header.split_whitespace().skip(1) {
        match kv.split_once('=') {
            Some(("rc", v)) => rc = v.parse::<i32>().ok(),
            Some(("bytes", v)) => bytes = v.trim().parse::<usize>().ok(),
            Some(("sha256", v)) => sha = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(rc), Some(bytes), Some(sha256)) = (rc, bytes, sha) else {
        return Err(format!("malformed header: {header:?}"));
    };
    let mut data = String::new();
    let mut footer = false;
    for l in lines {
        if l == FOOTER {
            footer = true;
            break;
        }
        data.push_str(l.trim_end());
    }
    let inline = if data.is_empty() { None } else { Some(data) };
    if !footer && inline.as_ref().is_some_and(|d| d.len() < bytes) {
        // Cut by SSM: treat as not inline; the caller fetches it another way.
        return Ok(Envelope {
            rc,
            bytes,
            sha256,
            inline: None,
        });
    }
    Ok(Envelope {
        rc,
        bytes,
        sha256,
        inline,
    })
}

/// Checks length and sha256 of the base64 text, then decodes and gunzips it.
pub fn decode_payload(b64: &str, env: &Envelope) -> Result<Vec<u8>, String> {
    if b64.len() != env.bytes {
        return Err(format!(
            "received {} of {} base64 characters",
            b64.len(),
            env.bytes
        ));
    }
    let got = hex::encode(sha2::Sha256::digest(b64.as_bytes()));
    if got != env.sha256 {
        return Err(format!("sha256 {got} does not match {}", env.sha256));
    }
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("base64: {e}"))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(out)
}

fn node(
    t: &Target,
    outcome: Outcome,
    error: Option<String>,
    stderr: Option<String>,
    started: Instant,
) -> NodeOutcome {
    NodeOutcome {
        name: t.name.clone(),
        target: t.instance_id.clone().unwrap_or_else(|| t.host.clone()),
        outcome,
        error,
        stderr,
        connect_ms: 0,
        total_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        snapshot: None,
        failed_sections: Vec::new(),
    }
}

async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> Result<T, SsmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SsmError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(SsmError::Throttled(_)) if attempt < 6 => {
                attempt += 1;
                tokio::time::sleep(crate::ssh::backoff(attempt)).await;
            }
            Err(SsmError::Other(m)) => return Err(SsmError::Other(format!("{what}: {m}"))),
            Err(e) => return Err(e),
            Ok(v) => return Ok(v),
        }
    }
}

/// Maps a terminal status that is not Success to an outcome.
pub fn failure_outcome(inv: &Invocation) -> (Outcome, String) {
    let d = if inv.status_details.is_empty() {
        format!("{:?}", inv.status)
    } else {
        inv.status_details.clone()
    };
    match inv.status {
        InvStatus::DeliveryTimedOut | InvStatus::Undeliverable => (
            Outcome::SsmUndeliverable,
            format!(
                "SSM could not deliver the command ({d}): is the SSM agent running and registered?"
            ),
        ),
        InvStatus::TimedOut => (Outcome::Timeout, format!("SSM command timed out ({d})")),
        InvStatus::Terminated => (
            Outcome::SsmFailed,
            format!("the instance was terminated ({d})"),
        ),
        InvStatus::Cancelled | InvStatus::Cancelling => (
            Outcome::SsmFailed,
            format!("the command was cancelled ({d})"),
        ),
        InvStatus::Failed => (
            Outcome::SsmFailed,
            format!(
                "the command failed with exit code {} ({d})",
                inv.response_code
            ),
        ),
        _ => (Outcome::SsmFailed, format!("unexpected status {d}")),
    }
}

/// Runs the collection on every target with an instance id, reporting each node to `sink`
/// as its result is known (a target without an instance id at once).
async fn collect_ssm<A: SsmApi>(api: &A, targets: &[Target], opts: &SsmOptions, sink: &EventSink) {
    let started = Instant::now();
    let token = format!("{:016x}", rand::random::<u64>());
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        match &t.instance_id {
            Some(id) => {
                by_id.insert(id.clone(), i);
            }
            None => {
                let o = node(t, Outcome::SsmUndeliverable, Some("no instance id: SSM needs EC2 instances (use --ec2-cluster or --instance-ids)".into()), None, started);
                sink.finished(i, o, None).await;
            }
        }
    }
    let ids: Vec<String> = targets
        .iter()
        .filter_map(|t| t.instance_id.clone())
        .collect();
    // 1. Send, ≤ 50 per call.
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new(); // command id → instances
    for batch in ids.chunks(MAX_BATCH) {
        let req = SendRequest {
            instance_ids: batch.to_vec(),
            commands: collect_script(opts, &token),
            execution_timeout_secs: opts.command_timeout.as_secs().max(1) + 30,
            max_concurrency: opts.max_concurrency.clone(),
            max_errors: opts.max_errors.clone(),
            s3_bucket: opts.s3_bucket.clone(),
            s3_prefix: opts.s3_bucket.as_ref().map(|_| opts.s3_prefix.clone()),
            comment: "eks-diag collect".to_string(),
        };
        match with_retries("SendCommand", || api.send_command(&req)).await {
            Ok(cid) => {
                pending.insert(cid, batch.to_vec());
            }
            Err(e) => {
                for id in batch {
                    if let Some(&i) = by_id.get(id) {
                        let o = node(
                            &targets[i],
                            Outcome::SsmFailed,
                            Some(format!("SendCommand: {e}")),
                            None,
                            started,
                        );
                        sink.finished(i, o, None).await;
                    }
                }
            }
        }
    }
    // 2. Poll until terminal or the deadline.
    let deadline = Instant::now() + opts.command_timeout + opts.poll_slack;
    let mut done: HashMap<String, (String, Invocation)> = HashMap::new();
    let mut list_supported = true;
    let mut interval = opts.poll_initial;
    let mut waiting: Vec<(String, String)> = pending
        .iter()
        .flat_map(|(c, ids)| ids.iter().map(move |i| (c.clone(), i.clone())))
        .collect();
    while !waiting.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(jitter(interval)).await;
        interval = (interval.mul_f64(1.5)).min(opts.poll_max);
        // Which invocations look terminal: one List call per command when supported.
        let mut terminal: Vec<(String, String)> = Vec::new();
        if list_supported {
            for cid in pending.keys() {
                match with_retries("ListCommandInvocations", || api.list_invocations(cid)).await {
                    Ok(invs) => {
                        for inv in invs {
                            if inv.status.is_terminal() {
                                terminal.push((cid.clone(), inv.instance_id));
                            }
                        }
                    }
                    Err(_) => {
                        // Not implemented (moto) or failing: poll each invocation instead.
                        list_supported = false;
                        break;
                    }
                }
            }
        }
        let to_get: Vec<(String, String)> = if list_supported {
            waiting
                .iter()
                .filter(|w| terminal.contains(w))
                .cloned()
                .collect()
        } else {
            waiting.clone()
        };
        for (cid, iid) in to_get {
            match with_retries("GetCommandInvocation", || api.get_invocation(&cid, &iid)).await {
                Ok(inv) if inv.status.is_terminal() => {
                    waiting.retain(|w| !(w.0 == cid && w.1 == iid));
                    done.insert(iid.clone(), (cid.clone(), inv));
                }
                Ok(_) | Err(SsmError::InvocationDoesNotExist) => {}
                Err(e) => {
                    waiting.retain(|w| !(w.0 == cid && w.1 == iid));
                    if let Some(&i) = by_id.get(&iid) {
                        let o = node(
                            &targets[i],
                            Outcome::SsmFailed,
                            Some(format!("polling: {e}")),
                            None,
                            started,
                        );
                        sink.finished(i, o, None).await;
                    }
                }
            }
        }
    }
    for (_, iid) in &waiting {
        if let Some(&i) = by_id.get(iid) {
            let o = node(
                &targets[i],
                Outcome::Timeout,
                Some(format!(
                    "no final SSM status within {:.0}s",
                    (opts.command_timeout + opts.poll_slack).as_secs_f64()
                )),
                None,
                started,
            );
            sink.finished(i, o, None).await;
        }
    }
    // 3. Outputs.
    let mut need_chunks: Vec<(String, Envelope)> = Vec::new();
    for (iid, (cid, inv)) in &done {
        let Some(&i) = by_id.get(iid) else { continue };
        let t = &targets[i];
        let stderr = (!inv.stderr.trim().is_empty()).then(|| inv.stderr.trim().to_string());
        if inv.status != InvStatus::Success {
            let (oc, msg) = failure_outcome(inv);
            let o = node(t, oc, Some(msg), stderr, started);
            sink.finished(i, o, None).await;
            continue;
        }
        let env = match parse_envelope(&inv.stdout) {
            Ok(e) => e,
            Err(e) => {
                let o = node(
                    t,
                    Outcome::InvalidOutput,
                    Some(format!("SSM output: {e}")),
                    stderr,
                    started,
                );
                sink.finished(i, o, None).await;
                continue;
            }
        };
        let b64 = match (&env.inline, &opts.s3_bucket) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(bucket)) => {
                let key = format!(
                    "{}/{cid}/{iid}/awsrunShellScript/0.awsrunShellScript/stdout",
                    opts.s3_prefix.trim_end_matches('/')
                );
                match api.get_object(bucket, &key).await {
                    Ok(bytes) => parse_envelope(&String::from_utf8_lossy(&bytes))
                        .ok()
                        .and_then(|e| e.inline),
                    Err(_) => None,
                }
            }
            (None, None) => {
                need_chunks.push((iid.clone(), env.clone()));
                continue;
            }
        };
        let (o, snap, raw) = finish(t, &env, b64, stderr, started, opts.raw_output);
        sink.finished_with(i, o, snap, raw).await;
    }
    // 4. Chunked retrieval, batched across instances per chunk index.
    if !need_chunks.is_empty() {
        let mut bufs: HashMap<String, String> = HashMap::new();
        let max_chunks = need_chunks
            .iter()
            .map(|(_, e)| e.bytes.div_ceil(CHUNK))
            .max()
            .unwrap_or(0);
        for k in 0..max_chunks {
            let ids: Vec<String> = need_chunks
                .iter()
                .filter(|(_, e)| e.bytes.div_ceil(CHUNK) > k)
                .map(|(i, _)| i.clone())
                .collect();
            let got = fetch_once(api, &ids, chunk_script(&opts.spool_dir, &token, k), opts).await;
            for (iid, text) in got {
                bufs.entry(iid).or_default().push_str(text.trim_end());
            }
        }
        let ids: Vec<String> = need_chunks.iter().map(|(i, _)| i.clone()).collect();
        let _ = fetch_once(api, &ids, cleanup_script(&opts.spool_dir, &token), opts).await;
        for (iid, env) in need_chunks {
            let Some(&i) = by_id.get(&iid) else { continue };
            let stderr = done.get(&iid).and_then(|(_, inv)| {
                (!inv.stderr.trim().is_empty()).then(|| inv.stderr.trim().to_string())
            });
            let (o, snap, raw) = finish(
                &targets[i],
                &env,
                bufs.remove(&iid),
                stderr,
                started,
                opts.raw_output,
            );
            sink.finished_with(i, o, snap, raw).await;
        }
    }
}

fn finish(
    t: &Target,
    env: &Envelope,
    b64: Option<String>,
    stderr: Option<String>,
    started: Instant,
    raw_output: bool,
) -> (NodeOutcome, Option<Snapshot>, Option<RawOutput>) {
    match b64 {
        None => (
            node(t, Outcome::Truncated, Some(format!("snapshot of {} base64 characters exceeds SSM's {SSM_STDOUT_LIMIT}-character output and could not be fetched whole (pass --s3-bucket)", env.bytes)), stderr, started),
            None,
            None,
        ),
        Some(d) => match decode_payload(&d, env) {
            Err(e) => (
                node(t, Outcome::Truncated, Some(format!("snapshot did not arrive whole: {e}")), stderr, started),
                None,
                None,
            ),
            Ok(json) => {
                let stderr = stderr.unwrap_or_default();
                let run = AgentRun {
                    stdout: &json,
                    stderr: stderr.as_bytes(),
                    exit_status: u32::try_from(env.rc).ok(),
                    exit_signal: None,
                    stdout_truncated: false,
                };
                let (c, raw) = if raw_output {
                    classify_raw_run(&run, "node-agent")
                } else {
                    (classify_agent_run(&run, "node-agent"), None)
                };
                let mut o = node(t, c.outcome, c.error, c.stderr, started);
                o.failed_sections = c.failed_sections;
                (o, c.snapshot, raw)
            }
        },
    }
}

/// Sends one short command to `ids` and returns each instance's stdout (successes only).
async fn fetch_once<A: SsmApi>(
    api: &A,
    ids: &[String],
    commands: Vec<String>,
    opts: &SsmOptions,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for batch in ids.chunks(MAX_BATCH) {
        let req = SendRequest {
            instance_ids: batch.to_vec(),
            commands: commands.clone(),
            execution_timeout_secs: 60,
            max_concurrency: opts.max_concurrency.clone(),
            max_errors: opts.max_errors.clone(),
            s3_bucket: None,
            s3_prefix: None,
            comment: "eks-diag fetch".to_string(),
        };
        let Ok(cid) = with_retries("SendCommand", || api.send_command(&req)).await else {
            continue;
        };
        let deadline = Instant::now() + Duration::from_secs(60) + opts.poll_slack;
        let mut left: Vec<String> = batch.to_vec();
        let mut interval = opts.poll_initial;
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(jitter(interval)).await;
            interval = interval.mul_f64(1.5).min(opts.poll_max);
            let mut still = Vec::new();
            for iid in left {
                match with_retries("GetCommandInvocation", || api.get_invocation(&cid, &iid)).await
                {
                    Ok(inv) if inv.status == InvStatus::Success => {
                        out.insert(iid, inv.stdout);
                    }
                    Ok(inv) if inv.status.is_terminal() => {}
                    Ok(_) | Err(SsmError::InvocationDoesNotExist) => still.push(iid),
                    Err(_) => {}
                }
            }
            left = still;
        }
    }
    out
}

/// SSM as a [`Transport`]: one SendCommand per batch of ≤ 50 instances, polled together.
#[derive(Debug)]
pub struct SsmTransport<A> {
    api: A,
    opts: SsmOptions,
}

impl<A: SsmApi> SsmTransport<A> {
    pub fn new(api: A, opts: SsmOptions) -> Self {
        SsmTransport { api, opts }
    }

    pub fn api(&self) -> &A {
        &self.api
    }

    pub fn options(&self) -> &SsmOptions {
        &self.opts
    }
}

impl<A: SsmApi + 'static> Transport for SsmTransport<A> {
    fn name(&self) -> &'static str {
        "ssm"
    }

    async fn collect(&self, targets: &[Target], sink: &EventSink) {
        collect_ssm(&self.api, targets, &self.opts, sink).await;
    }
}

impl<A: SsmApi> SsmApi for std::sync::Arc<A> {
    fn send_command(
        &self,
        req: &SendRequest,
    ) -> impl Future<Output = Result<String, SsmError>> + Send {
        (**self).send_command(req)
    }
    fn get_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<Invocation, SsmError>> + Send {
        (**self).get_invocation(command_id, instance_id)
    }
    fn list_invocations(
        &self,
        command_id: &str,
    ) -> impl Future<Output = Result<Vec<Invocation>, SsmError>> + Send {
        (**self).list_invocations(command_id)
    }
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, SsmError>> + Send {
        (**self).get_object(bucket, key)
    }
}

#[cfg(feature = "aws")]
/// [`SsmApi`] on the AWS SDK.
pub struct AwsSsm {
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
}

#[cfg(feature = "aws")]
impl AwsSsm {
    pub fn new(conf: &aws_config::SdkConfig) -> AwsSsm {
        AwsSsm {
            ssm: aws_sdk_ssm::Client::new(conf),
            s3: aws_sdk_s3::Client::new(conf),
        }
    }
}

#[cfg(feature = "aws")]
fn map_err<E, R>(e: aws_sdk_ssm::error::SdkError<E, R>) -> SsmError
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().map(str::to_string);
    let text = format!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e));
    match code.as_deref() {
        Some("InvocationDoesNotExist") => SsmError::InvocationDoesNotExist,
        Some("ThrottlingException") | Some("TooManyRequestsException") => SsmError::Throttled(text),
        _ if text.contains("not been implemented") || text.contains("NotImplemented") => {
            SsmError::NotImplemented(text)
        }
        _ => SsmError::Other(text),
    }
}

#[cfg(feature = "aws")]
impl SsmApi for AwsSsm {
    async fn send_command(&self, req: &SendRequest) -> Result<String, SsmError> {
        let mut b = self
            .ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .set_instance_ids(Some(req.instance_ids.clone()))
            .parameters("commands", req.commands.clone())
            .parameters(
                "executionTimeout",
                vec![req.execution_timeout_secs.to_string()],
            )
            .max_concurrency(req.max_concurrency.clone())
            .max_errors(req.max_errors.clone())
            .comment(req.comment.clone());
        if let Some(bucket) = &req.s3_bucket {
            b = b.output_s3_bucket_name(bucket.clone());
        }
        if let Some(p) = &req.s3_prefix {
            b = b.output_s3_key_prefix(p.clone());
        }
        let out = b.send().await.map_err(map_err)?;
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| SsmError::Other("SendCommand returned no command id".to_string()))
    }

    async fn get_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Invocation, SsmError> {
        let o = self
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(map_err)?;
        Ok(Invocation {
            instance_id: instance_id.to_string(),
            status: InvStatus::from_parts(
                o.status().map(|s| s.as_str()).unwrap_or(""),
                o.status_details().unwrap_or(""),
            ),
            status_details: o.status_details().unwrap_or("").to_string(),
            response_code: o.response_code(),
            stdout: o.standard_output_content().unwrap_or("").to_string(),
            stderr: o.standard_error_content().unwrap_or("").to_string(),
        })
    }

    async fn list_invocations(&self, command_id: &str) -> Result<Vec<Invocation>, SsmError> {
        let mut pages = self
            .ssm
            .list_command_invocations()
            .command_id(command_id)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(p) = pages.next().await {
            let p = p.map_err(map_err)?;
            for ci in p.command_invocations() {
                out.push(Invocation {
                    instance_id: ci.instance_id().unwrap_or("").to_string(),
                    status: InvStatus::from_parts(
                        ci.status().map(|s| s.as_str()).unwrap_or(""),
                        ci.status_details().unwrap_or(""),
                    ),
                    status_details: ci.status_details().unwrap_or("").to_string(),
                    response_code: 0,
                    stdout: String::new(),
                    stderr: String::new(),
                });
            }
        }
        Ok(out)
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, SsmError> {
        let o = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                SsmError::Other(format!(
                    "s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        let body = o
            .body
            .collect()
            .await
            .map_err(|e| SsmError::Other(format!("s3://{bucket}/{key}: reading body: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }
}

/// Without the `aws` feature there is no SDK client: the type exists (so [`crate::AnyTransport`]
/// keeps one shape) but no value of it can be made.
#[cfg(not(feature = "aws"))]
#[derive(Debug)]
pub enum AwsSsm {}

#[cfg(not(feature = "aws"))]
impl SsmApi for AwsSsm {
    async fn send_command(&self, _: &SendRequest) -> Result<String, SsmError> {
        match *self {}
    }
    async fn get_invocation(&self, _: &str, _: &str) -> Result<Invocation, SsmError> {
        match *self {}
    }
    async fn list_invocations(&self, _: &str) -> Result<Vec<Invocation>, SsmError> {
        match *self {}
    }
    async fn get_object(&self, _: &str, _: &str) -> Result<Vec<u8>, SsmError> {
        match *self {}
    }
}
