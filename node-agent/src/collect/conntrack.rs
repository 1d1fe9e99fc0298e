//! Conntrack: table size, per-CPU statistics, and a streamed summary of every entry.
//!
//! Entries: a NETLINK_NETFILTER dump (explicit SRC_NAT/DST_NAT status bits), else
//! `/proc/net/nf_conntrack`, else `conntrack -L -o extended`. Every entry is pushed into a
//! [`SummaryBuilder`] as it is decoded, so memory stays bounded on a table of 100k+ entries.
//! Statistics: `/proc/net/stat/nf_conntrack`, else `conntrack -S`. Size:
//! `/proc/sys/net/netfilter/nf_conntrack_{count,max}`.
//!
//! Read-only care: when nf_conntrack is not loaded at all the section is `unavailable` and
//! no netlink request is made (a ctnetlink request would make the kernel load nf_conntrack
//! and start tracking every flow). When nf_conntrack is a module but nf_conntrack_netlink is
//! not loaded, the netlink dump is skipped for the same reason and /proc is read instead.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;

use model::conntrack::sum_stats;
use model::{
    ConntrackEntry, ConntrackSection, ConntrackStats, Family, Section, SummaryBuilder, Tuple,
};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo, ProtoInfoTCP, ProtoTuple,
    Tuple as NfTuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{
    protocols::NETLINK_NETFILTER, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
};

use super::Deadline;
use crate::exec;

const PROC_TABLE: &str = "/proc/net/nf_conntrack";
const PROC_STATS: &str = "/proc/net/stat/nf_conntrack";
const SYS_COUNT: &str = "/proc/sys/net/netfilter/nf_conntrack_count";
const SYS_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

pub async fn collect(sample_limit: usize, deadline: Deadline) -> Section<ConntrackSection> {
    let loaded = Path::new(SYS_MAX).exists() || Path::new(PROC_TABLE).exists();
    if !loaded {
        return Section::unavailable(format!(
            "nf_conntrack is not loaded (no {SYS_MAX}); nothing is tracked here"
        ));
    }
    let mut warnings = Vec::new();
    let mut section = ConntrackSection {
        sample_limit: sample_limit as u32,
        count: read_u64(SYS_COUNT, &mut warnings),
        max: read_u64(SYS_MAX, &mut warnings),
        ..Default::default()
    };
    let mut sources = Vec::new();
    if section.count.is_some() || section.max.is_some() {
        sources.push("/proc/sys/net/netfilter".to_string());
    }

    // Entries.
    let mut entries_ok = false;
    let mut entry_errors = Vec::new();
    let mut attempts: Vec<&str> = Vec::new();
    if netlink_allowed() {
        attempts.push("netlink");
    } else {
        warnings.push(
            "netlink dump skipped: nf_conntrack_netlink is not loaded and would be auto-loaded"
                .to_string(),
        );
    }
    attempts.push(PROC_TABLE);
    attempts.push("conntrack -L -o extended");
    for source in attempts {
        if deadline.expired() {
            entry_errors.push(format!("{source}: no time left"));
            break;
        }
        let builder = SummaryBuilder::new(sample_limit);
        let r = match source {
            "netlink" => {
                match tokio::time::timeout(deadline.remaining(), netlink_dump(builder)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "netlink dump timed out after {}",
                        crate::duration::format(deadline.remaining())
                    )),
                }
            }
            PROC_TABLE => read_proc_table(builder, deadline).await,
            _ => conntrack_tool(builder, deadline).await,
        };
        match r {
            Ok((builder, w)) => {
                warnings.extend(w);
                let (summary, sample) = builder.finish();
                section.summary = summary;
                section.sample = sample;
                section.source = source.to_string();
                sources.push(source.to_string());
                entries_ok = true;
                break;
            }
            Err(e) => entry_errors.push(e),
        }
    }
    if entries_ok {
        // Earlier sources that failed are worth a warning, not a status change.
        warnings.append(&mut entry_errors);
    }

    // Statistics.
    let stats = read_stats(deadline).await;
    let stats_ok = match stats {
        Ok((st, src, w)) => {
            section.totals = sum_stats(&st);
            section.stats = st;
            sources.push(src);
            warnings.extend(w);
            true
        }
        Err(e) => {
            warnings.push(e);
            false
        }
    };
    if section.count.is_none() && entries_ok {
        section.count = Some(section.summary.total);
    }

    let mut s = match (entries_ok, stats_ok) {
        (true, true) => Section::ok(section),
        (true, false) => Section::partial(section, "conntrack statistics unavailable"),
        (false, _) => {
            let reason = format!("no conntrack entries: {}", entry_errors.join("; "));
            if stats_ok || section.count.is_some() {
                Section::partial(section, reason)
            } else {
                Section::failed(reason)
            }
        }
    };
    for src in sources {
        s = s.with_source(src);
    }
    s.with_warnings(warnings)
}

fn read_u64(path: &str, warnings: &mut Vec<String>) -> Option<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => match s.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                warnings.push(format!("{path}: not a number: `{}`", s.trim()));
                None
            }
        },
        Err(e) => {
            warnings.push(format!("cannot read {path}: {e}"));
            None
        }
    }
}

/// False when a ctnetlink request would load a module: nf_conntrack is modular (listed in
/// /proc/modules) and nf_conntrack_netlink is not loaded.
fn netlink_allowed() -> bool {
    let Ok(modules) = std::fs::read_to_string("/proc/modules") else {
        // No /proc/modules: a kernel without loadable modules; everything is built in.
        return true;
    };
    let loaded = |name: &str| modules.lines().any(|l| l.split(' ').next() == Some(name));
    !loaded("nf_conntrack") || loaded("nf_conntrack_netlink")
}

/// Dump the table over NETLINK_NETFILTER into `builder`.
async fn netlink_dump(
    mut builder: SummaryBuilder,
) -> Result<(SummaryBuilder, Vec<String>), String> {
    let mut socket = TokioSocket::new(NETLINK_NETFILTER)
        .map_err(|e| format!("netlink: cannot open a NETLINK_NETFILTER socket: {e}"))?;
    socket
        .socket_mut()
        .bind_auto()
        .map_err(|e| format!("netlink: bind: {e}"))?;
    socket
        .socket_ref()
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink: connect: {e}"))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
            ConntrackMessage::Get(vec![]),
        )),
    );
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket
        .send(&buf)
        .await
        .map_err(|e| format!("netlink: send: {e}"))?;

    let mut warnings = Vec::new();
    let mut undecodable = 0u64;
    loop {
        let (data, _) = socket
            .recv_from_full()
            .await
            .map_err(|e| format!("netlink: recv: {e}"))?;
        if data.is_empty() {
            return Err("netlink: socket closed before the end of the dump".to_string());
        }
        let mut off = 0usize;
        while off + 16 <= data.len() {
            let len = u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            if len < 16 || off + len > data.len() {
                return Err(format!(
                    "netlink: malformed message length {len} at offset {off}"
                ));
            }
            let chunk = &data[off..off + len];
            off += (len + 3) & !3;
            match NetlinkMessage::<NetfilterMessage>::deserialize(chunk) {
                Ok(msg) => match msg.payload {
                    NetlinkPayload::Done(_) => {
                        if undecodable > 0 {
                            warnings.push(format!(
                                "{undecodable} netlink conntrack messages could not be decoded"
                            ));
                        }
                        return Ok((builder, warnings));
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(format!("netlink: conntrack dump refused: {}", e.to_io()));
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        let family = match m.header.family {
                            NetfilterProtoFamily::IPv4 => Family::Inet,
                            NetfilterProtoFamily::IPv6 => Family::Inet6,
                            _ => continue,
                        };
                        if let NetfilterMessageInner::Conntrack(
                            ConntrackMessage::New(attrs) | ConntrackMessage::Get(attrs),
                        ) = &m.inner
                        {
                            match entry_from_attrs(family, attrs) {
                                Some(e) => builder.push(e),
                                None => undecodable += 1,
                            }
                        }
                    }
                    _ => {}
                },
                Err(_) => undecodable += 1,
            }
        }
    }
}

/// Value bytes of an attribute the crate leaves undecoded.
fn nla_value(nla: &netlink_packet_core::DefaultNla) -> Vec<u8> {
    let mut v = vec![0u8; nla.value_len()];
    nla.emit_value(&mut v);
    v
}

/// Iterate (kind, value) over a nested attribute payload.
fn nested(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((kind, &data[4..len]));
        let adv = ((len + 3) & !3).min(data.len());
        data = &data[adv..];
    }
    out
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ZONE: u16 = 18;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;

struct PartialTuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
    t: Tuple,
}

fn tuple_from(parts: &[NfTuple]) -> PartialTuple {
    let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let mut pt = PartialTuple {
        src: None,
        dst: None,
        proto: None,
        t: Tuple {
            src: unspecified,
            dst: unspecified,
            sport: None,
            dport: None,
            icmp_type: None,
            icmp_code: None,
            icmp_id: None,
            packets: None,
            bytes: None,
        },
    };
    for p in parts {
        match p {
            NfTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => pt.src = Some(*a),
                        IPTuple::DestinationAddress(a) => pt.dst = Some(*a),
                        _ => {}
                    }
                }
            }
            NfTuple::Proto(protos) => {
                for pr in protos {
                    match pr {
                        ProtoTuple::Protocol(p) => pt.proto = Some(u8::from(*p)),
                        ProtoTuple::SourcePort(p) => pt.t.sport = Some(*p),
                        ProtoTuple::DestinationPort(p) => pt.t.dport = Some(*p),
                        ProtoTuple::Other(nla) => {
                            let v = nla_value(nla);
                            match nla.kind() & 0x3fff {
                                CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID if v.len() >= 2 => {
                                    pt.t.icmp_id = Some(u16::from_be_bytes([v[0], v[1]]))
                                }
                                CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE if !v.is_empty() => {
                                    pt.t.icmp_type = Some(v[0])
                                }
                                CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE if !v.is_empty() => {
                                    pt.t.icmp_code = Some(v[0])
                                }
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    pt
}

/// Names of the IPS_* status bits, plus `UNREPLIED` (no SEEN_REPLY) as the text formats show.
pub fn status_names(bits: u32) -> Vec<String> {
    const NAMES: &[(u32, &str)] = &[
        (1, "EXPECTED"),
        (1 << 1, "SEEN_REPLY"),
        (1 << 2, "ASSURED"),
        (1 << 3, "CONFIRMED"),
        (1 << 4, "SRC_NAT"),
        (1 << 5, "DST_NAT"),
        (1 << 6, "SEQ_ADJUST"),
        (1 << 7, "SRC_NAT_DONE"),
        (1 << 8, "DST_NAT_DONE"),
        (1 << 9, "DYING"),
        (1 << 10, "FIXED_TIMEOUT"),
        (1 << 11, "TEMPLATE"),
        (1 << 12, "UNTRACKED"),
        (1 << 13, "HELPER"),
        (1 << 14, "OFFLOAD"),
    ];
    let mut out: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    if bits & (1 << 1) == 0 {
        out.push("UNREPLIED".to_string());
    }
    out
}

/// TCP conntrack states as conntrack-tools prints them.
pub fn tcp_state_name(s: u8) -> String {
    const NAMES: &[&str] = &[
        "NONE",
        "SYN_SENT",
        "SYN_RECV",
        "ESTABLISHED",
        "FIN_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
        "TIME_WAIT",
        "CLOSE",
        "SYN_SENT2",
    ];
    NAMES
        .get(usize::from(s))
        .map(|n| n.to_string())
        .unwrap_or_else(|| s.to_string())
}

pub fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        47 => "gre",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        n => return n.to_string(),
    }
    .to_string()
}

/// One decoded entry; `None` when the tuples are incomplete.
pub fn entry_from_attrs(family: Family, attrs: &[ConntrackAttribute]) -> Option<ConntrackEntry> {
    let mut orig = None;
    let mut reply = None;
    let mut status = None;
    let mut timeout = None;
    let mut mark = None;
    let mut zone = None;
    let mut state = None;
    let mut counters: [(Option<u64>, Option<u64>); 2] = [(None, None), (None, None)];
    for a in attrs {
        match a {
            ConntrackAttribute::CtaTupleOrig(t) => orig = Some(tuple_from(t)),
            ConntrackAttribute::CtaTupleReply(t) => reply = Some(tuple_from(t)),
            ConntrackAttribute::CtaStatus(s) => status = Some(s.bits()),
            ConntrackAttribute::CtaTimeout(t) => timeout = Some(*t),
            ConntrackAttribute::CtaMark(m) => mark = Some(*m),
            ConntrackAttribute::CtaProtoInfo(infos) => {
                for i in infos {
                    if let ProtoInfo::TCP(tcp) = i {
                        for t in tcp {
                            if let ProtoInfoTCP::State(s) = t {
                                state = Some(tcp_state_name(*s));
                            }
                        }
                    }
                }
            }
            ConntrackAttribute::Other(nla) => {
                let v = nla_value(nla);
                match nla.kind() & 0x3fff {
                    k @ (CTA_COUNTERS_ORIG | CTA_COUNTERS_REPLY) => {
                        let idx = usize::from(k == CTA_COUNTERS_REPLY);
                        for (kind, val) in nested(&v) {
                            match kind {
                                CTA_COUNTERS_PACKETS => counters[idx].0 = be_u64(val),
                                CTA_COUNTERS_BYTES => counters[idx].1 = be_u64(val),
                                _ => {}
                            }
                        }
                    }
                    CTA_ZONE if v.len() >= 2 => zone = Some(u16::from_be_bytes([v[0], v[1]])),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let (orig, reply) = (orig?, reply?);
    let protonum = orig.proto?;
    let mut o = orig.t;
    o.src = orig.src?;
    o.dst = orig.dst?;
    (o.packets, o.bytes) = counters[0];
    let mut r = reply.t;
    r.src = reply.src?;
    r.dst = reply.dst?;
    (r.packets, r.bytes) = counters[1];
    Some(ConntrackEntry {
        family,
        protocol: protocol_name(protonum),
        protonum,
        timeout,
        state,
        original: o,
        reply: r,
        status: status.map(status_names).unwrap_or_default(),
        mark,
        // /proc prints zone=0 always; keep only non-default zones.
        zone: zone.filter(|z| *z != 0),
    })
}

/// Stream `/proc/net/nf_conntrack` line by line into `builder` (a blocking read).
async fn read_proc_table(
    builder: SummaryBuilder,
    deadline: Deadline,
) -> Result<(SummaryBuilder, Vec<String>), String> {
    let task = tokio::task::spawn_blocking(move || {
        read_table_file(Path::new(PROC_TABLE), builder, deadline)
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err(format!("{PROC_TABLE}: reader task failed: {e}")),
    }
}

/// Parse a conntrack table file line by line (bounded memory), stopping at the deadline.
pub fn read_table_file(
    path: &Path,
    mut builder: SummaryBuilder,
    deadline: Deadline,
) -> Result<(SummaryBuilder, Vec<String>), String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, f);
    let mut line = String::new();
    let mut bad = 0u64;
    let mut first_bad = None;
    let mut n = 0u64;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        }
        n += 1;
        if n.is_multiple_of(4096) && deadline.expired() {
            return Err(format!("{}: timed out after {n} lines", path.display()));
        }
        match parsers::conntrack::parse_entry_line(line.trim_end()) {
            Ok(Some(e)) => builder.push(e),
            Ok(None) => {}
            Err(msg) => {
                bad += 1;
                if first_bad.is_none() {
                    first_bad = Some(format!("line {n}: {msg}"));
                }
            }
        }
    }
    let mut warnings = Vec::new();
    if bad > 0 {
        warnings.push(format!(
            "{}: {bad} lines not parsed (first: {})",
            path.display(),
            first_bad.unwrap_or_default()
        ));
    }
    Ok((builder, warnings))
}

async fn conntrack_tool(
    mut builder: SummaryBuilder,
    deadline: Deadline,
) -> Result<(SummaryBuilder, Vec<String>), String> {
    let out = exec::run("conntrack", &["-L", "-o", "extended"], deadline.remaining())
        .await
        .map_err(|e| e.to_string())?
        .check()
        .map_err(|e| e.to_string())?;
    let text = out.stdout_string();
    let warnings = parsers::conntrack::parse_into(&text, &mut builder)
        .iter()
        .map(|w| format!("conntrack -L: {w}"))
        .collect();
    Ok((builder, warnings))
}

async fn read_stats(
    deadline: Deadline,
) -> Result<(Vec<ConntrackStats>, String, Vec<String>), String> {
    let mut errors = Vec::new();
    match tokio::fs::read_to_string(PROC_STATS).await {
        Ok(text) => match parsers::conntrack::parse_stats(&text) {
            Ok(p) => {
                let w = p.warning_strings();
                return Ok((p.value, PROC_STATS.to_string(), w));
            }
            Err(e) => errors.push(format!("{PROC_STATS}: {e}")),
        },
        Err(e) => errors.push(format!("cannot read {PROC_STATS}: {e}")),
    }
    match exec::run("conntrack", &["-S"], deadline.remaining()).await {
        Ok(out) => match out.check() {
            Ok(out) => match parsers::conntrack::parse_stats(&out.stdout_string()) {
                Ok(p) => {
                    let mut w = errors;
                    w.extend(p.warning_strings());
                    return Ok((p.value, "conntrack -S".to_string(), w));
                }
                Err(e) => errors.push(format!("conntrack -S: {e}")),
            },
            Err(e) => errors.push(e.to_string()),
        },
        Err(e) => errors.push(e.to_string()),
    }
    Err(format!("conntrack statistics: {}", errors.join("; ")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use netlink_packet_core::DefaultNla;
    use netlink_packet_netfilter::conntrack::{Protocol, Status};

    fn tuple(src: &str, dst: &str, sp: u16, dp: u16) -> Vec<NfTuple> {
        vec![
            NfTuple::Ip(vec![
                IPTuple::SourceAddress(src.parse().unwrap()),
                IPTuple::DestinationAddress(dst.parse().unwrap()),
            ]),
            NfTuple::Proto(vec![
                ProtoTuple::Protocol(Protocol::Tcp),
                ProtoTuple::SourcePort(sp),
                ProtoTuple::DestinationPort(dp),
            ]),
        ]
    }

    fn counters(packets: u64, bytes: u64) -> Vec<u8> {
        let mut v = Vec::new();
        for (kind, val) in [(1u16, packets), (2u16, bytes)] {
            v.extend_from_slice(&12u16.to_ne_bytes());
            v.extend_from_slice(&kind.to_ne_bytes());
            v.extend_from_slice(&val.to_be_bytes());
        }
        v
    }

    #[test]
    fn decodes_snat_entry_with_counters_and_zone() {
        let attrs = vec![
            ConntrackAttribute::CtaTupleOrig(tuple("10.77.1.2", "10.77.2.2", 52358, 9000)),
            ConntrackAttribute::CtaTupleReply(tuple("10.77.2.2", "10.77.2.1", 9000, 52358)),
            ConntrackAttribute::CtaStatus(
                Status::SeenReply
                    | Status::Assured
                    | Status::Confirmed
                    | Status::SrcNat
                    | Status::SrcNatDone,
            ),
            ConntrackAttribute::CtaTimeout(431_997),
            ConntrackAttribute::CtaMark(0x80),
            ConntrackAttribute::CtaProtoInfo(vec![ProtoInfo::TCP(vec![ProtoInfoTCP::State(3)])]),
            ConntrackAttribute::Other(DefaultNla::new(
                CTA_COUNTERS_ORIG | 0x8000,
                counters(2, 112),
            )),
            ConntrackAttribute::Other(DefaultNla::new(
                CTA_COUNTERS_REPLY | 0x8000,
                counters(1, 60),
            )),
            ConntrackAttribute::Other(DefaultNla::new(CTA_ZONE, 5u16.to_be_bytes().to_vec())),
        ];
        let e = entry_from_attrs(Family::Inet, &attrs).unwrap();
        assert_eq!(e.protocol, "tcp");
        assert_eq!(e.protonum, 6);
        assert_eq!(e.state.as_deref(), Some("ESTABLISHED"));
        assert_eq!(e.timeout, Some(431_997));
        assert_eq!(e.mark, Some(0x80));
        assert_eq!(e.zone, Some(5));
        assert_eq!(e.original.sport, Some(52358));
        assert_eq!((e.original.packets, e.original.bytes), (Some(2), Some(112)));
        assert_eq!((e.reply.packets, e.reply.bytes), (Some(1), Some(60)));
        assert!(e.status.contains(&"SRC_NAT".to_string()));
        assert!(!e.status.contains(&"UNREPLIED".to_string()));
        assert_eq!(e.nat_source(), Some("10.77.2.1".parse().unwrap()));

        // Without a reply tuple the entry is not usable.
        assert!(entry_from_attrs(Family::Inet, &attrs[..1]).is_none());
    }

    #[test]
    fn status_and_state_names() {
        assert_eq!(status_names(0), ["UNREPLIED"]);
        assert_eq!(status_names(0b110), ["SEEN_REPLY", "ASSURED"]);
        assert_eq!(tcp_state_name(7), "TIME_WAIT");
        assert_eq!(tcp_state_name(42), "42");
        assert_eq!(protocol_name(58), "icmpv6");
    }
    #[test]
    fn proc_table_file_is_streamed_into_the_summary() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("nf_conntrack");
        let text = "\
ipv4     2 tcp      6 431997 ESTABLISHED src=10.77.1.2 dst=10.77.2.2 sport=52358 dport=9000 packets=2 bytes=112 src=10.77.2.2 dst=10.77.2.1 sport=9000 dport=52358 packets=1 bytes=60 [ASSURED] mark=0 zone=0 delta-time=2 use=2
ipv4     2 udp      17 27 src=10.77.1.2 dst=10.77.2.2 sport=58549 dport=5353 packets=1 bytes=34 [UNREPLIED] src=10.77.2.2 dst=10.77.2.1 sport=5353 dport=58549 packets=0 bytes=0 mark=0 zone=0 delta-time=2 use=2
ipv4     2 tcp      6 431997 ESTABLISHED src=10.77.1.2 dst=not-an-address sport=1 dport=2
ipv4     2 icmp     1 28 src=10.77.1.2 dst=10.77.2.2 type=8 code=0 id=24651 packets=2 bytes=168 src=10.77.2.2 dst=10.77.2.1 type=0 code=0 id=24651 packets=2 bytes=168 mark=0 zone=0 delta-time=1 use=2
";
        std::fs::write(&path, text).unwrap();
        let (b, warnings) = read_table_file(
            &path,
            SummaryBuilder::new(2),
            Deadline::after(std::time::Duration::from_secs(10)),
        )
        .unwrap();
        let (summary, sample) = b.finish();
        assert_eq!(summary.total, 3);
        assert_eq!(summary.snat, 3);
        assert_eq!(summary.unreplied, 1);
        assert_eq!(sample.len(), 2, "sample bounded by its limit");
        assert_eq!(summary.by_protocol["icmp"], 1);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("1 lines not parsed"), "{warnings:?}");
        assert!(read_table_file(
            &d.path().join("missing"),
            SummaryBuilder::new(1),
            Deadline::after(std::time::Duration::from_secs(1))
        )
        .is_err());
    }
}
