//! VPC CNI configuration (env as seen by ipamd, version, `/v1/enis`) and parsed CNI log events.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CNI's configuration on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct CniConfig {
    /// CNI version (`v1.21.2`) from the image tag, the startup log line or the conflist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Env vars (`AWS_VPC_K8S_CNI_*`, `WARM_*`, `ENABLE_*`, `AWS_EXTERNAL_SERVICE_CIDRS`, ...)
    /// as strings. Introspection JSON values are normalised: booleans `true`/`false`, numbers
    /// in decimal (so `AWS_VPC_K8S_CNI_RANDOMIZESNAT` may be `2` = prng, `1` = hashrandom,
    /// `0` = none, and `AWS_VPC_K8S_CNI_CONNMARK` `128`), lists comma-joined, null omitted.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Where each env var came from (`ipamd:/v1/networkutils-env-settings`,
    /// `proc:/proc/1234/environ`, `file:cni-env`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_sources: BTreeMap<String, String>,
    /// ipamd `/v1/enis`, when reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipamd_enis: Option<IpamdEnis>,
    /// ipamd `/v1/eni-configs` (a bare string: the ENIConfig name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni_config: Option<String>,
    /// `/etc/cni/net.d/10-aws.conflist`, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflist: Option<serde_json::Value>,
}

impl CniConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(|s| s.trim())
    }
}

/// ipamd's view of ENIs and addresses (`/v1/enis`), normalised over the pre-v1.20 single
/// object and the v1.20+ map keyed by network card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct IpamdEnis {
    pub network_cards: Vec<IpamdNetworkCard>,
}

impl IpamdEnis {
    /// Every (ENI, address) pair that is assigned to a pod.
    pub fn assigned(&self) -> impl Iterator<Item = (&IpamdEni, &IpamdAddress)> {
        self.network_cards.iter().flat_map(|c| {
            c.enis.iter().flat_map(|e| {
                e.cidrs.iter().flat_map(move |cidr| {
                    cidr.addresses
                        .iter()
                        .filter(|a| a.assigned)
                        .map(move |a| (e, a))
                })
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct IpamdNetworkCard {
    pub index: u32,
    #[serde(default)]
    pub total_ips: u64,
    #[serde(default)]
    pub assigned_ips: u64,
    pub enis: Vec<IpamdEni>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct IpamdEni {
    pub id: String,
    #[serde(default)]
    pub is_primary: bool,
    #[serde(default)]
    pub is_trunk: bool,
    #[serde(default)]
    pub is_efa: bool,
    #[serde(default)]
    pub device_number: u32,
    /// v1.20.3+.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table_id: Option<u32>,
    pub cidrs: Vec<IpamdCidr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpamdCidr {
    pub cidr: IpNet,
    #[serde(default)]
    pub is_prefix: bool,
    /// Addresses handed out at least once (the list is sparse, see the groundtruth §4.3).
    #[serde(default)]
    pub addresses: Vec<IpamdAddress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpamdAddress {
    pub address: IpAddr,
    /// Non-zero `IPAMKey`.
    pub assigned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// Most CNI log events one snapshot keeps (newest kept), whoever builds it: the agent,
/// agentless mode or a capture/bundle reader.
pub const MAX_LOG_EVENTS: usize = 2000;

/// Parsed `/var/log/aws-routed-eni/*` (or captured log files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct CniLogs {
    pub files: Vec<LogFile>,
    /// Events kept: every classified event plus warn/error lines, newest last, bounded.
    pub events: Vec<LogEvent>,
    /// Events not kept because the bound was reached.
    #[serde(default)]
    pub events_dropped: u64,
}

impl CniLogs {
    /// Drops the oldest events beyond `max` (events are ordered newest last) and counts them.
    pub fn keep_newest(&mut self, max: usize) {
        if self.events.len() > max {
            let drop = self.events.len() - max;
            self.events.drain(..drop);
            self.events_dropped += drop as u64;
        }
    }
}

/// What was read of one log file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct LogFile {
    pub path: String,
    #[serde(default)]
    pub size: u64,
    /// Bytes actually read (from the end) within the byte/time budget.
    #[serde(default)]
    pub bytes_read: u64,
    /// True when the budget stopped reading before the start of the file.
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub lines: u64,
    /// Lines that were neither JSON nor a known text format.
    #[serde(default)]
    pub unparsed_lines: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One log line, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct LogEvent {
    /// File name (`ipamd.log`, `plugin.log`, `ipamd-2024-05-01T10-00-00.123.log.gz`).
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Timestamp as written (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// `debug`, `info`, `warn`, `error`, `fatal`.
    #[serde(default)]
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub msg: String,
    /// Extra keys of zap JSON lines.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Classification of known diagnostic messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LogEventKind>,
}

/// Known diagnostic messages (groundtruth §3.3).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LogEventKind {
    /// No IP for a pod / datastore empty / subnet out of addresses or prefixes.
    IpExhaustion,
    /// EC2 API throttled (`RequestLimitExceeded`, retry quota).
    Ec2Throttling,
    /// ENI create/attach failure or ENI limit reached.
    EniAttachFailure,
    /// ipamd not ready / unreachable from the plugin / version skew.
    NotReady,
    /// Missing IAM permission.
    MissingIamPermission,
    /// ENIConfig missing (custom networking).
    EniConfigMissing,
    /// ipamd startup summary (`Starting L-IPAMD`, `IP pool manager - max pods`).
    Startup,
    /// Pod ADD/DEL request received by the plugin.
    PodAdd,
    PodDel,
    /// Instance metadata and datastore disagree.
    ReconcileDrift,
}
