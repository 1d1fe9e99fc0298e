//! `ip addr` / `ip link` in every rendering: block text (`-d`, `-c`), one-line (`-o`), brief
//! (`-br`) and `ip -j`.

use std::net::IpAddr;

use model::net::{Address, Family, Link};
use serde_json::{Map, Value};

use super::common::{
    clean_lines, finish, json_flags, jstr, ju64, looks_like_json, parse_json_array, JsonElement,
    Line,
};
use crate::{ParseError, ParseWarning, Parsed};

/// What `ip addr` shows: the interfaces and their addresses.
pub type LinksAndAddresses = (Vec<Link>, Vec<Address>);

/// Address flags in one fixed order (IFA_F_* bit order, `dynamic` = not IFA_F_PERMANENT
/// last), the order the node-agent's netlink collector uses, so that text, JSON and netlink
/// give equal flag lists.
const ADDR_FLAGS: &[&str] = &[
    "secondary",
    "temporary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "permanent",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
    "dynamic",
];

/// `IFLA_INFO_KIND` values as they open the `-d` detail line.
const LINK_KINDS: &[&str] = &[
    "veth",
    "vlan",
    "bridge",
    "bond",
    "dummy",
    "vxlan",
    "ipvlan",
    "ipvtap",
    "macvlan",
    "macvtap",
    "geneve",
    "tun",
    "ipip",
    "gre",
    "gretap",
    "ip6gre",
    "ip6gretap",
    "sit",
    "ip6tnl",
    "wireguard",
    "vrf",
    "team",
    "nlmon",
    "ifb",
    "netkit",
    "ipoib",
    "xfrm",
    "erspan",
    "ip6erspan",
    "bareudp",
    "gtp",
    "macsec",
    "hsr",
    "vti",
    "vti6",
    "can",
    "vcan",
    "vxcan",
    "batadv",
    "rmnet",
];

/// Operational states; the second column of `ip -br`.
const OPERSTATES: &[&str] = &[
    "UP",
    "DOWN",
    "UNKNOWN",
    "LOWERLAYERDOWN",
    "DORMANT",
    "NOTPRESENT",
    "TESTING",
];

/// Detail lines of a link block we understand enough to skip quietly.
const DETAIL_PREFIXES: &[&str] = &[
    "valid_lft",
    "preferred_lft",
    "altname",
    "alias",
    "addrgenmode",
    "RX",
    "TX",
    "vf",
    "prop",
    "protodown",
    "link-netns",
    "cache",
    "inet6addrgenmode",
];

/// `ip addr`, `ip -c addr`, `ip -o addr`, `ip -br addr`, `ip -j addr` (also `ip link` in any of
/// those forms, which yields links without addresses).
pub fn parse_addr(text: &str) -> Result<Parsed<LinksAndAddresses>, ParseError> {
    super::common::check_empty(text)?;
    if looks_like_json(text) {
        return parse_addr_json(text, "ip -j addr");
    }
    let lines = clean_lines(text);
    // Every address belongs to a link (a bare one for `-o`/`-br`), so no links means nothing.
    let (links, addrs, warnings) = parse_text(&lines);
    let (links, warnings) = finish(links, warnings, &lines, "ip addr")?;
    Ok(Parsed {
        value: (links, addrs),
        warnings,
    })
}

/// `ip link`, `ip -d link`, `ip -o link`, `ip -br link`, `ip -j [-d] link`.
pub fn parse_link(text: &str) -> Result<Parsed<Vec<Link>>, ParseError> {
    super::common::check_empty(text)?;
    if looks_like_json(text) {
        return parse_addr_json(text, "ip -j link").map(|p| p.map(|(l, _)| l));
    }
    let lines = clean_lines(text);
    let (links, _addrs, warnings) = parse_text(&lines);
    let (links, warnings) = finish(links, warnings, &lines, "ip link")?;
    Ok(Parsed {
        value: links,
        warnings,
    })
}

fn parse_addr_json(
    text: &str,
    expected: &'static str,
) -> Result<Parsed<LinksAndAddresses>, ParseError> {
    let mut addrs = Vec::new();
    let (links, warnings) = parse_json_array(text, expected, |m, el, w| {
        let link = link_from_json(m, el, w)?;
        if let Some(Value::Array(infos)) = m.get("addr_info") {
            for (i, info) in infos.iter().enumerate() {
                match info.as_object().and_then(|o| addr_from_json(o, &link)) {
                    Some(a) => addrs.push(a),
                    None => w.push(ParseWarning::new(
                        el.line,
                        &info.to_string(),
                        format!("{}: addr_info[{i}] skipped: no family/local", link.ifname),
                    )),
                }
            }
        }
        Some(link)
    })?;
    Ok(Parsed {
        value: (links, addrs),
        warnings,
    })
}

fn link_from_json(
    m: &Map<String, Value>,
    el: &JsonElement,
    w: &mut Vec<ParseWarning>,
) -> Option<Link> {
    let (Some(ifindex), Some(ifname)) = (ju64(m, "ifindex"), jstr(m, "ifname")) else {
        w.push(ParseWarning::new(
            el.line,
            &el.raw,
            "element without ifindex/ifname skipped",
        ));
        return None;
    };
    let flags = json_flags(m);
    let kind = m
        .get("linkinfo")
        .and_then(|li| li.get("info_kind"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Link {
        ifindex: u32::try_from(ifindex).unwrap_or(0),
        ifname: ifname.to_string(),
        kind,
        address: jstr(m, "address").map(str::to_string),
        mtu: ju64(m, "mtu").and_then(|v| u32::try_from(v).ok()),
        operstate: jstr(m, "operstate").unwrap_or_default().to_string(),
        flags,
        link_index: ju64(m, "link_index").and_then(|v| u32::try_from(v).ok()),
        link_netnsid: m
            .get("link_netnsid")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok()),
        master: jstr(m, "master").map(str::to_string),
    })
}

fn addr_from_json(o: &Map<String, Value>, link: &Link) -> Option<Address> {
    let family = match jstr(o, "family")? {
        "inet" => Family::Inet,
        "inet6" => Family::Inet6,
        _ => return None,
    };
    let local: IpAddr = jstr(o, "local")?.parse().ok()?;
    let max = if family == Family::Inet { 32 } else { 128 };
    let prefixlen = ju64(o, "prefixlen")
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(max);
    let mut flags: Vec<String> = o
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .map(|(k, _)| k.clone())
        .collect();
    order_flags(&mut flags);
    Some(Address {
        ifindex: link.ifindex,
        ifname: link.ifname.clone(),
        family,
        local,
        prefixlen,
        scope: jstr(o, "scope").unwrap_or_default().to_string(),
        label: label_if_not_ifname(jstr(o, "label"), &link.ifname),
        broadcast: jstr(o, "broadcast").and_then(|b| b.parse().ok()),
        flags,
    })
}

/// iproute2 prints an IPv4 address's label even when it is just the device name; the model
/// (like the netlink collector) keeps it only when it says more (`eth1:lnk`).
fn label_if_not_ifname(label: Option<&str>, ifname: &str) -> Option<String> {
    label.filter(|l| *l != ifname).map(str::to_string)
}

fn order_flags(flags: &mut [String]) {
    flags.sort_by_key(|f| {
        ADDR_FLAGS
            .iter()
            .position(|k| k == f)
            .unwrap_or(ADDR_FLAGS.len())
    });
}

/// `eth0@if2` → (`eth0`, Some(2)); `veth-a@veth-b` → (`veth-a`, None).
fn split_ifname(tok: &str) -> (String, Option<u32>) {
    let tok = tok.trim_end_matches(':');
    match tok.split_once('@') {
        Some((name, peer)) => {
            let idx = peer.strip_prefix("if").and_then(|n| n.parse().ok());
            (name.to_string(), idx)
        }
        None => (tok.to_string(), None),
    }
}

fn parse_flags(tok: &str) -> Option<Vec<String>> {
    let inner = tok.strip_prefix('<')?.strip_suffix('>')?;
    Some(
        inner
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

struct TextState {
    links: Vec<Link>,
    addrs: Vec<Address>,
    warnings: Vec<ParseWarning>,
    /// Index in `links` of the block being read.
    current: Option<usize>,
}

fn parse_text(lines: &[Line]) -> (Vec<Link>, Vec<Address>, Vec<ParseWarning>) {
    let mut st = TextState {
        links: Vec::new(),
        addrs: Vec::new(),
        warnings: Vec::new(),
        current: None,
    };
    for line in lines {
        // `ip -o` folds a block onto one line with `\` separators.
        for seg in line.text.split('\\') {
            let seg = seg.trim();
            if !seg.is_empty() {
                text_segment(&mut st, line.no, seg);
            }
        }
    }
    (st.links, st.addrs, st.warnings)
}

fn text_segment(st: &mut TextState, no: usize, seg: &str) {
    let toks: Vec<&str> = seg.split_whitespace().collect();
    let Some(&first) = toks.first() else {
        return;
    };
    // Block header `2: eth0@if2: <...> mtu ...` or one-line `2: eth0    inet ...`.
    if let Some(idx) = first.strip_suffix(':').and_then(|n| n.parse::<u32>().ok()) {
        let Some(&name_tok) = toks.get(1) else {
            st.warnings.push(ParseWarning::new(
                no,
                seg,
                "interface header without a name",
            ));
            return;
        };
        let (ifname, link_index) = split_ifname(name_tok);
        if ifname.is_empty() {
            st.warnings.push(ParseWarning::new(
                no,
                seg,
                "interface header without a name",
            ));
            return;
        }
        let oneline_body = toks
            .get(2)
            .is_some_and(|t| *t == "inet" || *t == "inet6" || t.starts_with("link/"));
        if idx == 0 || !name_tok.ends_with(':') && !oneline_body {
            st.warnings
                .push(ParseWarning::new(no, seg, "not an interface header"));
            return;
        }
        if name_tok.ends_with(':') {
            let link = header_link(idx, ifname, link_index, &toks[2..], no, seg, st);
            st.links.push(link);
            st.current = Some(st.links.len() - 1);
        } else {
            // `-o addr`: reuse the link if this index was just seen, else record a bare one.
            let reuse = st
                .current
                .filter(|&c| st.links[c].ifindex == idx && st.links[c].ifname == ifname);
            if reuse.is_none() {
                st.links.push(Link {
                    ifindex: idx,
                    ifname,
                    link_index,
                    ..Link::default()
                });
                st.current = Some(st.links.len() - 1);
            }
            if toks.len() > 2 {
                let rest = toks[2..].join(" ");
                text_segment(st, no, &rest);
            }
        }
        return;
    }
    if first.starts_with("link/") {
        let Some(c) = st.current else {
            st.warnings
                .push(ParseWarning::new(no, seg, "link line before any interface"));
            return;
        };
        let link = &mut st.links[c];
        if first != "link/none" {
            if let Some(a) = toks.get(1).filter(|a| a.contains(':') || a.contains('.')) {
                link.address = Some((*a).to_string());
            }
        }
        let mut i = 1;
        while i < toks.len() {
            if toks[i] == "link-netnsid" {
                link.link_netnsid = toks.get(i + 1).and_then(|v| v.parse().ok());
                i += 1;
            }
            i += 1;
        }
        return;
    }
    if first == "inet" || first == "inet6" {
        let Some(c) = st.current else {
            st.warnings
                .push(ParseWarning::new(no, seg, "address before any interface"));
            return;
        };
        let (ifindex, ifname) = (st.links[c].ifindex, st.links[c].ifname.clone());
        match address_from_tokens(&toks, ifindex, &ifname) {
            Ok(a) => st.addrs.push(a),
            Err(msg) => st.warnings.push(ParseWarning::new(no, seg, msg)),
        }
        return;
    }
    if LINK_KINDS.contains(&first) {
        if let Some(c) = st.current {
            if st.links[c].kind.is_none() {
                st.links[c].kind = Some(first.to_string());
            }
            return;
        }
    }
    if st.current.is_some()
        && (first.ends_with("_slave")
            || DETAIL_PREFIXES.iter().any(|p| first.starts_with(p))
            || toks.iter().all(|t| t.parse::<u64>().is_ok()))
    {
        return;
    }
    // `-br`: `eth0@if2   UP   192.168.1.251/19 fe80::1/64` / `lo UNKNOWN 00:00:.. <LOOPBACK,UP>`
    if toks.len() >= 2 && OPERSTATES.contains(&toks[1]) {
        brief_line(st, no, seg, &toks);
        return;
    }
    st.warnings
        .push(ParseWarning::new(no, seg, "unrecognised line skipped"));
}

fn header_link(
    ifindex: u32,
    ifname: String,
    link_index: Option<u32>,
    rest: &[&str],
    no: usize,
    seg: &str,
    st: &mut TextState,
) -> Link {
    let mut link = Link {
        ifindex,
        ifname,
        link_index,
        ..Link::default()
    };
    let mut i = 0;
    if let Some(t) = rest.first() {
        match parse_flags(t) {
            Some(f) => {
                link.flags = f;
                i = 1;
            }
            None if t.starts_with('<') => {
                st.warnings
                    .push(ParseWarning::new(no, seg, "interface flags cut off"));
                i = 1;
            }
            None => {}
        }
    }
    while i < rest.len() {
        let val = rest.get(i + 1).copied();
        match rest[i] {
            "mtu" => link.mtu = val.and_then(|v| v.parse().ok()),
            "state" => link.operstate = val.unwrap_or_default().to_string(),
            "master" => link.master = val.map(str::to_string),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    link
}

fn brief_line(st: &mut TextState, no: usize, seg: &str, toks: &[&str]) {
    let (ifname, link_index) = split_ifname(toks[0]);
    let mut link = Link {
        ifname: ifname.clone(),
        link_index,
        operstate: toks[1].to_string(),
        ..Link::default()
    };
    for t in &toks[2..] {
        if let Some(f) = parse_flags(t) {
            link.flags = f;
        } else if t.contains('/') {
            let Some((a, l)) = t.split_once('/') else {
                continue;
            };
            match (a.parse::<IpAddr>(), l.parse::<u8>()) {
                (Ok(ip), Ok(len)) => st.addrs.push(Address {
                    ifindex: 0,
                    ifname: ifname.clone(),
                    family: Family::of(&ip),
                    local: ip,
                    prefixlen: len,
                    scope: String::new(),
                    label: None,
                    broadcast: None,
                    flags: Vec::new(),
                }),
                _ => st
                    .warnings
                    .push(ParseWarning::new(no, seg, format!("bad address `{t}`"))),
            }
        } else if t.contains(':') && link.address.is_none() {
            link.address = Some((*t).to_string());
        }
    }
    st.links.push(link);
    st.current = None;
}

/// `inet 192.168.1.252/19 brd 192.168.31.255 scope global secondary eth0`,
/// `inet6 fe80::1/64 scope link proto kernel_ll`, `inet 10.0.0.1 peer 10.0.0.2/32 scope global tun0`.
fn address_from_tokens(toks: &[&str], ifindex: u32, ifname: &str) -> Result<Address, String> {
    let family = if toks[0] == "inet" {
        Family::Inet
    } else {
        Family::Inet6
    };
    let Some(addr_tok) = toks.get(1) else {
        return Err("address line without an address".into());
    };
    let (a, len) = match addr_tok.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (*addr_tok, None),
    };
    let local: IpAddr = a.parse().map_err(|_| format!("bad address `{addr_tok}`"))?;
    if Family::of(&local) != family {
        return Err(format!(
            "{} address `{addr_tok}` of the wrong family",
            toks[0]
        ));
    }
    let max = if family == Family::Inet { 32 } else { 128 };
    let mut prefixlen = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("bad prefix length in `{addr_tok}`"))?,
        None => max,
    };
    let mut addr = Address {
        ifindex,
        ifname: ifname.to_string(),
        family,
        local,
        prefixlen,
        scope: String::new(),
        label: None,
        broadcast: None,
        flags: Vec::new(),
    };
    let mut i = 2;
    while i < toks.len() {
        let val = toks.get(i + 1).copied();
        match toks[i] {
            "brd" => {
                addr.broadcast = val.and_then(|v| v.parse().ok());
                i += 2;
            }
            "scope" => {
                addr.scope = val.unwrap_or_default().to_string();
                i += 2;
            }
            "peer" => {
                if let Some(l) = val
                    .and_then(|v| v.split_once('/'))
                    .and_then(|(_, l)| l.parse::<u8>().ok())
                {
                    prefixlen = l;
                    addr.prefixlen = prefixlen;
                }
                i += 2;
            }
            "metric" | "proto" | "label" | "valid_lft" | "preferred_lft" => i += 2,
            t if ADDR_FLAGS.contains(&t) => {
                addr.flags.push(t.to_string());
                i += 1;
            }
            t => {
                // IPv4 addresses end with their label (`eth0`, `eth1:lnk`).
                if family == Family::Inet && i == toks.len() - 1 {
                    addr.label = label_if_not_ifname(Some(t), ifname);
                }
                i += 1;
            }
        }
    }
    order_flags(&mut addr.flags);
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_peer_index_and_netnsid() {
        let t = "4: eni055ab01821c@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc noqueue state UP group default\n    link/ether 7a:11:22:33:44:55 brd ff:ff:ff:ff:ff:ff link-netnsid 2\n    inet6 fe80::7811:22ff:fe33:4455/64 scope link\n       valid_lft forever preferred_lft forever";
        let p = parse_addr(t).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let (links, addrs) = p.value;
        assert_eq!(links.len(), 1);
        let l = &links[0];
        assert_eq!(l.ifindex, 4);
        assert_eq!(l.ifname, "eni055ab01821c");
        assert_eq!(l.link_index, Some(3));
        assert_eq!(l.link_netnsid, Some(2));
        assert_eq!(l.mtu, Some(9001));
        assert_eq!(l.operstate, "UP");
        assert_eq!(l.address.as_deref(), Some("7a:11:22:33:44:55"));
        assert_eq!(l.flags, vec!["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]);
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].family, Family::Inet6);
        assert_eq!(addrs[0].scope, "link");
        assert_eq!(addrs[0].ifindex, 4);
    }

    #[test]
    fn v4_label_flags_and_broadcast() {
        let t = "2: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP\n link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n altname enp0s5\n inet 192.168.0.174/22 metric 512 brd 192.168.3.255 scope global dynamic ens5\n inet 192.168.0.175/22 scope global secondary ens5:1";
        let p = parse_addr(t).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let a = &p.value.1;
        assert_eq!(a[0].local.to_string(), "192.168.0.174");
        assert_eq!(a[0].prefixlen, 22);
        assert_eq!(
            a[0].broadcast.map(|b| b.to_string()).as_deref(),
            Some("192.168.3.255")
        );
        assert_eq!(a[0].flags, vec!["dynamic"]);
        assert_eq!(a[0].label, None);
        assert_eq!(a[1].flags, vec!["secondary"]);
        assert_eq!(a[1].label.as_deref(), Some("ens5:1"));
    }

    #[test]
    fn garbage_is_not_recognized_and_empty_is_empty() {
        assert_eq!(parse_addr("  \n "), Err(ParseError::Empty));
        assert!(matches!(
            parse_addr("hello world\nfoo"),
            Err(ParseError::NotRecognized { line: 1, .. })
        ));
        assert!(matches!(
            parse_link("0:\tfrom all lookup local"),
            Err(ParseError::NotRecognized { .. })
        ));
    }

    #[test]
    fn bad_address_is_a_warning_with_line() {
        let t = "1: lo: <LOOPBACK,UP> mtu 65536 state UNKNOWN\n    inet 127.0.0/8 scope host lo";
        let p = parse_addr(t).unwrap();
        assert_eq!(p.value.1.len(), 0);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].line, 2);
        assert!(p.warnings[0].text.contains("127.0.0/8"));
    }
}
