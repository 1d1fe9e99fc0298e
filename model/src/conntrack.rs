//! Conntrack: per-CPU statistics, table size, a streaming summary and a bounded sample.
//!
//! The table on a busy node holds hundreds of thousands of entries. Producers stream entries
//! through [`SummaryBuilder`], which keeps bounded aggregates and the first `sample_limit`
//! entries, so memory does not grow with the table.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::net::Family;

/// Most distinct (src, dst, nat-source) pairs kept in the summary.
pub const PAIR_LIMIT: usize = 4096;
/// Most distinct addresses kept per address aggregate.
pub const ADDR_LIMIT: usize = 4096;
/// How many entries of each aggregate are reported (highest counts first).
pub const TOP_N: usize = 100;

/// The conntrack section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ConntrackSection {
    /// Where the entries came from: `netlink`, `/proc/net/nf_conntrack`, `conntrack -L`, a file.
    #[serde(default)]
    pub source: String,
    /// `nf_conntrack_count` (or the number of entries read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `nf_conntrack_max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Per-CPU statistics (`conntrack -S`, `/proc/net/stat/nf_conntrack`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<ConntrackStats>,
    /// Sum of the per-CPU counters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub totals: BTreeMap<String, u64>,
    #[serde(default)]
    pub summary: ConntrackSummary,
    /// The first `sample_limit` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<ConntrackEntry>,
    #[serde(default)]
    pub sample_limit: u32,
}

/// Counters of one CPU (`cpu=0 found=0 invalid=2 insert=0 insert_failed=0 drop=0 ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ConntrackStats {
    /// Absent for the old aggregated `conntrack -S` format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    pub counters: BTreeMap<String, u64>,
}

impl ConntrackStats {
    pub fn get(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }
}

/// One direction of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One conntrack entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConntrackEntry {
    pub family: Family,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, or the number.
    pub protocol: String,
    #[serde(default)]
    pub protonum: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// TCP state (`ESTABLISHED`, `TIME_WAIT`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub original: Tuple,
    pub reply: Tuple,
    /// `ASSURED`, `UNREPLIED`, `SEEN_REPLY`, `SRC_NAT`, `DST_NAT`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<u16>,
}

impl ConntrackEntry {
    /// Source NAT happened: the reply goes to something other than the original source.
    pub fn is_snat(&self) -> bool {
        self.reply.dst != self.original.src
    }

    /// Destination NAT happened: the reply comes from something other than the original dst.
    pub fn is_dnat(&self) -> bool {
        self.reply.src != self.original.dst
    }

    /// The address the flow was source-NATed to, if any.
    pub fn nat_source(&self) -> Option<IpAddr> {
        (self.reply.dst != self.original.src).then_some(self.reply.dst)
    }

    /// One line in `conntrack -L` style, for evidence.
    pub fn to_line(&self) -> String {
        fn tuple(t: &Tuple) -> String {
            let mut s = format!("src={} dst={}", t.src, t.dst);
            if let (Some(sp), Some(dp)) = (t.sport, t.dport) {
                s.push_str(&format!(" sport={sp} dport={dp}"));
            }
            if let Some(ty) = t.icmp_type {
                s.push_str(&format!(
                    " type={ty} code={} id={}",
                    t.icmp_code.unwrap_or(0),
                    t.icmp_id.unwrap_or(0)
                ));
            }
            if let (Some(p), Some(b)) = (t.packets, t.bytes) {
                s.push_str(&format!(" packets={p} bytes={b}"));
            }
            s
        }
        let mut s = format!("{} {}", self.protocol, self.protonum);
        if let Some(t) = self.timeout {
            s.push_str(&format!(" {t}"));
        }
        if let Some(st) = &self.state {
            s.push_str(&format!(" {st}"));
        }
        s.push(' ');
        s.push_str(&tuple(&self.original));
        if self.status.iter().any(|f| f == "UNREPLIED") {
            s.push_str(" [UNREPLIED]");
        }
        s.push(' ');
        s.push_str(&tuple(&self.reply));
        if self.status.iter().any(|f| f == "ASSURED") {
            s.push_str(" [ASSURED]");
        }
        if let Some(m) = self.mark {
            s.push_str(&format!(" mark={m}"));
        }
        if let Some(z) = self.zone {
            s.push_str(&format!(" zone={z}"));
        }
        s
    }
}

/// Flows per address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddrCount {
    pub addr: IpAddr,
    pub flows: u64,
    /// Of those, source-NATed.
    #[serde(default)]
    pub snat: u64,
}

/// Flows aggregated by (original src, original dst, NAT source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FlowPair {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Address the flow was source-NATed to; absent when not source-NATed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_source: Option<IpAddr>,
    pub protocol: String,
    pub flows: u64,
    /// One representative entry, as a `conntrack -L` line.
    #[serde(default)]
    pub example: String,
}

/// Bounded aggregates over all entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ConntrackSummary {
    /// Entries seen.
    pub total: u64,
    #[serde(default)]
    pub by_protocol: BTreeMap<String, u64>,
    /// TCP state (or `-` for protocols without one).
    #[serde(default)]
    pub by_state: BTreeMap<String, u64>,
    #[serde(default)]
    pub snat: u64,
    #[serde(default)]
    pub dnat: u64,
    #[serde(default)]
    pub unreplied: u64,
    /// Top sources by flow count.
    #[serde(default)]
    pub by_source: Vec<AddrCount>,
    /// Top destinations by flow count.
    #[serde(default)]
    pub by_destination: Vec<AddrCount>,
    /// (src, dst, nat source) aggregates, highest counts first.
    #[serde(default)]
    pub pairs: Vec<FlowPair>,
    /// Distinct pairs not kept because [`PAIR_LIMIT`] was reached.
    #[serde(default)]
    pub pairs_dropped: u64,
}

/// (original src, original dst, NAT source, protocol).
type PairKey = (IpAddr, IpAddr, Option<IpAddr>, String);

/// Streams entries into a [`ConntrackSummary`] plus a bounded sample.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    sample_limit: usize,
    summary: ConntrackSummary,
    sample: Vec<ConntrackEntry>,
    sources: HashMap<IpAddr, (u64, u64)>,
    destinations: HashMap<IpAddr, (u64, u64)>,
    pairs: HashMap<PairKey, (u64, String)>,
}

impl SummaryBuilder {
    pub fn new(sample_limit: usize) -> Self {
        SummaryBuilder {
            sample_limit,
            ..Default::default()
        }
    }

    pub fn push(&mut self, e: ConntrackEntry) {
        let s = &mut self.summary;
        s.total += 1;
        count(&mut s.by_protocol, &e.protocol);
        count(&mut s.by_state, e.state.as_deref().unwrap_or("-"));
        let nat_source = e.nat_source();
        let snat = nat_source.is_some();
        if snat {
            s.snat += 1;
        }
        if e.is_dnat() {
            s.dnat += 1;
        }
        if e.status.iter().any(|f| f == "UNREPLIED") {
            s.unreplied += 1;
        }
        bump(&mut self.sources, e.original.src, snat);
        bump(&mut self.destinations, e.original.dst, snat);
        let key = (
            e.original.src,
            e.original.dst,
            nat_source,
            e.protocol.clone(),
        );
        if let Some(v) = self.pairs.get_mut(&key) {
            v.0 += 1;
        } else if self.pairs.len() < PAIR_LIMIT {
            self.pairs.insert(key, (1, e.to_line()));
        } else {
            s.pairs_dropped += 1;
        }
        if self.sample.len() < self.sample_limit {
            self.sample.push(e);
        }
    }

    /// The summary and the sample.
    pub fn finish(mut self) -> (ConntrackSummary, Vec<ConntrackEntry>) {
        self.summary.by_source = top(self.sources);
        self.summary.by_destination = top(self.destinations);
        let mut pairs: Vec<FlowPair> = self
            .pairs
            .into_iter()
            .map(
                |((src, dst, nat_source, protocol), (flows, example))| FlowPair {
                    src,
                    dst,
                    nat_source,
                    protocol,
                    flows,
                    example,
                },
            )
            .collect();
        pairs.sort_by(|a, b| {
            b.flows
                .cmp(&a.flows)
                .then(a.src.cmp(&b.src))
                .then(a.dst.cmp(&b.dst))
                .then(a.protocol.cmp(&b.protocol))
        });
        self.summary.pairs = pairs;
        (self.summary, self.sample)
    }
}

/// One more of `key`; the key is copied only the first time it is seen (this runs per entry).
fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn bump(map: &mut HashMap<IpAddr, (u64, u64)>, addr: IpAddr, snat: bool) {
    if let Some(v) = map.get_mut(&addr) {
        v.0 += 1;
        v.1 += u64::from(snat);
    } else if map.len() < ADDR_LIMIT {
        map.insert(addr, (1, u64::from(snat)));
    }
}

fn top(map: HashMap<IpAddr, (u64, u64)>) -> Vec<AddrCount> {
    let mut v: Vec<AddrCount> = map
        .into_iter()
        .map(|(addr, (flows, snat))| AddrCount { addr, flows, snat })
        .collect();
    v.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.addr.cmp(&b.addr)));
    v.truncate(TOP_N);
    v
}

/// Sum per-CPU counters.
pub fn sum_stats(stats: &[ConntrackStats]) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for s in stats {
        for (k, v) in &s.counters {
            let e: &mut u64 = totals.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(src: &str, dst: &str, rdst: &str) -> ConntrackEntry {
        ConntrackEntry {
            family: Family::Inet,
            protocol: "tcp".into(),
            protonum: 6,
            timeout: Some(10),
            state: Some("ESTABLISHED".into()),
            original: Tuple {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport: Some(1000),
                dport: Some(80),
                icmp_type: None,
                icmp_code: None,
                icmp_id: None,
                packets: None,
                bytes: None,
            },
            reply: Tuple {
                src: dst.parse().unwrap(),
                dst: rdst.parse().unwrap(),
                sport: Some(80),
                dport: Some(1000),
                icmp_type: None,
                icmp_code: None,
                icmp_id: None,
                packets: None,
                bytes: None,
            },
            status: vec!["ASSURED".into()],
            mark: None,
            zone: None,
        }
    }

    #[test]
    fn summary_counts_snat_and_pairs() {
        let mut b = SummaryBuilder::new(1);
        b.push(entry("10.0.1.5", "8.8.8.8", "10.0.0.10"));
        b.push(entry("10.0.1.5", "8.8.8.8", "10.0.0.10"));
        b.push(entry("10.0.1.5", "10.0.2.2", "10.0.1.5"));
        let (s, sample) = b.finish();
        assert_eq!(s.total, 3);
        assert_eq!(s.snat, 2);
        assert_eq!(sample.len(), 1);
        assert_eq!(s.pairs[0].flows, 2);
        assert_eq!(s.pairs[0].nat_source, Some("10.0.0.10".parse().unwrap()));
        assert_eq!(s.pairs[1].nat_source, None);
        assert_eq!(s.by_source[0].flows, 3);
        assert_eq!(s.by_source[0].snat, 2);
    }
}
