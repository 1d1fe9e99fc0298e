//! Pod IPs from the CNI's own log lines (`/var/log/aws-routed-eni/ipamd.log`, `plugin.log`).
//!
//! Each pattern is a message the CNI writes when it hands an IP to a pod or takes it back,
//! read from the Go sources at the release tags named beside it (aws/amazon-vpc-cni-k8s):
//!
//! | message | where | tags |
//! |---|---|---|
//! | `Send AddNetworkReply: IPv4Addr <ip>, DeviceNumber: <d>, err: <nil>` | `ipamd/rpc_handler.go` | v1.5 – v1.11 (`IPv6Addr: …,` from v1.10, `IPv4Addr: ` with a colon from v1.13) |
//! | `Send AddNetworkReply: Success: true IPAddr: [...], resp: … IPv4Addr:"<ip>" DeviceNumber:<d> RouteTableId:<t> …` | `pkg/ipamd/rpc_handler.go` | v1.20+ |
//! | `Assigned IP from network card: <c> -> IPv4: <ip>, IPv6: …, device number: <d>, ` | `pkg/ipamd/rpc_handler.go` | v1.20+ |
//! | `AssignPodIPv4Address: Assign IP <ip> to sandbox <net/id/if>` (`assignPodIPAddressUnsafe: …`, `… with metadata {K8SPodNamespace:… K8SPodName:…}` from v1.19) | `pkg/ipamd/datastore/data_store.go` | v1.7+ |
//! | `AssignPodIPv4Address: Assign IP <ip> to pod (name <n>, namespace <ns> container <id>)`, `Reassign IP <ip> to pod (name <n>, namespace <ns>)` | `ipamd/datastore/data_store.go` | ≤ v1.6 |
//! | `Received add network response for pod <n> namespace <ns> container <id>: <ip>, table <d>, …` | `plugins/routed-eni/cni.go` | v1.3 – v1.6 |
//! | `Received add network response [from ipamd ]for container <id> interface <if>: Success:true IPv4Addr:"<ip>" DeviceNumber:<d> …` (`IPAllocationMetadata:{IPv4Addr:… RouteTableId:…}` from v1.20) | `cmd/routed-eni-cni-plugin/cni.go` | v1.7+ |
//! | `Received CNI add request: ContainerID(<id>) … Args(…K8S_POD_NAMESPACE=<ns>;K8S_POD_NAME=<n>…)` | plugin | all (names the pod of a sandbox) |
//!
//! Releases (an IP handed out earlier is no longer a live pod):
//!
//! | message | tags |
//! |---|---|
//! | `Send DelNetworkReply: IPv4Addr[:] <ip>, …` / `Send DelNetworkReply: IPAddress: [IPv4Addr:"<ip>" …]` | v1.5 – v1.19 / v1.20+ |
//! | `Unassign IP <ip> from sandbox <key>` (`UnAssignPodIPv4Address:`, `unassignPodIPAddressUnsafe:`) | v1.7+ |
//! | `… sandbox <key>'s ipAddr <ip>, DeviceNumber <d>` / `… pod (Name: …)'s ipAddr <ip>, DeviceNumber<d>` | v1.7+ / ≤ v1.6 |
//! | `Received DelNetwork for IP <ip>, Pod …` | ≤ v1.6 |
//! | `datastore: Sandbox <key> uses unknown IPv4 <ip> - presuming stale/dead` (`unknown IP Address` from v1.10) | v1.7+ |
//! | `Received CNI del request: ContainerID(<id>)`, `Received DelNetwork for Sandbox <id>`, `Handled CNI del request with prevResult: ContainerID(<id>)` | all / v1.7+ / v1.11+ |
//!
//! The events are replayed in time order; an IP whose last event is a release is not live.
//! Branch-ENI pods (security groups for pods: `DeviceNumber: -1`, a non-zero `PodVlanId`)
//! are left out: their rules are per VLAN, not the 512/1536 pair.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use model::cni::LogEvent;

/// A pod IP that the logs show handed out and not taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPod {
    pub ip: Ipv4Addr,
    /// Container (sandbox) id.
    pub sandbox: Option<String>,
    /// The ENI's device number (0 = primary ENI: no 1536 rule).
    pub device_number: Option<u32>,
    /// Network card, when the line names it (v1.20+).
    pub network_card: Option<u32>,
    /// Route table ipamd reported (v1.20+ `RouteTableId`).
    pub route_table: Option<u32>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `ipamd.log:12 2024-10-10T21:51:34.288Z: Send AddNetworkReply: …` of the line that
    /// handed out the IP (the most telling one when several did).
    pub evidence: String,
}

#[derive(Debug, Default)]
struct Add {
    ip: Option<Ipv4Addr>,
    sandbox: Option<String>,
    device: Option<i64>,
    card: Option<u32>,
    table: Option<u32>,
    namespace: Option<String>,
    name: Option<String>,
    /// A branch-ENI (VLAN) pod.
    branch: bool,
    /// How much the line tells: a device number beats a bare assignment.
    weight: u8,
}

#[derive(Debug)]
enum Ev {
    Add(Add),
    /// Names the pod of a sandbox (`Received CNI add request`).
    Names {
        sandbox: String,
        namespace: Option<String>,
        name: Option<String>,
    },
    ReleaseIps(Vec<Ipv4Addr>),
    ReleaseSandbox(String),
}

/// The first IPv4 address after `key` (skipping blanks, `:`, `"` and `\`).
fn ipv4_after(msg: &str, key: &str) -> Option<Ipv4Addr> {
    let i = msg.find(key)? + key.len();
    ipv4_at(msg.get(i..)?)
}

fn ipv4_at(s: &str) -> Option<Ipv4Addr> {
    let s = s.trim_start_matches([' ', ':', '"', '\\', '\t']);
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.get(..end)?.parse().ok()
}

/// Every IPv4 address after each occurrence of `key`.
fn all_ipv4_after(msg: &str, key: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut rest = msg;
    while let Some(i) = rest.find(key) {
        rest = rest.get(i + key.len()..).unwrap_or("");
        if let Some(ip) = ipv4_at(rest) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

fn int_after(msg: &str, key: &str) -> Option<i64> {
    let i = msg.find(key)? + key.len();
    let s = msg.get(i..)?.trim_start_matches([' ', ':', '"', '\t']);
    let neg = s.starts_with('-');
    let digits = s.trim_start_matches('-');
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let v: i64 = digits.get(..end)?.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// The token after `key` up to a blank, `,`, `)` or `'`.
fn token_after(msg: &str, key: &str) -> Option<String> {
    let i = msg.find(key)? + key.len();
    let s = msg.get(i..)?.trim_start();
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ')' | '\'' | '}' | ';'))
        .unwrap_or(s.len());
    let t = s.get(..end)?;
    (!t.is_empty()).then(|| t.to_string())
}

/// `aws-cni/<id>/eth0`, `_migrated-from-cri/<id>/unknown` and a bare `<id>` all name `<id>`.
fn sandbox_id(key: &str) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        [_, id, _] => (*id).to_string(),
        _ => key.to_string(),
    }
}

fn pod_args(msg: &str) -> (Option<String>, Option<String>) {
    (
        token_after(msg, "K8S_POD_NAMESPACE="),
        token_after(msg, "K8S_POD_NAME="),
    )
}

/// `err: <nil>` (or no `err:` at all).
fn no_error(msg: &str) -> bool {
    match msg.rfind("err: ") {
        Some(i) => msg
            .get(i + 5..)
            .is_some_and(|e| e.trim().starts_with("<nil>")),
        None => true,
    }
}

fn branch_pod(msg: &str, device: Option<i64>) -> bool {
    device.is_some_and(|d| d < 0) || int_after(msg, "PodVlanId").is_some_and(|v| v != 0)
}

fn classify(msg: &str) -> Option<Ev> {
    // Releases first: `Unassign IP` contains `assign IP`.
    if msg.contains("Send DelNetworkReply:") {
        let mut ips = all_ipv4_after(msg, "IPv4Addr");
        ips.retain(|ip| !ip.is_unspecified());
        return (!ips.is_empty()).then_some(Ev::ReleaseIps(ips));
    }
    if let Some(ip) = ipv4_after(msg, "Unassign IP ") {
        return Some(Ev::ReleaseIps(vec![ip]));
    }
    if let Some(ip) = ipv4_after(msg, "'s ipAddr ") {
        return Some(Ev::ReleaseIps(vec![ip]));
    }
    if let Some(ip) = ipv4_after(msg, "Received DelNetwork for IP ") {
        return Some(Ev::ReleaseIps(vec![ip]));
    }
    if msg.contains("presuming stale/dead") {
        let ip = ipv4_after(msg, "uses unknown IPv4 ")
            .or_else(|| ipv4_after(msg, "uses unknown IP Address "))?;
        return Some(Ev::ReleaseIps(vec![ip]));
    }
    for key in [
        "Received CNI del request: ContainerID(",
        "Handled CNI del request with prevResult: ContainerID(",
        "Received DelNetwork for Sandbox ",
    ] {
        if let Some(id) = token_after(msg, key) {
            return Some(Ev::ReleaseSandbox(sandbox_id(&id)));
        }
    }
    if let Some(id) = token_after(msg, "Received CNI add request: ContainerID(") {
        let (namespace, name) = pod_args(msg);
        return Some(Ev::Names {
            sandbox: id,
            namespace,
            name,
        });
    }
    if msg.contains("Send AddNetworkReply:") {
        if !no_error(msg) || msg.contains("Success: false") {
            return None;
        }
        let device = int_after(msg, "DeviceNumber");
        return Some(Ev::Add(Add {
            ip: ipv4_after(msg, "IPv4Addr"),
            device,
            table: int_after(msg, "RouteTableId").and_then(|t| u32::try_from(t).ok()),
            branch: branch_pod(msg, device),
            weight: 3,
            ..Add::default()
        }));
    }
    if msg.contains("Assigned IP from network card:") {
        let device = int_after(msg, "device number:");
        return Some(Ev::Add(Add {
            ip: ipv4_after(msg, "-> IPv4:"),
            device,
            card: int_after(msg, "network card:").and_then(|c| u32::try_from(c).ok()),
            branch: branch_pod(msg, device),
            weight: 3,
            ..Add::default()
        }));
    }
    if msg.contains("Received add network response") {
        if msg.contains("Success:false") || msg.contains("Success: false") {
            return None;
        }
        if let Some(rest) = msg
            .find("Received add network response for pod ")
            .and_then(|i| msg.get(i..))
        {
            // v1.3–v1.6: `… for pod <n> namespace <ns> container <id>: <ip>, table <d>, …`
            let name = token_after(rest, "for pod ");
            let namespace = token_after(rest, " namespace ");
            let sandbox = token_after(rest, " container ").map(|s| s.trim_end_matches(':').into());
            let after = rest.find(" container ").and_then(|i| rest.get(i..))?;
            let ip = after.find(": ").and_then(|i| ipv4_at(after.get(i + 2..)?));
            let device = int_after(after, ", table ");
            return Some(Ev::Add(Add {
                ip,
                sandbox,
                device,
                namespace,
                name,
                branch: branch_pod(msg, device),
                weight: 3,
                ..Add::default()
            }));
        }
        let device = int_after(msg, "DeviceNumber");
        return Some(Ev::Add(Add {
            ip: ipv4_after(msg, "IPv4Addr"),
            sandbox: token_after(msg, "for container ").map(|s| sandbox_id(&s)),
            device,
            table: int_after(msg, "RouteTableId").and_then(|t| u32::try_from(t).ok()),
            branch: branch_pod(msg, device),
            weight: 3,
            ..Add::default()
        }));
    }
    if let Some(ip) = ipv4_after(msg, "Assign IP ").or_else(|| ipv4_after(msg, "Reassign IP ")) {
        if let Some(key) = token_after(msg, " to sandbox ") {
            return Some(Ev::Add(Add {
                ip: Some(ip),
                sandbox: Some(sandbox_id(&key)),
                namespace: token_after(msg, "K8SPodNamespace:"),
                name: token_after(msg, "K8SPodName:"),
                weight: 1,
                ..Add::default()
            }));
        }
        if msg.contains(" to pod (name ") {
            return Some(Ev::Add(Add {
                ip: Some(ip),
                name: token_after(msg, "(name "),
                namespace: token_after(msg, " namespace "),
                sandbox: token_after(msg, " container "),
                weight: 1,
                ..Add::default()
            }));
        }
    }
    None
}

#[derive(Debug)]
struct State {
    pod: LogPod,
    weight: u8,
    live: bool,
}

fn describe(e: &LogEvent) -> String {
    let at = match e.line {
        Some(l) => format!("{}:{l}", e.file),
        None => e.file.clone(),
    };
    let ts = e.ts.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
    let mut msg: String = e.msg.chars().take(200).collect();
    if msg.len() < e.msg.len() {
        msg.push('…');
    }
    format!("{at}{ts}: {msg}")
}

/// Live pod IPs (IPv4) from the CNI log events, sorted by IP.
pub fn live_pods(events: &[LogEvent]) -> Vec<LogPod> {
    let mut order: Vec<&LogEvent> = events.iter().collect();
    // ipamd.log and plugin.log are read one after the other: put their lines in time order
    // when every line has a timestamp (RFC 3339 strings of one writer sort as text).
    if order.iter().all(|e| e.ts.is_some()) {
        order.sort_by(|a, b| a.ts.cmp(&b.ts));
    }
    let mut by_ip: BTreeMap<Ipv4Addr, State> = BTreeMap::new();
    let mut ip_of_sandbox: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    let mut names: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for e in order {
        let Some(ev) = classify(&e.msg) else { continue };
        match ev {
            Ev::Names {
                sandbox,
                namespace,
                name,
            } => {
                if let Some(ip) = ip_of_sandbox.get(&sandbox) {
                    if let Some(st) = by_ip.get_mut(ip) {
                        st.pod.namespace = st.pod.namespace.take().or(namespace.clone());
                        st.pod.name = st.pod.name.take().or(name.clone());
                    }
                }
                names.insert(sandbox, (namespace, name));
            }
            Ev::ReleaseIps(ips) => {
                for ip in ips {
                    if let Some(st) = by_ip.get_mut(&ip) {
                        st.live = false;
                    }
                }
            }
            Ev::ReleaseSandbox(id) => {
                if let Some(ip) = ip_of_sandbox.remove(&id) {
                    if let Some(st) = by_ip.get_mut(&ip) {
                        if st.pod.sandbox.as_deref() == Some(id.as_str()) {
                            st.live = false;
                        }
                    }
                }
            }
            Ev::Add(a) => {
                let Some(ip) = a.ip.filter(|ip| !ip.is_unspecified()) else {
                    continue;
                };
                if a.branch {
                    by_ip.remove(&ip);
                    continue;
                }
                let (ns0, name0) = a
                    .sandbox
                    .as_ref()
                    .and_then(|s| names.get(s).cloned())
                    .unwrap_or_default();
                let st = by_ip.entry(ip).or_insert_with(|| State {
                    pod: LogPod {
                        ip,
                        sandbox: None,
                        device_number: None,
                        network_card: None,
                        route_table: None,
                        namespace: None,
                        name: None,
                        evidence: String::new(),
                    },
                    weight: 0,
                    live: false,
                });
                if !st.live {
                    // A new life of this IP: forget what the previous pod said.
                    st.pod = LogPod {
                        ip,
                        sandbox: None,
                        device_number: None,
                        network_card: None,
                        route_table: None,
                        namespace: None,
                        name: None,
                        evidence: String::new(),
                    };
                    st.weight = 0;
                    st.live = true;
                }
                if let Some(s) = a.sandbox {
                    ip_of_sandbox.insert(s.clone(), ip);
                    st.pod.sandbox.get_or_insert(s);
                }
                if let Some(d) = a.device.and_then(|d| u32::try_from(d).ok()) {
                    st.pod.device_number = Some(d);
                }
                st.pod.network_card = a.card.or(st.pod.network_card);
                st.pod.route_table = a.table.or(st.pod.route_table);
                st.pod.namespace = st.pod.namespace.take().or(a.namespace).or(ns0);
                st.pod.name = st.pod.name.take().or(a.name).or(name0);
                if a.weight > st.weight {
                    st.weight = a.weight;
                    st.pod.evidence = describe(e);
                }
            }
        }
    }
    by_ip
        .into_values()
        .filter(|s| s.live)
        .map(|s| s.pod)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(file: &str, ts: &str, msg: &str) -> LogEvent {
        LogEvent {
            file: file.into(),
            line: Some(1),
            ts: Some(ts.into()),
            level: "info".into(),
            caller: None,
            msg: msg.into(),
            fields: BTreeMap::new(),
            kind: None,
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    #[test]
    fn v1_5_seelog_add_and_delete() {
        // Formats of v1.5.5 ipamd/rpc_handler.go, ipamd/datastore/data_store.go,
        // plugins/routed-eni/cni.go.
        let evs = [
            ev("ipamd.log", "2020-03-16T15:05:28.412Z", "Received AddNetwork for NS /proc/21332/ns/net, Pod web-1, NameSpace default, Container ba52, ifname eth0"),
            ev("ipamd.log", "2020-03-16T15:05:28.413Z", "AssignPodIPv4Address: Assign IP 10.0.1.7 to pod (name web-1, namespace default container ba52)"),
            ev("ipamd.log", "2020-03-16T15:05:28.414Z", "Send AddNetworkReply: IPv4Addr 10.0.1.7, DeviceNumber: 2, err: <nil>"),
            ev("plugin.log", "2020-03-16T15:05:28.415Z", "Received add network response for pod web-1 namespace default container ba52: 10.0.1.7, table 2, external-SNAT: false, vpcCIDR: [10.0.0.0/16]"),
            ev("ipamd.log", "2020-03-16T15:06:00.000Z", "Send AddNetworkReply: IPv4Addr 10.0.1.8, DeviceNumber: 0, err: <nil>"),
            ev("ipamd.log", "2020-03-16T15:07:00.000Z", "Received DelNetwork for IP 10.0.1.8, Pod web-2, Namespace default, Container cc"),
            ev("ipamd.log", "2020-03-16T15:07:00.001Z", "UnassignPodIPv4Address: pod (Name: web-2, NameSpace default Container cc)'s ipAddr 10.0.1.8, DeviceNumber0"),
            ev("ipamd.log", "2020-03-16T15:08:00.000Z", "Send AddNetworkReply: IPv4Addr , DeviceNumber: 0, err: assignPodIPv4AddressUnsafe: no available IP addresses"),
        ];
        let pods = live_pods(&evs);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods[0].ip, ip("10.0.1.7"));
        assert_eq!(pods[0].device_number, Some(2));
        assert_eq!(pods[0].name.as_deref(), Some("web-1"));
        assert_eq!(pods[0].namespace.as_deref(), Some("default"));
    }

    #[test]
    fn v1_7_to_v1_19_zap_add_then_cni_del_by_sandbox() {
        // v1.12 pkg/ipamd/rpc_handler.go, pkg/ipamd/datastore/data_store.go,
        // cmd/routed-eni-cni-plugin/cni.go (messages as zap writes them, JSON-decoded).
        let evs = [
            ev("plugin.log", "2022-07-27T14:05:10.100Z", "Received CNI add request: ContainerID(d694437635b0) Netns(/proc/1/ns/net) IfName(eth0) Args(IgnoreUnknown=1;K8S_POD_NAMESPACE=amazon-cloudwatch;K8S_POD_NAME=fluent-bit-h4947;K8S_POD_INFRA_CONTAINER_ID=d694437635b0) Path(/opt/cni/bin) argsStdinData({})"),
            ev("ipamd.log", "2022-07-27T14:05:10.101Z", "AssignPodIPv4Address: Assign IP 192.168.5.9 to sandbox aws-cni/d694437635b0/eth0"),
            ev("ipamd.log", "2022-07-27T14:05:10.102Z", "Send AddNetworkReply: IPv4Addr 192.168.5.9, IPv6Addr: , DeviceNumber: 1, err: <nil>"),
            ev("plugin.log", "2022-07-27T14:05:10.103Z", "Received add network response from ipamd for container d694437635b0 interface eth0: Success:true IPv4Addr:\"192.168.5.9\" DeviceNumber:1 VPCv4CIDRs:\"192.168.0.0/16\""),
            ev("ipamd.log", "2022-07-27T14:06:00.000Z", "assignPodIPAddressUnsafe: Assign IP 192.168.5.10 to sandbox aws-cni/eeee/eth0 with metadata {K8SPodNamespace:default K8SPodName:gone-1}"),
            ev("plugin.log", "2022-07-27T14:07:00.000Z", "Received CNI del request: ContainerID(eeee) Netns() IfName(eth0) Args(K8S_POD_NAME=gone-1) Path() argsStdinData({})"),
        ];
        let pods = live_pods(&evs);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods[0].ip, ip("192.168.5.9"));
        assert_eq!(pods[0].device_number, Some(1));
        assert_eq!(pods[0].name.as_deref(), Some("fluent-bit-h4947"));
        assert!(
            pods[0].evidence.contains("Send AddNetworkReply"),
            "{}",
            pods[0].evidence
        );
    }

    #[test]
    fn v1_20_plus_metadata_and_branch_pods() {
        // v1.20.0+ pkg/ipamd/rpc_handler.go: `Assigned IP from network card`, the
        // `Send AddNetworkReply: Success: …` line with the reply's protobuf text, and
        // `Send DelNetworkReply: IPAddress: [...]`.
        let evs = [
            ev("ipamd.log", "2025-01-01T00:00:01.000Z", "Assigned IP from network card: 0 -> IPv4: 10.1.2.3, IPv6: , device number: 1, "),
            ev("ipamd.log", "2025-01-01T00:00:01.001Z", "Send AddNetworkReply: Success: true IPAddr: [IPv4Addr:\"10.1.2.3\" DeviceNumber:1 RouteTableId:2], resp: Success:true IPAllocationMetadata:{IPv4Addr:\"10.1.2.3\" DeviceNumber:1 RouteTableId:2} VPCv4CIDRs:\"10.1.0.0/16\", err: <nil>"),
            ev("ipamd.log", "2025-01-01T00:00:02.000Z", "Send AddNetworkReply: Success: true IPAddr: [IPv4Addr:\"10.1.9.9\" DeviceNumber:-1], resp: Success:true IPAllocationMetadata:{IPv4Addr:\"10.1.9.9\" DeviceNumber:-1} PodVlanId:3, err: <nil>"),
            ev("ipamd.log", "2025-01-01T00:00:03.000Z", "Assigned IP from network card: 0 -> IPv4: 10.1.2.4, IPv6: , device number: 0, "),
            ev("ipamd.log", "2025-01-01T00:00:04.000Z", "Send DelNetworkReply: IPAddress: [IPv4Addr:\"10.1.2.4\" DeviceNumber:0 RouteTableId:1], err: <nil>"),
        ];
        let pods = live_pods(&evs);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods[0].ip, ip("10.1.2.3"));
        assert_eq!(pods[0].route_table, Some(2));
        assert_eq!(pods[0].network_card, Some(0));
    }

    #[test]
    fn readded_after_release_is_live_and_files_are_merged_in_time_order() {
        let evs = [
            // plugin.log read first, but its DEL is older than ipamd.log's second ADD.
            ev("plugin.log", "2024-01-01T00:00:02.000Z", "Received CNI del request: ContainerID(aaa) Netns() IfName(eth0) Args() Path() argsStdinData()"),
            ev("ipamd.log", "2024-01-01T00:00:01.000Z", "assignPodIPAddressUnsafe: Assign IP 10.0.0.5 to sandbox aws-cni/aaa/eth0 with metadata {K8SPodNamespace:a K8SPodName:one}"),
            ev("ipamd.log", "2024-01-01T00:00:03.000Z", "assignPodIPAddressUnsafe: Assign IP 10.0.0.5 to sandbox aws-cni/bbb/eth0 with metadata {K8SPodNamespace:a K8SPodName:two}"),
            ev("ipamd.log", "2024-01-01T00:00:04.000Z", "datastore: Sandbox aws-cni/ccc/eth0 uses unknown IP Address 10.0.0.6 - presuming stale/dead"),
        ];
        let pods = live_pods(&evs);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods[0].name.as_deref(), Some("two"));
        assert_eq!(pods[0].sandbox.as_deref(), Some("bbb"));
    }
}
