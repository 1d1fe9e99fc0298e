//! SSH transport on russh: known_hosts verification, key files and ssh-agent, one shared
//! connection per bastion (`-J`) multiplexed through direct-tcpip channels, separate connect
//! and command timeouts, bounded retries on connect errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Sig};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::targets::{host_port, JumpSpec, Target};
use model::Outcome;

/// Most stdout kept from one command (a snapshot is a few MB; this bounds a runaway node).
pub const MAX_STDOUT: usize = 64 * 1024 * 1024;
/// Most stderr kept from one command.
pub const MAX_STDERR: usize = 64 * 1024;

/// How to connect.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// known_hosts file used for every target without its own (ssh_config UserKnownHostsFile).
    pub known_hosts: PathBuf,
    /// Append unknown host keys instead of refusing them. A changed key is never accepted.
    pub accept_new_host_keys: bool,
    /// Private key files tried in order (after the target's own IdentityFile entries).
    pub identity_files: Vec<PathBuf>,
    /// Also try the keys of the agent on `$SSH_AUTH_SOCK`.
    pub use_agent: bool,
    /// User when neither the target nor the jump spec names one.
    pub default_user: String,
    /// Bound on TCP connect + SSH handshake + authentication, per attempt.
    pub connect_timeout: Duration,
    /// Extra attempts after a connect error (not after host-key, auth or timeout failures).
    pub retries: u32,
    /// `-J`: bastion for every target (overrides ssh_config ProxyJump).
    pub jump: Option<JumpSpec>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            known_hosts: default_known_hosts(),
            accept_new_host_keys: false,
            identity_files: Vec::new(),
            use_agent: true,
            default_user: "ec2-user".to_string(),
            connect_timeout: Duration::from_secs(10),
            retries: 2,
            jump: None,
        }
    }
}

/// `~/.ssh/known_hosts`.
pub fn default_known_hosts() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".ssh")
        .join("known_hosts")
}

/// Why an SSH operation failed; each maps to exactly one [`Outcome`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("{target}: cannot connect: {message}")]
    Unreachable { target: String, message: String },
    #[error("{target}: {stage} did not finish within {secs:.1}s")]
    ConnectTimeout {
        target: String,
        stage: &'static str,
        secs: f64,
    },
    #[error("{target}: HOST KEY MISMATCH: the server's key differs from {known_hosts}:{line}; refusing to connect (possible man-in-the-middle; remove the stale line only if the node was replaced)")]
    HostkeyMismatch {
        target: String,
        known_hosts: String,
        line: usize,
    },
    #[error("{target}: host key {fingerprint} is not in {known_hosts} (strict checking; pass --accept-new-host-keys to record it)")]
    HostkeyUnknown {
        target: String,
        known_hosts: String,
        fingerprint: String,
    },
    #[error("{target}: host key check failed: {message}")]
    HostkeyError { target: String, message: String },
    #[error("{target}: authentication failed for user {user} (tried: {tried})")]
    AuthFailed {
        target: String,
        user: String,
        tried: String,
    },
    #[error(
        "{target}: command did not finish within {secs:.1}s; channel closed, remote command killed"
    )]
    CommandTimeout { target: String, secs: f64 },
    #[error("{target}: ssh: {message}")]
    Protocol { target: String, message: String },
    #[error("loading key {path}: {message}")]
    Key { path: PathBuf, message: String },
}

impl SshError {
    pub fn outcome(&self) -> Outcome {
        match self {
            SshError::Unreachable { .. } | SshError::Protocol { .. } => Outcome::Unreachable,
            SshError::ConnectTimeout { .. } | SshError::CommandTimeout { .. } => Outcome::Timeout,
            SshError::HostkeyMismatch { .. } => Outcome::HostkeyMismatch,
            SshError::HostkeyUnknown { .. } | SshError::HostkeyError { .. } => {
                Outcome::HostkeyUnknown
            }
            SshError::AuthFailed { .. } | SshError::Key { .. } => Outcome::AuthFailed,
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, SshError::Unreachable { .. })
    }
}

#[derive(Debug, Clone)]
enum Verdict {
    Unknown(String),
    Mismatch(usize),
    Error(String),
}

/// Verifies the server key against known_hosts; records why it refused.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

/// Serialises appends to known_hosts files (many connections learn keys at once).
static LEARN_LOCK: Mutex<()> = Mutex::new(());

impl HostKeyCheck {
    fn record(&self, v: Verdict) {
        if let Ok(mut g) = self.verdict.lock() {
            *g = Some(v);
        }
    }

    /// Whether known_hosts holds `key` for the host; None (with the verdict recorded) when
    /// it holds another key or cannot be read.
    fn known(&self, key: &russh::keys::PublicKey) -> Option<bool> {
        match russh::keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(known) => Some(known),
            Err(russh::keys::Error::KeyChanged { line }) => {
                self.record(Verdict::Mismatch(line));
                None
            }
            Err(e) => {
                self.record(Verdict::Error(e.to_string()));
                None
            }
        }
    }

    fn check(&self, key: &russh::keys::PublicKey) -> bool {
        match self.known(key) {
            None => false,
            Some(true) => true,
            Some(false) if self.accept_new => {
                let _guard = LEARN_LOCK.lock();
                // Re-check under the lock: another task may have learnt it meanwhile.
                match self.known(key) {
                    None => false,
                    Some(true) => true,
                    Some(false) => match russh::keys::known_hosts::learn_known_hosts_path(
                        &self.host,
                        self.port,
                        key,
                        &self.known_hosts,
                    ) {
                        Ok(()) => true,
                        Err(e) => {
                            self.record(Verdict::Error(format!(
                                "recording key in {}: {e}",
                                self.known_hosts.display()
                            )));
                            false
                        }
                    },
                }
            }
            Some(false) => {
                let fp = key.fingerprint(russh::keys::HashAlg::Sha256).to_string();
                self.record(Verdict::Unknown(fp));
                false
            }
        }
    }
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Ok(self.check(key)),
            PublicKeyOrCertificate::Certificate(_) => {
                self.record(Verdict::Error(
                    "host certificates are not supported; list the plain host key in known_hosts"
                        .to_string(),
                ));
                Ok(false)
            }
        }
    }
}

type Bastion = Arc<OnceCell<Result<Arc<Handle<HostKeyCheck>>, SshError>>>;

/// Connects to targets; holds the loaded keys and one shared connection per bastion.
pub struct SshClient {
    opts: SshOptions,
    keys: Vec<(PathBuf, Arc<PrivateKey>)>,
    config: Arc<client::Config>,
    bastions: Mutex<HashMap<JumpSpec, Bastion>>,
}

fn load_key(path: &Path) -> Result<Arc<PrivateKey>, SshError> {
    russh::keys::load_secret_key(path, None)
        .map(Arc::new)
        .map_err(|e| SshError::Key {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// An authenticated connection to one node.
pub struct SshSession {
    handle: Handle<HostKeyCheck>,
    target: String,
    /// Time spent connecting (TCP + handshake + auth, including retries).
    pub connect_time: Duration,
}

/// What a remote command produced.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    /// stdout exceeded [`MAX_STDOUT`] and was cut.
    pub stdout_truncated: bool,
}

impl SshClient {
    /// Loads the key files now, so that a bad key fails once rather than per node.
    pub fn new(opts: SshOptions) -> Result<SshClient, SshError> {
        let mut keys = Vec::new();
        let mut files = opts.identity_files.clone();
        if files.is_empty() && !opts.use_agent {
            if let Some(home) = std::env::var_os("HOME") {
                for n in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                    let p = PathBuf::from(&home).join(".ssh").join(n);
                    if p.exists() {
                        files.push(p);
                    }
                }
            }
        }
        for f in files {
            let k = load_key(&f)?;
            keys.push((f, k));
        }
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        Ok(SshClient {
            opts,
            keys,
            config,
            bastions: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    fn known_hosts_for(&self, t: Option<&Target>) -> PathBuf {
        t.and_then(|t| t.known_hosts.clone())
            .unwrap_or_else(|| self.opts.known_hosts.clone())
    }

    /// Connects and authenticates, retrying connect errors with jittered backoff. Through
    /// the bastion (`-J` or the target's ProxyJump) when there is one.
    pub async fn connect(&self, target: &Target) -> Result<SshSession, SshError> {
        let start = Instant::now();
        let jump = self.opts.jump.clone().or_else(|| target.proxy_jump.clone());
        let via = match &jump {
            Some(j) => Some((j.clone(), self.bastion(j).await?)),
            None => None,
        };
        let mut s = self.connect_with(target, via.as_ref()).await?;
        s.connect_time = start.elapsed();
        Ok(s)
    }

    async fn connect_with(
        &self,
        target: &Target,
        via: Option<&(JumpSpec, Arc<Handle<HostKeyCheck>>)>,
    ) -> Result<SshSession, SshError> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            let r = self.connect_once(target, via).await;
            match r {
                Ok(handle) => {
                    return Ok(SshSession {
                        handle,
                        target: target.address(),
                        connect_time: start.elapsed(),
                    })
                }
                Err(e) if e.retryable() && attempt < self.opts.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect_once(
        &self,
        target: &Target,
        via: Option<&(JumpSpec, Arc<Handle<HostKeyCheck>>)>,
    ) -> Result<Handle<HostKeyCheck>, SshError> {
        let addr = target.address();
        let user = target
            .user
            .clone()
            .unwrap_or_else(|| self.opts.default_user.clone());
        let verdict = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            host: target.host.clone(),
            port: target.port,
            known_hosts: self.known_hosts_for(Some(target)),
            accept_new: self.opts.accept_new_host_keys,
            verdict: verdict.clone(),
        };
        let limit = self.opts.connect_timeout;
        let deadline = Instant::now() + limit;

        // Stage 1: a byte stream to the node (TCP, or a direct-tcpip channel via the bastion).
        let handshake = match via {
            None => {
                let tcp = tokio::time::timeout(
                    limit,
                    tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
                )
                .await
                .map_err(|_| SshError::Unreachable {
                    target: addr.clone(),
                    message: format!("TCP connect timed out after {:.1}s", limit.as_secs_f64()),
                })?
                .map_err(|e| SshError::Unreachable {
                    target: addr.clone(),
                    message: format!("TCP connect: {e}"),
                })?;
                let _ = tcp.set_nodelay(true);
                let fut = client::connect_stream(self.config.clone(), tcp, check);
                tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), fut).await
            }
            Some((j, bastion)) => {
                let ch = tokio::time::timeout(
                    deadline.saturating_duration_since(Instant::now()),
                    bastion.channel_open_direct_tcpip(
                        target.host.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    ),
                )
                .await
                .map_err(|_| SshError::ConnectTimeout {
                    target: addr.clone(),
                    stage: "opening the tunnel through the jump host",
                    secs: limit.as_secs_f64(),
                })?
                .map_err(|e| SshError::Unreachable {
                    target: addr.clone(),
                    message: format!("jump host {j} could not open a connection: {e}"),
                })?;
                let fut = client::connect_stream(self.config.clone(), ch.into_stream(), check);
                tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), fut).await
            }
        };
        let mut handle = match handshake {
            Err(_) => {
                return Err(SshError::ConnectTimeout {
                    target: addr,
                    stage: "SSH handshake",
                    secs: limit.as_secs_f64(),
                })
            }
            Ok(Err(e)) => return Err(self.handshake_error(&addr, target, &verdict, e)),
            Ok(Ok(h)) => h,
        };
        // Stage 3: authentication, within what is left of the connect timeout.
        let auth = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.authenticate(&mut handle, &user, target, &addr),
        )
        .await;
        match auth {
            Err(_) => Err(SshError::ConnectTimeout {
                target: addr,
                stage: "SSH authentication",
                secs: limit.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Ok(handle),
        }
    }

    fn handshake_error(
        &self,
        addr: &str,
        target: &Target,
        verdict: &Arc<Mutex<Option<Verdict>>>,
        e: russh::Error,
    ) -> SshError {
        let kh = self.known_hosts_for(Some(target)).display().to_string();
        let v = verdict.lock().ok().and_then(|g| g.clone());
        match v {
            Some(Verdict::Mismatch(line)) => SshError::HostkeyMismatch {
                target: addr.to_string(),
                known_hosts: kh,
                line,
            },
            Some(Verdict::Unknown(fp)) => SshError::HostkeyUnknown {
                target: addr.to_string(),
                known_hosts: kh,
                fingerprint: fp,
            },
            Some(Verdict::Error(m)) => SshError::HostkeyError {
                target: addr.to_string(),
                message: m,
            },
            None => SshError::Unreachable {
                target: addr.to_string(),
                message: format!("SSH handshake: {e}"),
            },
        }
    }

    async fn authenticate(
        &self,
        handle: &mut Handle<HostKeyCheck>,
        user: &str,
        target: &Target,
        addr: &str,
    ) -> Result<(), SshError> {
        let proto = |e: russh::Error| SshError::Protocol {
            target: addr.to_string(),
            message: format!("during authentication: {e}"),
        };
        let mut tried = Vec::new();
        let mut keys: Vec<(PathBuf, Arc<PrivateKey>)> = Vec::new();
        for f in &target.identity_files {
            if self.keys.iter().any(|(p, _)| p == f) {
                continue;
            }
            match load_key(f) {
                Ok(k) => keys.push((f.clone(), k)),
                Err(e) => tried.push(format!("{} (unreadable: {e})", f.display())),
            }
        }
        keys.extend(self.keys.iter().cloned());
        for (path, key) in &keys {
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(proto)?
                    .flatten()
            } else {
                None
            };
            tried.push(path.display().to_string());
            let r = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
                .map_err(proto)?;
            if r.success() {
                return Ok(());
            }
        }
        if self.opts.use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
            match russh::keys::agent::client::AgentClient::connect_env().await {
                Ok(mut agent) => {
                    let ids = agent.request_identities().await.unwrap_or_default();
                    for id in ids {
                        let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id
                        else {
                            continue;
                        };
                        let hash = if key.algorithm().is_rsa() {
                            handle
                                .best_supported_rsa_hash()
                                .await
                                .map_err(proto)?
                                .flatten()
                        } else {
                            None
                        };
                        tried.push(format!("agent:{comment}"));
                        if let Ok(r) = handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            if r.success() {
                                return Ok(());
                            }
                        }
                    }
                }
                Err(e) => tried.push(format!("agent unavailable: {e}")),
            }
        }
        Err(SshError::AuthFailed {
            target: addr.to_string(),
            user: user.to_string(),
            tried: if tried.is_empty() {
                "no keys: pass -i KEY or start ssh-agent".to_string()
            } else {
                tried.join(", ")
            },
        })
    }

    /// The shared connection to a bastion, opened once.
    async fn bastion(&self, j: &JumpSpec) -> Result<Arc<Handle<HostKeyCheck>>, SshError> {
        let cell = {
            let mut map = self.bastions.lock().map_err(|_| SshError::Protocol {
                target: j.to_string(),
                message: "bastion table lock poisoned".to_string(),
            })?;
            map.entry(j.clone()).or_default().clone()
        };
        let r = cell
            .get_or_init(|| async {
                let t = Target {
                    name: j.host.clone(),
                    host: j.host.clone(),
                    port: j.port,
                    user: j.user.clone(),
                    identity_files: j.identity_files.clone(),
                    known_hosts: j.known_hosts.clone(),
                    ..Default::default()
                };
                // The bastion itself is reached directly.
                self.connect_with(&t, None)
                    .await
                    .map(|s| Arc::new(s.handle))
            })
            .await;
        match r {
            Ok(h) => Ok(h.clone()),
            Err(e) => Err(SshError::Unreachable {
                target: j.to_string(),
                message: format!("jump host: {e}"),
            }),
        }
    }
}

/// Exponential backoff with full jitter: attempt 1 → 0.2–0.4 s, 2 → 0.4–0.8 s, … capped at 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let base_ms = 200u64.saturating_mul(1u64 << attempt.min(5).saturating_sub(1));
    let base_ms = base_ms.min(5000);
    let jitter = rand::random::<u64>() % (base_ms + 1);
    Duration::from_millis(base_ms + jitter)
}

impl SshSession {
    /// Runs one command. `stdin` is sent then closed. After `limit` the channel gets a KILL
    /// signal and is closed (callers also wrap the command in a remote `timeout`).
    pub async fn exec(
        &self,
        command: &str,
        stdin: Option<Arc<Vec<u8>>>,
        limit: Duration,
    ) -> Result<ExecOutput, SshError> {
        let proto = |what: &str, e: russh::Error| SshError::Protocol {
            target: self.target.clone(),
            message: format!("{what}: {e}"),
        };
        let mut ch = tokio::time::timeout(limit, self.handle.channel_open_session())
            .await
            .map_err(|_| SshError::CommandTimeout {
                target: self.target.clone(),
                secs: limit.as_secs_f64(),
            })?
            .map_err(|e| proto("opening a session channel", e))?;
        ch.exec(true, command)
            .await
            .map_err(|e| proto("exec request", e))?;
        let writer = stdin.map(|data| {
            let mut w = ch.make_writer();
            tokio::spawn(async move {
                let r = w.write_all(&data).await;
                let _ = w.shutdown().await;
                r
            })
        });
        let mut out = ExecOutput::default();
        let read = async {
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if out.stdout.len() + data.len() > MAX_STDOUT {
                            out.stdout_truncated = true;
                        } else {
                            out.stdout.extend_from_slice(&data);
                        }
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        let room = MAX_STDERR.saturating_sub(out.stderr.len());
                        out.stderr.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.exit_signal = Some(format!("{signal_name:?}"))
                    }
                    // exit-status may follow EOF: keep reading until close.
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
        };
        let timed_out = tokio::time::timeout(limit, read).await.is_err();
        if let Some(w) = writer {
            w.abort();
        }
        if timed_out {
            let _ = ch.signal(Sig::KILL).await;
            let _ = ch.close().await;
            return Err(SshError::CommandTimeout {
                target: self.target.clone(),
                secs: limit.as_secs_f64(),
            });
        }
        let _ = ch.close().await;
        Ok(out)
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "done", "en")
            .await;
    }

    pub fn target(&self) -> &str {
        &self.target
    }
}

/// `host:port` label of a jump spec for messages.
pub fn jump_label(j: &JumpSpec) -> String {
    host_port(&j.host, j.port)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        for a in 1..10 {
            let d = backoff(a);
            assert!(d <= Duration::from_millis(10_000), "{a}: {d:?}");
        }
        let b1 = backoff(1);
        assert!(b1 >= Duration::from_millis(200) && b1 <= Duration::from_millis(400));
        let b3 = backoff(3);
        assert!(b3 >= Duration::from_millis(800) && b3 <= Duration::from_millis(1600));
    }

    #[test]
    fn error_outcomes() {
        let t = "n".to_string();
        assert_eq!(
            SshError::HostkeyMismatch {
                target: t.clone(),
                known_hosts: "kh".into(),
                line: 3
            }
            .outcome(),
            Outcome::HostkeyMismatch
        );
        assert_eq!(
            SshError::ConnectTimeout {
                target: t.clone(),
                stage: "x",
                secs: 1.0
            }
            .outcome(),
            Outcome::Timeout
        );
        let u = SshError::Unreachable {
            target: t,
            message: "refused".into(),
        };
        assert!(u.retryable());
        assert_eq!(u.outcome(), Outcome::Unreachable);
    }
}
