//! `diag trace`: the path one packet (and its reply) takes through a node, predicted from a
//! snapshot, with the evidence of every step and the conntrack entries that show what the
//! kernel really did.
//!
//! Published as `trace.v1.schema.json` (`diag schema trace`).

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Evidence;

/// The output of `diag trace`: one entry per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct TraceReport {
    /// 0 every trace delivered and matched what conntrack observed, 1 a trace was dropped or
    /// contradicted by conntrack, 2 bad input.
    pub exit_code: i32,
    pub nodes: Vec<NodeTrace>,
    /// Inputs that could not be read, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_errors: Vec<TraceInputError>,
}

/// An input that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TraceInputError {
    pub input: String,
    pub error: String,
}

/// The traces of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct NodeTrace {
    pub node: String,
    pub traces: Vec<PacketTrace>,
    /// With `--all-pods`: the pods grouped by outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<OutcomeGroup>,
}

/// Pods whose traces to one destination ended the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutcomeGroup {
    /// `leaves eth0 via 10.0.0.1, SNATed to 10.0.0.10; replies accepted`.
    pub outcome: String,
    pub dst: IpAddr,
    pub pods: Vec<IpAddr>,
}

/// Direction of the traced connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TraceDirection {
    /// From a pod (or the node) to `dst`.
    #[default]
    Egress,
    /// From outside to a pod (NLB IP target, NodePort after DNAT).
    Inbound,
}

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FlowSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// `tcp`, `udp` or `icmp`.
    pub proto: String,
    /// Interface the first packet arrives on (a pod's host veth for egress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// Packet mark the first packet arrives with (`--mark`), before any rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    pub direction: TraceDirection,
}

/// Which part of the path a step belongs to, in kernel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TracePhase {
    /// Where the packet comes from (pod veth, ENI).
    Ingress,
    /// mangle/nat PREROUTING: the connmark and the packet mark.
    Prerouting,
    /// ip rules and the route chosen.
    Routing,
    /// nat POSTROUTING: SNAT.
    Postrouting,
    /// The reply's way back.
    Reply,
    /// Later packets of the same flow (conntrack established; nat chains are not traversed).
    Established,
    /// Conntrack entries compared with the prediction.
    Observed,
}

/// One decision on the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TraceStep {
    pub phase: TracePhase,
    /// What was decided, in a sentence (`rule 1024 matches: fwmark 0x80/0x80 and mark 0x80`).
    pub decision: String,
    /// The lines that decided it (rule, route, iptables line with counters, sysctl).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// The routing outcome of one packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct RouteOutcome {
    /// Priority of the ip rule whose table gave the route (0 = local table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// The route chosen, as an `ip route` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_interface: Option<String>,
    /// Gateway, or the destination itself for an on-link route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<IpAddr>,
    /// `unreachable`, `blackhole`, `prohibit`, `no route`, `local` when not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<String>,
}

/// A conntrack entry of the traced flow and whether it agrees with the prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedFlow {
    /// The entry, `conntrack -L` style (or the summary pair).
    pub line: String,
    /// Where the reply is addressed (reply tuple `dst`): the source the packet left with.
    pub reply_dst: IpAddr,
    /// True when `reply_dst` equals the predicted source after NAT (None when no prediction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches_prediction: Option<bool>,
    /// How many flows this line stands for (summary pairs aggregate).
    pub flows: u64,
}

/// The prediction for one (src, dst) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PacketTrace {
    pub flow: FlowSpec,
    /// The pod the source (egress) or destination (inbound) is, by its host route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_veth: Option<String>,
    /// Packet mark of the first packet when it is routed (after mangle/nat PREROUTING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    /// Routing of the first packet.
    pub route: RouteOutcome,
    /// Routing of the later packets of the flow, when it differs from the first packet's
    /// (their mark comes only from the mangle restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_route: Option<RouteOutcome>,
    /// The source address the packet leaves with (after SNAT); null when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_after_nat: Option<IpAddr>,
    /// The rule that source-NATed it (`nft nat AWS-SNAT-CHAIN-0 #3`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat_rule: Option<String>,
    /// `--random-fully`, `--random` or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat_random: Option<String>,
    /// Interface the reply arrives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_interface: Option<String>,
    /// The reply passes rp_filter and is routed back; null when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_accepted: Option<bool>,
    pub steps: Vec<TraceStep>,
    /// Inputs the trace could not evaluate, stated rather than guessed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<String>,
    /// Conntrack entries of this flow in the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<ObservedFlow>,
    /// Problems on the path and disagreements between prediction and conntrack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// One line to paste into a ticket.
    pub verdict: String,
}

impl PacketTrace {
    /// The first packet is forwarded out of the node.
    pub fn delivered(&self) -> bool {
        self.route.egress_interface.is_some() && self.route.drop.is_none()
    }
}

/// Schema of [`TraceReport`] (`diag trace -o json`).
pub fn trace_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(TraceReport)).unwrap_or_default()
}
