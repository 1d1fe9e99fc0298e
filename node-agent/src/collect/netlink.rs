//! Links, addresses, neighbours, routes (every table) and policy rules over NETLINK_ROUTE.
//!
//! Dumps only (RTM_GET* with NLM_F_DUMP); nothing is modified. The socket is opened in the
//! network namespace the process runs in, so `ip netns exec NS node-agent collect` collects
//! NS. Without NETLINK_GET_STRICT_CHK the kernel ignores the table in a route dump request,
//! so one dump per family returns every table, like `ip route show table all`.
//!
//! Table ids above 255 (the CNI uses 10000+ for multi-NIC, others use 100000) only come
//! through the u32 RTA_TABLE/FRA_TABLE attributes: the u8 header field says 252 ("compat").

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use model::{Address, Family, IpRule, Link, Neighbour, Route, Section};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteVia};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};

use super::{timed, Limit};

pub const SOURCE: &str = "netlink";

/// Which dumps are needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub links: bool,
    pub addresses: bool,
    pub neighbours: bool,
    pub routes: bool,
    pub rules: bool,
}

impl Wanted {
    pub fn any(&self) -> bool {
        self.links || self.addresses || self.neighbours || self.routes || self.rules
    }
}

/// The netlink-backed sections (each `skipped` unless dumped).
#[derive(Debug, Clone, Default)]
pub struct NetSections {
    pub links: Section<Vec<Link>>,
    pub addresses: Section<Vec<Address>>,
    pub neighbours: Section<Vec<Neighbour>>,
    pub routes: Section<Vec<Route>>,
    pub rules: Section<Vec<IpRule>>,
}

/// Dump what `w` asks for. Links come first: the others need ifindex → name.
pub async fn collect(w: Wanted, limit: Limit) -> NetSections {
    let mut out = NetSections::default();
    let (conn, handle, _) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("netlink: cannot open a NETLINK_ROUTE socket: {e}");
            let f = |want: bool| -> Option<String> { want.then(|| reason.clone()) };
            if let Some(r) = f(w.links) {
                out.links = Section::failed(r);
            }
            if let Some(r) = f(w.addresses) {
                out.addresses = Section::failed(r);
            }
            if let Some(r) = f(w.neighbours) {
                out.neighbours = Section::failed(r);
            }
            if let Some(r) = f(w.routes) {
                out.routes = Section::failed(r);
            }
            if let Some(r) = f(w.rules) {
                out.rules = Section::failed(r);
            }
            return out;
        }
    };
    let conn_task = tokio::spawn(conn);
    // Links first, then the rest concurrently, all within one limit.
    let start = std::time::Instant::now();

    out.links = wanted_dump(w.links, "links", limit, start, "link", || {
        dump_links(handle.clone())
    })
    .await;
    let names: HashMap<u32, String> = out
        .links
        .data
        .iter()
        .flatten()
        .map(|l| (l.ifindex, l.ifname.clone()))
        .collect();

    let addr_f = wanted_dump(w.addresses, "addresses", limit, start, "address", || {
        dump_addresses(handle.clone(), &names)
    });
    let neigh_f = wanted_dump(
        w.neighbours,
        "neighbours",
        limit,
        start,
        "neighbour",
        || dump_neighbours(handle.clone(), &names),
    );
    let route_f = wanted_dump(w.routes, "routes", limit, start, "route", || {
        dump_routes(handle.clone(), &names)
    });
    let rule_f = wanted_dump(w.rules, "rules", limit, start, "rule", || {
        dump_rules(handle.clone())
    });
    let (a, n, r, ru) = tokio::join!(addr_f, neigh_f, route_f, rule_f);
    out.addresses = a;
    out.neighbours = n;
    out.routes = r;
    out.rules = ru;
    conn_task.abort();
    out
}

/// `dump_section` within what is left of `limit` since `start`, when `want`; the default
/// (skipped) section otherwise.
async fn wanted_dump<T, F, Fut>(
    want: bool,
    name: &str,
    limit: Limit,
    start: std::time::Instant,
    what: &str,
    f: F,
) -> Section<Vec<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Dump<T>>,
{
    if want {
        timed(name, limit.left_since(start), dump_section(what, f)).await
    } else {
        Section::default()
    }
}

type Dump<T> = Result<(Vec<T>, Vec<String>), rtnetlink::Error>;

/// Attempts per dump: a dump that races with a change (a link flapping, a route being
/// replaced) can fail with "dump interrupted"; a fresh dump then usually succeeds.
const DUMP_ATTEMPTS: usize = 3;

/// Run a dump, retrying a failed one, and turn it into a section.
async fn dump_section<T, F, Fut>(what: &str, mut f: F) -> Section<Vec<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Dump<T>>,
{
    let mut errors = Vec::new();
    for _ in 0..DUMP_ATTEMPTS {
        match f().await {
            Ok((data, mut warnings)) => {
                let undecoded = warnings.len();
                if !errors.is_empty() {
                    warnings.push(format!(
                        "netlink {what} dump retried after: {}",
                        errors.join("; ")
                    ));
                }
                let s = if undecoded > 0 {
                    Section::partial(data, format!("{undecoded} entries could not be decoded"))
                } else {
                    Section::ok(data)
                };
                return s.with_source(SOURCE).with_warnings(warnings);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Section::failed(format!(
        "netlink {what} dump failed {DUMP_ATTEMPTS} times: {}",
        errors.join("; ")
    ))
    .with_source(SOURCE)
}

async fn dump_links(handle: Handle) -> Dump<Link> {
    let mut links = Vec::new();
    let mut masters: Vec<(usize, u32)> = Vec::new();
    let mut stream = handle.link().get().execute();
    loop {
        match stream.try_next().await {
            Ok(Some(msg)) => {
                let (link, master) = convert_link(&msg);
                if let Some(m) = master {
                    masters.push((links.len(), m));
                }
                links.push(link);
            }
            Ok(None) => break,
            Err(e) => return Err(e),
        }
    }
    let names: HashMap<u32, String> = links
        .iter()
        .map(|l| (l.ifindex, l.ifname.clone()))
        .collect();
    for (i, m) in masters {
        if let Some(link) = links.get_mut(i) {
            link.master = Some(names.get(&m).cloned().unwrap_or_else(|| format!("if{m}")));
        }
    }
    links.sort_by_key(|l| l.ifindex);
    Ok((links, Vec::new()))
}

/// A link and its master's ifindex.
pub(crate) fn convert_link(msg: &LinkMessage) -> (Link, Option<u32>) {
    let mut link = Link {
        ifindex: msg.header.index,
        flags: link_flag_names(msg.header.flags.bits()),
        ..Default::default()
    };
    let mut master = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.ifname = n.clone(),
            LinkAttribute::Address(a) => link.address = Some(mac(a)),
            LinkAttribute::Mtu(m) => link.mtu = Some(*m),
            LinkAttribute::OperState(s) => link.operstate = s.to_string(),
            LinkAttribute::Link(i) => link.link_index = Some(*i),
            LinkAttribute::LinkNetNsId(n) => link.link_netnsid = Some(*n),
            LinkAttribute::Controller(m) => master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (link, master)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// IFF_* names in iproute2's order (`RUNNING` is not printed by iproute2 either;
/// `NO-CARRIER` is shown for UP without RUNNING).
pub fn link_flag_names(bits: u32) -> Vec<String> {
    const NAMES: &[(u32, &str)] = &[
        (1 << 3, "LOOPBACK"),
        (1 << 1, "BROADCAST"),
        (1 << 4, "POINTOPOINT"),
        (1 << 12, "MULTICAST"),
        (1 << 7, "NOARP"),
        (1 << 9, "ALLMULTI"),
        (1 << 8, "PROMISC"),
        (1 << 5, "NOTRAILERS"),
        (1 << 2, "DEBUG"),
        (1 << 15, "DYNAMIC"),
        (1 << 14, "AUTOMEDIA"),
        (1 << 13, "PORTSEL"),
        (1 << 10, "MASTER"),
        (1 << 11, "SLAVE"),
        (1 << 0, "UP"),
        (1 << 16, "LOWER_UP"),
        (1 << 17, "DORMANT"),
        (1 << 18, "ECHO"),
    ];
    let mut out = Vec::new();
    if bits & 1 != 0 && bits & (1 << 6) == 0 {
        out.push("NO-CARRIER".to_string());
    }
    out.extend(
        NAMES
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, n)| n.to_string()),
    );
    out
}

fn ifname(names: &HashMap<u32, String>, idx: u32) -> String {
    names
        .get(&idx)
        .cloned()
        .unwrap_or_else(|| format!("if{idx}"))
}

async fn dump_addresses(handle: Handle, names: &HashMap<u32, String>) -> Dump<Address> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let stream = handle.address().get().execute();
    let convert = |msg: &AddressMessage| match convert_address(msg, names) {
        Some(a) => Ok(Some(a)),
        None if matches!(
            msg.header.family,
            AddressFamily::Inet | AddressFamily::Inet6
        ) =>
        {
            Err(format!(
                "address on ifindex {} without IFA_ADDRESS/IFA_LOCAL skipped",
                msg.header.index
            ))
        }
        None => Ok(None),
    };
    drain(stream, convert, &mut out, &mut warnings).await?;
    Ok((out, warnings))
}

pub(crate) fn convert_address(
    msg: &AddressMessage,
    names: &HashMap<u32, String>,
) -> Option<Address> {
    let family = match msg.header.family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return None,
    };
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut broadcast = None;
    let mut flags_bits = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Broadcast(b) => broadcast = Some(IpAddr::V4(*b)),
            AddressAttribute::Flags(f) => flags_bits = f.bits(),
            _ => {}
        }
    }
    let ifname = ifname(names, msg.header.index);
    Some(Address {
        ifindex: msg.header.index,
        family,
        local: local.or(address)?,
        prefixlen: msg.header.prefix_len,
        scope: scope_name(u8::from(msg.header.scope)),
        // iproute2 shows the label only when it differs from the device name.
        label: label.filter(|l| *l != ifname),
        ifname,
        broadcast,
        flags: addr_flag_names(flags_bits, family),
    })
}

/// IFA_F_* names as iproute2 prints them.
pub fn addr_flag_names(bits: u32, family: Family) -> Vec<String> {
    let mut out = Vec::new();
    let names: &[(u32, &str)] = &[
        (
            0x01,
            if family == Family::Inet6 {
                "temporary"
            } else {
                "secondary"
            },
        ),
        (0x02, "nodad"),
        (0x04, "optimistic"),
        (0x08, "dadfailed"),
        (0x10, "home"),
        (0x20, "deprecated"),
        (0x40, "tentative"),
        (0x100, "mngtmpaddr"),
        (0x200, "noprefixroute"),
        (0x400, "autojoin"),
        (0x800, "stable-privacy"),
    ];
    for (b, n) in names {
        if bits & b != 0 {
            out.push((*n).to_string());
        }
    }
    // IFA_F_PERMANENT: iproute2 prints `dynamic` for addresses that are *not* permanent.
    if bits & 0x80 == 0 {
        out.push("dynamic".to_string());
    }
    out
}

/// rt_scope names as iproute2 prints them.
pub fn scope_name(scope: u8) -> String {
    match scope {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

async fn dump_neighbours(handle: Handle, names: &HashMap<u32, String>) -> Dump<Neighbour> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let stream = handle.neighbours().get().execute();
    let convert = |msg: &NeighbourMessage| Ok(convert_neighbour(msg, names));
    drain(stream, convert, &mut out, &mut warnings).await?;
    Ok((out, warnings))
}

pub(crate) fn convert_neighbour(
    msg: &NeighbourMessage,
    names: &HashMap<u32, String>,
) -> Option<Neighbour> {
    // Like `ip neigh show`: entries that are only NOARP (multicast/broadcast mappings) or
    // NONE are not neighbours anyone configured or resolved; proxy and externally learned
    // entries are kept.
    let state = u16::from(msg.header.state);
    let flags = msg.header.flags.bits();
    const NTF_PROXY: u8 = 1 << 3;
    const NTF_EXT_LEARNED: u8 = 1 << 4;
    if state & !0x40 == 0 && flags & (NTF_PROXY | NTF_EXT_LEARNED) == 0 {
        return None;
    }
    let mut dst = None;
    let mut lladdr = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                dst = Some(IpAddr::V4(*a))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                dst = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(l) if !l.is_empty() => lladdr = Some(mac(l)),
            _ => {}
        }
    }
    Some(Neighbour {
        ifindex: msg.header.ifindex,
        dev: ifname(names, msg.header.ifindex),
        dst: dst?,
        lladdr,
        state: nud_state_names(state),
    })
}

/// NUD_* bits as iproute2 prints them.
pub fn nud_state_names(bits: u16) -> Vec<String> {
    const NAMES: &[(u16, &str)] = &[
        (0x01, "INCOMPLETE"),
        (0x02, "REACHABLE"),
        (0x04, "STALE"),
        (0x08, "DELAY"),
        (0x10, "PROBE"),
        (0x20, "FAILED"),
        (0x40, "NOARP"),
        (0x80, "PERMANENT"),
    ];
    if bits == 0 {
        return vec!["NONE".to_string()];
    }
    NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

async fn dump_routes(handle: Handle, names: &HashMap<u32, String>) -> Dump<Route> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for msg in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let stream = handle.route().get(msg).execute();
        drain(stream, |m| convert_route(m, names), &mut out, &mut warnings).await?;
    }
    Ok((out, warnings))
}

/// Read a dump to its end, keeping what `convert` decodes (`Ok(None)`: not for the model)
/// and a warning for each message it could not decode.
async fn drain<M, T, S>(
    mut stream: S,
    convert: impl Fn(&M) -> Result<Option<T>, String>,
    out: &mut Vec<T>,
    warnings: &mut Vec<String>,
) -> Result<(), rtnetlink::Error>
where
    S: futures::TryStream<Ok = M, Error = rtnetlink::Error> + Unpin,
{
    while let Some(msg) = stream.try_next().await? {
        match convert(&msg) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    Ok(())
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A route; `Ok(None)` for families the model does not cover (MPLS), `Err` for a route
/// that could not be decoded.
pub(crate) fn convert_route(
    msg: &RouteMessage,
    names: &HashMap<u32, String>,
) -> Result<Option<Route>, String> {
    let family = match msg.header.address_family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return Ok(None),
    };
    let mut table = u32::from(msg.header.table);
    let mut dst_addr = None;
    let mut gateway = None;
    let mut oif = None;
    let mut prefsrc = None;
    let mut metric = None;
    let mut multipath = None;
    let mut nhid = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst_addr = route_addr(a),
            RouteAttribute::Gateway(a) => gateway = route_addr(a),
            RouteAttribute::Via(RouteVia::Inet(a)) => gateway = Some(IpAddr::V4(*a)),
            RouteAttribute::Via(RouteVia::Inet6(a)) => gateway = Some(IpAddr::V6(*a)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::PrefSource(a) => prefsrc = route_addr(a),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops.clone()),
            RouteAttribute::NhId(id) => nhid = Some(*id),
            _ => {}
        }
    }
    let mut flags = route_flag_names(msg.header.flags.bits());
    if let Some(hops) = multipath {
        // The model has one next hop per route: keep the first, say so in the flags.
        if let Some(first) = hops.first() {
            if oif.is_none() && first.interface_index != 0 {
                oif = Some(first.interface_index);
            }
            if gateway.is_none() {
                for a in &first.attributes {
                    match a {
                        RouteAttribute::Gateway(g) => gateway = route_addr(g),
                        RouteAttribute::Via(RouteVia::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
                        RouteAttribute::Via(RouteVia::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
                        _ => {}
                    }
                }
            }
        }
        flags.push(format!("multipath:{}", hops.len()));
    }
    if let Some(id) = nhid {
        // Next hop held in a nexthop object (`ip nexthop`), not resolved here.
        flags.push(format!("nhid:{id}"));
    }
    let plen = msg.header.destination_prefix_length;
    let dst_ip = dst_addr.unwrap_or(match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let dst = IpNet::new(dst_ip, plen)
        .map_err(|_| format!("route to {dst_ip}/{plen} in table {table}: bad prefix length"))?;
    Ok(Some(Route {
        family,
        table,
        route_type: route_type_name(u8::from(msg.header.kind)),
        dst,
        gateway,
        dev: oif.map(|i| ifname(names, i)),
        oif,
        prefsrc,
        protocol: protocol_name(u8::from(msg.header.protocol)),
        scope: scope_name(u8::from(msg.header.scope)),
        metric,
        flags,
    }))
}

/// RTN_* names as iproute2 prints them.
pub fn route_type_name(t: u8) -> String {
    match t {
        0 => "none",
        1 => "unicast",
        2 => "local",
        3 => "broadcast",
        4 => "anycast",
        5 => "multicast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        9 => "throw",
        10 => "nat",
        11 => "xresolve",
        n => return n.to_string(),
    }
    .to_string()
}

/// RTPROT_* names as iproute2 prints them (`/etc/iproute2/rt_protos`).
pub fn protocol_name(p: u8) -> String {
    match p {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        n => return n.to_string(),
    }
    .to_string()
}

/// RTNH_F_* / RTM_F_* route flags as iproute2 prints them.
pub fn route_flag_names(bits: u32) -> Vec<String> {
    const NAMES: &[(u32, &str)] = &[
        (0x01, "dead"),
        (0x02, "pervasive"),
        (0x04, "onlink"),
        (0x08, "offload"),
        (0x10, "linkdown"),
        (0x20, "unresolved"),
        (0x40, "trap"),
        (0x4000, "rt_offload"),
        (0x8000, "rt_trap"),
        (0x2000_0000, "rt_offload_failed"),
    ];
    NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

async fn dump_rules(handle: Handle) -> Dump<IpRule> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for v in [IpVersion::V4, IpVersion::V6] {
        let stream = handle.rule().get(v).execute();
        drain(stream, convert_rule, &mut out, &mut warnings).await?;
    }
    Ok((out, warnings))
}

pub(crate) fn convert_rule(msg: &RuleMessage) -> Result<Option<IpRule>, String> {
    let family = match msg.header.family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return Ok(None),
    };
    let mut rule = IpRule {
        family,
        priority: 0, // FRA_PRIORITY is omitted for priority 0
        not: msg.header.flags.contains(RuleFlags::Invert),
        src: None,
        dst: None,
        iif: None,
        oif: None,
        fwmark: None,
        fwmask: None,
        ipproto: None,
        table: None,
        action: rule_action_name(msg.header.action),
        detached: msg
            .header
            .flags
            .intersects(RuleFlags::IifDetached | RuleFlags::OifDetached),
    };
    let mut table = u32::from(msg.header.table);
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Source(a) => {
                rule.src = Some(IpNet::new(*a, msg.header.src_len).map_err(|_| {
                    format!(
                        "rule with source {a}/{}: bad prefix length",
                        msg.header.src_len
                    )
                })?)
            }
            RuleAttribute::Destination(a) => {
                rule.dst = Some(IpNet::new(*a, msg.header.dst_len).map_err(|_| {
                    format!(
                        "rule with destination {a}/{}: bad prefix length",
                        msg.header.dst_len
                    )
                })?)
            }
            RuleAttribute::Iifname(n) => rule.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => rule.oif = Some(n.clone()),
            RuleAttribute::FwMark(m) => rule.fwmark = Some(*m),
            RuleAttribute::FwMask(m) => rule.fwmask = Some(*m),
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::IpProtocol(p) => rule.ipproto = Some(ip_proto_name(u8::from(*p))),
            _ => {}
        }
    }
    if table != 0 {
        rule.table = Some(table);
    }
    Ok(Some(rule))
}

fn rule_action_name(a: RuleAction) -> String {
    match u8::from(a) {
        0 => "unspec",
        1 => "lookup",
        2 => "goto",
        3 => "nop",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        n => return n.to_string(),
    }
    .to_string()
}

/// IP protocol names as `ip rule` prints them (`/etc/protocols`).
fn ip_proto_name(p: u8) -> String {
    match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "ipv6-icmp",
        132 => "sctp",
        n => return n.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn flag_names_follow_iproute2() {
        // UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
        let bits = 1 | (1 << 1) | (1 << 6) | (1 << 12) | (1 << 16);
        assert_eq!(
            link_flag_names(bits),
            ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
        );
        // UP without RUNNING → NO-CARRIER first.
        assert_eq!(link_flag_names(1), ["NO-CARRIER", "UP"]);
        assert_eq!(nud_state_names(0x80), ["PERMANENT"]);
        assert_eq!(nud_state_names(0), ["NONE"]);
        assert_eq!(nud_state_names(0x06), ["REACHABLE", "STALE"]);
        assert_eq!(addr_flag_names(0x80, Family::Inet), Vec::<String>::new());
        assert_eq!(
            addr_flag_names(0x01, Family::Inet),
            ["secondary", "dynamic"]
        );
        assert_eq!(route_flag_names(0x14), ["onlink", "linkdown"]);
        assert_eq!(mac(&[0x0a, 0, 0xff]), "0a:00:ff");
        assert_eq!(scope_name(253), "link");
        assert_eq!(protocol_name(16), "dhcp");
        assert_eq!(route_type_name(6), "blackhole");
    }
    #[test]
    fn table_id_comes_from_the_u32_attribute() {
        use rtnetlink::packet_route::route::{RouteProtocol, RouteScope, RouteType};
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = 252; // RT_TABLE_COMPAT, as the kernel sets it for ids > 255
        m.header.destination_prefix_length = 16;
        m.header.kind = RouteType::BlackHole;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.attributes = vec![
            RouteAttribute::Table(100_000),
            RouteAttribute::Destination(RouteAddress::Inet("10.123.0.0".parse().unwrap())),
            RouteAttribute::Priority(7),
            RouteAttribute::NhId(3),
        ];
        let r = convert_route(&m, &HashMap::new()).unwrap().unwrap();
        assert_eq!(r.table, 100_000);
        assert_eq!(r.route_type, "blackhole");
        assert_eq!(r.dst.to_string(), "10.123.0.0/16");
        assert_eq!(r.protocol, "static");
        assert_eq!(r.scope, "global");
        assert_eq!(r.metric, Some(7));
        assert_eq!(r.flags, ["nhid:3"]);
        assert_eq!(r.dev, None);

        let mut rule = RuleMessage::default();
        rule.header.family = AddressFamily::Inet6;
        rule.header.table = 252;
        rule.header.src_len = 128;
        rule.header.action = RuleAction::ToTable;
        rule.header.flags = RuleFlags::Invert | RuleFlags::IifDetached;
        rule.attributes = vec![
            RuleAttribute::Priority(1536),
            RuleAttribute::Table(100_000),
            RuleAttribute::Source("fd00:99::5".parse().unwrap()),
            RuleAttribute::Iifname("vlan0gone".into()),
        ];
        let r = convert_rule(&rule).unwrap().unwrap();
        assert_eq!(r.table, Some(100_000));
        assert_eq!(r.priority, 1536);
        assert!(r.not && r.detached);
        assert_eq!(r.src.unwrap().to_string(), "fd00:99::5/128");
        assert_eq!(r.iif.as_deref(), Some("vlan0gone"));
        assert_eq!(r.family, Family::Inet6);
    }
}
