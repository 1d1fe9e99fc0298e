//! [`FleetSpec`]: which nodes, and how to reach and collect them. A plain value: `diag` builds
//! it from its flags, a daemon or a test builds it directly. The defaults are the `DEFAULT_*`
//! constants below and [`Default`]; the CLI shows the same constants as its defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::runner::{AgentBinary, AgentMode, RunOptions, SshTransport, Transport};
use crate::ssh::{SshClient, SshError, SshOptions};
use crate::ssm::{AwsSsm, SsmOptions, SsmTransport};
use crate::targets::{self, Target, TargetError};

pub use crate::runner::DEFAULT_AGENT_PATH;

/// SSH login user when the target does not name one.
pub const DEFAULT_USER: &str = "ec2-user";
/// TCP connect + SSH handshake + authentication, per attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The collection command on a node.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Nodes in flight at once.
pub const DEFAULT_JOBS: usize = 64;
/// Extra connect attempts after a connection error.
pub const DEFAULT_RETRIES: u32 = 2;
/// S3 key prefix for SSM command output.
pub const DEFAULT_S3_PREFIX: &str = "eks-diag";
/// SSM MaxConcurrency.
pub const DEFAULT_SSM_MAX_CONCURRENCY: &str = "50";
/// SSM MaxErrors: every node runs whatever the others do.
pub const DEFAULT_SSM_MAX_ERRORS: &str = "100%";

/// How nodes are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKind {
    /// SSH for hosts/ssh_config targets, SSM when only instance ids are given.
    #[default]
    Auto,
    Ssh,
    Ssm,
}

impl TransportKind {
    /// `ssh` / `ssm` / `auto`, as written in fleet.json.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Auto => "auto",
            TransportKind::Ssh => "ssh",
            TransportKind::Ssm => "ssm",
        }
    }
}

/// Which nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSpec {
    /// Hosts file: one `[user@]host[:port]` per line.
    pub hosts: Option<PathBuf>,
    /// ssh_config whose Host blocks name the targets (with `host_patterns`).
    pub ssh_config: Option<PathBuf>,
    pub host_patterns: Vec<String>,
    /// EKS cluster name (EC2 tags `eks:cluster-name` / `kubernetes.io/cluster/NAME`).
    pub ec2_cluster: Option<String>,
    /// Extra DescribeInstances filters `KEY=V1,V2`.
    pub ec2_filters: Vec<String>,
    pub instance_ids: Vec<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Keep only / drop nodes whose name matches this regex.
    pub only: Option<String>,
    pub exclude: Option<String>,
}

impl TargetSpec {
    /// True when any remote target source is given.
    pub fn is_empty(&self) -> bool {
        !self.uses_ssh_sources() && !self.uses_ec2_or_ids()
    }

    fn uses_ec2_or_ids(&self) -> bool {
        self.ec2_cluster.is_some() || !self.ec2_filters.is_empty() || !self.instance_ids.is_empty()
    }

    fn uses_ssh_sources(&self) -> bool {
        self.hosts.is_some() || self.ssh_config.is_some()
    }

    /// True when resolving asks EC2 which instances exist now (`--ec2-cluster`,
    /// `--ec2-filter`): the answer changes as instances are replaced, so a long-running caller
    /// (`diag check --wait`) resolves again each round. Hosts files, ssh_config and instance
    /// ids name fixed nodes and are resolved once.
    pub fn is_dynamic(&self) -> bool {
        self.ec2_cluster.is_some() || !self.ec2_filters.is_empty()
    }
}

/// SSH connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub use_agent: bool,
    /// None: `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    /// Bastion `[user@]host[:port]` for every node.
    pub jump: Option<String>,
    pub connect_timeout: Duration,
    pub retries: u32,
}

impl Default for SshSpec {
    fn default() -> Self {
        SshSpec {
            user: DEFAULT_USER.to_string(),
            identity_files: Vec::new(),
            use_agent: true,
            known_hosts: None,
            accept_new_host_keys: false,
            jump: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        }
    }
}

/// SSM settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmSpec {
    pub s3_bucket: Option<String>,
    pub s3_prefix: String,
    pub max_concurrency: String,
    pub max_errors: String,
}

impl Default for SsmSpec {
    fn default() -> Self {
        SsmSpec {
            s3_bucket: None,
            s3_prefix: DEFAULT_S3_PREFIX.to_string(),
            max_concurrency: DEFAULT_SSM_MAX_CONCURRENCY.to_string(),
            max_errors: DEFAULT_SSM_MAX_ERRORS.to_string(),
        }
    }
}

/// Targets plus everything about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSpec {
    pub targets: TargetSpec,
    pub transport: TransportKind,
    pub ssh: SshSpec,
    pub ssm: SsmSpec,
    /// What runs on the node.
    pub mode: AgentMode,
    /// Run the collection through `sudo -n` (non-root login users), over SSH and SSM.
    pub sudo: bool,
    pub command_timeout: Duration,
    pub jobs: usize,
    /// The installed agent's arguments (`collect`); see [`RunOptions::agent_args`].
    pub agent_args: Vec<String>,
    /// Hand back the agent's output as it is; see [`RunOptions::raw_output`].
    pub raw_output: bool,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            targets: TargetSpec::default(),
            transport: TransportKind::Auto,
            ssh: SshSpec::default(),
            ssm: SsmSpec::default(),
            mode: AgentMode::Installed {
                path: DEFAULT_AGENT_PATH.to_string(),
            },
            sudo: false,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            jobs: DEFAULT_JOBS,
            agent_args: crate::runner::default_agent_args(),
            raw_output: false,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Targets(#[from] TargetError),
    #[error(transparent)]
    Ec2(#[from] crate::ec2::Ec2Error),
    #[error("{0}")]
    Usage(String),
    /// This build has no AWS SDK (the `aws` cargo feature is off).
    #[error("{0} needs the AWS SDK, and this build has none (built without the `aws` feature, as scripts/demo.sh does); rebuild with default features")]
    NoAws(&'static str),
    #[error("no targets selected (give --hosts, --ssh-config with --host, --ec2-cluster or --instance-ids; check --only/--exclude)")]
    NoTargets,
    #[error("--push-agent and --agentless are SSH-only; over SSM the agent must be installed on the nodes")]
    SshOnlyMode,
    #[error("reading agent binary {path}: {source}")]
    AgentBinary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setting up SSH: {0}")]
    Ssh(#[from] SshError),
}

impl FleetSpec {
    /// SSH or SSM, resolving `auto`.
    pub fn effective_transport(&self) -> TransportKind {
        let t = &self.targets;
        match self.transport {
            TransportKind::Auto if !t.uses_ssh_sources() && !t.instance_ids.is_empty() => {
                TransportKind::Ssm
            }
            TransportKind::Auto => TransportKind::Ssh,
            k => k,
        }
    }

    /// Options of the SSH runner.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            mode: self.mode.clone(),
            sudo: self.sudo,
            command_timeout: self.command_timeout,
            concurrency: self.jobs.max(1),
            agent_args: self.agent_args.clone(),
            raw_output: self.raw_output,
        }
    }

    /// Options of the SSH client (`--jump` parsed here).
    pub fn ssh_options(&self) -> Result<SshOptions, FleetError> {
        let jump = match &self.ssh.jump {
            Some(j) => Some(targets::parse_jump(j)?),
            None => None,
        };
        Ok(SshOptions {
            known_hosts: self
                .ssh
                .known_hosts
                .clone()
                .unwrap_or_else(crate::ssh::default_known_hosts),
            accept_new_host_keys: self.ssh.accept_new_host_keys,
            identity_files: self.ssh.identity_files.clone(),
            use_agent: self.ssh.use_agent,
            default_user: self.ssh.user.clone(),
            connect_timeout: self.ssh.connect_timeout,
            retries: self.ssh.retries,
            jump,
        })
    }

    /// Options of the SSM transport. `sudo` is carried over: SSM runs as root, so it only
    /// matters for documents or agents that do not.
    pub fn ssm_options(&self) -> Result<SsmOptions, FleetError> {
        let agent_path = match &self.mode {
            AgentMode::Installed { path } => path.clone(),
            _ => return Err(FleetError::SshOnlyMode),
        };
        Ok(SsmOptions {
            agent_path,
            command_timeout: self.command_timeout,
            max_concurrency: self.ssm.max_concurrency.clone(),
            max_errors: self.ssm.max_errors.clone(),
            s3_bucket: self.ssm.s3_bucket.clone(),
            s3_prefix: self.ssm.s3_prefix.clone(),
            sudo: self.sudo,
            agent_args: self.agent_args.clone(),
            raw_output: self.raw_output,
            ..Default::default()
        })
    }

    /// Every selected target, after `only`/`exclude`. Empty is not an error here.
    pub async fn resolve_targets(&self) -> Result<Vec<Target>, FleetError> {
        let t = &self.targets;
        let mut all = Vec::new();
        if let Some(h) = &t.hosts {
            all.extend(targets::read_hosts_file(h)?);
        }
        if let Some(c) = &t.ssh_config {
            if t.host_patterns.is_empty() {
                return Err(FleetError::Usage(
                    "--ssh-config needs --host PATTERN to say which Host entries to use".into(),
                ));
            }
            all.extend(targets::SshConfig::read(c)?.targets(&t.host_patterns)?);
        } else if !t.host_patterns.is_empty() {
            return Err(FleetError::Usage(
                "--host is only used with --ssh-config".into(),
            ));
        }
        if t.uses_ec2_or_ids() {
            if self.effective_transport() == TransportKind::Ssm && !t.is_dynamic() {
                // Instance ids over SSM need no EC2 call.
                all.extend(t.instance_ids.iter().map(|id| Target {
                    name: id.clone(),
                    host: id.clone(),
                    port: 22,
                    instance_id: Some(id.clone()),
                    ..Default::default()
                }));
            } else {
                let q = crate::ec2::Ec2Query {
                    cluster: t.ec2_cluster.clone(),
                    filters: crate::ec2::parse_filters(&t.ec2_filters)?,
                    instance_ids: t.instance_ids.clone(),
                    page_size: None,
                };
                #[cfg(feature = "aws")]
                {
                    let conf = crate::ec2::aws_config(t.region.clone(), t.profile.clone()).await;
                    let client = aws_sdk_ec2::Client::new(&conf);
                    all.extend(crate::ec2::discover(&client, &q).await?);
                }
                #[cfg(not(feature = "aws"))]
                {
                    let _ = q;
                    return Err(FleetError::NoAws(
                        "EC2 discovery (--ec2-cluster, --ec2-filter, --instance-ids over SSH)",
                    ));
                }
            }
        }
        let only = match &t.only {
            Some(p) => Some(targets::compile_filter("--only", p)?),
            None => None,
        };
        let exclude = match &t.exclude {
            Some(p) => Some(targets::compile_filter("--exclude", p)?),
            None => None,
        };
        Ok(targets::filter_targets(
            all,
            only.as_ref(),
            exclude.as_ref(),
        ))
    }

    /// The transport this spec selects, ready to run (SSH keys and the pushed agent are
    /// loaded, the AWS config is read).
    pub async fn transport(&self) -> Result<AnyTransport, FleetError> {
        match self.effective_transport() {
            #[cfg(feature = "aws")]
            TransportKind::Ssm => {
                let opts = self.ssm_options()?;
                let conf = crate::ec2::aws_config(
                    self.targets.region.clone(),
                    self.targets.profile.clone(),
                )
                .await;
                Ok(AnyTransport::Ssm(SsmTransport::new(
                    AwsSsm::new(&conf),
                    opts,
                )))
            }
            #[cfg(not(feature = "aws"))]
            TransportKind::Ssm => Err(FleetError::NoAws("the SSM transport")),
            _ => {
                let client = Arc::new(SshClient::new(self.ssh_options()?)?);
                let pushed = match &self.mode {
                    AgentMode::Push { local } => {
                        Some(AgentBinary::read(local).map_err(|source| {
                            FleetError::AgentBinary {
                                path: local.clone(),
                                source,
                            }
                        })?)
                    }
                    _ => None,
                };
                Ok(AnyTransport::Ssh(SshTransport::new(
                    client,
                    self.run_options(),
                    pushed,
                )))
            }
        }
    }
}

/// The transport a [`FleetSpec`] selects.
pub enum AnyTransport {
    Ssh(SshTransport),
    Ssm(SsmTransport<AwsSsm>),
}

impl Transport for AnyTransport {
    fn name(&self) -> &'static str {
        match self {
            AnyTransport::Ssh(t) => t.name(),
            AnyTransport::Ssm(t) => t.name(),
        }
    }

    async fn collect(&self, targets: &[Target], sink: &crate::runner::EventSink) {
        match self {
            AnyTransport::Ssh(t) => t.collect(targets, sink).await,
            AnyTransport::Ssm(t) => t.collect(targets, sink).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn transport_and_options() {
        let mut s = FleetSpec::default();
        s.targets.hosts = Some("h.txt".into());
        s.ssh.jump = Some("jump@10.0.0.1:2222".into());
        s.ssh.connect_timeout = Duration::from_millis(2500);
        assert_eq!(s.effective_transport(), TransportKind::Ssh);
        let o = s.ssh_options().unwrap();
        assert_eq!(o.jump.unwrap().port, 2222);
        assert_eq!(o.connect_timeout, Duration::from_millis(2500));
        let mut s = FleetSpec::default();
        s.targets.instance_ids = vec!["i-1".into(), "i-2".into()];
        assert_eq!(s.effective_transport(), TransportKind::Ssm);
        assert!(!s.targets.is_dynamic());
        s.targets.ec2_cluster = Some("prod".into());
        assert!(s.targets.is_dynamic());
        s.sudo = true;
        assert!(s.ssm_options().unwrap().sudo, "--sudo reaches SSM");
        s.mode = AgentMode::Agentless;
        assert!(matches!(s.ssm_options(), Err(FleetError::SshOnlyMode)));
        assert!(FleetSpec::default().targets.is_empty());
    }
}
