//! An emulated EKS worker node with real kernel state.
//!
//! Topology (every box is a network namespace, every line a veth pair):
//!
//! ```text
//!   pod0 … podN ──eniXXXX──┐
//!                          node ──eth0/ens5 (primary ENI)── vpc router ──── inet (203.0.113.10)
//!                               ──eth1 (secondary ENI)────┘          └──── peer (VPC host)
//! ```
//!
//! The node holds what the VPC CNI programs (groundtruth §1.2 (A)/(B)/(C), §2): the AWS
//! iptables rules in the chosen backend, policy rules 512/1024/1536/32765, table 2 for the
//! secondary ENI, `<pod> dev eni… scope link` routes, `rp_filter=2` on the primary interface and
//! `ip_forward=1`. The router stands in for the VPC fabric: it owns the subnet gateways (.1) and
//! delivers each pod IP to the ENI that holds it. Nothing touches the root namespace.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use model::vpccni;

use crate::doubles;
use crate::netns::{self, NetNs};

/// Which generation of AWS SNAT/connmark chains to program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// v1.16.2+: single `AWS-SNAT-CHAIN-0` / `AWS-CONNMARK-CHAIN-0` with `-d CIDR -j RETURN`.
    Current,
    /// ≤ v1.16.0: `AWS-SNAT-CHAIN-0..N` linked by `! -d CIDR -j AWS-SNAT-CHAIN-(i+1)`.
    Chained,
}

/// `AWS_VPC_K8S_CNI_RANDOMIZESNAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Random {
    /// `prng`: `--random-fully` (snatType 2).
    Fully,
    /// `hashrandom`: `--random` (snatType 1).
    Hash,
    /// `none`: no flag (snatType 0).
    None,
}

impl Random {
    /// The numeric snatType ipamd reports in `/v1/networkutils-env-settings`.
    pub fn snat_type(self) -> u8 {
        match self {
            Random::Fully => 2,
            Random::Hash => 1,
            Random::None => 0,
        }
    }

    fn flag(self) -> Option<&'static str> {
        match self {
            Random::Fully => Some("--random-fully"),
            Random::Hash => Some("--random"),
            Random::None => None,
        }
    }
}

/// iptables backend the AWS rules (and the kubelet canary) live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nft,
    Legacy,
}

impl Backend {
    pub fn other(self) -> Backend {
        match self {
            Backend::Nft => Backend::Legacy,
            Backend::Legacy => Backend::Nft,
        }
    }

    /// `iptables-nft` / `iptables-legacy`.
    pub fn iptables(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-nft",
            Backend::Legacy => "iptables-legacy",
        }
    }

    pub fn restore(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-nft-restore",
            Backend::Legacy => "iptables-legacy-restore",
        }
    }

    pub fn save(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-nft-save",
            Backend::Legacy => "iptables-legacy-save",
        }
    }

    pub fn to_model(self) -> model::Backend {
        match self {
            Backend::Nft => model::Backend::Nft,
            Backend::Legacy => model::Backend::Legacy,
        }
    }
}

/// One ENI of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EniConfig {
    pub id: String,
    pub mac: String,
    pub device_number: u32,
    /// Interface name inside the node (`eth0`/`ens5`, `eth1`).
    pub ifname: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The ENI's own primary address (never handed to pods).
    pub primary_ip: Ipv4Addr,
    /// `main` (254) for the primary ENI, `d + 1` otherwise.
    pub route_table: u32,
    /// Secondary addresses attached but not assigned to a pod (ipamd's warm pool).
    pub free_ips: Vec<Ipv4Addr>,
    /// Prefix delegation: the /28 prefixes attached to the ENI (pods draw their /32 from them).
    #[serde(default)]
    pub prefixes: Vec<Ipv4Net>,
    /// Security groups for pods: the trunk ENI the branch ENIs' VLANs ride on.
    #[serde(default)]
    pub is_trunk: bool,
    /// IPv6 mode: the ENI's own IPv6 address, its subnet and its /80 prefix (primary ENI only).
    #[serde(default)]
    pub ipv6: Option<EniIpv6>,
}

/// IPv6 side of the primary ENI in an IPv6-mode node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EniIpv6 {
    pub addr: Ipv6Addr,
    pub subnet: Ipv6Net,
    /// The /80 prefix ipamd assigns pods from (`IPv6Cidrs`, `IsPrefix: true`).
    pub prefix: Ipv6Net,
}

/// A branch ENI of a security-groups-for-pods pod (strict mode): VLAN `vlan_id` on the trunk
/// ENI, route table `100 + vlan_id` (driver.go `rtTable := vlanID + 100`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchEni {
    pub id: String,
    pub mac: String,
    pub vlan_id: u16,
    pub table: u32,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `vlan.eth.<vlan_id>` (driver.go `buildVlanLinkName`).
    pub vlan_link: String,
    /// Device number of the trunk ENI.
    pub trunk_device: u32,
}

/// The configurations real clusters run, as options of one node spec (all off = the default
/// IPv4 secondary-IP mode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mode {
    /// `ENABLE_PREFIX_DELEGATION=true`: one /28 per ENI, pods' /32s drawn from it.
    #[serde(default)]
    pub prefix_delegation: bool,
    /// `AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true` with an ENIConfig subnet in this secondary
    /// VPC CIDR: the pods' ENIs sit there, the primary ENI holds no pods.
    #[serde(default)]
    pub custom_networking: Option<Ipv4Net>,
    /// `ENABLE_POD_ENI=true`, `POD_SECURITY_GROUP_ENFORCING_MODE=strict`: a trunk ENI and this
    /// many branch-ENI pods.
    #[serde(default)]
    pub branch_pods: usize,
    /// `ENABLE_IPv6=true`: pods get IPv6 addresses from the primary ENI's /80 prefix.
    #[serde(default)]
    pub ipv6: bool,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodConfig {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    /// Host-side veth: `eni` + 11 hex of sha1("<namespace>.<name>").
    pub veth: String,
    pub veth_mac: String,
    /// Device number of the ENI the IP belongs to.
    pub eni_device: u32,
    /// The pod's network namespace.
    pub netns: String,
    pub container_id: String,
    /// IPv6 mode: the pod's address from the primary ENI's /80 prefix. (`ip` is then unused:
    /// the pod has no routable IPv4 address.)
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// Security groups for pods: the branch ENI the pod's traffic uses.
    #[serde(default)]
    pub branch: Option<BranchEni>,
}

/// Namespace names of one emulated node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespaces {
    pub node: String,
    pub vpc: String,
    pub inet: String,
    pub peer: String,
}

/// The facts of an emulated node: what IMDS and ipamd would say, and what was programmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// `ekd-<pid>-<n>` or `ekd-emu-<name>`: every namespace name starts with it.
    pub stem: String,
    pub layout: Layout,
    pub backend: Backend,
    pub randomize: Random,
    pub instance_id: String,
    pub instance_type: String,
    pub region: String,
    pub availability_zone: String,
    pub hostname: String,
    pub primary_if: String,
    /// IMDS `local-ipv4` and the `--to-source` of the SNAT rule.
    pub primary_ip: Ipv4Addr,
    pub vpc_cidrs: Vec<Ipv4Net>,
    pub exclude_snat: Vec<Ipv4Net>,
    /// `enis[0]` is the primary ENI.
    pub enis: Vec<EniConfig>,
    pub pods: Vec<PodConfig>,
    /// Host outside the VPC (traffic to it is SNATed).
    pub internet_host: Ipv4Addr,
    /// Host inside the VPC (traffic to it keeps the pod IP).
    pub vpc_peer: Ipv4Addr,
    /// TCP/UDP port the listeners on `internet_host` and `vpc_peer` use.
    pub listen_port: u16,
    pub imds_port: u16,
    pub ipamd_port: u16,
    pub namespaces: Namespaces,
    /// Files for the agent: `cni-env`, `net.d/10-aws.conflist`, `log/ipamd.log`, ...
    pub workdir: PathBuf,
    /// Prefix delegation / custom networking / security groups for pods / IPv6.
    #[serde(default)]
    pub mode: Mode,
    /// IPv6 mode: the VPC's /56, and the IPv6 addresses of the two hosts.
    #[serde(default)]
    pub vpc_ipv6_cidr: Option<Ipv6Net>,
    #[serde(default)]
    pub internet_host6: Option<Ipv6Addr>,
    #[serde(default)]
    pub vpc_peer6: Option<Ipv6Addr>,
}

impl NodeConfig {
    pub fn primary_eni(&self) -> &EniConfig {
        &self.enis[0]
    }

    pub fn eni(&self, device: u32) -> Option<&EniConfig> {
        self.enis.iter().find(|e| e.device_number == device)
    }

    pub fn pod(&self, name: &str) -> Option<&PodConfig> {
        self.pods.iter().find(|p| p.name == name)
    }

    pub fn imds_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.imds_port)
    }

    pub fn ipamd_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ipamd_port)
    }

    pub fn cni_env_file(&self) -> PathBuf {
        self.workdir.join("cni-env")
    }

    pub fn cni_conf_dir(&self) -> PathBuf {
        self.workdir.join("net.d")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.workdir.join("log")
    }

    /// `node-agent collect` flags that point it at this node's doubles and files.
    pub fn agent_args(&self) -> Vec<String> {
        vec![
            "--imds-endpoint".into(),
            self.imds_endpoint(),
            "--ipamd-endpoint".into(),
            self.ipamd_endpoint(),
            "--cni-env".into(),
            self.cni_env_file().display().to_string(),
            "--cni-conf-dir".into(),
            self.cni_conf_dir().display().to_string(),
            "--log-dir".into(),
            self.log_dir().display().to_string(),
        ]
    }

    /// The env of the aws-node container as this node was "configured".
    pub fn cni_env(&self) -> Vec<(String, String)> {
        let randomize = match self.randomize {
            Random::Fully => "prng",
            Random::Hash => "hashrandom",
            Random::None => "none",
        };
        let excl: Vec<String> = self.exclude_snat.iter().map(|c| c.to_string()).collect();
        let mut env: Vec<(String, String)> = vec![
            (vpccni::env::EXTERNALSNAT.into(), "false".into()),
            (vpccni::env::NODE_PORT_SUPPORT.into(), "true".into()),
            (vpccni::env::RANDOMIZESNAT.into(), randomize.into()),
            (vpccni::env::EXCLUDE_SNAT_CIDRS.into(), excl.join(",")),
            (vpccni::env::VETHPREFIX.into(), "eni".into()),
            (vpccni::env::ENI_MTU.into(), "9001".into()),
            (vpccni::env::POD_MTU.into(), "9001".into()),
            (vpccni::env::WARM_ENI_TARGET.into(), "1".into()),
            (
                vpccni::env::ENABLE_PREFIX_DELEGATION.into(),
                (self.mode.prefix_delegation || self.mode.ipv6).to_string(),
            ),
        ];
        if self.mode.custom_networking.is_some() {
            env.push((vpccni::env::CUSTOM_NETWORK_CFG.into(), "true".into()));
            env.push((
                "ENI_CONFIG_LABEL_DEF".into(),
                "topology.kubernetes.io/zone".into(),
            ));
        }
        if self.mode.branch_pods > 0 {
            env.push((vpccni::env::ENABLE_POD_ENI.into(), "true".into()));
            env.push(("POD_SECURITY_GROUP_ENFORCING_MODE".into(), "strict".into()));
        }
        if self.mode.ipv6 {
            env.push((vpccni::env::ENABLE_IPV6.into(), "true".into()));
            env.push((vpccni::env::ENABLE_IPV4.into(), "false".into()));
        }
        env
    }

    /// Every AWS iptables rule of this layout, in the order `iptables-save` prints them.
    pub fn aws_rules(&self) -> Vec<RuleSpec> {
        aws_rules(self)
    }
}

/// Host veth name the CNI derives for a pod (groundtruth §2.5).
pub fn host_veth_name(namespace: &str, pod: &str) -> String {
    host_veth_name_with(vpccni::DEFAULT_VETH_PREFIX, namespace, pod)
}

/// Host veth name with another prefix: `vlan` for strict-mode branch-ENI pods
/// (`pkg/sgpp/utils.go` `BuildHostVethNamePrefix`).
pub fn host_veth_name_with(prefix: &str, namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..11])
}

/// The filter rule ipamd inserts in IPv6 mode (`setupRuleToBlockNodeLocalAccess`, v4): pods'
/// egress-v4 addresses in 169.254.172.0/22 are not reachable from other hosts.
pub const BLOCK_NODE_LOCAL_V4: &str = "Block Node Local Pod access via IPv4";

/// One iptables rule: table, chain and argv after `-A <chain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub table: &'static str,
    pub chain: String,
    pub args: Vec<String>,
}

impl RuleSpec {
    fn new(table: &'static str, chain: &str, args: &str) -> RuleSpec {
        RuleSpec {
            table,
            chain: chain.to_string(),
            args: split_args(args),
        }
    }

    /// `-A CHAIN args` exactly as `iptables-save` prints it.
    pub fn save_line(&self) -> String {
        let mut s = format!("-A {}", self.chain);
        for a in &self.args {
            s.push(' ');
            if a.contains(' ') || a.is_empty() {
                s.push_str(&format!("\"{a}\""));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// Split a rule text into argv, honouring double quotes.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn snat_rule_args(to_source: Ipv4Addr, random: Random) -> String {
    let mut s = format!(
        "! -o vlan+ -m comment --comment \"{}\" -m addrtype ! --dst-type LOCAL -j SNAT --to-source {to_source}",
        vpccni::COMMENT_SNAT_RULE
    );
    if let Some(f) = random.flag() {
        s.push(' ');
        s.push_str(f);
    }
    s
}

const CONNMARK_SET: &str = "-j CONNMARK --set-xmark 0x80/0x80";
const CONNMARK_RESTORE: &str = "-j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80";

fn aws_rules(cfg: &NodeConfig) -> Vec<RuleSpec> {
    use vpccni::*;
    if cfg.mode.ipv6 {
        // v1.23 `network.go` `UpdateHostSNATRules`: "For v6, we don't add any SNAT or Connmark
        // rules"; `enableIPv6` only inserts the IPv4 filter rule below.
        return vec![RuleSpec::new(
            "filter",
            "FORWARD",
            &format!("-d 169.254.172.0/22 -m conntrack --ctstate NEW -m comment --comment \"{BLOCK_NODE_LOCAL_V4}\" -j REJECT --reject-with icmp-port-unreachable"),
        )];
    }
    let pif = &cfg.primary_if;
    let mut r = vec![
        RuleSpec::new(
            "mangle",
            "PREROUTING",
            &format!("-i {pif} -m comment --comment \"{COMMENT_PRIMARY_ENI}\" -m addrtype --dst-type LOCAL --limit-iface-in {CONNMARK_SET}"),
        ),
        RuleSpec::new(
            "mangle",
            "PREROUTING",
            &format!("-i eni+ -m comment --comment \"{COMMENT_PRIMARY_ENI}\" {CONNMARK_RESTORE}"),
        ),
        RuleSpec::new(
            "mangle",
            "PREROUTING",
            &format!("-i vlan+ -m comment --comment \"{COMMENT_PRIMARY_ENI}\" {CONNMARK_RESTORE}"),
        ),
        RuleSpec::new(
            "nat",
            "PREROUTING",
            &format!("-i eni+ -m comment --comment \"{COMMENT_OUTBOUND}\" -j {CONNMARK_CHAIN_0}"),
        ),
        RuleSpec::new(
            "nat",
            "PREROUTING",
            &format!("-m comment --comment \"{COMMENT_CONNMARK}\" {CONNMARK_RESTORE}"),
        ),
        RuleSpec::new(
            "nat",
            "POSTROUTING",
            &format!("-m comment --comment \"{COMMENT_SNAT_JUMP}\" -j {SNAT_CHAIN_0}"),
        ),
    ];
    let snat = snat_rule_args(cfg.primary_ip, cfg.randomize);
    let set_mark = format!("-m comment --comment \"{COMMENT_CONNMARK}\" {CONNMARK_SET}");
    match cfg.layout {
        Layout::Current => {
            // ipamd inserts each RETURN at position 1: exclusions reversed, then VPC reversed.
            let mut returns: Vec<(Ipv4Net, &str, &str)> = Vec::new();
            for c in cfg.exclude_snat.iter().rev() {
                returns.push((*c, COMMENT_CONNMARK_EXCLUDED, COMMENT_SNAT_EXCLUSION));
            }
            for c in cfg.vpc_cidrs.iter().rev() {
                returns.push((*c, COMMENT_CONNMARK_VPC, COMMENT_SNAT_VPC));
            }
            for (c, cm, _) in &returns {
                r.push(RuleSpec::new(
                    "nat",
                    CONNMARK_CHAIN_0,
                    &format!("-d {c} -m comment --comment \"{cm}\" -j RETURN"),
                ));
            }
            r.push(RuleSpec::new("nat", CONNMARK_CHAIN_0, &set_mark));
            for (c, _, sm) in &returns {
                r.push(RuleSpec::new(
                    "nat",
                    SNAT_CHAIN_0,
                    &format!("-d {c} -m comment --comment \"{sm}\" -j RETURN"),
                ));
            }
            r.push(RuleSpec::new("nat", SNAT_CHAIN_0, &snat));
        }
        Layout::Chained => {
            let cidrs: Vec<(Ipv4Net, &str, &str)> = cfg
                .vpc_cidrs
                .iter()
                .map(|c| (*c, COMMENT_CONNMARK_VPC, COMMENT_SNAT_VPC))
                .chain(
                    cfg.exclude_snat
                        .iter()
                        .map(|c| (*c, COMMENT_CONNMARK_EXCLUDED, COMMENT_SNAT_EXCLUSION)),
                )
                .collect();
            let n = cidrs.len();
            for (i, (c, cm, _)) in cidrs.iter().enumerate() {
                r.push(RuleSpec::new(
                    "nat",
                    &format!("{CONNMARK_CHAIN_PREFIX}{i}"),
                    &format!(
                        "! -d {c} -m comment --comment \"{cm}\" -j {CONNMARK_CHAIN_PREFIX}{}",
                        i + 1
                    ),
                ));
            }
            r.push(RuleSpec::new(
                "nat",
                &format!("{CONNMARK_CHAIN_PREFIX}{n}"),
                &set_mark,
            ));
            for (i, (c, _, sm)) in cidrs.iter().enumerate() {
                r.push(RuleSpec::new(
                    "nat",
                    &format!("{SNAT_CHAIN_PREFIX}{i}"),
                    &format!(
                        "! -d {c} -m comment --comment \"{sm}\" -j {SNAT_CHAIN_PREFIX}{}",
                        i + 1
                    ),
                ));
            }
            r.push(RuleSpec::new(
                "nat",
                &format!("{SNAT_CHAIN_PREFIX}{n}"),
                &snat,
            ));
        }
    }
    r
}

/// kube-proxy rules that share the nat built-in chains with the AWS rules (groundtruth (A)).
fn kube_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec::new(
            "nat",
            "PREROUTING",
            "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        ),
        RuleSpec::new(
            "nat",
            "OUTPUT",
            "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        ),
        RuleSpec::new(
            "nat",
            "POSTROUTING",
            "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        ),
        RuleSpec::new("nat", "KUBE-MARK-MASQ", "-j MARK --set-xmark 0x4000/0x4000"),
        RuleSpec::new(
            "nat",
            "KUBE-POSTROUTING",
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
        ),
        RuleSpec::new("nat", "KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0"),
        RuleSpec::new(
            "nat",
            "KUBE-POSTROUTING",
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        ),
    ]
}

const BUILTIN_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// An `iptables-restore --noflush` document: user chains declared per table, rules appended
/// in order. Kube rules come first in the shared built-in chains, as on a node where
/// kube-proxy started before aws-node. `canary` adds `KUBE-KUBELET-CANARY` to every table.
pub fn restore_document(rules: &[RuleSpec], canary: bool) -> String {
    let mut out = String::new();
    for table in ["mangle", "nat", "filter"] {
        let rs: Vec<&RuleSpec> = rules.iter().filter(|r| r.table == table).collect();
        if rs.is_empty() && !canary {
            continue;
        }
        out.push_str(&format!("*{table}\n"));
        let mut chains: Vec<&str> = Vec::new();
        if canary {
            chains.push(vpccni::KUBELET_CANARY);
        }
        for r in &rs {
            let targets = r
                .args
                .iter()
                .position(|a| a == "-j")
                .and_then(|i| r.args.get(i + 1));
            for c in [Some(&r.chain), targets].into_iter().flatten() {
                let is_user = c.starts_with("AWS-") || c.starts_with("KUBE-");
                if is_user && !BUILTIN_CHAINS.contains(&c.as_str()) && !chains.contains(&c.as_str())
                {
                    chains.push(c);
                }
            }
        }
        for c in chains {
            out.push_str(&format!(":{c} - [0:0]\n"));
        }
        for r in rs {
            out.push_str(&r.save_line());
            out.push('\n');
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Whether the kernel can create 802.1Q VLAN links (probed with a throwaway veth in `ns`).
fn vlan_supported(ns: &NetNs) -> bool {
    let ok = ns
        .ip_batch(&[
            "link add ekdprobe0 type veth peer name ekdprobe1".into(),
            "link add link ekdprobe0 name ekdprobe0.9 type vlan id 9".into(),
        ])
        .is_ok();
    let _ = ns.ip_batch(&["link del ekdprobe0".into()]);
    ok
}

/// `ip -6 -batch` in `ns` (batch lines take no family option of their own).
fn ip6_batch(ns: &NetNs, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let script = lines.join("\n") + "\n";
    ns.exec_stdin(&["ip", "-6", "-batch", "-"], &script)
        .with_context(|| format!("ip -6 -batch in {}:\n{script}", ns.name()))?;
    Ok(())
}

/// The `n`th address of an IPv6 network (`::1` = 1).
fn ipv6_at(net: &Ipv6Net, n: u16) -> Ipv6Addr {
    let mut seg = net.network().segments();
    seg[7] = n;
    Ipv6Addr::from(seg)
}

/// Builder for [`EksNode`]; see the crate docs for the topology.
#[derive(Debug, Clone)]
pub struct EksNodeBuilder {
    stem: Option<String>,
    layout: Layout,
    backend: Backend,
    randomize: Random,
    primary_if: String,
    vpc_cidrs: Vec<Ipv4Net>,
    exclude_snat: Vec<Ipv4Net>,
    pods_primary: usize,
    pods_secondary: usize,
    doubles: bool,
    doubles_ttl: Duration,
    mode: Mode,
    /// Invalid builder input, reported by `plan()`/`build()`.
    errors: Vec<String>,
}

impl Default for EksNodeBuilder {
    fn default() -> Self {
        EksNodeBuilder {
            stem: None,
            layout: Layout::Current,
            backend: Backend::Nft,
            randomize: Random::Fully,
            primary_if: "eth0".into(),
            vpc_cidrs: vec![Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap_or_default()],
            exclude_snat: Vec::new(),
            pods_primary: 2,
            pods_secondary: 1,
            doubles: true,
            doubles_ttl: Duration::from_secs(900),
            mode: Mode::default(),
            errors: Vec::new(),
        }
    }
}

fn parse_nets<I, S>(items: I) -> Result<Vec<Ipv4Net>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items
        .into_iter()
        .map(|s| {
            let s = s.as_ref();
            s.parse::<Ipv4Net>()
                .map(|n| n.trunc())
                .with_context(|| format!("invalid IPv4 CIDR {s:?}"))
        })
        .collect()
}

impl EksNodeBuilder {
    /// Namespaces become `ekd-emu-<name>-{node,vpc,inet,peer,pod<i>}` instead of the unique
    /// `ekd-<pid>-<n>-…` (for `emulate-node`, whose `down` runs in another process).
    pub fn name(mut self, name: &str) -> Self {
        self.stem = Some(format!("{}emu-{name}", netns::NS_PREFIX));
        self
    }
    pub fn layout(mut self, l: Layout) -> Self {
        self.layout = l;
        self
    }
    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }
    pub fn randomize(mut self, r: Random) -> Self {
        self.randomize = r;
        self
    }
    pub fn primary_if(mut self, name: &str) -> Self {
        self.primary_if = name.to_string();
        self
    }
    /// The first CIDR holds the subnets (it must be /18 or larger); the rest are secondary
    /// VPC CIDRs (e.g. `100.64.0.0/16`) that only appear in IMDS and the RETURN rules.
    pub fn vpc_cidrs<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, cidrs: I) -> Self {
        match parse_nets(cidrs) {
            Ok(v) => self.vpc_cidrs = v,
            Err(e) => self.errors.push(format!("{e:#}")),
        }
        self
    }
    pub fn exclude_snat<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, cidrs: I) -> Self {
        match parse_nets(cidrs) {
            Ok(v) => self.exclude_snat = v,
            Err(e) => self.errors.push(format!("{e:#}")),
        }
        self
    }
    pub fn pods_on_primary(mut self, n: usize) -> Self {
        self.pods_primary = n;
        self
    }
    pub fn pods_on_secondary(mut self, n: usize) -> Self {
        self.pods_secondary = n;
        self
    }
    /// Start the IMDS/ipamd doubles in the node (default on; needs the `cni-doubles` binary).
    pub fn doubles(mut self, on: bool) -> Self {
        self.doubles = on;
        self
    }
    /// How long the doubles and listeners live at most.
    pub fn doubles_ttl(mut self, ttl: Duration) -> Self {
        self.doubles_ttl = ttl;
        self
    }

    /// Prefix delegation (`ENABLE_PREFIX_DELEGATION=true`): each ENI gets one /28 prefix
    /// (IMDS `ipv4-prefix`, ipamd `IsPrefix: true`) and pods' addresses come from it. The
    /// per-pod rules and routes stay /32 (driver.go `setupIPBasedContainerRouteRules` gets the
    /// pod's /32); the VPC fabric routes the whole /28 to the ENI.
    pub fn prefix_delegation(mut self, on: bool) -> Self {
        self.mode.prefix_delegation = on;
        self
    }
    /// Custom networking with an ENIConfig subnet in `cidr` (e.g. `100.64.0.0/16`), a
    /// secondary VPC CIDR: the CIDR joins IMDS `vpc-ipv4-cidr-blocks` (hence the SNAT/connmark
    /// RETURN rules, groundtruth §1.2 (J)), the secondary ENI sits in its first /19 and every
    /// pod is on it (the primary ENI holds none).
    pub fn custom_networking(mut self, cidr: &str) -> Self {
        match parse_nets([cidr]) {
            Ok(v) => self.mode.custom_networking = v.first().copied(),
            Err(e) => self.errors.push(format!("{e:#}")),
        }
        self
    }
    /// Security groups for pods, strict mode, with `n` branch-ENI pods: a trunk ENI (`eth2`,
    /// device 2), one `vlan.eth.<id>` VLAN link per branch ENI on it, table `100+id`, rules
    /// `10: iif vlan.eth.<id>` / `10: iif vlan<hash>` and the local rule moved to 20
    /// (network.go `SetupHostNetwork`, driver.go `SetupBranchENIPodNetwork`).
    pub fn security_groups_for_pods(mut self, n: usize) -> Self {
        self.mode.branch_pods = n;
        self
    }
    /// IPv6 mode (`ENABLE_IPv6=true`, which needs prefix delegation): pods get IPv6 addresses
    /// from the primary ENI's /80 prefix, `ip -6` rules 512 and 1024, no SNAT/connmark rules in
    /// iptables or ip6tables; kube-proxy's rules live in ip6tables. Only the primary ENI.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.mode.ipv6 = on;
        self
    }

    /// The facts the node will have, without creating anything.
    pub fn plan(&self) -> Result<NodeConfig> {
        if let Some(e) = self.errors.first() {
            bail!("{e}");
        }
        let vpc = *self
            .vpc_cidrs
            .first()
            .context("at least one valid VPC CIDR is required")?;
        if vpc.prefix_len() > 18 {
            bail!("the first VPC CIDR {vpc} must be /18 or larger to hold the emulated subnets");
        }
        if self.pods_primary + self.pods_secondary > 200 {
            bail!("at most 200 pods per emulated node");
        }
        if self.primary_if.len() > 15 || self.primary_if == "eth1" {
            bail!("invalid primary interface name {:?}", self.primary_if);
        }
        let mode = self.mode.clone();
        if mode.ipv6 && (mode.branch_pods > 0 || mode.custom_networking.is_some()) {
            bail!("the emulated IPv6 node supports neither security groups for pods nor custom networking");
        }
        if mode.prefix_delegation && mode.branch_pods > 0 {
            bail!("combine prefix delegation and security groups for pods in separate nodes");
        }
        let subnets: Vec<Ipv4Net> = vpc
            .subnets(19)
            .context("splitting the VPC CIDR")?
            .take(4)
            .collect();
        let mut vpc_cidrs = self.vpc_cidrs.clone();
        let custom_subnets: Option<Vec<Ipv4Net>> = match mode.custom_networking {
            Some(c) => {
                if c.prefix_len() > 18 {
                    bail!("the custom networking CIDR {c} must be /18 or larger");
                }
                if !vpc_cidrs.contains(&c) {
                    vpc_cidrs.push(c);
                }
                Some(
                    c.subnets(19)
                        .context("splitting the custom CIDR")?
                        .take(4)
                        .collect(),
                )
            }
            None => None,
        };
        let at = |net: &Ipv4Net, hi: u8, lo: u8| -> Ipv4Addr {
            Ipv4Addr::from(u32::from(net.network()) + (u32::from(hi) << 8) + u32::from(lo))
        };
        let stem = self.stem.clone().unwrap_or_else(netns::unique_stem);
        let id_hash = {
            let d = Sha1::digest(stem.as_bytes());
            d.iter()
                .take(9)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let pd = mode.prefix_delegation;
        let mk_eni = |d: u32, ifname: &str, subnet: Ipv4Net, primary: Ipv4Addr| EniConfig {
            id: format!("eni-{}{d}", &id_hash[..16]),
            mac: format!(
                "02:ec:d0:{}:{}:{:02x}",
                &id_hash[..2],
                &id_hash[2..4],
                d + 1
            ),
            device_number: d,
            ifname: ifname.to_string(),
            subnet,
            gateway: at(&subnet, 0, 1),
            primary_ip: primary,
            route_table: vpccni::eni_route_table(d, 0),
            free_ips: if pd {
                Vec::new()
            } else {
                vec![at(&subnet, 3, 10), at(&subnet, 3, 11)]
            },
            prefixes: if pd {
                vec![Ipv4Net::new(at(&subnet, 4, 0), 28).unwrap_or_default()]
            } else {
                Vec::new()
            },
            is_trunk: false,
            ipv6: None,
        };
        // IPv6 mode: VPC 2001:db8:1234::/56 (documentation range), subnet ::/64 per ENI, the
        // primary ENI's /80 prefix `2001:db8:1234:0:1::/80`.
        let vpc6: Ipv6Net = "2001:db8:1234::/56".parse().context("IPv6 VPC CIDR")?;
        let sub6 = |i: u16| -> Ipv6Net {
            let mut seg = vpc6.network().segments();
            seg[3] = i;
            Ipv6Net::new(Ipv6Addr::from(seg), 64).unwrap_or_default()
        };
        let in6 = |net: &Ipv6Net, s4: u16, s7: u16| -> Ipv6Addr {
            let mut seg = net.network().segments();
            seg[4] = s4;
            seg[7] = s7;
            Ipv6Addr::from(seg)
        };
        let mut enis = vec![mk_eni(
            0,
            &self.primary_if,
            subnets[0],
            at(&subnets[0], 1, 251),
        )];
        if mode.ipv6 {
            let s0 = sub6(0);
            enis[0].ipv6 = Some(EniIpv6 {
                addr: in6(&s0, 0, 0xa),
                subnet: s0,
                prefix: Ipv6Net::new(in6(&s0, 1, 0), 80).unwrap_or_default(),
            });
            enis[0].prefixes.clear();
        } else {
            let sub1 = custom_subnets.as_ref().map_or(subnets[1], |c| c[0]);
            enis.push(mk_eni(1, "eth1", sub1, at(&sub1, 1, 10)));
        }
        if mode.branch_pods > 0 {
            let mut trunk = mk_eni(2, "eth2", subnets[2], at(&subnets[2], 1, 10));
            trunk.is_trunk = true;
            trunk.free_ips.clear();
            trunk.prefixes.clear();
            enis.push(trunk);
        }
        if mode.branch_pods > 50 {
            bail!("at most 50 branch-ENI pods per emulated node");
        }
        // Custom networking puts every pod on the ENIConfig-subnet ENI; IPv6 mode every pod on
        // the primary ENI.
        let (n_primary, n_secondary) = if mode.custom_networking.is_some() {
            (0, self.pods_primary + self.pods_secondary)
        } else if mode.ipv6 {
            (self.pods_primary + self.pods_secondary, 0)
        } else {
            (self.pods_primary, self.pods_secondary)
        };
        let mut pods = Vec::new();
        let mut per_eni = [0u8; 3];
        for (i, dev) in std::iter::repeat_n(0u32, n_primary)
            .chain(std::iter::repeat_n(1u32, n_secondary))
            .chain(std::iter::repeat_n(2u32, mode.branch_pods))
            .enumerate()
        {
            let name = format!("app-{}-{i}", &id_hash[..10]);
            let namespace = "default".to_string();
            let idx = u8::try_from(i).context("pod index")?;
            let k = per_eni[dev as usize];
            per_eni[dev as usize] += 1;
            let eni = enis
                .iter()
                .find(|e| e.device_number == dev)
                .context("pod ENI")?;
            let ip = match eni.prefixes.first() {
                Some(p) if k < 14 => Ipv4Addr::from(u32::from(p.network()) + 2 + u32::from(k)),
                Some(p) => bail!("at most 14 pods per /28 prefix ({p})"),
                None => at(&eni.subnet, 2, 10 + idx),
            };
            let branch = (dev == 2).then(|| {
                let vlan_id = u16::from(k) + 1;
                BranchEni {
                    id: format!("eni-{}b{vlan_id:02}", &id_hash[..14]),
                    mac: format!(
                        "02:ec:b0:{}:{}:{:02x}",
                        &id_hash[..2],
                        &id_hash[2..4],
                        vlan_id
                    ),
                    vlan_id,
                    table: 100 + u32::from(vlan_id),
                    subnet: eni.subnet,
                    gateway: eni.gateway,
                    vlan_link: format!("vlan.eth.{vlan_id}"),
                    trunk_device: dev,
                }
            });
            let veth = if branch.is_some() {
                host_veth_name_with("vlan", &namespace, &name)
            } else {
                host_veth_name(&namespace, &name)
            };
            let ipv6 = eni.ipv6.as_ref().map(|v| {
                let mut seg = v.prefix.network().segments();
                seg[7] = u16::from(k) + 2;
                Ipv6Addr::from(seg)
            });
            pods.push(PodConfig {
                veth,
                veth_mac: format!("02:ec:e1:{}:00:{:02x}", &id_hash[..2], idx),
                ip,
                eni_device: dev,
                netns: format!("{stem}-pod{i}"),
                container_id: format!("{:0>64}", format!("{id_hash}{i:04}")),
                namespace,
                name,
                ipv6,
                branch,
            });
        }
        let vpc_peer = match &custom_subnets {
            Some(c) => at(&c[3], 0, 10),
            None => at(&subnets[3], 0, 10),
        };
        let workdir = std::env::temp_dir().join(&stem);
        Ok(NodeConfig {
            layout: self.layout,
            backend: self.backend,
            randomize: self.randomize,
            instance_id: format!("i-{}", &id_hash[..17]),
            instance_type: "m5.large".into(),
            region: "us-west-2".into(),
            availability_zone: "us-west-2a".into(),
            hostname: format!(
                "ip-{}.us-west-2.compute.internal",
                enis[0].primary_ip.to_string().replace('.', "-")
            ),
            primary_if: self.primary_if.clone(),
            primary_ip: enis[0].primary_ip,
            vpc_cidrs,
            exclude_snat: self.exclude_snat.clone(),
            enis,
            pods,
            internet_host: Ipv4Addr::new(203, 0, 113, 10),
            vpc_peer,
            listen_port: 8080,
            imds_port: 1338,
            ipamd_port: 61679,
            namespaces: Namespaces {
                node: format!("{stem}-node"),
                vpc: format!("{stem}-vpc"),
                inet: format!("{stem}-inet"),
                peer: format!("{stem}-peer"),
            },
            workdir,
            stem,
            vpc_ipv6_cidr: mode.ipv6.then_some(vpc6),
            internet_host6: mode
                .ipv6
                .then(|| "2001:db8:ffff::10".parse().unwrap_or(Ipv6Addr::LOCALHOST)),
            vpc_peer6: mode.ipv6.then(|| in6(&sub6(3), 0, 0x10)),
            mode,
        })
    }

    /// Create the namespaces, links, addresses, routes, rules, iptables rules and sysctls, and
    /// start the doubles. Everything is torn down again if a step fails.
    pub fn build(self) -> Result<EksNode> {
        netns::cleanup_stale();
        let cfg = self.plan()?;
        let mut node = EksNode {
            node: NetNs::create(&cfg.namespaces.node)?,
            vpc: NetNs::create(&cfg.namespaces.vpc)?,
            inet: NetNs::create(&cfg.namespaces.inet)?,
            peer: NetNs::create(&cfg.namespaces.peer)?,
            pod_ns: Vec::new(),
            children: Vec::new(),
            listeners: false,
            workdir_owned: true,
            ttl: self.doubles_ttl,
            config: cfg,
        };
        for p in &node.config.pods {
            node.pod_ns.push(NetNs::create(&p.netns)?);
        }
        // No IPv6 duplicate address detection: link-local addresses would otherwise flip from
        // `tentative` to valid a moment after creation, and state comparisons would race it.
        for ns in [&node.node, &node.vpc, &node.inet, &node.peer]
            .into_iter()
            .chain(&node.pod_ns)
        {
            ns.exec_ok(&[
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ])?;
        }
        node.wire().context("wiring the emulated node")?;
        node.write_files().context("writing the node's CNI files")?;
        if self.doubles {
            let child = doubles::start(&node, self.doubles_ttl)?;
            node.children.push(child);
        }
        Ok(node)
    }
}

/// A running emulated node; dropping it kills its processes and deletes its namespaces.
#[derive(Debug)]
pub struct EksNode {
    config: NodeConfig,
    node: NetNs,
    vpc: NetNs,
    inet: NetNs,
    peer: NetNs,
    pod_ns: Vec<NetNs>,
    children: Vec<Child>,
    listeners: bool,
    workdir_owned: bool,
    /// Lifetime of the doubles and listeners.
    ttl: Duration,
}

impl EksNode {
    pub fn builder() -> EksNodeBuilder {
        EksNodeBuilder::default()
    }

    /// The node's namespace.
    pub fn ns(&self) -> &NetNs {
        &self.node
    }
    pub fn vpc_ns(&self) -> &NetNs {
        &self.vpc
    }
    pub fn internet_ns(&self) -> &NetNs {
        &self.inet
    }
    pub fn peer_ns(&self) -> &NetNs {
        &self.peer
    }
    pub fn pod_ns(&self, i: usize) -> Option<&NetNs> {
        self.pod_ns.get(i)
    }
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    pub fn pods(&self) -> &[PodConfig] {
        &self.config.pods
    }

    /// Run `argv` inside the node namespace.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.node.exec(argv)
    }

    /// Run inside the node namespace and require success.
    pub fn exec_ok(&self, argv: &[&str]) -> Result<String> {
        self.node.exec_ok(argv)
    }

    /// Keep everything after this handle is dropped (`emulate-node up`). The doubles keep
    /// running until their TTL; `emulate-node down` removes it all by name.
    pub fn persist(mut self) -> NodeConfig {
        for ns in [
            &mut self.node,
            &mut self.vpc,
            &mut self.inet,
            &mut self.peer,
        ] {
            ns.persist();
        }
        for ns in &mut self.pod_ns {
            ns.persist();
        }
        self.children.clear();
        self.workdir_owned = false;
        self.config.clone()
    }

    fn wire(&self) -> Result<()> {
        let c = &self.config;
        let n = &c.namespaces;
        let e0 = c.primary_eni();
        let router_if = |d: u32| format!("n{d}");
        // Router: ENI links, peer and internet links, VPC fabric routes to each pod's ENI.
        let peer_net = Ipv4Net::new(c.vpc_peer, 24)?.trunc();
        let peer_gw = Ipv4Addr::from(u32::from(peer_net.network()) + 1);
        let mut r = Vec::new();
        let mut r6 = Vec::new();
        for eni in &c.enis {
            let ri = router_if(eni.device_number);
            r.push(format!(
                "link add {ri} type veth peer name {} address {} netns {}",
                eni.ifname, eni.mac, n.node
            ));
            r.push(format!(
                "addr add {}/{} dev {ri}",
                eni.gateway,
                eni.subnet.prefix_len()
            ));
            if let Some(v6) = &eni.ipv6 {
                // The VPC's IPv6 router answers on fe80::1 (network.go `GetIPv6Gateway`
                // names fe80:ec2::1 for newer subnets; either is link-local).
                r6.push(format!("addr add fe80::1/64 dev {ri}"));
                r6.push(format!("addr add {}/64 dev {ri}", ipv6_at(&v6.subnet, 1)));
                r6.push(format!("route add {} via {} dev {ri}", v6.prefix, v6.addr));
            }
        }
        r.push(format!(
            "link add tpeer type veth peer name eth0 netns {}",
            n.peer
        ));
        r.push(format!(
            "link add tinet type veth peer name eth0 netns {}",
            n.inet
        ));
        r.push(format!("addr add {peer_gw}/24 dev tpeer"));
        r.push("addr add 203.0.113.1/24 dev tinet".to_string());
        for eni in &c.enis {
            r.push(format!("link set {} up", router_if(eni.device_number)));
        }
        r.push("link set tpeer up".into());
        r.push("link set tinet up".into());
        for eni in &c.enis {
            for p in &eni.prefixes {
                r.push(format!(
                    "route add {p} via {} dev {}",
                    eni.primary_ip,
                    router_if(eni.device_number)
                ));
            }
        }
        let vlan = c.mode.branch_pods > 0 && vlan_supported(&self.vpc);
        let mut internet_ok = vec![c.primary_ip];
        for p in &c.pods {
            let eni = c.eni(p.eni_device).context("pod ENI")?;
            let ri = router_if(p.eni_device);
            if let Some(b) = &p.branch {
                // The VPC delivers a branch ENI's traffic tagged with its VLAN to the trunk,
                // addressed to the branch ENI's MAC (there is no ARP for the pod on the trunk).
                // Without 802.1Q in the kernel the branch ENI's frames come untagged, still
                // addressed to its MAC (the node side is then a macvlan, see below).
                let sub = if vlan {
                    let sub = format!("{ri}.{}", b.vlan_id);
                    r.push(format!(
                        "link add link {ri} name {sub} type vlan id {}",
                        b.vlan_id
                    ));
                    r.push(format!("link set {sub} up"));
                    sub
                } else {
                    ri.clone()
                };
                r.push(format!("route add {}/32 dev {sub}", p.ip));
                r.push(format!(
                    "neigh add {} lladdr {} dev {sub} nud permanent",
                    p.ip, b.mac
                ));
                // Branch-ENI pods are not SNATed (`! -o vlan+`): their subnet's NAT gateway
                // is what lets them out.
                internet_ok.push(p.ip);
            } else if p.ipv6.is_none() && eni.prefixes.is_empty() {
                r.push(format!(
                    "route add {}/32 via {} dev {ri}",
                    p.ip, eni.primary_ip
                ));
            }
        }
        if let (Some(peer6), Some(inet6)) = (c.vpc_peer6, c.internet_host6) {
            let pn = Ipv6Net::new(peer6, 64)?.trunc();
            let inn = Ipv6Net::new(inet6, 64)?.trunc();
            r6.push(format!("addr add {}/64 dev tpeer", ipv6_at(&pn, 1)));
            r6.push(format!("addr add {}/64 dev tinet", ipv6_at(&inn, 1)));
        }
        self.vpc.ip_batch(&r)?;
        ip6_batch(&self.vpc, &r6)?;
        self.vpc.exec_ok(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv6.conf.all.forwarding=1",
        ])?;
        // Like an internet gateway, the router only lets the node's primary IP out to the
        // internet: a pod IP that was not SNATed does not get an answer from there.
        let mut fw = String::from("*filter\n");
        for ip in &internet_ok {
            fw.push_str(&format!("-A FORWARD -o tinet -s {ip} -j ACCEPT\n"));
        }
        fw.push_str("-A FORWARD -o tinet -j DROP\nCOMMIT\n");
        self.vpc
            .exec_stdin(&["iptables-nft-restore", "--noflush"], &fw)?;
        // Hosts outside and inside the VPC.
        self.peer.ip_batch(&[
            format!("addr add {}/24 dev eth0", c.vpc_peer),
            "link set eth0 up".into(),
            format!("route add default via {peer_gw} dev eth0"),
        ])?;
        self.inet.ip_batch(&[
            format!("addr add {}/24 dev eth0", c.internet_host),
            "link set eth0 up".into(),
            "route add default via 203.0.113.1 dev eth0".into(),
        ])?;
        if let (Some(peer6), Some(inet6)) = (c.vpc_peer6, c.internet_host6) {
            let pn = Ipv6Net::new(peer6, 64)?.trunc();
            let inn = Ipv6Net::new(inet6, 64)?.trunc();
            ip6_batch(
                &self.peer,
                &[
                    format!("addr add {peer6}/64 dev eth0"),
                    format!("route add default via {} dev eth0", ipv6_at(&pn, 1)),
                ],
            )?;
            ip6_batch(
                &self.inet,
                &[
                    format!("addr add {inet6}/64 dev eth0"),
                    format!("route add default via {} dev eth0", ipv6_at(&inn, 1)),
                ],
            )?;
        }
        // Node: ENIs, per-ENI tables (network.go `setupENINetwork`), pod veths, routes, rules.
        let mut b = Vec::new();
        let mut b6 = Vec::new();
        for eni in &c.enis {
            b.push(format!("link set {} up", eni.ifname));
            b.push(format!(
                "addr add {}/{} dev {}",
                eni.primary_ip,
                eni.subnet.prefix_len(),
                eni.ifname
            ));
            if let Some(v6) = &eni.ipv6 {
                b6.push(format!("addr add {}/64 dev {}", v6.addr, eni.ifname));
                b6.push(format!("route add default via fe80::1 dev {}", eni.ifname));
            }
        }
        b.push(format!(
            "route add default via {} dev {}",
            e0.gateway, e0.ifname
        ));
        for eni in c.enis.iter().filter(|e| e.device_number != 0) {
            // setupENINetwork deletes the ENI's subnet route from main and fills its table.
            b.push(format!("route del {} dev {}", eni.subnet, eni.ifname));
            b.push(format!(
                "route add {} dev {} scope link table {}",
                eni.gateway, eni.ifname, eni.route_table
            ));
            b.push(format!(
                "route add default via {} dev {} table {}",
                eni.gateway, eni.ifname, eni.route_table
            ));
            // No 32765 rule for the trunk ENI (`if !isTrunkENI && !isRuleConfigured`).
            if !eni.is_trunk {
                b.push(format!(
                    "rule add prio {} from {} lookup {}",
                    vpccni::PRIO_FROM_ENI_PRIMARY,
                    eni.primary_ip,
                    eni.route_table
                ));
            }
        }
        // SetupHostNetwork: rule 1024 in the cluster's family only.
        let fwmark = format!(
            "rule add prio {} fwmark 0x80/0x80 lookup main",
            vpccni::PRIO_FWMARK
        );
        if c.mode.ipv6 {
            b6.push(fwmark);
        } else {
            b.push(fwmark);
        }
        for p in &c.pods {
            b.push(format!(
                "link add {} address {} type veth peer name eth0 netns {}",
                p.veth, p.veth_mac, p.netns
            ));
            if let Some(br) = &p.branch {
                // driver.go `setupVlan` + `buildRoutesForVlan` + `setupIIFBasedContainerRouteRules`.
                let trunk = c.eni(br.trunk_device).context("trunk ENI")?;
                // `vlan.eth.<id>` carries the branch ENI's MAC. Kernels without 8021q (e.g.
                // minimal VM kernels) get a macvlan of the same name and MAC on the trunk: the
                // same frames reach it, only untagged; names, tables and rules are the CNI's.
                let kind = if vlan {
                    format!("vlan id {}", br.vlan_id)
                } else {
                    "macvlan mode bridge".to_string()
                };
                b.push(format!(
                    "link add link {} name {} address {} type {kind}",
                    trunk.ifname, br.vlan_link, br.mac
                ));
                b.push(format!("link set {} up", br.vlan_link));
                b.push(format!(
                    "route add {} dev {} scope link table {}",
                    br.gateway, br.vlan_link, br.table
                ));
                b.push(format!(
                    "route add default via {} dev {} table {}",
                    br.gateway, br.vlan_link, br.table
                ));
                b.push(format!("link set {} up", p.veth));
                b.push(format!(
                    "route add {} dev {} scope link table {}",
                    p.ip, p.veth, br.table
                ));
                for iif in [&br.vlan_link, &p.veth] {
                    b.push(format!(
                        "rule add prio {} iif {iif} lookup {}",
                        vpccni::PRIO_VLAN_IIF,
                        br.table
                    ));
                }
                continue;
            }
            b.push(format!("link set {} up", p.veth));
            if let Some(ip6) = p.ipv6 {
                b6.push(format!("route add {ip6} dev {}", p.veth));
                b6.push(format!(
                    "rule add prio {} to {ip6} lookup main",
                    vpccni::PRIO_TO_POD
                ));
                continue;
            }
            b.push(format!("route add {} dev {} scope link", p.ip, p.veth));
            b.push(format!(
                "rule add prio {} to {} lookup main",
                vpccni::PRIO_TO_POD,
                p.ip
            ));
            if p.eni_device != 0 {
                let eni = c.eni(p.eni_device).context("pod ENI")?;
                b.push(format!(
                    "rule add prio {} from {} lookup {}",
                    vpccni::PRIO_FROM_POD,
                    p.ip,
                    eni.route_table
                ));
            }
        }
        if c.mode.branch_pods > 0 {
            // Strict mode: the local rule moves from 0 to 20, below the VLAN rules.
            b.push(format!(
                "rule add prio {} lookup local",
                vpccni::PRIO_LOCAL_SGP
            ));
            b.push("rule del prio 0 lookup local".into());
        }
        self.node.ip_batch(&b)?;
        ip6_batch(&self.node, &b6)?;
        let mut sysctls = vec![
            "net.ipv4.ip_forward=1".to_string(),
            format!("net.ipv4.conf.{}.rp_filter=2", e0.ifname),
            // Accounting and long timeouts so the flows generate_traffic() makes stay visible.
            "net.netfilter.nf_conntrack_acct=1".into(),
            "net.netfilter.nf_conntrack_icmp_timeout=3600".into(),
            "net.netfilter.nf_conntrack_icmpv6_timeout=3600".into(),
            "net.netfilter.nf_conntrack_udp_timeout=3600".into(),
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait=3600".into(),
            "net.netfilter.nf_conntrack_tcp_timeout_close_wait=3600".into(),
        ];
        if c.mode.ipv6 {
            // aws-vpc-cni-init `configureIPv6Settings`; driver.go `setHostVethV6Sysctls`.
            sysctls.push("net.ipv6.conf.all.disable_ipv6=0".into());
            sysctls.push("net.ipv6.conf.all.forwarding=1".into());
            sysctls.push(format!("net.ipv6.conf.{}.accept_ra=2", e0.ifname));
            for p in &c.pods {
                sysctls.push(format!("net.ipv6.conf.{}.accept_ra=0", p.veth));
                sysctls.push(format!("net.ipv6.conf.{}.accept_redirects=1", p.veth));
            }
        }
        let mut argv = vec!["sysctl", "-q", "-w"];
        argv.extend(sysctls.iter().map(String::as_str));
        self.node.exec_ok(&argv)?;
        // Pods.
        for (p, ns) in c.pods.iter().zip(&self.pod_ns) {
            if let Some(ip6) = p.ipv6 {
                // driver.go `createVethPairContext.run`: /128, default via fe80::1 with a
                // static neighbour on the host veth's MAC.
                ns.ip_batch(&["link set eth0 up".into()])?;
                ip6_batch(
                    ns,
                    &[
                        format!("addr add {ip6}/128 dev eth0"),
                        "route add fe80::1 dev eth0".into(),
                        "route add default via fe80::1 dev eth0".into(),
                        format!(
                            "neigh add fe80::1 lladdr {} dev eth0 nud permanent",
                            p.veth_mac
                        ),
                    ],
                )?;
                continue;
            }
            ns.ip_batch(&[
                format!("addr add {}/32 dev eth0", p.ip),
                "link set eth0 up".into(),
                format!("route add {} dev eth0 scope link", vpccni::POD_GATEWAY),
                format!("route add default via {} dev eth0", vpccni::POD_GATEWAY),
                format!(
                    "neigh add {} lladdr {} dev eth0 nud permanent",
                    vpccni::POD_GATEWAY,
                    p.veth_mac
                ),
            ])?;
        }
        // iptables: kube-proxy + AWS rules in the kubelet's backend; canary only there. An
        // IPv6 cluster's kube-proxy programs ip6tables; the IPv4 tables keep only ipamd's rule.
        let aws = c.aws_rules();
        if c.mode.ipv6 {
            let doc = restore_document(&aws, true);
            self.node
                .exec_stdin(&[c.backend.restore(), "--noflush"], &doc)
                .with_context(|| format!("{} --noflush:\n{doc}", c.backend.restore()))?;
            let doc6 = restore_document(&kube_rules(), true);
            let restore6 = c.backend.restore().replacen("iptables", "ip6tables", 1);
            self.node
                .exec_stdin(&[&restore6, "--noflush"], &doc6)
                .with_context(|| format!("{restore6} --noflush:\n{doc6}"))?;
            return Ok(());
        }
        let mut rules = kube_rules();
        rules.extend(aws);
        let doc = restore_document(&rules, true);
        self.node
            .exec_stdin(&[c.backend.restore(), "--noflush"], &doc)
            .with_context(|| format!("{} --noflush:\n{doc}", c.backend.restore()))?;
        Ok(())
    }

    fn write_files(&self) -> Result<()> {
        let c = &self.config;
        let w = &c.workdir;
        std::fs::create_dir_all(c.cni_conf_dir())?;
        std::fs::create_dir_all(c.log_dir())?;
        let env: String = c
            .cni_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(c.cni_env_file(), env)?;
        let conflist = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "aws-cni",
            "disableCheck": true,
            "plugins": [
                {"name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001",
                 "podSGEnforcingMode": "strict", "pluginLogFile": "/var/log/aws-routed-eni/plugin.log",
                 "pluginLogLevel": "DEBUG", "capabilities": {"io.kubernetes.cri.pod-annotations": true}},
                {"name": "egress-cni", "type": "egress-cni", "enabled": "false"},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        });
        std::fs::write(
            c.cni_conf_dir().join("10-aws.conflist"),
            serde_json::to_string_pretty(&conflist)?,
        )?;
        let mut ipamd = String::new();
        ipamd.push_str(r#"{"level":"info","ts":"2026-01-01T00:00:00.000Z","caller":"aws-k8s-agent/main.go:42","msg":"Starting L-IPAMD v1.21.2  ..."}"#);
        ipamd.push('\n');
        ipamd.push_str(&format!(
            r#"{{"level":"info","ts":"2026-01-01T00:00:01.000Z","caller":"networkutils/network.go:300","msg":"Discovered primary interface: {}"}}"#,
            c.primary_if
        ));
        ipamd.push('\n');
        std::fs::write(c.log_dir().join("ipamd.log"), ipamd)?;
        let mut plugin = String::new();
        for p in &c.pods {
            plugin.push_str(&format!(
                r#"{{"level":"info","ts":"2026-01-01T00:00:02.000Z","caller":"routed-eni-cni-plugin/cni.go:130","msg":"Received CNI add request: ContainerID({}) Netns(/var/run/netns/{}) IfName(eth0) Args(K8S_POD_NAMESPACE={};K8S_POD_NAME={}) Path(/opt/cni/bin) argsStdinData({{}})"}}"#,
                p.container_id, p.netns, p.namespace, p.name
            ));
            plugin.push('\n');
        }
        std::fs::write(c.log_dir().join("plugin.log"), plugin)?;
        std::fs::write(w.join("node.json"), serde_json::to_string_pretty(c)?)?;
        Ok(())
    }

    /// Bounded real traffic: from every pod two pings and one TCP connect to the internet host
    /// and to the VPC peer, so the node's conntrack holds SNATed and un-SNATed flows. Fails if
    /// any of it does not get through (which also proves the emulated datapath).
    pub fn generate_traffic(&mut self) -> Result<()> {
        self.start_listeners()?;
        let c = &self.config;
        let targets = [c.internet_host, c.vpc_peer];
        for (p, ns) in c.pods.iter().zip(&self.pod_ns) {
            if p.ipv6.is_some() {
                // The listeners are IPv4-only: IPv6 pods ping (ICMPv6 echo is tracked too).
                for t in [c.internet_host6, c.vpc_peer6].into_iter().flatten() {
                    let t = t.to_string();
                    ns.exec_ok(&[
                        "ping", "-6", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2", &t,
                    ])
                    .with_context(|| format!("ping -6 {t} from pod {}", p.name))?;
                }
                continue;
            }
            for t in targets {
                let t = t.to_string();
                ns.exec_ok(&["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2", &t])
                    .with_context(|| format!("ping {t} from pod {} ({})", p.name, p.ip))?;
                let bin = doubles::doubles_bin()?;
                ns.exec_ok(&[
                    &bin.display().to_string(),
                    "connect",
                    "--addr",
                    &format!("{t}:{}", c.listen_port),
                    "--count",
                    "1",
                ])
                .with_context(|| format!("TCP connect {t} from pod {}", p.name))?;
            }
        }
        Ok(())
    }

    /// Whether pod `pod` gets an answer to a ping of `target` (one echo, 1 s).
    pub fn ping_from(&self, pod: usize, target: Ipv4Addr) -> Result<bool> {
        let ns = self
            .pod_ns
            .get(pod)
            .with_context(|| format!("no pod {pod}"))?;
        let out = ns.exec(&[
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            "1",
            &target.to_string(),
        ])?;
        Ok(out.status.success())
    }

    fn start_listeners(&mut self) -> Result<()> {
        if self.listeners {
            return Ok(());
        }
        let port = self.config.listen_port.to_string();
        let ttl = self.ttl.as_secs().max(1).to_string();
        for (ns, role) in [(&self.inet, "inet"), (&self.peer, "peer")] {
            let child = doubles::spawn_ready(
                ns,
                &["listen", "--port", &port, "--ttl-secs", &ttl],
                Duration::from_secs(10),
                &self.config.workdir.join(format!("listen-{role}.log")),
            )?;
            self.children.push(child);
        }
        self.listeners = true;
        Ok(())
    }

    /// `iptables-nft`/`iptables-legacy` of the backend in use, inside the node.
    pub fn iptables(&self, args: &[&str]) -> Result<String> {
        self.iptables_in(self.config.backend, args)
    }

    pub fn iptables_in(&self, backend: Backend, args: &[&str]) -> Result<String> {
        let mut argv = vec![backend.iptables(), "-w", "5"];
        argv.extend_from_slice(args);
        self.node.exec_ok(&argv)
    }

    /// `ip …` inside the node.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        self.node.exec_ok(&argv)
    }

    /// 1-based position of the first rule of `table`/`chain` whose `-S` line contains every
    /// needle.
    pub fn rule_position(&self, table: &str, chain: &str, needles: &[&str]) -> Result<usize> {
        let s = self.iptables(&["-t", table, "-S", chain])?;
        s.lines()
            .filter(|l| l.starts_with("-A "))
            .position(|l| needles.iter().all(|n| l.contains(n)))
            .map(|i| i + 1)
            .with_context(|| format!("no rule in {table}/{chain} containing {needles:?}:\n{s}"))
    }

    fn delete_rule_matching(&self, table: &str, chain: &str, needles: &[&str]) -> Result<()> {
        let pos = self.rule_position(table, chain, needles)?.to_string();
        self.iptables(&["-t", table, "-D", chain, &pos]).map(|_| ())
    }

    /// The chain holding the SNAT rule (`AWS-SNAT-CHAIN-0`, or `-N` for the chained layout).
    pub fn snat_chain(&self) -> String {
        match self.config.layout {
            Layout::Current => vpccni::SNAT_CHAIN_0.to_string(),
            Layout::Chained => format!(
                "{}{}",
                vpccni::SNAT_CHAIN_PREFIX,
                self.config.vpc_cidrs.len() + self.config.exclude_snat.len()
            ),
        }
    }

    fn pod_cfg(&self, pod: usize) -> Result<&PodConfig> {
        self.config
            .pods
            .get(pod)
            .with_context(|| format!("no pod {pod}"))
    }

    // ---- fault injectors: each really changes kernel state in the node namespace ----

    /// F1: delete the `"AWS, SNAT"` rule.
    pub fn fault_delete_snat_rule(&self) -> Result<()> {
        self.delete_rule_matching("nat", &self.snat_chain(), &[vpccni::COMMENT_SNAT_RULE])
    }

    /// F1: delete `POSTROUTING -j AWS-SNAT-CHAIN-0`.
    pub fn fault_delete_postrouting_jump(&self) -> Result<()> {
        self.delete_rule_matching(
            "nat",
            "POSTROUTING",
            &[&format!("-j {}", vpccni::SNAT_CHAIN_0)],
        )
    }

    /// Replace the SNAT rule in place with a variant (`--to-source`, random flag).
    fn replace_snat(&self, to_source: Ipv4Addr, random: Random) -> Result<()> {
        let chain = self.snat_chain();
        let pos = self
            .rule_position("nat", &chain, &[vpccni::COMMENT_SNAT_RULE])?
            .to_string();
        let args = split_args(&snat_rule_args(to_source, random));
        let mut argv = vec!["-t", "nat", "-R", chain.as_str(), pos.as_str()];
        argv.extend(args.iter().map(String::as_str));
        self.iptables(&argv).map(|_| ())
    }

    /// F2: `--to-source` another address (keeps the random flag).
    pub fn fault_snat_to_source(&self, addr: Ipv4Addr) -> Result<()> {
        self.replace_snat(addr, self.config.randomize)
    }

    /// F6: change the SNAT rule's `--random-fully`/`--random`/none flag.
    pub fn fault_snat_random(&self, random: Random) -> Result<()> {
        self.replace_snat(self.config.primary_ip, random)
    }

    /// Insert `! -d <cidr> -m comment --comment "AWS SNAT CHAIN" -j RETURN` at the top of
    /// `AWS-SNAT-CHAIN-0` (everything leaving the VPC is then not SNATed).
    pub fn fault_insert_negated_return(&self, cidr: &str) -> Result<()> {
        self.iptables(&[
            "-t",
            "nat",
            "-I",
            vpccni::SNAT_CHAIN_0,
            "1",
            "!",
            "-d",
            cidr,
            "-m",
            "comment",
            "--comment",
            vpccni::COMMENT_SNAT_VPC,
            "-j",
            "RETURN",
        ])
        .map(|_| ())
    }

    /// F3-like: delete the `-d <cidr> … RETURN` of the SNAT chain (Current layout) or the
    /// `! -d <cidr>` link (Chained layout), and its connmark twin when `connmark_too`.
    pub fn fault_drop_vpc_return(&self, cidr: &str, connmark_too: bool) -> Result<()> {
        let needle = format!("-d {cidr} ");
        let chains: Vec<(String, &str)> = match self.config.layout {
            Layout::Current => vec![
                (vpccni::SNAT_CHAIN_0.into(), "SNAT"),
                (vpccni::CONNMARK_CHAIN_0.into(), "CONNMARK"),
            ],
            Layout::Chained => {
                let i = self
                    .config
                    .vpc_cidrs
                    .iter()
                    .chain(&self.config.exclude_snat)
                    .position(|c| c.to_string() == cidr)
                    .with_context(|| format!("{cidr} is not a programmed CIDR"))?;
                vec![
                    (format!("{}{i}", vpccni::SNAT_CHAIN_PREFIX), "SNAT"),
                    (format!("{}{i}", vpccni::CONNMARK_CHAIN_PREFIX), "CONNMARK"),
                ]
            }
        };
        for (chain, kind) in chains {
            if kind == "CONNMARK" && !connmark_too {
                continue;
            }
            self.delete_rule_matching("nat", &chain, &[&needle])?;
        }
        Ok(())
    }

    /// Insert a RETURN the CNI would not program (`-d <cidr> -j RETURN`, no comment) at the top
    /// of `AWS-SNAT-CHAIN-0`.
    pub fn fault_add_unexpected_return(&self, cidr: &str) -> Result<()> {
        self.iptables(&[
            "-t",
            "nat",
            "-I",
            vpccni::SNAT_CHAIN_0,
            "1",
            "-d",
            cidr,
            "-j",
            "RETURN",
        ])
        .map(|_| ())
    }

    /// Append a second `POSTROUTING -j AWS-SNAT-CHAIN-0`.
    pub fn fault_duplicate_postrouting_jump(&self) -> Result<()> {
        self.iptables(&[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-m",
            "comment",
            "--comment",
            vpccni::COMMENT_SNAT_JUMP,
            "-j",
            vpccni::SNAT_CHAIN_0,
        ])
        .map(|_| ())
    }

    /// A stale chained-layout `AWS-SNAT-CHAIN-1` (holding an SNAT rule) left after an upgrade.
    pub fn fault_stale_snat_chain_1(&self) -> Result<()> {
        let chain = format!("{}1", vpccni::SNAT_CHAIN_PREFIX);
        self.iptables(&["-t", "nat", "-N", &chain])?;
        let args = split_args(&snat_rule_args(self.config.primary_ip, Random::Hash));
        let mut argv = vec!["-t", "nat", "-A", chain.as_str()];
        argv.extend(args.iter().map(String::as_str));
        self.iptables(&argv).map(|_| ())
    }

    /// Copy the AWS rules (not the kubelet canary) into the other backend.
    pub fn fault_copy_rules_to_other_backend(&self) -> Result<()> {
        let doc = restore_document(&self.config.aws_rules(), false);
        self.node
            .exec_stdin(&[self.config.backend.other().restore(), "--noflush"], &doc)
            .map(|_| ())
    }

    /// Move the AWS rules to the other backend: copy them there, then delete them here.
    pub fn fault_move_rules_to_other_backend(&self) -> Result<()> {
        self.fault_copy_rules_to_other_backend()?;
        let mut rules = self.config.aws_rules();
        rules.reverse();
        for r in &rules {
            let mut argv = vec!["-t", r.table, "-D", r.chain.as_str()];
            argv.extend(r.args.iter().map(String::as_str));
            self.iptables(&argv)?;
        }
        Ok(())
    }

    /// F4: delete the nat connmark rules (`-i eni+ … -j AWS-CONNMARK-CHAIN-0` and the
    /// `"AWS, CONNMARK"` restore in PREROUTING).
    pub fn fault_delete_nat_connmark_rules(&self) -> Result<()> {
        self.delete_rule_matching("nat", "PREROUTING", &[vpccni::COMMENT_OUTBOUND])?;
        self.delete_rule_matching(
            "nat",
            "PREROUTING",
            &["--restore-mark", vpccni::COMMENT_CONNMARK],
        )
    }

    /// F4: delete the mangle `"AWS, primary ENI"` rules (M1–M3).
    pub fn fault_delete_mangle_connmark_rules(&self) -> Result<()> {
        for _ in 0..3 {
            self.delete_rule_matching("mangle", "PREROUTING", &[vpccni::COMMENT_PRIMARY_ENI])?;
        }
        Ok(())
    }

    /// F4: delete `1024: from all fwmark 0x80/0x80 lookup main`.
    pub fn fault_delete_fwmark_rule(&self) -> Result<()> {
        self.ip(&[
            "rule",
            "del",
            "prio",
            "1024",
            "fwmark",
            "0x80/0x80",
            "lookup",
            "main",
        ])
        .map(|_| ())
    }

    /// F8: delete pod `pod`'s `512: to <ip> lookup main`.
    pub fn fault_delete_to_pod_rule(&self, pod: usize) -> Result<()> {
        let ip = self.pod_cfg(pod)?.ip.to_string();
        self.ip(&["rule", "del", "prio", "512", "to", &ip, "lookup", "main"])
            .map(|_| ())
    }

    /// F5: delete pod `pod`'s `1536: from <ip> lookup <table>` (pods on a secondary ENI).
    pub fn fault_delete_from_pod_rule(&self, pod: usize) -> Result<()> {
        let p = self.pod_cfg(pod)?;
        let table = self.pod_table(p)?.to_string();
        let ip = p.ip.to_string();
        self.ip(&["rule", "del", "prio", "1536", "from", &ip, "lookup", &table])
            .map(|_| ())
    }

    /// F8: point pod `pod`'s 1536 rule at `table` instead of its ENI's table.
    pub fn fault_point_from_rule_at(&self, pod: usize, table: u32) -> Result<()> {
        self.fault_delete_from_pod_rule(pod)?;
        let ip = self.pod_cfg(pod)?.ip.to_string();
        self.ip(&[
            "rule",
            "add",
            "prio",
            "1536",
            "from",
            &ip,
            "lookup",
            &table.to_string(),
        ])
        .map(|_| ())
    }

    fn pod_table(&self, p: &PodConfig) -> Result<u32> {
        if p.eni_device == 0 {
            bail!("pod {} is on the primary ENI and has no 1536 rule", p.name);
        }
        Ok(self
            .config
            .eni(p.eni_device)
            .context("pod ENI")?
            .route_table)
    }

    /// F8: delete `<pod IP> dev eni… scope link` from main.
    pub fn fault_delete_pod_route(&self, pod: usize) -> Result<()> {
        let p = self.pod_cfg(pod)?;
        let ip = p.ip.to_string();
        self.ip(&["route", "del", &ip, "dev", &p.veth]).map(|_| ())
    }

    /// Bring the pod's host veth down (its route turns `linkdown`).
    pub fn fault_veth_down(&self, pod: usize) -> Result<()> {
        let p = self.pod_cfg(pod)?;
        self.ip(&["link", "set", &p.veth, "down"]).map(|_| ())
    }

    /// F8: delete the pod's host veth. Its 512/1536 rules stay (dangling); the kernel removes
    /// the `dev eni…` route together with the device, so a dangling route cannot be emulated.
    pub fn fault_delete_veth(&self, pod: usize) -> Result<()> {
        let p = self.pod_cfg(pod)?;
        self.ip(&["link", "del", &p.veth]).map(|_| ())
    }

    /// F8: a second `512: to <pod IP>` rule (pointing at `table`). The kernel refuses exact
    /// duplicates, so the copy differs in its table.
    pub fn fault_duplicate_to_pod_rule(&self, pod: usize, table: u32) -> Result<()> {
        let ip = self.pod_cfg(pod)?.ip.to_string();
        self.ip(&[
            "rule",
            "add",
            "prio",
            "512",
            "to",
            &ip,
            "lookup",
            &table.to_string(),
        ])
        .map(|_| ())
    }

    /// F5: delete table 2's default route.
    pub fn fault_delete_eni_default_route(&self, device: u32) -> Result<()> {
        let eni = self.config.eni(device).context("no such ENI")?;
        self.ip(&[
            "route",
            "del",
            "default",
            "table",
            &eni.route_table.to_string(),
        ])
        .map(|_| ())
    }

    /// F5: re-add the secondary ENI's subnet route to main (as networkd would).
    pub fn fault_add_eni_subnet_route_to_main(&self, device: u32) -> Result<()> {
        let eni = self.config.eni(device).context("no such ENI")?;
        self.ip(&[
            "route",
            "add",
            &eni.subnet.to_string(),
            "dev",
            &eni.ifname,
            "proto",
            "kernel",
            "scope",
            "link",
            "src",
            &eni.primary_ip.to_string(),
        ])
        .map(|_| ())
    }

    /// F4: `rp_filter` on the primary interface (strict = 1).
    pub fn fault_rp_filter(&self, value: u8) -> Result<()> {
        self.node.sysctl_set(
            &format!("net.ipv4.conf.{}.rp_filter", self.config.primary_if),
            &value.to_string(),
        )
    }

    /// Security groups for pods: delete the branch pod's `10: iif vlan.eth.<id> lookup <100+id>`
    /// (traffic arriving on the branch ENI for the pod is then looked up in main and dropped).
    pub fn fault_delete_vlan_rule(&self, pod: usize) -> Result<()> {
        let b = self.branch(pod)?;
        self.ip(&[
            "rule",
            "del",
            "prio",
            &vpccni::PRIO_VLAN_IIF.to_string(),
            "iif",
            &b.vlan_link,
            "lookup",
            &b.table.to_string(),
        ])
        .map(|_| ())
    }

    /// Security groups for pods: bring the branch ENI's `vlan.eth.<id>` down (the kernel then
    /// drops table `100+id`'s routes through it).
    pub fn fault_vlan_down(&self, pod: usize) -> Result<()> {
        let b = self.branch(pod)?;
        self.ip(&["link", "set", &b.vlan_link, "down"]).map(|_| ())
    }

    fn branch(&self, pod: usize) -> Result<&BranchEni> {
        let p = self.pod_cfg(pod)?;
        p.branch
            .as_ref()
            .with_context(|| format!("pod {} has no branch ENI", p.name))
    }

    /// IPv6 mode: delete pod `pod`'s `512: from all to <ipv6> lookup main` (`ip -6 rule`).
    pub fn fault_delete_to_pod_rule6(&self, pod: usize) -> Result<()> {
        let ip = self.pod_ipv6(pod)?.to_string();
        self.ip(&[
            "-6", "rule", "del", "prio", "512", "to", &ip, "lookup", "main",
        ])
        .map(|_| ())
    }

    /// IPv6 mode: delete pod `pod`'s `<ipv6> dev eni…` route from main.
    pub fn fault_delete_pod_route6(&self, pod: usize) -> Result<()> {
        let p = self.pod_cfg(pod)?;
        let ip = self.pod_ipv6(pod)?.to_string();
        self.ip(&["-6", "route", "del", &ip, "dev", &p.veth])
            .map(|_| ())
    }

    fn pod_ipv6(&self, pod: usize) -> Result<Ipv6Addr> {
        let p = self.pod_cfg(pod)?;
        p.ipv6
            .with_context(|| format!("pod {} has no IPv6 address", p.name))
    }

    /// `net.ipv4.ip_forward=0`.
    pub fn fault_ip_forward_off(&self) -> Result<()> {
        self.node.sysctl_set("net.ipv4.ip_forward", "0")
    }
}

impl Drop for EksNode {
    fn drop(&mut self) {
        for c in &mut self.children {
            netns::kill_pid(c.id());
            let _ = c.wait();
        }
        for ns in self.pod_ns.drain(..) {
            drop(ns);
        }
        if self.workdir_owned && self.config.workdir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.config.workdir);
        }
    }
}

/// Remove a node created with `EksNodeBuilder::name(name)` from any process: kill what runs
/// in its namespaces, delete them and its work dir. Returns the namespaces removed.
pub fn teardown_named(name: &str) -> Vec<String> {
    let stem = format!("{}emu-{name}", netns::NS_PREFIX);
    let mut removed = Vec::new();
    for ns in netns::list_namespaces() {
        if let Some(role) = ns.strip_prefix(&format!("{stem}-")) {
            if ["node", "vpc", "inet", "peer"].contains(&role) || role.starts_with("pod") {
                netns::delete_ns(&ns);
                removed.push(ns);
            }
        }
    }
    let dir = std::env::temp_dir().join(&stem);
    if dir.starts_with(std::env::temp_dir()) && dir != std::env::temp_dir() {
        let _ = std::fs::remove_dir_all(dir);
    }
    removed
}

/// A handle to a running node created with `EksNodeBuilder::name(name)` (by another process),
/// for its fault injectors; dropping it changes nothing.
pub fn attach_named(name: &str) -> Result<EksNode> {
    let config = load_named(name)?;
    let n = &config.namespaces;
    if !netns::list_namespaces().contains(&n.node) {
        bail!(
            "no running emulated node named {name} (namespace {} is missing)",
            n.node
        );
    }
    Ok(EksNode {
        node: NetNs::attach(&n.node),
        vpc: NetNs::attach(&n.vpc),
        inet: NetNs::attach(&n.inet),
        peer: NetNs::attach(&n.peer),
        pod_ns: config
            .pods
            .iter()
            .map(|p| NetNs::attach(&p.netns))
            .collect(),
        children: Vec::new(),
        listeners: true,
        workdir_owned: false,
        ttl: Duration::from_secs(1),
        config,
    })
}

/// Read the config a running named node wrote (`emulate-node`).
pub fn load_named(name: &str) -> Result<NodeConfig> {
    let path = std::env::temp_dir()
        .join(format!("{}emu-{name}", netns::NS_PREFIX))
        .join("node.json");
    load_config(&path)
}

pub fn load_config(path: &Path) -> Result<NodeConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_match_the_cni() {
        // Groundtruth §2.5, computed with Python's hashlib.
        assert_eq!(
            host_veth_name("default", "web-5d8f7c9b6-x2k4p"),
            "eni055ab01821c"
        );
        assert_eq!(
            host_veth_name("kube-system", "coredns-5d78c9869d-abcde"),
            "eni4d5f75c480c"
        );
    }

    #[test]
    fn split_args_honours_quotes() {
        assert_eq!(
            split_args(r#"-m comment --comment "AWS, SNAT" -j RETURN"#),
            vec!["-m", "comment", "--comment", "AWS, SNAT", "-j", "RETURN"]
        );
    }

    fn cfg(layout: Layout, excl: &[&str]) -> NodeConfig {
        EksNode::builder()
            .layout(layout)
            .exclude_snat(excl)
            .plan()
            .unwrap()
    }

    #[test]
    fn current_layout_matches_groundtruth_b() {
        let c = cfg(Layout::Current, &["10.0.0.0/8", "172.16.0.0/12"]);
        let lines: Vec<String> = c
            .aws_rules()
            .iter()
            .filter(|r| r.chain.starts_with("AWS-"))
            .map(RuleSpec::save_line)
            .collect();
        let expected = format!(
            r#"-A AWS-CONNMARK-CHAIN-0 -d 172.16.0.0/12 -m comment --comment "AWS CONNMARK CHAIN, EXCLUDED CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -d 10.0.0.0/8 -m comment --comment "AWS CONNMARK CHAIN, EXCLUDED CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN, VPC CIDR" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
-A AWS-SNAT-CHAIN-0 -d 172.16.0.0/12 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/8 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source {} --random-fully"#,
            c.primary_ip
        );
        assert_eq!(lines.join("\n"), expected);
    }

    #[test]
    fn chained_layout_links_chains() {
        let c = cfg(Layout::Chained, &["10.0.0.0/8"]);
        let lines: Vec<String> = c
            .aws_rules()
            .iter()
            .filter(|r| r.chain.starts_with("AWS-SNAT"))
            .map(RuleSpec::save_line)
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(
            "-A AWS-SNAT-CHAIN-0 ! -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-1"
        ));
        assert!(lines[1].contains("AWS-SNAT-CHAIN-1 ! -d 10.0.0.0/8"));
        assert!(lines[2].starts_with("-A AWS-SNAT-CHAIN-2 ! -o vlan+"));
        let doc = restore_document(&c.aws_rules(), true);
        for ch in [
            "AWS-SNAT-CHAIN-2",
            "AWS-CONNMARK-CHAIN-2",
            "KUBE-KUBELET-CANARY",
        ] {
            assert!(doc.contains(&format!(":{ch} - [0:0]")), "{doc}");
        }
    }

    #[test]
    fn plan_rejects_small_vpc() {
        assert!(EksNode::builder()
            .vpc_cidrs(["10.0.0.0/24"])
            .plan()
            .is_err());
        assert!(EksNode::builder().vpc_cidrs(["bogus"]).plan().is_err());
    }
}
