//! Which file holds which capture: the names people save command output under, and the
//! paths inside an eks-log-collector bundle. One table, used by the capture reader, the ELC
//! reader, `--map` and the `diag analyze --help` text.

use model::{Backend, SectionName};

/// What a captured file contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `iptables-save` (any backend); the backend when the name says it.
    IptablesSave(Backend),
    /// `ip6tables-save` (`ip6tables-save.txt`, the ELC's `networking/ip6tables-save.txt`): the
    /// IPv6 rules, read into the snapshot's `ip6tables`, never as IPv4 iptables.
    Ip6tablesSave(Backend),
    /// `iptables -t <table> -S`.
    IptablesSpec(&'static str),
    /// `iptables -t <table> -L -n -v`.
    IptablesList(&'static str),
    IpRule,
    /// `ip -6 rule show` (the text carries no family of its own).
    IpRule6,
    IpRoute,
    /// `ip route show table N` (lines carry no `table`): `ip-route-table-N.txt`.
    IpRouteTable(u32),
    IpAddr,
    IpLink,
    /// `ifconfig` (net-tools): links and their IPv4/IPv6 addresses (the ELC's only
    /// interface data).
    Ifconfig,
    IpNeigh,
    /// `conntrack -L` (or `/proc/net/nf_conntrack`).
    ConntrackList,
    /// `conntrack -S`.
    ConntrackStats,
    /// `conntrack -S` then `conntrack -L` in one file (the ELC's conntrack.txt).
    ConntrackBoth,
    /// A file of `/var/log/aws-routed-eni/` (plain or .gz).
    CniLog,
    Sysctl,
    /// KEY=VALUE lines of the aws-node env.
    CniEnv,
    /// The aws-node container as the runtime describes it (`ctr container info`): env + image.
    ContainerInfo,
    /// ipamd `/v1/enis`.
    Enis,
    /// ipamd `/v1/networkutils-env-settings`.
    NetworkutilsEnv,
    /// ipamd `/v1/ipamd-env-settings`.
    IpamdEnv,
    /// ipamd `/metrics` (Prometheus text, saved by the ELC as `ipamd/metrics.json`).
    IpamdMetrics,
    /// ipamd `/v1/eni-configs` (a bare JSON string).
    EniConfigs,
    /// `/etc/cni/net.d/10-aws.conflist`.
    Conflist,
    /// Node facts: `imds.json` / `node.json` (format in [`ANALYZE_HELP`]).
    NodeFacts,
    InstanceId,
    AvailabilityZone,
    Region,
}

impl Kind {
    /// The snapshot section this kind feeds (`ifconfig` feeds links and addresses; it is
    /// filed under addresses).
    pub fn section(self) -> SectionName {
        match self {
            Kind::IptablesSave(_)
            | Kind::Ip6tablesSave(_)
            | Kind::IptablesSpec(_)
            | Kind::IptablesList(_) => SectionName::Iptables,
            Kind::IpRule | Kind::IpRule6 => SectionName::Rules,
            Kind::IpRoute | Kind::IpRouteTable(_) => SectionName::Routes,
            Kind::IpAddr | Kind::Ifconfig => SectionName::Addresses,
            Kind::IpLink => SectionName::Links,
            Kind::IpNeigh => SectionName::Neighbours,
            Kind::ConntrackList | Kind::ConntrackStats | Kind::ConntrackBoth => {
                SectionName::Conntrack
            }
            Kind::CniLog => SectionName::CniLogs,
            Kind::Sysctl => SectionName::Sysctls,
            Kind::CniEnv
            | Kind::ContainerInfo
            | Kind::Enis
            | Kind::NetworkutilsEnv
            | Kind::IpamdEnv
            | Kind::IpamdMetrics
            | Kind::EniConfigs
            | Kind::Conflist => SectionName::Cni,
            Kind::NodeFacts | Kind::InstanceId | Kind::AvailabilityZone | Kind::Region => {
                SectionName::Node
            }
        }
    }

    /// What the file should hold, for "empty file (expected …)" messages.
    pub fn expected_output(self) -> &'static str {
        match self {
            Kind::IptablesSave(_) => "iptables-save output",
            Kind::Ip6tablesSave(_) => "ip6tables-save output",
            Kind::IptablesSpec(_) => "iptables -S output",
            Kind::IptablesList(_) => "iptables -L -n -v output",
            Kind::IpRule => "ip rule output",
            Kind::IpRule6 => "ip -6 rule output",
            Kind::IpRoute => "ip route show table all output",
            Kind::IpRouteTable(_) => "ip route show table N output",
            Kind::IpAddr => "ip addr output",
            Kind::IpLink => "ip link output",
            Kind::Ifconfig => "ifconfig output",
            Kind::IpNeigh => "ip neigh output",
            Kind::ConntrackList | Kind::ConntrackStats | Kind::ConntrackBoth => "conntrack output",
            Kind::CniLog => "a CNI log",
            Kind::Sysctl => "sysctl -a output",
            Kind::CniEnv => "KEY=VALUE lines",
            Kind::ContainerInfo => "ctr container info JSON",
            Kind::Enis => "ipamd /v1/enis JSON",
            Kind::NetworkutilsEnv | Kind::IpamdEnv => "ipamd env-settings JSON",
            Kind::IpamdMetrics => "ipamd Prometheus metrics",
            Kind::EniConfigs => "a JSON string",
            Kind::Conflist => "CNI conflist JSON",
            Kind::NodeFacts => "node facts JSON",
            Kind::InstanceId | Kind::AvailabilityZone | Kind::Region => "one line of text",
        }
    }
}

/// The canonical file name for each section, used in "no ip-rule.txt in <dir>" messages.
pub fn expected_name(section: SectionName) -> &'static str {
    match section {
        SectionName::Iptables => "iptables-save.txt",
        SectionName::Rules => "ip-rule.txt",
        SectionName::Routes => "ip-route.txt",
        SectionName::Addresses => "ip-addr.txt",
        SectionName::Links => "ip-link.txt",
        SectionName::Neighbours => "ip-neigh.txt",
        SectionName::Conntrack => "conntrack-L.txt",
        SectionName::CniLogs => "ipamd.log",
        SectionName::Sysctls => "sysctl.txt",
        SectionName::Cni => "cni-env",
        SectionName::Node => "imds.json",
    }
}

const TABLES: &[&str] = &["nat", "filter", "mangle", "raw", "security"];

/// The backend a dump's file name says (`iptables-nft-save.txt`, `…-legacy-save.txt`).
fn backend_of_name(n: &str) -> Backend {
    if n.contains("nft") {
        Backend::Nft
    } else if n.contains("legacy") {
        Backend::Legacy
    } else {
        Backend::Unknown
    }
}

/// Classify a file of a capture directory by its name (case-insensitive).
pub fn classify_capture(name: &str) -> Option<Kind> {
    let n = name.to_ascii_lowercase();
    let n = n.as_str();
    if n.starts_with("ip6tables") {
        // Only the full dump is read (IPv6 `-S`/`-L` listings say too little on their own).
        if n.contains("save") && (n.ends_with(".txt") || n.ends_with(".out")) {
            return Some(Kind::Ip6tablesSave(backend_of_name(n)));
        }
        return None;
    }
    // The `.out` files of aws-cni-support.sh (CNI v1.0–v1.6, /var/log/aws-routed-eni), as users
    // paste them: `less iprule.out`, `cat iptables-nat.out`, … (read at v1.5.5).
    let support = match n {
        "eni.out" => Some(Kind::Enis),
        "networkutils-env.out" => Some(Kind::NetworkutilsEnv),
        "ipamd-env.out" => Some(Kind::IpamdEnv),
        "eni-configs.out" => Some(Kind::EniConfigs),
        "ifconfig.out" => Some(Kind::Ifconfig),
        "iprule.out" => Some(Kind::IpRule),
        "route.out" => Some(Kind::IpRoute),
        "iptables-save.out" => Some(Kind::IptablesSave(Backend::Unknown)),
        "iptables.out" => Some(Kind::IptablesList("filter")),
        "iptables-nat.out" => Some(Kind::IptablesList("nat")),
        "iptables-mangle.out" => Some(Kind::IptablesList("mangle")),
        _ => None,
    };
    if support.is_some() {
        return support;
    }
    if n.starts_with("iptables") && n.contains("save") && n.ends_with(".txt") {
        return Some(Kind::IptablesSave(backend_of_name(n)));
    }
    if let Some(rest) = n
        .strip_prefix("iptables-")
        .and_then(|r| r.strip_suffix(".txt"))
    {
        // iptables-S.txt, iptables-nat-S.txt, iptables-t-nat-S.txt, iptables-nat-L.txt
        let rest = rest.strip_prefix("t-").unwrap_or(rest);
        // eks-log-collector's own names: `networking/iptables-nat.txt`, `iptables-mangle.txt`,
        // `iptables-filter.txt` hold `iptables -nvL -t <table>` (a paste of one is saved so).
        if let Some(t) = TABLES.iter().find(|t| **t == rest) {
            return Some(Kind::IptablesList(t));
        }
        let (table, flag) = match rest.rsplit_once('-') {
            Some((t, f)) => (t, f),
            None => ("nat", rest),
        };
        let table = TABLES.iter().find(|t| **t == table).copied()?;
        return match flag {
            "s" => Some(Kind::IptablesSpec(table)),
            "l" | "nvl" | "l-n-v" => Some(Kind::IptablesList(table)),
            _ => None,
        };
    }
    if let Some(t) = n
        .strip_prefix("ip-route-table-")
        .and_then(|r| r.strip_suffix(".txt"))
    {
        return model::net::table_id_from_name(t).map(Kind::IpRouteTable);
    }
    match n {
        "ip-rule.txt" | "ip-rule-show.txt" | "iprule.txt" => return Some(Kind::IpRule),
        "ip-route.txt" | "ip-route-all.txt" | "ip-route-show-table-all.txt" | "iproute.txt" => {
            return Some(Kind::IpRoute)
        }
        "ip-addr.txt" | "ip-a.txt" | "ip-address.txt" => return Some(Kind::IpAddr),
        "ip-link.txt" => return Some(Kind::IpLink),
        "ifconfig.txt" | "ifconfig-a.txt" => return Some(Kind::Ifconfig),
        "ip-neigh.txt" | "ip-neighbour.txt" => return Some(Kind::IpNeigh),
        "conntrack-l.txt" => return Some(Kind::ConntrackList),
        "conntrack-s.txt" => return Some(Kind::ConntrackStats),
        "conntrack.txt" => return Some(Kind::ConntrackBoth),
        // `sysctls.out`: aws-cni-support.sh (v1.3–v1.6) in /var/log/aws-routed-eni.
        "sysctl.txt" | "sysctl-a.txt" | "sysctl_all.txt" | "sysctls.out" => {
            return Some(Kind::Sysctl)
        }
        "cni-env" | "cni-env.txt" | "aws-node.env" => return Some(Kind::CniEnv),
        "cni-configuration-variables-containerd.json" => return Some(Kind::ContainerInfo),
        "enis.json" => return Some(Kind::Enis),
        "networkutils-env-settings.json" => return Some(Kind::NetworkutilsEnv),
        "ipamd-env-settings.json" => return Some(Kind::IpamdEnv),
        "eni-configs.json" => return Some(Kind::EniConfigs),
        "10-aws.conflist" => return Some(Kind::Conflist),
        "imds.json" | "node.json" => return Some(Kind::NodeFacts),
        "instance-id.txt" => return Some(Kind::InstanceId),
        "availability-zone.txt" => return Some(Kind::AvailabilityZone),
        "region.txt" => return Some(Kind::Region),
        _ => {}
    }
    if is_cni_log_name(n) {
        return Some(Kind::CniLog);
    }
    None
}

/// `ipamd.log`, `plugin.log`, `egress-v6-plugin.log`, `network-policy-agent.log`,
/// `ebpf-sdk.log` and their rotated `.gz` backups, and the aws-node container log
/// (`kubectl logs aws-node-…` saved as `aws-node.log` / `aws-node-x2k4p.log`: the entrypoint's
/// "Timed out waiting for IPAM daemon to start" is only there).
pub fn is_cni_log_name(lower: &str) -> bool {
    let base = lower.strip_suffix(".gz").unwrap_or(lower);
    let known = [
        "ipamd",
        "plugin",
        "egress-",
        "network-policy-agent",
        "ebpf-sdk",
        "aws-node",
    ];
    known.iter().any(|k| base.starts_with(k)) && (base.ends_with(".log") || base.contains(".log"))
}

/// Classify a path inside an eks-log-collector bundle, relative to the bundle's top dir.
pub fn classify_elc(rel: &str) -> Option<Kind> {
    let kind = match rel {
        "networking/iptables-save.txt" => Kind::IptablesSave(Backend::Unknown),
        "networking/ip6tables-save.txt" => Kind::Ip6tablesSave(Backend::Unknown),
        "networking/iptables-nat.txt" => Kind::IptablesList("nat"),
        "networking/iptables-mangle.txt" => Kind::IptablesList("mangle"),
        "networking/iptables-filter.txt" => Kind::IptablesList("filter"),
        "networking/iprule.txt" => Kind::IpRule,
        // `ip -6 route show table all` is not read: `iproute.txt` (`ip route show table all`,
        // no `-4`) already lists the IPv6 routes.
        "networking/ip6rule.txt" => Kind::IpRule6,
        "networking/iproute.txt" => Kind::IpRoute,
        "networking/ifconfig.txt" => Kind::Ifconfig,
        "ipamd/metrics.json" => Kind::IpamdMetrics,
        "networking/conntrack.txt" => Kind::ConntrackBoth,
        "ipamd/enis.json" => Kind::Enis,
        "ipamd/networkutils-env-settings.json" => Kind::NetworkutilsEnv,
        "ipamd/ipamd-env-settings.json" => Kind::IpamdEnv,
        "ipamd/eni-configs.json" => Kind::EniConfigs,
        "sysctls/sysctl_all.txt" => Kind::Sysctl,
        "cni/10-aws.conflist" => Kind::Conflist,
        "cni/cni-configuration-variables-containerd.json" => Kind::ContainerInfo,
        "system/instance-id.txt" => Kind::InstanceId,
        "system/availability-zone.txt" => Kind::AvailabilityZone,
        "system/region.txt" => Kind::Region,
        _ => {
            let name = rel.strip_prefix("var_log/aws-routed-eni/")?;
            if name.contains('/') || !is_cni_log_name(&name.to_ascii_lowercase()) {
                return None;
            }
            Kind::CniLog
        }
    };
    Some(kind)
}

/// Top-level directories that mark an eks-log-collector bundle.
pub const ELC_MARKERS: &[&str] = &["networking", "ipamd", "sysctls", "var_log", "system", "cni"];

/// `diag analyze --help` section listing accepted inputs.
pub const ANALYZE_HELP: &str = "\
Inputs (each PATH may be any of these; a directory of several of them is read entry by entry):
  snapshot JSON       node-agent output, one snapshot or a JSON array of snapshots
  diag collect dir    a directory with fleet.json and one <node>.json per node
  capture dir         a directory of saved command output, named as below
  ELC bundle          eks_i-*.tar.gz written by eks-log-collector.sh / aws-cni-support.sh

Capture file names (case-insensitive; --map NAME=FILE reads another file name):
  iptables-save.txt             iptables-save [-c]   (also iptables-save*.txt,
                                iptables-nft-save.txt, iptables-legacy-save.txt)
  ip6tables-save.txt            ip6tables-save (IPv6 rules, kept apart from the IPv4 ones)
  iptables-nat-S.txt            iptables -t nat -S   (iptables-S.txt is taken as nat too;
                                iptables-<table>-S.txt for other tables)
  iptables-nat-L.txt            iptables -t nat -L -n -v
  ip-rule.txt                   ip rule
  ip-route.txt                  ip route show table all
  ip-route-table-N.txt          ip route show table N   (N a number, main or local)
  ip-addr.txt / ip-link.txt     ip addr / ip link
  ifconfig.txt                  ifconfig (links and addresses, when there is no ip addr)
  ip-neigh.txt                  ip neigh
  conntrack-L.txt               conntrack -L
  conntrack-S.txt               conntrack -S
  ipamd.log, plugin.log, ...    /var/log/aws-routed-eni/* (zap JSON, `| jq` pretty output, .gz)
  sysctl.txt                    sysctl -a
  cni-env                       KEY=VALUE lines of the aws-node env
  enis.json                     curl localhost:61679/v1/enis
  networkutils-env-settings.json  curl localhost:61679/v1/networkutils-env-settings
  cni-configuration-variables-containerd.json  ctr container info of aws-node (env, version)
  imds.json / node.json         node facts, see below

From an ELC bundle: networking/{iptables-save,ip6tables-save,iptables-nat,iptables-mangle,
iprule,ip6rule,iproute,conntrack,ifconfig}.txt,
ipamd/{enis,networkutils-env-settings,ipamd-env-settings,eni-configs,metrics}.json,
sysctls/sysctl_all.txt, var_log/aws-routed-eni/*, cni/10-aws.conflist,
cni/cni-configuration-variables-containerd.json,
system/{instance-id,availability-zone,region}.txt.

imds.json / node.json (optional; IMDS key names):
  {\"instance-id\": \"i-0abc\", \"local-ipv4\": \"192.168.1.251\",
   \"vpc-ipv4-cidr-blocks\": [\"192.168.0.0/16\"], \"mac\": \"0a:…\", \"availability-zone\": \"…\"}
Without it node facts stay empty and the analysis infers them (labelled as inferred).

Files from a shell loop over nodes (`echo \">> node $i <<\"; ssh $i …`) are split at the
`>> node X <<` lines into one snapshot per node.

A missing file makes its section `skipped`; parse warnings make it `partial`; an unparseable
file makes it `failed` with the file and line. Unreadable inputs are reported at the end and
the exit code is 2, but every other input is still analysed.

Exit codes: 0 no finding at or above --fail-on, 1 such findings, 2 bad input or nothing analysed.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_node_container_log_is_a_cni_log() {
        assert!(is_cni_log_name("aws-node.log"));
        assert!(is_cni_log_name("aws-node-x2k4p.log"));
        assert!(is_cni_log_name("aws-node.log.gz"));
        assert!(!is_cni_log_name("aws-node.env"), "the env file is cni-env");
    }

    #[test]
    fn classifies_capture_names() {
        assert_eq!(
            classify_capture("iptables-save.txt"),
            Some(Kind::IptablesSave(Backend::Unknown))
        );
        assert_eq!(
            classify_capture("iptables-nft-save.txt"),
            Some(Kind::IptablesSave(Backend::Nft))
        );
        assert_eq!(
            classify_capture("iptables-save-legacy.txt"),
            Some(Kind::IptablesSave(Backend::Legacy))
        );
        assert_eq!(
            classify_capture("iptables-nat-S.txt"),
            Some(Kind::IptablesSpec("nat"))
        );
        assert_eq!(
            classify_capture("iptables-S.txt"),
            Some(Kind::IptablesSpec("nat"))
        );
        assert_eq!(
            classify_capture("iptables-mangle-S.txt"),
            Some(Kind::IptablesSpec("mangle"))
        );
        assert_eq!(
            classify_capture("iptables-nat-L.txt"),
            Some(Kind::IptablesList("nat"))
        );
        assert_eq!(
            classify_capture("ip6tables-save.txt"),
            Some(Kind::Ip6tablesSave(Backend::Unknown))
        );
        assert_eq!(classify_capture("ip6tables-nat-S.txt"), None);
        assert_eq!(classify_capture("sysctls.out"), Some(Kind::Sysctl));
        // aws-cni-support.sh (≤ v1.6) names.
        assert_eq!(classify_capture("iprule.out"), Some(Kind::IpRule));
        assert_eq!(classify_capture("route.out"), Some(Kind::IpRoute));
        assert_eq!(
            classify_capture("iptables-nat.out"),
            Some(Kind::IptablesList("nat"))
        );
        assert_eq!(
            classify_capture("iptables-save.out"),
            Some(Kind::IptablesSave(Backend::Unknown))
        );
        assert_eq!(classify_capture("eni.out"), Some(Kind::Enis));
        // eks-log-collector names (eks-ami-547-elc-iptables-mangle-nvL).
        assert_eq!(
            classify_capture("iptables-mangle.txt"),
            Some(Kind::IptablesList("mangle"))
        );
        assert_eq!(
            classify_capture("iptables-nat.txt"),
            Some(Kind::IptablesList("nat"))
        );
        assert_eq!(classify_capture("IP-RULE.txt"), Some(Kind::IpRule));
        assert_eq!(
            classify_capture("ip-route-table-2.txt"),
            Some(Kind::IpRouteTable(2))
        );
        assert_eq!(
            classify_capture("ip-route-table-local.txt"),
            Some(Kind::IpRouteTable(255))
        );
        assert_eq!(classify_capture("ip-route-table-x.txt"), None);
        assert_eq!(
            classify_capture("conntrack-S.txt"),
            Some(Kind::ConntrackStats)
        );
        assert_eq!(
            classify_capture("ipamd-2024-05-01T10-00-00.123.log.gz"),
            Some(Kind::CniLog)
        );
        assert_eq!(classify_capture("kubelet.log"), None);
        assert_eq!(classify_capture("notes.md"), None);
    }

    #[test]
    fn classifies_elc_paths() {
        assert_eq!(classify_elc("networking/iprule.txt"), Some(Kind::IpRule));
        assert_eq!(
            classify_elc("var_log/aws-routed-eni/plugin.log"),
            Some(Kind::CniLog)
        );
        assert_eq!(classify_elc("var_log/messages"), None);
        assert_eq!(classify_elc("networking/ip6rule.txt"), Some(Kind::IpRule6));
        assert_eq!(classify_elc("networking/ip6route.txt"), None);
    }
}
