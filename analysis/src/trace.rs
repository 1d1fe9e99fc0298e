//! The packet-path explainer behind `diag trace`: what the node's kernel does with one pod's
//! packet, in the order the kernel does it, predicted from a [`Snapshot`].
//!
//! Egress from a pod (iif = its host veth), first packet of a new flow:
//! 1. mangle PREROUTING, then nat PREROUTING (only the first packet of a flow traverses nat):
//!    the connmark the AWS rules set (`AWS-CONNMARK-CHAIN-0` → `--set-xmark 0x80/0x80`) and
//!    the packet mark restored from it (`"AWS, CONNMARK" --restore-mark`);
//! 2. policy routing: the ip rules by priority with that mark (512 to-pod, 1024 fwmark, 1536
//!    from-pod, …), the table consulted and the route chosen (longest prefix, then metric);
//! 3. nat POSTROUTING: every rule traversed; the AWS SNAT chain is walked by
//!    [`crate::nat::AwsNat::evaluate`]; both iptables backends when both hold rules;
//! 4. the reply: the ENI it arrives on (the one holding the address it is sent to), mangle
//!    PREROUTING on that interface (M1 marks the connection when the reply is addressed to the
//!    node), rp_filter (effective = max(all, iface), reverse lookup with mark 0), the route back
//!    to the pod;
//! 5. later packets of the flow: only mangle PREROUTING runs (`-i eni+ --restore-mark`), so
//!    their mark — and their route — can differ from the first packet's.
//!
//! Inbound connections to a pod (`src` outside, `dst` a pod) are traced the same way from the
//! ENI they arrive on, and their replies from the pod's veth.
//!
//! Everything here is pure: the inputs are the snapshot and the question. An input the
//! snapshot lacks is stated in [`PacketTrace::unknowns`], never guessed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use model::net::{table_name, RT_TABLE_LOCAL, RT_TABLE_MAIN};
use model::trace::{
    FlowSpec, ObservedFlow, OutcomeGroup, PacketTrace, RouteOutcome, TraceDirection, TracePhase,
    TraceStep,
};
use model::{
    Backend, ConntrackEntry, Evidence, EvidenceKind, Family, IpRule, IptArg, IptRule,
    IptablesBackendDump, Route, Snapshot,
};

use crate::facts::{parse_net, Facts};
use crate::nat::{AwsNat, Verdict};

/// The question: one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRequest {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: Option<u16>,
    /// `tcp`, `udp` or `icmp`.
    pub proto: String,
    /// Interface the first packet arrives on; found from the routes when absent.
    pub iif: Option<String>,
    /// Packet mark of the arriving packet.
    pub mark: Option<u32>,
}

impl TraceRequest {
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        TraceRequest {
            src,
            dst,
            dport: None,
            proto: "icmp".into(),
            iif: None,
            mark: None,
        }
    }
}

/// Trace one flow through one node.
pub fn trace(s: &Snapshot, req: &TraceRequest) -> PacketTrace {
    let facts = Facts::from_snapshot(s);
    trace_with(s, &facts, req)
}

/// [`trace`] with precomputed facts.
pub fn trace_with(s: &Snapshot, facts: &Facts, req: &TraceRequest) -> PacketTrace {
    Tracer::new(s, facts).run(req)
}

/// Every pod of the node (by its host route) to `dst`, and the pods grouped by outcome.
pub fn trace_all_pods(
    s: &Snapshot,
    dst: IpAddr,
    proto: &str,
    dport: Option<u16>,
) -> (Vec<PacketTrace>, Vec<OutcomeGroup>) {
    let facts = Facts::from_snapshot(s);
    let mut pods: Vec<IpAddr> = facts
        .pods
        .iter()
        .filter(|p| p.host_veth.is_some() && p.ip.is_ipv4())
        .map(|p| p.ip)
        .collect();
    pods.sort();
    pods.dedup();
    let tracer = Tracer::new(s, &facts);
    let mut traces = Vec::new();
    let mut groups: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for ip in pods {
        let mut req = TraceRequest::new(ip, dst);
        req.proto = proto.to_string();
        req.dport = dport;
        let t = tracer.run(&req);
        groups.entry(outcome(&t)).or_default().push(ip);
        traces.push(t);
    }
    let groups = groups
        .into_iter()
        .map(|(outcome, pods)| OutcomeGroup { outcome, dst, pods })
        .collect();
    (traces, groups)
}

/// The verdict without the flow: what happened, for grouping pods.
pub fn outcome(t: &PacketTrace) -> String {
    let mut parts = Vec::new();
    match (&t.route.drop, &t.route.egress_interface) {
        (Some(d), _) => parts.push(format!("dropped: {d}")),
        (None, Some(i)) => {
            let mut s = format!("leaves {i}");
            if let Some(nh) = t.route.next_hop {
                s.push_str(&format!(" via {nh}"));
            }
            parts.push(s);
        }
        (None, None) => parts.push("egress unknown".into()),
    }
    if t.route.drop.is_none() {
        match (&t.snat_rule, t.source_after_nat) {
            (Some(rule), Some(a)) => parts.push(format!("SNATed to {a} by {rule}")),
            (None, Some(a)) if a == t.flow.src => parts.push("not SNATed".into()),
            (None, Some(a)) => parts.push(format!("source {a}")),
            (_, None) => parts.push("source after NAT unknown".into()),
        }
        if let Some(e) = &t.established_route {
            match (&e.drop, &e.egress_interface) {
                (Some(d), _) => parts.push(format!("later packets dropped: {d}")),
                (None, Some(i)) => parts.push(format!("later packets leave {i}")),
                _ => {}
            }
        }
        parts.push(match t.reply_accepted {
            Some(true) => "replies accepted".into(),
            Some(false) => "replies dropped".into(),
            None => "reply path unknown".into(),
        });
    }
    let mut s = parts.join(", ");
    if let Some(pos) = s.rfind(", replies") {
        s.replace_range(pos..pos + 1, ";");
    } else if let Some(pos) = s.rfind(", reply path") {
        s.replace_range(pos..pos + 1, ";");
    }
    s
}

// ---------------------------------------------------------------------------------------------

/// One packet as the netfilter walk sees it.
#[derive(Debug, Clone)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    iif: Option<String>,
    oif: Option<String>,
    proto: String,
    dport: Option<u16>,
    /// First packet of the flow (conntrack NEW); nat chains only see these.
    new: bool,
    mark: u32,
    ctmark: u32,
}

/// What the nat table decided for the flow.
#[derive(Debug, Clone)]
enum NatDecision {
    Snat {
        to: Option<Ipv4Addr>,
        rule: String,
        random: Option<String>,
    },
    Masquerade {
        rule: String,
    },
    Dnat {
        rule: String,
    },
}

/// How a chain walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Fell off the end or RETURN: continue in the caller.
    Continue,
    /// ACCEPT or a terminating NAT target: the table is done.
    Accept,
    Drop,
}

struct Tracer<'a> {
    s: &'a Snapshot,
    facts: &'a Facts,
    rules: Option<Vec<&'a IpRule>>,
    routes: Option<Vec<&'a Route>>,
    dumps: Vec<&'a IptablesBackendDump>,
    /// Node addresses and the interface holding each.
    local: Vec<(Ipv4Addr, String)>,
}

/// Steps, unknowns and findings collected while tracing.
#[derive(Default)]
struct Log {
    steps: Vec<TraceStep>,
    unknowns: Vec<String>,
    findings: Vec<String>,
}

impl Log {
    fn step(&mut self, phase: TracePhase, decision: impl Into<String>, evidence: Vec<Evidence>) {
        self.steps.push(TraceStep {
            phase,
            decision: decision.into(),
            evidence,
        });
    }

    fn unknown(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.unknowns.contains(&s) {
            self.unknowns.push(s);
        }
    }
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn net_contains(n: &IpNet, a: Ipv4Addr) -> bool {
    match n {
        IpNet::V4(n) => n.contains(&a),
        IpNet::V6(_) => false,
    }
}

fn hex(v: u32) -> String {
    format!("{v:#x}")
}

/// `0x80/0x80` or `0x80` → (value, mask).
fn value_mask(s: &str) -> Option<(u32, u32)> {
    let num = |t: &str| -> Option<u32> {
        let t = t.trim();
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => t.parse().ok(),
        }
    };
    match s.split_once('/') {
        Some((v, m)) => Some((num(v)?, num(m)?)),
        None => Some((num(s)?, u32::MAX)),
    }
}

/// `-i eni+` style interface match.
fn iface_match(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn rule_location(backend: Backend, table: &str, chain: &str, index: usize) -> String {
    format!("{backend} {table} {chain} #{index}")
}

fn ipt_evidence(backend: Backend, table: &str, r: &IptRule, index: usize) -> Evidence {
    Evidence::new(EvidenceKind::Iptables, r.evidence_line())
        .at(rule_location(backend, table, &r.chain, index))
}

fn rule_evidence(r: &IpRule) -> Evidence {
    Evidence::new(EvidenceKind::Rule, r.to_ip_line()).at("ip rule")
}

fn route_evidence(r: &Route) -> Evidence {
    Evidence::new(EvidenceKind::Route, r.to_ip_line()).at(format!("table {}", table_name(r.table)))
}

impl<'a> Tracer<'a> {
    fn new(s: &'a Snapshot, facts: &'a Facts) -> Self {
        let rules = s.rules.get().map(|rs| {
            let mut v: Vec<&IpRule> = rs.iter().filter(|r| r.family == Family::Inet).collect();
            v.sort_by_key(|r| r.priority);
            v
        });
        let routes: Option<Vec<&Route>> = s
            .routes
            .get()
            .map(|rs| rs.iter().filter(|r| r.family == Family::Inet).collect());
        let dumps: Vec<&IptablesBackendDump> = s
            .iptables
            .get()
            .map(|i| {
                i.backends
                    .iter()
                    .filter(|d| d.rule_count() > 0 || d.table("nat").is_some())
                    .collect()
            })
            .unwrap_or_default();
        // Node addresses, from `ip addr` and from the local table (`local X dev eth0`).
        let mut local: Vec<(Ipv4Addr, String)> = s
            .addresses
            .get()
            .map(|a| {
                a.iter()
                    .filter(|a| !a.flags.iter().any(|f| f == "secondary"))
                    .filter_map(|a| v4(a.local).map(|l| (l, a.ifname.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(rs) = &routes {
            for r in rs
                .iter()
                .filter(|r| r.table == RT_TABLE_LOCAL && r.route_type == "local")
            {
                if let (IpNet::V4(n), Some(dev)) = (r.dst, &r.dev) {
                    if n.prefix_len() == 32 && !local.iter().any(|(a, _)| *a == n.addr()) {
                        local.push((n.addr(), dev.clone()));
                    }
                }
            }
        }
        Tracer {
            s,
            facts,
            rules,
            routes,
            dumps,
            local,
        }
    }

    fn is_local(&self, a: Ipv4Addr) -> bool {
        self.local.iter().any(|(l, _)| *l == a) || a.is_loopback()
    }

    /// Host veth of a pod IP (main-table `<ip> dev <veth>` route).
    fn pod_veth(&self, ip: IpAddr) -> Option<String> {
        self.facts.pod(&ip).and_then(|p| p.host_veth.clone())
    }

    /// Interface the VPC delivers packets for `addr` to: the node interface holding it, or
    /// the ENI a pod IP is assigned to (ipamd), or the interface of its ENI table's default
    /// route, or the primary interface.
    fn arrival_interface(&self, addr: Ipv4Addr, log: &mut Log) -> Option<String> {
        if let Some((_, i)) = self.local.iter().find(|(l, _)| *l == addr) {
            return Some(i.clone());
        }
        let pod = self.facts.pod(&IpAddr::V4(addr));
        if let Some(d) = pod.and_then(|p| p.device_number) {
            if let Some(i) = self
                .facts
                .enis
                .iter()
                .find(|e| e.device_number == d)
                .and_then(|e| e.interface.clone())
            {
                return Some(i);
            }
        }
        if let Some(t) = pod.and_then(|p| p.table).filter(|t| *t != RT_TABLE_MAIN) {
            if let Some(dev) = self.routes.as_ref().and_then(|rs| {
                rs.iter()
                    .find(|r| r.table == t && r.is_default())
                    .and_then(|r| r.dev.clone())
            }) {
                return Some(dev);
            }
        }
        let primary = self
            .facts
            .primary_interface
            .as_ref()
            .map(|k| k.value.clone());
        if primary.is_none() {
            log.unknown(format!(
                "which ENI holds {addr} is not known (no ipamd /v1/enis, no primary interface)"
            ));
        }
        primary
    }

    fn run(&self, req: &TraceRequest) -> PacketTrace {
        let mut log = Log::default();
        let flow = FlowSpec {
            src: req.src,
            dst: req.dst,
            dport: req.dport,
            proto: req.proto.clone(),
            iif: req.iif.clone(),
            mark: req.mark,
            direction: TraceDirection::Egress,
        };
        let mut t = PacketTrace {
            flow,
            pod_veth: None,
            mark: None,
            route: RouteOutcome::default(),
            established_route: None,
            source_after_nat: None,
            snat_rule: None,
            snat_random: None,
            reply_interface: None,
            reply_accepted: None,
            steps: Vec::new(),
            unknowns: Vec::new(),
            observed: Vec::new(),
            findings: Vec::new(),
            verdict: String::new(),
        };
        let (Some(src), Some(dst)) = (v4(req.src), v4(req.dst)) else {
            t.unknowns
                .push("IPv6 flows are not traced (the VPC CNI IPv6 mode has no SNAT chain)".into());
            t.verdict = format!("{} → {}: not traced (IPv6)", req.src, req.dst);
            return t;
        };
        self.note_inputs(&mut log);
        let src_veth = self.pod_veth(req.src);
        let dst_veth = self.pod_veth(req.dst);
        let inbound = src_veth.is_none() && dst_veth.is_some() && !self.is_local(src);
        if inbound {
            t.flow.direction = TraceDirection::Inbound;
            t.pod_veth = dst_veth;
            self.inbound(req, src, dst, &mut t, &mut log);
        } else {
            t.pod_veth = src_veth;
            self.egress(req, src, dst, &mut t, &mut log);
        }
        self.observe(&mut t, &mut log);
        t.steps = log.steps;
        t.unknowns = log.unknowns;
        t.findings = log.findings;
        t.verdict = verdict(&t);
        t
    }

    fn note_inputs(&self, log: &mut Log) {
        if self.rules.is_none() {
            log.unknown(format!(
                "no ip rules (ip-rule.txt / `ip rule` not in the input{}): policy routing not evaluated",
                reason(self.s.rules.reason.as_deref())
            ));
        }
        if self.routes.is_none() {
            log.unknown(format!(
                "no routes (`ip route show table all` not in the input{}): route lookup not evaluated",
                reason(self.s.routes.reason.as_deref())
            ));
        }
        if self.dumps.is_empty() {
            log.unknown(format!(
                "no iptables dump{}: connmark, packet mark and SNAT not evaluated",
                reason(self.s.iptables.reason.as_deref())
            ));
        }
        for d in &self.dumps {
            let aws = AwsNat::from_dump(d);
            for table in ["nat", "mangle"] {
                if let Some(why) = aws.filtered_table(table) {
                    log.unknown(why);
                }
            }
        }
        if self.local.is_empty() {
            log.unknown(
                "no addresses and no local table: which addresses are the node's is not known",
            );
        }
    }

    // ---- egress ------------------------------------------------------------------------------

    fn egress(
        &self,
        req: &TraceRequest,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        t: &mut PacketTrace,
        log: &mut Log,
    ) {
        let local_src = self.is_local(src);
        let iif = match (&req.iif, &t.pod_veth, local_src) {
            (Some(i), _, _) => Some(i.clone()),
            (None, Some(v), _) => Some(v.clone()),
            (None, None, true) => Some("lo".to_string()),
            (None, None, false) => None,
        };
        match (&t.pod_veth, local_src) {
            (Some(v), _) => {
                let ev = self.pod_route_evidence(req.src);
                log.step(
                    TracePhase::Ingress,
                    format!("{src} is a pod behind host veth {v}: the packet arrives on {v}"),
                    ev,
                );
            }
            (None, true) => log.step(
                TracePhase::Ingress,
                format!(
                    "{src} is a node address: locally generated (mangle/nat OUTPUT not evaluated)"
                ),
                Vec::new(),
            ),
            (None, false) => {
                if iif.is_none() {
                    log.unknown(format!(
                        "{src} is neither a pod (no host route through a veth) nor a node address: give --iif"
                    ));
                }
                log.step(
                    TracePhase::Ingress,
                    format!(
                        "{src} is not a pod of this node; arriving on {}",
                        iif.as_deref().unwrap_or("an unknown interface")
                    ),
                    Vec::new(),
                );
            }
        }
        t.flow.iif = iif.clone();
        let mut pkt = Pkt {
            src,
            dst,
            iif: iif.clone(),
            oif: None,
            proto: req.proto.clone(),
            dport: req.dport,
            new: true,
            mark: req.mark.unwrap_or(0),
            ctmark: 0,
        };
        let mut nat = None;
        if !local_src {
            self.prerouting(&mut pkt, TracePhase::Prerouting, true, &mut nat, log);
        }
        if let Some(NatDecision::Dnat { rule }) = &nat {
            log.unknown(format!(
                "{rule} DNATs the flow (kube-proxy service): trace the endpoint address instead"
            ));
        }
        t.mark = (!self.dumps.is_empty()).then_some(pkt.mark);
        let route = self.route(src, dst, iif.as_deref(), pkt.mark, TracePhase::Routing, log);
        t.route = route.clone();
        if route.drop.is_some() || route.egress_interface.is_none() {
            return;
        }
        // ip_forward.
        if !local_src {
            if let Some(v) = self
                .s
                .sysctls
                .get()
                .and_then(|s| s.get("net.ipv4.ip_forward"))
            {
                if v == "0" {
                    log.step(
                        TracePhase::Routing,
                        "net.ipv4.ip_forward = 0: the node does not forward the pod's packet",
                        vec![Evidence::new(
                            EvidenceKind::Sysctl,
                            "net.ipv4.ip_forward = 0",
                        )],
                    );
                    t.route.drop = Some("ip_forward = 0".into());
                    return;
                }
            }
        }
        // nat POSTROUTING.
        pkt.oif = route.egress_interface.clone();
        let source = self.postrouting(&mut pkt, &mut nat, log);
        if source == Some(src) {
            self.secondary_source_check(src, &route, log);
        }
        t.source_after_nat = source.map(IpAddr::V4);
        if let Some(NatDecision::Snat { rule, random, .. }) = &nat {
            t.snat_rule = Some(rule.clone());
            t.snat_random = random.clone();
        }
        if let Some(NatDecision::Masquerade { rule }) = &nat {
            t.snat_rule = Some(rule.clone());
        }
        // Reply.
        let Some(reply_to) = source else {
            return;
        };
        let reply_if = self.arrival_interface(reply_to, log);
        t.reply_interface = reply_if.clone();
        let mut reply = Pkt {
            src: dst,
            dst: reply_to,
            iif: reply_if.clone(),
            oif: None,
            proto: req.proto.clone(),
            dport: None,
            new: false,
            mark: 0,
            ctmark: pkt.ctmark,
        };
        log.step(
            TracePhase::Reply,
            format!(
                "the reply {dst} → {reply_to} arrives on {} (the VPC delivers it to the ENI holding {reply_to})",
                reply_if.as_deref().unwrap_or("an unknown interface")
            ),
            Vec::new(),
        );
        if !self.dumps.is_empty() {
            self.mangle_only(&mut reply, TracePhase::Reply, log);
        }
        let ctmark_after_reply = reply.ctmark;
        // De-NAT: conntrack rewrites the destination back to the original source.
        if reply_to != src {
            log.step(
                TracePhase::Reply,
                format!("conntrack reverses the SNAT: destination {reply_to} → {src}"),
                Vec::new(),
            );
        }
        if !local_src {
            t.reply_accepted = self.reply_back(dst, src, reply_if.as_deref(), log);
        }
        // Later packets of the flow (only mangle runs).
        if !local_src && !self.dumps.is_empty() {
            let mut later = Pkt {
                src,
                dst,
                iif: iif.clone(),
                oif: None,
                proto: req.proto.clone(),
                dport: req.dport,
                new: false,
                mark: req.mark.unwrap_or(0),
                ctmark: ctmark_after_reply,
            };
            let mut sub = Log::default();
            self.mangle_only(&mut later, TracePhase::Established, &mut sub);
            if later.mark != pkt.mark {
                log.steps.append(&mut sub.steps);
                log.step(
                    TracePhase::Established,
                    format!(
                        "later packets carry mark {} (the first packet carried {}): nat PREROUTING does not see them, only the mangle restore does",
                        hex(later.mark),
                        hex(pkt.mark)
                    ),
                    Vec::new(),
                );
                let r2 = self.route(
                    src,
                    dst,
                    iif.as_deref(),
                    later.mark,
                    TracePhase::Established,
                    log,
                );
                if r2.egress_interface != route.egress_interface || r2.drop != route.drop {
                    log.findings.push(format!(
                        "the first packet leaves {} but later packets of the flow leave {}: the connmark rules are incomplete",
                        route.egress_interface.as_deref().unwrap_or("?"),
                        r2.egress_interface.as_deref().or(r2.drop.as_deref()).unwrap_or("?")
                    ));
                    t.established_route = Some(r2);
                }
            } else {
                log.step(
                    TracePhase::Established,
                    format!(
                        "later packets get mark {} from the mangle restore: same route as the first",
                        hex(later.mark)
                    ),
                    Vec::new(),
                );
            }
        }
    }

    fn pod_route_evidence(&self, ip: IpAddr) -> Vec<Evidence> {
        self.routes
            .as_ref()
            .and_then(|rs| {
                rs.iter().find(|r| {
                    r.table == RT_TABLE_MAIN
                        && r.dst.prefix_len() == 32
                        && r.dst.addr() == ip
                        && r.dev.is_some()
                })
            })
            .map(|r| vec![route_evidence(r)])
            .unwrap_or_default()
    }

    /// A pod IP of a secondary ENI leaving through another ENI is dropped by the VPC's
    /// source/destination check.
    fn secondary_source_check(&self, src: Ipv4Addr, route: &RouteOutcome, log: &mut Log) {
        let Some(pod) = self.facts.pod(&IpAddr::V4(src)) else {
            return;
        };
        let Some(d) = pod.device_number else { return };
        let Some(eni_if) = self
            .facts
            .enis
            .iter()
            .find(|e| e.device_number == d)
            .and_then(|e| e.interface.as_deref())
        else {
            return;
        };
        if let Some(out) = route.egress_interface.as_deref() {
            let out_is_eni = self
                .facts
                .enis
                .iter()
                .any(|e| e.interface.as_deref() == Some(out));
            if out_is_eni && out != eni_if {
                log.findings.push(format!(
                    "{src} belongs to the ENI on {eni_if} but leaves {out} with that source: the VPC drops it (source/destination check)"
                ));
            }
        }
    }

    // ---- netfilter ---------------------------------------------------------------------------

    fn multi_backend_note(&self, table: &str, log: &mut Log) {
        let holding: Vec<String> = self
            .dumps
            .iter()
            .filter(|d| {
                d.table(table)
                    .is_some_and(|t| t.chains.iter().any(|c| !c.rules.is_empty()))
            })
            .map(|d| d.backend.to_string())
            .collect();
        if holding.len() > 1 {
            log.step(
                TracePhase::Prerouting,
                format!(
                    "both iptables backends ({}) hold {table} rules: the kernel runs both; they are traced in turn",
                    holding.join(", ")
                ),
                Vec::new(),
            );
        }
    }

    /// mangle then nat PREROUTING (nat only for the first packet).
    fn prerouting(
        &self,
        pkt: &mut Pkt,
        phase: TracePhase,
        nat_too: bool,
        nat: &mut Option<NatDecision>,
        log: &mut Log,
    ) {
        if self.dumps.is_empty() {
            return;
        }
        self.multi_backend_note("nat", log);
        self.mangle_only(pkt, phase, log);
        if nat_too && pkt.new {
            for d in &self.dumps {
                self.walk(d, "nat", "PREROUTING", pkt, phase, nat, log, 0);
            }
        }
        log.step(
            phase,
            format!(
                "after PREROUTING: connmark {}, packet mark {}",
                hex(pkt.ctmark),
                hex(pkt.mark)
            ),
            Vec::new(),
        );
    }

    fn mangle_only(&self, pkt: &mut Pkt, phase: TracePhase, log: &mut Log) {
        let mut none = None;
        for d in &self.dumps {
            self.walk(d, "mangle", "PREROUTING", pkt, phase, &mut none, log, 0);
        }
    }

    /// Walk one chain of one backend. Records steps for AWS rules, jumps and matching rules.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        dump: &IptablesBackendDump,
        table: &str,
        chain: &str,
        pkt: &mut Pkt,
        phase: TracePhase,
        nat: &mut Option<NatDecision>,
        log: &mut Log,
        depth: usize,
    ) -> Flow {
        if depth > 32 {
            log.unknown(format!(
                "{} {table}: chain jumps nest deeper than 32: walk stopped",
                dump.backend
            ));
            return Flow::Continue;
        }
        let Some(c) = dump.table(table).and_then(|t| t.chain(chain)) else {
            return Flow::Continue;
        };
        for (i, r) in c.rules.iter().enumerate() {
            let index = i + 1;
            let target = r.target.as_deref().unwrap_or("");
            let aws = r.comment().is_some_and(|c| c.starts_with("AWS"))
                || target.starts_with("AWS-")
                || chain.starts_with("AWS-");
            let m = match self.rule_matches(r, pkt) {
                Ok(m) => m,
                Err(opt) => {
                    if aws || matches!(target, "SNAT" | "MASQUERADE" | "CONNMARK" | "MARK" | "DROP")
                    {
                        log.unknown(format!(
                            "{}: match {opt} is not modelled; assumed not to match",
                            rule_location(dump.backend, table, chain, index)
                        ));
                    }
                    false
                }
            };
            if !m {
                if aws {
                    log.step(
                        phase,
                        format!(
                            "{}: does not match",
                            rule_location(dump.backend, table, chain, index)
                        ),
                        vec![ipt_evidence(dump.backend, table, r, index)],
                    );
                }
                continue;
            }
            let ev = vec![ipt_evidence(dump.backend, table, r, index)];
            let loc = rule_location(dump.backend, table, chain, index);
            match target {
                "" => {}
                "RETURN" => {
                    log.step(phase, format!("{loc}: matches → RETURN"), ev);
                    return Flow::Continue;
                }
                "ACCEPT" => {
                    log.step(
                        phase,
                        format!("{loc}: matches → ACCEPT (rest of {table} {chain} skipped)"),
                        ev,
                    );
                    return Flow::Accept;
                }
                "DROP" => {
                    log.step(phase, format!("{loc}: matches → DROP"), ev);
                    return Flow::Drop;
                }
                "CONNMARK" => {
                    let what = self.connmark(r, pkt);
                    log.step(phase, format!("{loc}: matches → {what}"), ev);
                }
                "MARK" => {
                    if let Some((v, m)) = r
                        .target_arg("--set-xmark")
                        .or_else(|| r.target_arg("--set-mark"))
                        .and_then(|a| a.values.first())
                        .and_then(|v| value_mask(v))
                    {
                        pkt.mark = (pkt.mark & !m) ^ v;
                    }
                    if aws || phase != TracePhase::Postrouting {
                        log.step(
                            phase,
                            format!("{loc}: matches → packet mark {}", hex(pkt.mark)),
                            ev,
                        );
                    }
                }
                "SNAT" | "MASQUERADE" | "DNAT" | "REDIRECT" => {
                    if nat.is_none() {
                        *nat = Some(match target {
                            "SNAT" => NatDecision::Snat {
                                to: to_source(r),
                                rule: loc.clone(),
                                random: random_flag(r),
                            },
                            "MASQUERADE" => NatDecision::Masquerade { rule: loc.clone() },
                            _ => NatDecision::Dnat { rule: loc.clone() },
                        });
                        log.step(phase, format!("{loc}: matches → {target}"), ev);
                    } else {
                        log.step(
                            phase,
                            format!("{loc}: matches → {target}, but the flow is already NATed (the first binding wins)"),
                            ev,
                        );
                    }
                    return Flow::Accept;
                }
                t if t.starts_with(model::vpccni::SNAT_CHAIN_PREFIX)
                    && table == "nat"
                    && chain == "POSTROUTING" =>
                {
                    log.step(phase, format!("{loc}: matches → jump to {t}"), ev);
                    match self.aws_snat(dump, t, pkt, nat, log) {
                        Flow::Continue => {}
                        f => return f,
                    }
                }
                t if dump.table(table).and_then(|tb| tb.chain(t)).is_some() => {
                    if aws {
                        log.step(phase, format!("{loc}: matches → jump to {t}"), ev);
                    }
                    match self.walk(dump, table, t, pkt, phase, nat, log, depth + 1) {
                        Flow::Continue => {}
                        f => return f,
                    }
                }
                t => {
                    if aws {
                        log.step(phase, format!("{loc}: matches → {t} (not modelled)"), ev);
                    }
                }
            }
        }
        Flow::Continue
    }

    /// `AWS-SNAT-CHAIN-*`, decided by [`AwsNat::evaluate`] (the rules before the deciding one
    /// are listed as not matching).
    fn aws_snat(
        &self,
        dump: &IptablesBackendDump,
        chain: &str,
        pkt: &Pkt,
        nat: &mut Option<NatDecision>,
        log: &mut Log,
    ) -> Flow {
        let aws = AwsNat::from_dump(dump);
        let phase = TracePhase::Postrouting;
        if pkt.oif.as_deref().is_some_and(|o| o.starts_with("vlan")) {
            log.step(
                phase,
                format!("{chain}: egress is a vlan (branch ENI): the AWS SNAT rule's `! -o vlan+` excludes it"),
                Vec::new(),
            );
            return Flow::Continue;
        }
        if self.is_local(pkt.dst) {
            log.step(
                phase,
                format!(
                    "{chain}: {} is a node address (`! --dst-type LOCAL`): not SNATed",
                    pkt.dst
                ),
                Vec::new(),
            );
            return Flow::Continue;
        }
        let verdict = if chain == model::vpccni::SNAT_CHAIN_0 {
            aws.evaluate(pkt.dst)
        } else {
            Verdict::Unknown
        };
        let decided = match &verdict {
            Verdict::Snat(r) | Verdict::Return(Some(r)) => Some(r.location()),
            _ => None,
        };
        for r in aws.chain_rules(chain) {
            if Some(r.location()) == decided {
                break;
            }
            log.step(
                phase,
                format!("{}: does not match {}", r.location(), pkt.dst),
                vec![r.evidence()],
            );
        }
        match verdict {
            Verdict::Snat(r) => {
                let loc = r.location();
                if nat.is_none() {
                    *nat = Some(NatDecision::Snat {
                        to: to_source(r.rule),
                        rule: loc.clone(),
                        random: random_flag(r.rule),
                    });
                    log.step(phase, format!("{loc}: matches → SNAT"), vec![r.evidence()]);
                } else {
                    log.step(
                        phase,
                        format!("{loc}: matches → SNAT, but the flow is already NATed (the first binding wins)"),
                        vec![r.evidence()],
                    );
                }
                Flow::Accept
            }
            Verdict::Return(Some(r)) => {
                let why = if r.rule.comment() == Some(model::vpccni::COMMENT_SNAT_EXCLUSION) {
                    "excluded CIDR"
                } else if r.dst().is_some_and(|(_, neg)| neg) {
                    "negated RETURN: everything outside the CIDR returns"
                } else {
                    "VPC CIDR"
                };
                log.step(
                    phase,
                    format!(
                        "{}: matches → RETURN ({why}): not SNATed by the CNI",
                        r.location()
                    ),
                    vec![r.evidence()],
                );
                Flow::Continue
            }
            Verdict::Return(None) => {
                log.step(
                    phase,
                    format!(
                        "{chain}: no rule matches {} (no SNAT rule reached): not SNATed",
                        pkt.dst
                    ),
                    Vec::new(),
                );
                Flow::Continue
            }
            Verdict::Unknown => {
                log.unknown(format!(
                    "{} nat {chain}: could not be evaluated",
                    dump.backend
                ));
                Flow::Continue
            }
        }
    }

    /// Apply a CONNMARK target; describe it.
    fn connmark(&self, r: &IptRule, pkt: &mut Pkt) -> String {
        if let Some((v, m)) = r
            .target_arg("--set-xmark")
            .or_else(|| r.target_arg("--set-mark"))
            .and_then(|a| a.values.first())
            .and_then(|v| value_mask(v))
        {
            pkt.ctmark = (pkt.ctmark & !m) ^ v;
            return format!("connmark set to {}", hex(pkt.ctmark));
        }
        if r.has_target_option("--restore-mark") {
            let mask = |o: &str| {
                r.target_arg(o)
                    .and_then(|a| a.values.first())
                    .and_then(|v| value_mask(v))
                    .map(|(v, _)| v)
            };
            let fallback = r
                .target_arg("--mask")
                .and_then(|a| a.values.first())
                .and_then(|v| value_mask(v))
                .map(|(v, _)| v)
                .unwrap_or(u32::MAX);
            let nf = mask("--nfmask").unwrap_or(fallback);
            let ct = mask("--ctmask").unwrap_or(fallback);
            pkt.mark = (pkt.mark & !nf) | (pkt.ctmark & ct);
            return format!(
                "packet mark restored from connmark {}: mark {}",
                hex(pkt.ctmark),
                hex(pkt.mark)
            );
        }
        if r.has_target_option("--save-mark") {
            pkt.ctmark = pkt.mark;
            return format!("connmark saved from the packet mark: {}", hex(pkt.ctmark));
        }
        "CONNMARK (form not modelled)".into()
    }

    /// Does an iptables rule match? `Err(option)` for a match this tracer does not model.
    fn rule_matches(&self, r: &IptRule, p: &Pkt) -> Result<bool, String> {
        let mut ok = true;
        let mut limit_iface_in = false;
        for a in &r.matches {
            if a.option == "--limit-iface-in" {
                limit_iface_in = true;
            }
        }
        for a in &r.matches {
            let val = a.values.first().map(|v| v.as_str()).unwrap_or("");
            let hit = match a.option.as_str() {
                "-m" | "--comment" | "--limit-iface-in" | "--limit-iface-out" => continue,
                _ if a.module.as_deref() == Some("comment") => continue,
                "-i" => match &p.iif {
                    Some(i) => iface_match(val, i),
                    None => return Err(format!("-i {val} (arriving interface unknown)")),
                },
                "-o" => match &p.oif {
                    Some(o) => iface_match(val, o),
                    None => false,
                },
                "-s" => parse_net(val).ok_or_else(|| opt_text(a))?.contains(&p.src),
                "-d" => parse_net(val).ok_or_else(|| opt_text(a))?.contains(&p.dst),
                "-p" => val == p.proto || val == "all",
                "--dport" | "--dports" => match p.dport {
                    Some(d) => val.split(',').any(|v| port_in(v, d)),
                    None => false,
                },
                "--dst-type" | "--src-type" => {
                    let addr = if a.option == "--dst-type" {
                        p.dst
                    } else {
                        p.src
                    };
                    let local = if limit_iface_in {
                        self.local_on(addr, p.iif.as_deref())
                    } else {
                        self.is_local(addr)
                    };
                    let types: Vec<&str> = val.split(',').collect();
                    if types.iter().all(|t| *t == "LOCAL") {
                        local
                    } else if types.iter().all(|t| *t == "UNICAST") {
                        !addr.is_broadcast() && !addr.is_multicast()
                    } else {
                        return Err(opt_text(a));
                    }
                }
                "--mark" => {
                    let (v, m) = value_mask(val).ok_or_else(|| opt_text(a))?;
                    (p.mark & m) == v
                }
                "--state" | "--ctstate" => {
                    let st = if p.new { "NEW" } else { "ESTABLISHED" };
                    val.split(',').any(|s| s == st)
                }
                _ => return Err(opt_text(a)),
            };
            ok &= hit != a.negated;
        }
        Ok(ok)
    }

    /// `addr` is assigned to `iface` (addrtype `--limit-iface-in`).
    fn local_on(&self, addr: Ipv4Addr, iface: Option<&str>) -> bool {
        match iface {
            Some(i) => self.local.iter().any(|(l, d)| *l == addr && d == i),
            None => self.is_local(addr),
        }
    }

    /// nat POSTROUTING of every backend; returns the source the packet leaves with.
    fn postrouting(
        &self,
        pkt: &mut Pkt,
        nat: &mut Option<NatDecision>,
        log: &mut Log,
    ) -> Option<Ipv4Addr> {
        if self.dumps.is_empty() {
            log.step(
                TracePhase::Postrouting,
                "nat POSTROUTING not evaluated (no iptables dump): source after NAT unknown",
                Vec::new(),
            );
            return None;
        }
        let before = nat.is_some();
        let mut snats: Vec<(Backend, Option<Ipv4Addr>, String)> = Vec::new();
        for d in &self.dumps {
            let mut own: Option<NatDecision> = if before { nat.clone() } else { None };
            // Each backend's own walk decides for itself; marks carry over.
            self.walk(
                d,
                "nat",
                "POSTROUTING",
                pkt,
                TracePhase::Postrouting,
                &mut own,
                log,
                0,
            );
            if !before {
                match &own {
                    Some(NatDecision::Snat { to, rule, .. }) => {
                        snats.push((d.backend, *to, rule.clone()))
                    }
                    Some(NatDecision::Masquerade { rule }) => snats.push((
                        d.backend,
                        self.masquerade_source(pkt.oif.as_deref()),
                        rule.clone(),
                    )),
                    _ => {}
                }
                if nat.is_none() {
                    *nat = own;
                }
            }
        }
        if snats.len() > 1 {
            let distinct: Vec<Option<Ipv4Addr>> = {
                let mut v: Vec<Option<Ipv4Addr>> = snats.iter().map(|s| s.1).collect();
                v.dedup();
                v
            };
            if distinct.len() > 1 {
                log.unknown(format!(
                    "both backends source-NAT this flow to different addresses ({}): which binds first depends on hook registration order",
                    snats.iter().map(|(b, a, r)| format!("{b}: {} by {r}", a.map(|a| a.to_string()).unwrap_or_else(|| "?".into()))).collect::<Vec<_>>().join("; ")
                ));
                return None;
            }
        }
        match nat {
            Some(NatDecision::Snat {
                to: Some(a),
                rule,
                random,
            }) => {
                log.step(
                    TracePhase::Postrouting,
                    format!(
                        "source after NAT: {a} (SNAT by {rule}{})",
                        random
                            .as_deref()
                            .map(|r| format!(", {r}"))
                            .unwrap_or_else(|| ", no random flag".into())
                    ),
                    Vec::new(),
                );
                Some(*a)
            }
            Some(NatDecision::Snat { to: None, rule, .. }) => {
                log.unknown(format!("{rule}: SNAT without a readable --to-source"));
                None
            }
            Some(NatDecision::Masquerade { rule }) => {
                let a = self.masquerade_source(pkt.oif.as_deref());
                log.step(
                    TracePhase::Postrouting,
                    format!(
                        "source after NAT: {} (MASQUERADE by {rule}: the primary address of {})",
                        a.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into()),
                        pkt.oif.as_deref().unwrap_or("?")
                    ),
                    Vec::new(),
                );
                a
            }
            _ => {
                log.step(
                    TracePhase::Postrouting,
                    format!("source after NAT: {} (not source-NATed)", pkt.src),
                    Vec::new(),
                );
                Some(pkt.src)
            }
        }
    }

    /// The primary address of an interface (MASQUERADE source, NodePort address).
    fn masquerade_source(&self, oif: Option<&str>) -> Option<Ipv4Addr> {
        let oif = oif?;
        self.local.iter().find(|(_, d)| d == oif).map(|(a, _)| *a)
    }

    // ---- routing -----------------------------------------------------------------------------

    fn lookup_table(&self, table: u32, dst: Ipv4Addr) -> Option<&'a Route> {
        let routes = self.routes.as_ref()?;
        routes
            .iter()
            .filter(|r| r.table == table && net_contains(&r.dst, dst))
            .filter(|r| !matches!(r.route_type.as_str(), "broadcast" | "multicast" | "anycast"))
            .max_by(|a, b| {
                a.dst
                    .prefix_len()
                    .cmp(&b.dst.prefix_len())
                    .then_with(|| b.metric.unwrap_or(0).cmp(&a.metric.unwrap_or(0)))
            })
            .copied()
    }

    /// Does an ip rule select this packet? (matches, reason)
    fn ip_rule_matches(
        &self,
        r: &IpRule,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        iif: Option<&str>,
        mark: u32,
        proto: Option<&str>,
    ) -> (bool, String) {
        let mut why = Vec::new();
        let mut ok = true;
        if r.detached {
            return (false, "its interface is detached (does not exist)".into());
        }
        if let Some(n) = &r.src {
            let m = net_contains(n, src);
            why.push(format!(
                "from {n} {} {src}",
                if m { "holds" } else { "does not hold" }
            ));
            ok &= m;
        }
        if let Some(n) = &r.dst {
            let m = net_contains(n, dst);
            why.push(format!(
                "to {n} {} {dst}",
                if m { "holds" } else { "does not hold" }
            ));
            ok &= m;
        }
        if let Some(i) = &r.iif {
            let m = iif == Some(i.as_str());
            why.push(format!(
                "iif {i} {} {}",
                if m { "is" } else { "is not" },
                iif.unwrap_or("?")
            ));
            ok &= m;
        }
        if let Some(o) = &r.oif {
            why.push(format!(
                "oif {o}: a forwarded packet has no output interface yet"
            ));
            ok = false;
        }
        if let Some(fm) = r.fwmark {
            let mask = r.fwmask.unwrap_or(u32::MAX);
            let m = (mark & mask) == fm;
            why.push(format!(
                "fwmark {}/{} {} mark {}",
                hex(fm),
                hex(mask),
                if m { "matches" } else { "does not match" },
                hex(mark)
            ));
            ok &= m;
        }
        if let Some(p) = &r.ipproto {
            let m = proto == Some(p.as_str());
            why.push(format!("ipproto {p}"));
            ok &= m;
        }
        if r.not {
            ok = !ok;
            why.push("negated (not)".into());
        }
        if why.is_empty() {
            why.push("from all".into());
        }
        (ok, why.join(", "))
    }

    /// Policy routing for one packet.
    fn route(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        iif: Option<&str>,
        mark: u32,
        phase: TracePhase,
        log: &mut Log,
    ) -> RouteOutcome {
        let mut out = RouteOutcome::default();
        let (Some(rules), Some(_)) = (&self.rules, &self.routes) else {
            log.step(
                phase,
                "policy routing not evaluated (ip rules or routes missing)",
                Vec::new(),
            );
            return out;
        };
        let mut quiet = 0usize;
        for r in rules {
            let (m, why) = self.ip_rule_matches(r, src, dst, iif, mark, None);
            let interesting = r.fwmark.is_some()
                || r.iif.is_some()
                || r.src.is_some_and(|n| net_contains(&n, src))
                || r.dst.is_some_and(|n| net_contains(&n, dst))
                || r.src.is_none() && r.dst.is_none();
            if !m {
                if interesting {
                    log.step(
                        phase,
                        format!("rule {} does not match: {why}", r.priority),
                        vec![rule_evidence(r)],
                    );
                } else {
                    quiet += 1;
                }
                continue;
            }
            if quiet > 0 {
                log.step(
                    phase,
                    format!("{quiet} rule(s) for other addresses do not match"),
                    Vec::new(),
                );
                quiet = 0;
            }
            match r.action.as_str() {
                "lookup" => {
                    let Some(table) = r.table else { continue };
                    match self.lookup_table(table, dst) {
                        None => {
                            log.step(
                                phase,
                                format!(
                                    "rule {} matches ({why}): table {} has no route to {dst}; next rule",
                                    r.priority,
                                    table_name(table)
                                ),
                                vec![rule_evidence(r)],
                            );
                        }
                        Some(rt) if rt.route_type == "throw" => {
                            log.step(
                                phase,
                                format!(
                                    "rule {}: table {} throws {dst}; next rule",
                                    r.priority,
                                    table_name(table)
                                ),
                                vec![rule_evidence(r), route_evidence(rt)],
                            );
                        }
                        Some(rt) => {
                            out.rule_priority = Some(r.priority);
                            out.table = Some(table);
                            out.route = Some(rt.to_ip_line());
                            let ev = vec![rule_evidence(r), route_evidence(rt)];
                            match rt.route_type.as_str() {
                                "unicast" => {
                                    out.egress_interface = rt.dev.clone();
                                    out.next_hop = rt.gateway.or(Some(IpAddr::V4(dst)));
                                    log.step(
                                        phase,
                                        format!(
                                            "rule {} matches ({why}) → table {}: {} → leaves {}{}",
                                            r.priority,
                                            table_name(table),
                                            rt.to_ip_line(),
                                            rt.dev.as_deref().unwrap_or("?"),
                                            rt.gateway
                                                .map(|g| format!(" via {g}"))
                                                .unwrap_or_default()
                                        ),
                                        ev,
                                    );
                                    if let Some(dev) = &rt.dev {
                                        self.link_state(dev, phase, log);
                                    }
                                }
                                "local" => {
                                    out.drop = Some("local delivery (not forwarded)".into());
                                    log.step(
                                        phase,
                                        format!(
                                            "rule {} → table {}: {dst} is local to the node",
                                            r.priority,
                                            table_name(table)
                                        ),
                                        ev,
                                    );
                                }
                                other => {
                                    out.drop = Some(other.to_string());
                                    log.step(
                                        phase,
                                        format!("rule {} matches ({why}) → table {}: {} → packet dropped ({other})", r.priority, table_name(table), rt.to_ip_line()),
                                        ev,
                                    );
                                }
                            }
                            return out;
                        }
                    }
                }
                "blackhole" | "unreachable" | "prohibit" => {
                    out.rule_priority = Some(r.priority);
                    out.drop = Some(r.action.clone());
                    log.step(
                        phase,
                        format!("rule {} matches ({why}) → {}", r.priority, r.action),
                        vec![rule_evidence(r)],
                    );
                    return out;
                }
                other => {
                    log.unknown(format!(
                        "rule {} action {other} is not modelled",
                        r.priority
                    ));
                    return out;
                }
            }
        }
        out.drop = Some("no route".into());
        log.step(
            phase,
            format!("no rule's table has a route to {dst}: unreachable"),
            Vec::new(),
        );
        out
    }

    fn link_state(&self, dev: &str, phase: TracePhase, log: &mut Log) {
        if let Some(l) = self
            .s
            .links
            .get()
            .and_then(|ls| ls.iter().find(|l| l.ifname == dev))
        {
            if !l.is_up() {
                log.findings
                    .push(format!("{dev} is down ({})", l.operstate));
                log.step(
                    phase,
                    format!("{dev} is down ({}): nothing leaves it", l.operstate),
                    vec![Evidence::new(
                        EvidenceKind::Link,
                        format!("{}: {} state {}", l.ifindex, l.ifname, l.operstate),
                    )],
                );
            }
        }
    }

    /// rp_filter on the arriving interface, then the route back to the pod. None = unknown.
    fn reply_back(
        &self,
        remote: Ipv4Addr,
        pod: Ipv4Addr,
        iif: Option<&str>,
        log: &mut Log,
    ) -> Option<bool> {
        let iif = iif?;
        let sys = self.s.sysctls.get();
        let eff = sys.and_then(|s| s.effective_rp_filter(iif));
        let ev_rp = || {
            let mut v = Vec::new();
            if let Some(s) = sys {
                for k in ["all", iif] {
                    if let Some(x) = s.rp_filter(k) {
                        v.push(Evidence::new(
                            EvidenceKind::Sysctl,
                            format!("net.ipv4.conf.{k}.rp_filter = {x}"),
                        ));
                    }
                }
            }
            v
        };
        let mut accepted = Some(true);
        match eff {
            None => {
                log.unknown(format!("rp_filter of {iif} (and/or all) not in the input: reply acceptance not evaluated"));
                accepted = None;
            }
            Some(0) => log.step(
                TracePhase::Reply,
                format!("rp_filter on {iif} is 0 (effective): no source check"),
                ev_rp(),
            ),
            Some(mode) => {
                // Reverse lookup: to the remote, from the pod, as if from lo, mark 0
                // (src_valid_mark is off by default).
                let mut sub = Log::default();
                let back = self.route(pod, remote, Some("lo"), 0, TracePhase::Reply, &mut sub);
                let strict = mode == 1;
                let ok = match (&back.egress_interface, &back.drop) {
                    (Some(o), None) => !strict || o == iif,
                    _ => false,
                };
                if back.rule_priority.is_none() && back.drop.is_none() {
                    accepted = None;
                    log.unknown("reverse-path lookup for rp_filter not evaluated (ip rules or routes missing)");
                } else {
                    let mut ev = ev_rp();
                    if let Some(rt) = &back.route {
                        ev.push(Evidence::new(EvidenceKind::Route, rt.clone()).at(format!(
                            "table {}",
                            back.table.map(table_name).unwrap_or_default()
                        )));
                    }
                    log.step(
                        TracePhase::Reply,
                        format!(
                            "rp_filter {} on {iif} (effective max(all, {iif}) = {mode}): the route back to {remote} from {pod} is rule {} table {} via {} → {}",
                            if strict { "strict" } else { "loose" },
                            back.rule_priority.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                            back.table.map(table_name).unwrap_or_else(|| "-".into()),
                            back.egress_interface.as_deref().or(back.drop.as_deref()).unwrap_or("?"),
                            if ok { "accepted" } else { "dropped" }
                        ),
                        ev,
                    );
                    if !ok {
                        log.findings.push(format!(
                            "replies from {remote} arriving on {iif} are dropped by rp_filter={mode}: the route back to {remote} from {pod} leaves {}",
                            back.egress_interface.as_deref().or(back.drop.as_deref()).unwrap_or("nowhere")
                        ));
                        accepted = Some(false);
                    }
                }
            }
        }
        // The route to the pod.
        let to_pod = self.route(remote, pod, Some(iif), 0, TracePhase::Reply, log);
        let pod_veth = self.pod_veth(IpAddr::V4(pod));
        match (&to_pod.egress_interface, &to_pod.drop) {
            (Some(o), None) if pod_veth.as_deref().is_none_or(|v| v == o) => {}
            (None, None) => accepted = accepted.and(None),
            _ => {
                log.findings.push(format!(
                    "replies to {pod} are not routed to its veth ({})",
                    to_pod
                        .egress_interface
                        .as_deref()
                        .or(to_pod.drop.as_deref())
                        .unwrap_or("?")
                ));
                accepted = Some(false);
            }
        }
        accepted
    }

    // ---- inbound -----------------------------------------------------------------------------

    fn inbound(
        &self,
        req: &TraceRequest,
        src: Ipv4Addr,
        pod: Ipv4Addr,
        t: &mut PacketTrace,
        log: &mut Log,
    ) {
        let own_eni = self.arrival_interface(pod, log);
        let iif = req.iif.clone().or(own_eni.clone());
        t.flow.iif = iif.clone();
        let veth = t.pod_veth.clone().unwrap_or_default();
        // Traffic for a pod IP reaches only the ENI that holds it; on any other ENI it was
        // addressed to the node (NodePort / instance target) and DNATed to the pod.
        let via_node = iif.is_some() && iif != own_eni;
        let arrival_dst = if via_node {
            iif.as_deref()
                .and_then(|i| self.masquerade_source(Some(i)))
                .unwrap_or(pod)
        } else {
            pod
        };
        log.step(
            TracePhase::Ingress,
            if via_node {
                format!(
                    "inbound {src} → {pod} on {}: {pod} is not held by that ENI, so the packet was addressed to the node ({arrival_dst}, NodePort / instance target) and DNATed to the pod by kube-proxy",
                    iif.as_deref().unwrap_or("?")
                )
            } else {
                format!(
                    "inbound {src} → {pod} arrives on {} (the ENI holding {pod}: IP target), for pod veth {veth}",
                    iif.as_deref().unwrap_or("an unknown interface")
                )
            },
            self.pod_route_evidence(IpAddr::V4(pod)),
        );
        let mut pkt = Pkt {
            src,
            dst: arrival_dst,
            iif: iif.clone(),
            oif: None,
            proto: req.proto.clone(),
            dport: req.dport,
            new: true,
            mark: req.mark.unwrap_or(0),
            ctmark: 0,
        };
        if !self.dumps.is_empty() {
            self.mangle_only(&mut pkt, TracePhase::Prerouting, log);
            log.step(
                TracePhase::Prerouting,
                format!(
                    "after mangle PREROUTING: connmark {}, packet mark {}",
                    hex(pkt.ctmark),
                    hex(pkt.mark)
                ),
                Vec::new(),
            );
        }
        t.mark = (!self.dumps.is_empty()).then_some(pkt.mark);
        let accepted = self.reply_back(src, pod, iif.as_deref(), log);
        let into = self.route(src, pod, iif.as_deref(), pkt.mark, TracePhase::Routing, log);
        t.route = into;
        // The pod's reply: from its veth, an established packet (no nat chains); the connmark
        // restore gives it the mark M1 set.
        let mut reply = Pkt {
            src: pod,
            dst: src,
            iif: Some(veth.clone()),
            oif: None,
            proto: req.proto.clone(),
            dport: None,
            new: false,
            mark: 0,
            ctmark: pkt.ctmark,
        };
        if !self.dumps.is_empty() {
            self.mangle_only(&mut reply, TracePhase::Reply, log);
        }
        let back = self.route(pod, src, Some(&veth), reply.mark, TracePhase::Reply, log);
        let reply_src = if via_node { arrival_dst } else { pod };
        t.source_after_nat = Some(IpAddr::V4(reply_src));
        t.reply_interface = back.egress_interface.clone();
        let symmetric = back.egress_interface.is_some() && back.egress_interface == iif;
        if back.egress_interface.is_some() && !symmetric {
            log.findings.push(format!(
                "the pod's reply leaves {} but the request came in on {}: asymmetric (the VPC drops it or the client ignores it)",
                back.egress_interface.as_deref().unwrap_or("?"),
                iif.as_deref().unwrap_or("?")
            ));
        }
        t.reply_accepted = match (accepted, back.egress_interface.is_some()) {
            (Some(false), _) => Some(false),
            (_, true) if !symmetric => Some(false),
            (Some(true), true) => Some(true),
            _ => None,
        };
    }

    // ---- observed ----------------------------------------------------------------------------

    fn observe(&self, t: &mut PacketTrace, log: &mut Log) {
        let Some(ct) = self.s.conntrack.get() else {
            log.step(
                TracePhase::Observed,
                "no conntrack data: the prediction is not compared with the kernel",
                Vec::new(),
            );
            return;
        };
        let proto_ok = |p: &str| p == t.flow.proto || (t.flow.proto == "icmp" && p == "icmp");
        let predicted = match t.flow.direction {
            TraceDirection::Egress => t.source_after_nat,
            TraceDirection::Inbound => Some(t.flow.src),
        };
        let matching: Vec<&ConntrackEntry> = ct
            .sample
            .iter()
            .filter(|e| e.original.src == t.flow.src && e.original.dst == t.flow.dst)
            .filter(|e| proto_ok(&e.protocol))
            .filter(|e| t.flow.dport.is_none() || e.original.dport == t.flow.dport)
            .collect();
        let mut observed: Vec<ObservedFlow> = matching
            .iter()
            .map(|e| ObservedFlow {
                line: e.to_line(),
                reply_dst: e.reply.dst,
                matches_prediction: predicted.map(|p| p == e.reply.dst),
                flows: 1,
            })
            .collect();
        if observed.is_empty() {
            observed = ct
                .summary
                .pairs
                .iter()
                .filter(|p| p.src == t.flow.src && p.dst == t.flow.dst && proto_ok(&p.protocol))
                .map(|p| {
                    let reply_dst = p.nat_source.unwrap_or(p.src);
                    ObservedFlow {
                        line: p.example.clone(),
                        reply_dst,
                        matches_prediction: predicted.map(|x| x == reply_dst),
                        flows: p.flows,
                    }
                })
                .collect();
        }
        if observed.is_empty() {
            log.step(
                TracePhase::Observed,
                format!(
                    "conntrack holds no {} flow {} → {}",
                    t.flow.proto, t.flow.src, t.flow.dst
                ),
                Vec::new(),
            );
        }
        for o in &observed {
            let ev =
                vec![Evidence::new(EvidenceKind::Conntrack, o.line.clone()).at(ct.source.clone())];
            match o.matches_prediction {
                Some(true) => log.step(
                    TracePhase::Observed,
                    format!("conntrack: replies go to {} as predicted", o.reply_dst),
                    ev,
                ),
                Some(false) => {
                    log.step(
                        TracePhase::Observed,
                        format!(
                            "conntrack: replies go to {} but the trace predicts {}",
                            o.reply_dst,
                            predicted.map(|p| p.to_string()).unwrap_or_default()
                        ),
                        ev,
                    );
                    log.findings.push(format!(
                        "observed ≠ predicted: conntrack shows {} flow(s) {} → {} answered at {}, the trace predicts {}",
                        o.flows,
                        t.flow.src,
                        t.flow.dst,
                        o.reply_dst,
                        predicted.map(|p| p.to_string()).unwrap_or_default()
                    ));
                }
                None => log.step(
                    TracePhase::Observed,
                    format!("conntrack: replies go to {}", o.reply_dst),
                    ev,
                ),
            }
        }
        t.observed = observed;
    }
}

fn reason(r: Option<&str>) -> String {
    r.map(|r| format!(": {r}")).unwrap_or_default()
}

fn opt_text(a: &IptArg) -> String {
    format!(
        "{}{} {}",
        if a.negated { "! " } else { "" },
        a.option,
        a.values.join(" ")
    )
    .trim()
    .to_string()
}

fn port_in(spec: &str, port: u16) -> bool {
    match spec.split_once(':') {
        Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&port),
            _ => false,
        },
        None => spec.parse::<u16>() == Ok(port),
    }
}

/// `--to-source 10.0.0.1[-10.0.0.2][:port]` → the first address.
fn to_source(r: &IptRule) -> Option<Ipv4Addr> {
    let v = r.target_arg("--to-source")?.values.first()?;
    let first = v.split(['-', ':']).next()?;
    first.parse().ok()
}

fn random_flag(r: &IptRule) -> Option<String> {
    if r.has_target_option("--random-fully") {
        Some("--random-fully".into())
    } else if r.has_target_option("--random") {
        Some("--random".into())
    } else {
        None
    }
}

/// The one-line verdict.
fn verdict(t: &PacketTrace) -> String {
    let dst = match t.flow.dport {
        Some(p) => format!("{}:{p}", t.flow.dst),
        None => t.flow.dst.to_string(),
    };
    let head = match t.flow.direction {
        TraceDirection::Egress => format!("{} → {dst}", t.flow.src),
        TraceDirection::Inbound => format!(
            "inbound {} → {dst} (on {})",
            t.flow.src,
            t.flow.iif.as_deref().unwrap_or("?")
        ),
    };
    let body = match t.flow.direction {
        TraceDirection::Egress => outcome(t),
        TraceDirection::Inbound => {
            let into = match (&t.route.drop, &t.route.egress_interface) {
                (Some(d), _) => format!("dropped: {d}"),
                (None, Some(i)) => format!("delivered to {i}"),
                _ => "delivery unknown".into(),
            };
            let reply = match (&t.reply_interface, t.reply_accepted) {
                (Some(i), Some(true)) => format!("the pod's reply leaves {i}: symmetric"),
                (Some(i), Some(false)) => format!("the pod's reply leaves {i}: broken"),
                (Some(i), None) => format!("the pod's reply leaves {i}"),
                (None, _) => "reply path unknown".into(),
            };
            format!("{into}; {reply}")
        }
    };
    let mut s = format!("{head} {body}");
    if t.findings
        .iter()
        .any(|f| f.starts_with("observed ≠ predicted"))
    {
        s.push_str(" [conntrack disagrees]");
    }
    if !t.unknowns.is_empty() {
        s.push_str(&format!(" ({} input(s) unknown)", t.unknowns.len()));
    }
    s
}
