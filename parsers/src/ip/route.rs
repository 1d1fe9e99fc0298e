//! `ip route [show table all]`, `ip -6 route`, `ip -j route`, and the eks-log-collector's
//! `networking/iproute.txt` (which is `ip route show table all`).

use std::net::IpAddr;

use model::net::{table_id_from_name, Family, Route, RT_TABLE_MAIN};
use serde_json::{Map, Value};

use super::common::{
    check_empty, clean_lines, family_of_token, finish, json_flags, jstr, ju64, looks_like_json,
    parse_json_array, parse_prefix, split_annotation, JsonElement,
};
use crate::{ParseError, ParseWarning, Parsed};

/// Route types iproute2 prints before the destination (`unicast` only when asked).
const ROUTE_TYPES: &[&str] = &[
    "unicast",
    "local",
    "broadcast",
    "blackhole",
    "unreachable",
    "prohibit",
    "multicast",
    "anycast",
    "throw",
    "nat",
    "xresolve",
];

/// Route flags (`RTNH_F_*`, `RTM_F_*`) as printed after the attributes, in bit order: flags
/// are stored in this order (then `multipath:N`, then `nhid:N`), as the node-agent's netlink
/// collector stores them, so every source gives equal lists.
const ROUTE_FLAGS: &[&str] = &[
    "dead",
    "pervasive",
    "onlink",
    "offload",
    "linkdown",
    "unresolved",
    "trap",
    "rt_offload",
    "rt_trap",
    "rt_offload_failed",
    "offload_failed",
    "notify",
];

/// Attributes followed by one value that the model does not keep.
const IGNORED_WITH_VALUE: &[&str] = &[
    "pref",
    "mtu",
    "advmss",
    "hoplimit",
    "expires",
    "error",
    "realm",
    "realms",
    "rtt",
    "rttvar",
    "rto_min",
    "window",
    "cwnd",
    "initcwnd",
    "initrwnd",
    "ssthresh",
    "reordering",
    "features",
    "congctl",
    "quickack",
    "fastopen_no_cookie",
    "tos",
    "dsfield",
    "from",
    "weight",
    "uid",
    "as",
    "ttl-propagate",
    "age",
    "used",
    "users",
];

const MULTIPATH_WARNING: &str = "multipath route: only the first nexthop is kept";

/// Routes from any table; lines without `table` are in main.
pub fn parse_route(text: &str) -> Result<Parsed<Vec<Route>>, ParseError> {
    parse_route_in_table(text, RT_TABLE_MAIN)
}

/// As [`parse_route`], for `ip route show table N` output, where iproute2 omits `table N`:
/// lines without a `table` go to `default_table`.
pub fn parse_route_in_table(
    text: &str,
    default_table: u32,
) -> Result<Parsed<Vec<Route>>, ParseError> {
    check_empty(text)?;
    if looks_like_json(text) {
        let (routes, warnings) = parse_json_array(text, "ip -j route", |m, el, w| {
            route_from_json(m, el, w, default_table)
        })?;
        return Ok(Parsed {
            value: routes,
            warnings,
        });
    }
    let lines = clean_lines(text);
    let mut routes: Vec<Route> = Vec::new();
    let mut warnings = Vec::new();
    // Index of the multipath route whose `nexthop` lines follow, and how many were seen.
    let mut multipath: Option<(usize, usize)> = None;
    for line in &lines {
        let (data, note) = split_annotation(&line.text);
        if let Some(note) = note {
            warnings.push(ParseWarning::new(
                line.no,
                &line.text,
                format!("annotation ignored: `{note}`"),
            ));
        }
        let toks: Vec<&str> = data.split_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        match toks.first().copied() {
            Some("nexthop") => {
                match multipath {
                    Some((idx, n)) => {
                        let r = &mut routes[idx];
                        if n == 0 {
                            let nh = parse_attrs(&toks[1..]);
                            r.gateway = nh.gateway;
                            r.dev = nh.dev;
                            warnings.push(ParseWarning::new(
                                line.no,
                                &line.text,
                                MULTIPATH_WARNING,
                            ));
                        }
                        set_multipath_count(&mut r.flags, n + 1);
                        multipath = Some((idx, n + 1));
                    }
                    None => warnings.push(ParseWarning::new(
                        line.no,
                        &line.text,
                        "nexthop line without a route before it",
                    )),
                }
                continue;
            }
            // `ip route get` / cached-route continuation lines.
            Some("cache") | Some("expires") => continue,
            _ => {}
        }
        multipath = None;
        match route_from_tokens(&toks, default_table) {
            Ok((route, notes, is_multipath)) => {
                for n in notes {
                    warnings.push(ParseWarning::new(line.no, &line.text, n));
                }
                routes.push(route);
                if is_multipath {
                    multipath = Some((routes.len() - 1, 0));
                }
            }
            Err(msg) => warnings.push(ParseWarning::new(line.no, &line.text, msg)),
        }
    }
    if let Some((no, cmd)) = super::common::paste_filter(text) {
        warnings.push(ParseWarning::new(
            no,
            &cmd,
            format!("filtered paste: `{cmd}` shows only matching routes; routes it hides are not missing"),
        ));
    }
    let (routes, warnings) = finish(routes, warnings, &lines, "ip route")?;
    Ok(Parsed {
        value: routes,
        warnings,
    })
}

/// Sets `multipath:N` (before any `nhid:`), replacing an earlier count.
fn set_multipath_count(flags: &mut Vec<String>, n: usize) {
    flags.retain(|f| !f.starts_with("multipath:"));
    let at = flags
        .iter()
        .position(|f| f.starts_with("nhid:"))
        .unwrap_or(flags.len());
    flags.insert(at, format!("multipath:{n}"));
}

#[derive(Default)]
struct Attrs {
    gateway: Option<IpAddr>,
    dev: Option<String>,
    table: Option<u32>,
    protocol: Option<String>,
    scope: Option<String>,
    prefsrc: Option<IpAddr>,
    metric: Option<u32>,
    flags: Vec<String>,
    saw_pref: bool,
    nhid: Option<u32>,
    notes: Vec<String>,
    /// A table name that is not a number or a well-known name.
    bad_table: Option<String>,
}

fn parse_attrs(toks: &[&str]) -> Attrs {
    let mut a = Attrs::default();
    let mut i = 0;
    while i < toks.len() {
        let key = toks[i];
        let val = toks.get(i + 1).copied();
        let mut step = 2;
        match key {
            "via" => {
                // `via inet6 fe80::1` (RTA_VIA) or `via 10.0.0.1`.
                let (v, extra) = match val {
                    Some("inet") | Some("inet6") => (toks.get(i + 2).copied(), 1),
                    _ => (val, 0),
                };
                step += extra;
                match v.and_then(|v| v.parse().ok()) {
                    Some(g) => a.gateway = Some(g),
                    None => a.notes.push(format!("bad gateway `{}`", v.unwrap_or(""))),
                }
            }
            "dev" | "oif" => a.dev = val.map(str::to_string),
            "table" => match val.map(|v| (v, table_id_from_name(v))) {
                Some((_, Some(t))) => a.table = Some(t),
                Some((v, None)) => a.bad_table = Some(v.to_string()),
                None => a.notes.push("`table` without a value".into()),
            },
            "proto" | "protocol" => a.protocol = val.map(str::to_string),
            "scope" => a.scope = val.map(str::to_string),
            "src" => match val.and_then(|v| v.parse().ok()) {
                Some(s) => a.prefsrc = Some(s),
                None => a.notes.push(format!("bad src `{}`", val.unwrap_or(""))),
            },
            "metric" | "priority" | "preference" => match val.and_then(|v| v.parse().ok()) {
                Some(m) => a.metric = Some(m),
                None => a.notes.push(format!("bad metric `{}`", val.unwrap_or(""))),
            },
            "nhid" => match val.and_then(|v| v.parse().ok()) {
                Some(id) => a.nhid = Some(id),
                None => a.notes.push(format!("bad nhid `{}`", val.unwrap_or(""))),
            },
            "mtu" | "advmss" | "window" | "hoplimit" | "initcwnd" if val == Some("lock") => {
                step = 3;
            }
            k if IGNORED_WITH_VALUE.contains(&k) => {
                if k == "pref" {
                    a.saw_pref = true;
                }
            }
            // `ip route get` / `ip -6 route show cache`: a cached entry, same route otherwise.
            "cache" => step = 1,
            k if ROUTE_FLAGS.contains(&k) => {
                a.flags.push(k.to_string());
                step = 1;
            }
            k => {
                a.notes
                    .push(format!("unknown route attribute `{k}` ignored"));
                step = 1;
            }
        }
        i += step;
    }
    a
}

/// Canonical flag list: known flags in bit order, unknown ones after, then `multipath:N`
/// (N next hops, of which the route keeps the first) and `nhid:N` (next-hop object).
fn finish_flags(mut flags: Vec<String>, nexthops: usize, nhid: Option<u32>) -> Vec<String> {
    flags.sort_by_key(|f| {
        ROUTE_FLAGS
            .iter()
            .position(|k| k == f)
            .unwrap_or(ROUTE_FLAGS.len())
    });
    if nexthops > 0 {
        flags.push(format!("multipath:{nexthops}"));
    }
    if let Some(id) = nhid {
        flags.push(format!("nhid:{id}"));
    }
    flags
}

/// One route line; returns the route, notes for warnings, and whether `nexthop` lines follow.
fn route_from_tokens(
    toks: &[&str],
    default_table: u32,
) -> Result<(Route, Vec<String>, bool), String> {
    let mut i = 0;
    let mut route_type = "unicast".to_string();
    if let Some(t) = toks.first().filter(|t| ROUTE_TYPES.contains(t)) {
        route_type = (*t).to_string();
        i = 1;
    }
    let Some(&dst_tok) = toks.get(i) else {
        return Err("route without a destination".into());
    };
    let attrs = parse_attrs(&toks[i + 1..]);
    if let Some(bad) = &attrs.bad_table {
        return Err(format!("unknown table name `{bad}` (rt_tables alias?)"));
    }
    let family = family_of_token(dst_tok)
        .or_else(|| attrs.gateway.as_ref().map(Family::of))
        .or_else(|| attrs.prefsrc.as_ref().map(Family::of))
        .unwrap_or(if attrs.saw_pref {
            Family::Inet6
        } else {
            Family::Inet
        });
    // The kernel stores route destinations without host bits; so does the model.
    let dst = parse_prefix(dst_tok, Some(family))
        .ok_or_else(|| format!("bad destination `{dst_tok}`"))?
        .trunc();
    // A header with neither via nor dev nor a special type is the first line of a multipath
    // route; its `nexthop` lines follow.
    let is_multipath = route_type == "unicast" && attrs.gateway.is_none() && attrs.dev.is_none();
    let route = Route {
        family,
        table: attrs.table.unwrap_or(default_table),
        route_type,
        dst,
        gateway: attrs.gateway,
        dev: attrs.dev,
        oif: None,
        prefsrc: attrs.prefsrc,
        protocol: attrs.protocol.unwrap_or_else(|| "boot".into()),
        scope: attrs.scope.unwrap_or_else(|| "global".into()),
        metric: attrs.metric,
        flags: finish_flags(attrs.flags, 0, attrs.nhid),
    };
    Ok((route, attrs.notes, is_multipath))
}

fn json_gateway(m: &Map<String, Value>) -> Option<IpAddr> {
    if let Some(g) = jstr(m, "gateway") {
        return g.parse().ok();
    }
    m.get("via")
        .and_then(|v| v.get("host"))
        .and_then(Value::as_str)
        .and_then(|h| h.parse().ok())
}

fn route_from_json(
    m: &Map<String, Value>,
    el: &JsonElement,
    w: &mut Vec<ParseWarning>,
    default_table: u32,
) -> Option<Route> {
    let Some(dst_s) = jstr(m, "dst") else {
        w.push(ParseWarning::new(
            el.line,
            &el.raw,
            "route without dst skipped",
        ));
        return None;
    };
    let table = match jstr(m, "table") {
        None => match ju64(m, "table") {
            Some(t) => u32::try_from(t).ok(),
            None => Some(default_table),
        },
        Some(t) => table_id_from_name(t),
    };
    let Some(table) = table else {
        w.push(ParseWarning::new(
            el.line,
            &el.raw,
            "unknown table name (rt_tables alias?), route skipped",
        ));
        return None;
    };
    let mut gateway = json_gateway(m);
    let mut dev = jstr(m, "dev").map(str::to_string);
    let mut nexthops = 0;
    if let Some(Value::Array(nhs)) = m.get("nexthops") {
        nexthops = nhs.len();
        if let Some(first) = nhs.first().and_then(Value::as_object) {
            if gateway.is_none() && dev.is_none() {
                gateway = json_gateway(first);
                dev = jstr(first, "dev").map(str::to_string);
            }
            w.push(ParseWarning::new(el.line, &el.raw, MULTIPATH_WARNING));
        }
    }
    let prefsrc: Option<IpAddr> = jstr(m, "prefsrc").and_then(|s| s.parse().ok());
    let family = family_of_token(dst_s)
        .or_else(|| gateway.as_ref().map(Family::of))
        .or_else(|| prefsrc.as_ref().map(Family::of))
        .unwrap_or(if m.contains_key("pref") {
            Family::Inet6
        } else {
            Family::Inet
        });
    let Some(dst) = parse_prefix(dst_s, Some(family)).map(|d| d.trunc()) else {
        w.push(ParseWarning::new(
            el.line,
            &el.raw,
            format!("bad dst `{dst_s}`, route skipped"),
        ));
        return None;
    };
    Some(Route {
        family,
        table,
        route_type: jstr(m, "type").unwrap_or("unicast").to_string(),
        dst,
        gateway,
        dev,
        oif: None,
        prefsrc,
        protocol: jstr(m, "protocol").unwrap_or("boot").to_string(),
        scope: jstr(m, "scope").unwrap_or("global").to_string(),
        metric: ju64(m, "metric").and_then(|v| u32::try_from(v).ok()),
        flags: finish_flags(
            json_flags(m),
            nexthops,
            ju64(m, "nhid").and_then(|v| u32::try_from(v).ok()),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Route {
        let p = parse_route(line).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.len(), 1);
        p.value.into_iter().next().unwrap()
    }

    #[test]
    fn default_via_in_table_2() {
        let r = one("default via 192.168.0.1 dev eth1 table 2");
        assert_eq!(r.table, 2);
        assert_eq!(r.dst.to_string(), "0.0.0.0/0");
        assert_eq!(r.gateway.unwrap().to_string(), "192.168.0.1");
        assert_eq!(r.dev.as_deref(), Some("eth1"));
        assert_eq!(r.protocol, "boot");
        assert_eq!(r.scope, "global");
        assert_eq!(r.route_type, "unicast");
    }

    #[test]
    fn host_route_gets_slash_32_and_scope_link() {
        let r = one("192.168.2.12 dev eni4d2fe644677 scope link");
        assert_eq!(r.dst.to_string(), "192.168.2.12/32");
        assert_eq!(r.scope, "link");
        assert_eq!(r.table, 254);
    }

    #[test]
    fn types_tables_and_v6() {
        let r = one("blackhole 10.10.0.0/16 table 100000");
        assert_eq!((r.route_type.as_str(), r.table), ("blackhole", 100000));
        let r = one("local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1");
        assert_eq!((r.route_type.as_str(), r.table), ("local", 255));
        assert_eq!(r.prefsrc.unwrap().to_string(), "127.0.0.1");
        let r = one("fe80::/64 dev eth0 proto kernel metric 256 pref medium");
        assert_eq!(r.family, Family::Inet6);
        assert_eq!(r.metric, Some(256));
        let r = one("unreachable default dev lo table unspec proto kernel metric 4294967295 error -101 pref medium");
        assert_eq!(r.family, Family::Inet6);
        assert_eq!(r.dst.to_string(), "::/0");
        assert_eq!(r.table, 0);
        assert_eq!(r.metric, Some(u32::MAX));
    }

    #[test]
    fn multipath_keeps_first_nexthop_with_warning() {
        let p = parse_route(
            "10.100.0.0/16 \n\tnexthop via 192.168.0.1 dev eth0 weight 1\n\tnexthop via 192.168.0.2 dev eth1 weight 2\n192.168.5.1 dev eni1 scope link",
        )
        .unwrap();
        assert_eq!(p.value.len(), 2);
        assert_eq!(p.value[0].gateway.unwrap().to_string(), "192.168.0.1");
        assert_eq!(p.value[0].dev.as_deref(), Some("eth0"));
        assert_eq!(p.value[0].flags, vec!["multipath:2"]);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].line, 2);
    }

    #[test]
    fn destination_host_bits_are_cleared() {
        // Found by the fuzzer: `127.0.0.0/0` rendered as `default` lost its address.
        let r = one("local 127.0.0.1/0 dev lo table local");
        assert_eq!(r.dst.to_string(), "0.0.0.0/0");
        assert_eq!(one("10.1.2.3/8 dev eth0").dst.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn route_get_and_cache_lines() {
        let p = parse_route(
            "10.0.0.5 via 192.168.0.1 dev eth0 src 192.168.1.251 uid 0 \n    cache \n2600:1f14::5 from :: via fe80::1 dev eth0 proto ra src 2600:1f14::10 metric 1024 expires 299sec cache mtu 1500 hoplimit 255 pref medium",
        )
        .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.len(), 2);
        assert_eq!(p.value[0].dst.to_string(), "10.0.0.5/32");
        assert_eq!(p.value[1].family, Family::Inet6);
        assert_eq!(p.value[1].protocol, "ra");
        assert_eq!(p.value[1].metric, Some(1024));
    }

    #[test]
    fn v6_multipath_default_with_attributes() {
        let p = parse_route(
            "default proto ra metric 1024 expires 1798sec pref medium\n\tnexthop via fe80::1 dev eth0 weight 1\n\tnexthop via fe80::2 dev eth1 weight 1",
        )
        .unwrap();
        let r = &p.value[0];
        assert_eq!(
            (r.family, r.dst.to_string()),
            (Family::Inet6, "::/0".to_string())
        );
        assert_eq!(r.gateway.map(|g| g.to_string()).as_deref(), Some("fe80::1"));
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn flags_and_mtu_lock() {
        let r = one("10.102.0.0/16 via 10.9.9.9 dev eth0 mtu lock 1400 onlink linkdown");
        assert_eq!(r.flags, vec!["onlink", "linkdown"]);
        let r = one("10.103.0.0/16 nhid 7 via 10.9.9.9 dev eth0 linkdown dead");
        assert_eq!(r.flags, vec!["dead", "linkdown", "nhid:7"]);
        assert_eq!(r.gateway.unwrap().to_string(), "10.9.9.9");
    }

    #[test]
    fn bad_lines_are_warnings() {
        let p = parse_route("default via 10.0.0.1 dev eth0\n192.168.7 dev eth1\nfoo bar table zzz")
            .unwrap();
        assert_eq!(p.value.len(), 1);
        assert_eq!(p.warnings.len(), 2);
        assert_eq!(p.warnings[0].line, 2);
        assert!(p.warnings[1].message.contains("zzz") || p.warnings[1].message.contains("foo"));
        assert!(matches!(
            parse_route("0:\tfrom all lookup local"),
            Err(ParseError::NotRecognized { line: 1, .. })
        ));
    }

    #[test]
    fn annotations_and_blockquotes() {
        let text = "> default via 10.0.0.1 dev eth0 <-- this one\n> > 10.0.0.0/16 dev eth0 proto kernel scope link src 10.0.1.5  # node subnet\n>\n";
        let p = parse_route(text).unwrap();
        assert_eq!(p.value.len(), 2, "{:?}", p.warnings);
        assert_eq!(p.value[0].dev.as_deref(), Some("eth0"));
        assert_eq!(p.value[1].prefsrc.unwrap().to_string(), "10.0.1.5");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].message.contains("<-- this one"));
        assert!(p.warnings[1].message.contains("# node subnet"));
    }

    #[test]
    fn json_table_strings_and_default() {
        let p = parse_route(
            r#"[{"dst":"default","gateway":"192.168.0.1","dev":"eth1","table":"2","flags":[]},{"type":"blackhole","dst":"2600:1f14:dead::/48","dev":"lo","table":"100000","metric":1024,"flags":[],"pref":"medium"},{"dst":"192.168.5.1","dev":"eni1","scope":"link","flags":[]}]"#,
        )
        .unwrap();
        let r = &p.value;
        assert_eq!(r[0].table, 2);
        assert_eq!(r[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(r[1].family, Family::Inet6);
        assert_eq!(r[1].table, 100000);
        assert_eq!(r[1].route_type, "blackhole");
        assert_eq!(r[2].table, 254);
        assert_eq!(r[2].dst.to_string(), "192.168.5.1/32");
    }
}
