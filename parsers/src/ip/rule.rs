//! `ip rule` / `ip -6 rule` text and `ip -j rule` JSON.

use ipnet::IpNet;
use model::net::{table_id_from_name, Family, IpRule};
use serde_json::{Map, Value};

use super::common::{
    check_empty, clean_lines, family_of_token, finish, jstr, ju64, looks_like_json,
    parse_json_array, parse_prefix, parse_u32_any, split_annotation, JsonElement,
};
use crate::{ParseError, ParseWarning, Parsed};

/// Actions other than `lookup`/`goto` (FR_ACT_*), printed as a bare word.
const BARE_ACTIONS: &[&str] = &["blackhole", "unreachable", "prohibit", "nop"];

/// Selectors/attributes with one value that the model does not keep.
const IGNORED_WITH_VALUE: &[&str] = &[
    "realms",
    "uidrange",
    "suppress_prefixlength",
    "suppress_ifgroup",
    "tos",
    "dsfield",
    "sport",
    "dport",
    "tun_id",
    "proto",
    "protocol",
    "flowlabel",
    "map-to",
    "nat",
];

/// `ip rule` output. Rules whose selectors carry no address (`from all lookup main`) are taken
/// as IPv4; use [`parse_rule_family`] for `ip -6 rule` output.
pub fn parse_rule(text: &str) -> Result<Parsed<Vec<IpRule>>, ParseError> {
    parse_rule_family(text, Family::Inet)
}

/// As [`parse_rule`], with the family to use for rules without addresses (the `-4`/`-6` the
/// output was produced with). Rules with addresses always take the addresses' family.
pub fn parse_rule_family(text: &str, family: Family) -> Result<Parsed<Vec<IpRule>>, ParseError> {
    check_empty(text)?;
    if looks_like_json(text) {
        let (rules, warnings) = parse_json_array(text, "ip -j rule", |m, el, w| {
            rule_from_json(m, el, w, family)
        })?;
        return Ok(Parsed {
            value: rules,
            warnings,
        });
    }
    let lines = clean_lines(text);
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for line in &lines {
        let (data, note) = split_annotation(&line.text);
        if let Some(note) = note {
            warnings.push(ParseWarning::new(
                line.no,
                &line.text,
                format!("annotation ignored: `{note}`"),
            ));
            if data.is_empty() {
                continue;
            }
        }
        match rule_from_text(data, family) {
            Ok((rule, notes)) => {
                for n in notes {
                    warnings.push(ParseWarning::new(line.no, &line.text, n));
                }
                rules.push(rule);
            }
            Err(msg) => warnings.push(ParseWarning::new(line.no, &line.text, msg)),
        }
    }
    if let Some((no, cmd)) = super::common::paste_filter(text) {
        warnings.push(ParseWarning::new(
            no,
            &cmd,
            format!(
                "filtered paste: `{cmd}` shows only matching rules; rules it hides are not missing"
            ),
        ));
    }
    let (rules, warnings) = finish(rules, warnings, &lines, "ip rule")?;
    Ok(Parsed {
        value: rules,
        warnings,
    })
}

/// `0x80/0x80`, `0x4000`, `128`. Without `/mask` the kernel's mask is 0xffffffff (iproute2
/// omits a full mask, in text and JSON); the model records it as the netlink collector does.
fn parse_fwmark(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((m, k)) => Some((parse_u32_any(m)?, parse_u32_any(k)?)),
        None => Some((parse_u32_any(s)?, u32::MAX)),
    }
}

/// `from`/`to` value: `all` is no selector.
fn parse_selector(s: &str) -> Result<Option<IpNet>, String> {
    if s == "all" {
        return Ok(None);
    }
    parse_prefix(s, None)
        .map(Some)
        .ok_or_else(|| format!("bad address `{s}`"))
}

fn rule_from_text(text: &str, default_family: Family) -> Result<(IpRule, Vec<String>), String> {
    // `1536:\tfrom ...`, `1536: from ...`, or with the whitespace lost: `1536:from ...`.
    let (prio_s, rest) = text
        .split_once(':')
        .ok_or_else(|| "no `priority:` at the start".to_string())?;
    let priority: u32 = prio_s
        .trim()
        .parse()
        .map_err(|_| format!("bad priority `{}`", prio_s.trim()))?;
    let toks: Vec<&str> = rest.split_whitespace().collect();
    let mut notes = Vec::new();
    let mut rule = IpRule {
        family: default_family,
        priority,
        not: false,
        src: None,
        dst: None,
        iif: None,
        oif: None,
        fwmark: None,
        fwmask: None,
        ipproto: None,
        table: None,
        action: String::new(),
        detached: false,
    };
    let mut i = 0;
    while i < toks.len() {
        let key = toks[i];
        let val = toks.get(i + 1).copied();
        let needs_value = matches!(
            key,
            "from" | "to" | "fwmark" | "iif" | "oif" | "ipproto" | "lookup" | "table" | "goto"
        ) || IGNORED_WITH_VALUE.contains(&key);
        if needs_value && val.is_none() {
            return Err(format!("`{key}` without a value (truncated?)"));
        }
        let v = val.unwrap_or_default();
        let mut step = 2;
        match key {
            "not" => {
                rule.not = true;
                step = 1;
            }
            "from" => rule.src = parse_selector(v)?,
            "to" => rule.dst = parse_selector(v)?,
            "fwmark" => {
                let (m, k) = parse_fwmark(v).ok_or_else(|| format!("bad fwmark `{v}`"))?;
                rule.fwmark = Some(m);
                rule.fwmask = Some(k);
            }
            "iif" => rule.iif = Some(v.to_string()),
            "oif" => rule.oif = Some(v.to_string()),
            "ipproto" => rule.ipproto = Some(v.to_string()),
            "lookup" | "table" => {
                rule.action = "lookup".into();
                if v.starts_with("[l3mdev") {
                    // `lookup [l3mdev-table]`: the table comes from the VRF device.
                } else {
                    match table_id_from_name(v) {
                        Some(t) => rule.table = Some(t),
                        None => notes.push(format!("unknown table name `{v}` (rt_tables alias?)")),
                    }
                }
            }
            "goto" => {
                rule.action = "goto".into();
                if v.parse::<u32>().is_err() {
                    return Err(format!("bad goto target `{v}`"));
                }
            }
            "l3mdev" => step = 1,
            k if BARE_ACTIONS.contains(&k) => {
                rule.action = k.to_string();
                step = 1;
            }
            k if k.starts_with('[') => {
                // `[detached]`, `[oif detached]`: the iif/oif device does not exist.
                let mut j = i;
                while j < toks.len() && !toks[j].ends_with(']') {
                    j += 1;
                }
                if toks[i..toks.len().min(j + 1)]
                    .iter()
                    .any(|t| t.trim_matches(|c| c == '[' || c == ']') == "detached")
                {
                    rule.detached = true;
                } else {
                    notes.push(format!("unknown annotation `{k}` ignored"));
                }
                step = j + 1 - i;
            }
            k if IGNORED_WITH_VALUE.contains(&k) => {}
            k => {
                notes.push(format!("unknown rule token `{k}` ignored"));
                step = 1;
            }
        }
        i += step;
    }
    if rule.action.is_empty() {
        return Err("rule without an action (truncated?)".into());
    }
    if rule.action != "lookup" && rule.table.take().is_some() {
        notes.push(format!(
            "`lookup` and `{}` both given; kept the last",
            rule.action
        ));
    }
    if let Some(f) = rule
        .src
        .as_ref()
        .or(rule.dst.as_ref())
        .map(|n| Family::of(&n.addr()))
    {
        rule.family = f;
    }
    Ok((rule, notes))
}

/// `"src": "10.0.0.0", "srclen": 8` → 10.0.0.0/8; `"src": "all"` → None.
fn json_selector(
    m: &Map<String, Value>,
    key: &str,
    len_key: &str,
) -> Result<Option<IpNet>, String> {
    let Some(s) = jstr(m, key) else {
        return Ok(None);
    };
    if s == "all" {
        return Ok(None);
    }
    let net = match ju64(m, len_key) {
        Some(len) => parse_prefix(&format!("{s}/{len}"), None),
        None => parse_prefix(s, None),
    };
    net.map(Some).ok_or_else(|| format!("bad {key} `{s}`"))
}

fn rule_from_json(
    m: &Map<String, Value>,
    el: &JsonElement,
    w: &mut Vec<ParseWarning>,
    default_family: Family,
) -> Option<IpRule> {
    let skip = |w: &mut Vec<ParseWarning>, msg: String| {
        w.push(ParseWarning::new(el.line, &el.raw, msg));
        None
    };
    let Some(priority) = ju64(m, "priority").and_then(|p| u32::try_from(p).ok()) else {
        return skip(w, "rule without priority skipped".into());
    };
    let src = match json_selector(m, "src", "srclen") {
        Ok(s) => s,
        Err(e) => return skip(w, e),
    };
    let dst = match json_selector(m, "dst", "dstlen") {
        Ok(s) => s,
        Err(e) => return skip(w, e),
    };
    let fwmark = jstr(m, "fwmark")
        .and_then(parse_u32_any)
        .or_else(|| ju64(m, "fwmark").and_then(|v| u32::try_from(v).ok()));
    let fwmask = jstr(m, "fwmask")
        .and_then(parse_u32_any)
        .or_else(|| ju64(m, "fwmask").and_then(|v| u32::try_from(v).ok()))
        .or(fwmark.map(|_| u32::MAX));
    let mut table = None;
    let action = if let Some(a) = jstr(m, "action") {
        a.to_string()
    } else if m.contains_key("goto") {
        "goto".to_string()
    } else if m.contains_key("nop") {
        "nop".to_string()
    } else if let Some(t) = jstr(m, "table") {
        match table_id_from_name(t) {
            Some(id) => table = Some(id),
            None => w.push(ParseWarning::new(
                el.line,
                &el.raw,
                format!("unknown table name `{t}` (rt_tables alias?)"),
            )),
        }
        "lookup".to_string()
    } else if m.contains_key("l3mdev") {
        "lookup".to_string()
    } else {
        return skip(w, "rule without an action skipped".into());
    };
    let family = src
        .as_ref()
        .or(dst.as_ref())
        .map(|n| Family::of(&n.addr()))
        .or_else(|| jstr(m, "family").and_then(family_of_name))
        .unwrap_or(default_family);
    Some(IpRule {
        family,
        priority,
        not: m.contains_key("not"),
        src,
        dst,
        iif: jstr(m, "iif").map(str::to_string),
        oif: jstr(m, "oif").map(str::to_string),
        fwmark,
        fwmask,
        ipproto: jstr(m, "ipproto")
            .map(str::to_string)
            .or_else(|| ju64(m, "ipproto").map(|p| p.to_string())),
        table,
        action,
        detached: m.contains_key("iif_detached") || m.contains_key("oif_detached"),
    })
}

fn family_of_name(s: &str) -> Option<Family> {
    match s {
        "inet" | "ipv4" => Some(Family::Inet),
        "inet6" | "ipv6" => Some(Family::Inet6),
        _ => family_of_token(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> IpRule {
        let p = parse_rule(line).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.len(), 1);
        p.value.into_iter().next().unwrap()
    }

    #[test]
    fn cni_rules() {
        let r = one("512:\tfrom all to 192.168.5.1 lookup main");
        assert_eq!(r.priority, 512);
        assert_eq!(r.src, None);
        assert_eq!(r.dst.unwrap().to_string(), "192.168.5.1/32");
        assert_eq!((r.action.as_str(), r.table), ("lookup", Some(254)));
        let r = one("1024:\tfrom all fwmark 0x80/0x80 lookup main");
        assert_eq!((r.fwmark, r.fwmask), (Some(0x80), Some(0x80)));
        let r = one("1024:\tfrom all fwmark 0x80/0xffffffff lookup main");
        assert_eq!((r.fwmark, r.fwmask), (Some(0x80), Some(u32::MAX)));
        let r = one("2006:\tfrom all fwmark 0x4000 lookup 2");
        assert_eq!((r.fwmark, r.fwmask), (Some(0x4000), Some(u32::MAX)));
        assert_eq!(r.to_ip_line(), "2006:\tfrom all fwmark 0x4000 lookup 2");
        let r = one("1536: from 192.168.1.5 to 192.168.0.0/16 lookup 2");
        assert_eq!(r.src.unwrap().to_string(), "192.168.1.5/32");
        assert_eq!(r.dst.unwrap().to_string(), "192.168.0.0/16");
        assert_eq!(r.table, Some(2));
        let r = one("10:\tfrom all iif vlan.eth.2 [detached] lookup 102");
        assert_eq!(r.iif.as_deref(), Some("vlan.eth.2"));
        assert!(r.detached);
        assert_eq!(r.table, Some(102));
        let r = one("2000:\tfrom all iif eni055ab01821c lookup 100000");
        assert_eq!(r.table, Some(100000));
        assert!(!r.detached);
        let r = one("11:\tfrom all oif vlan.eth.2 [oif detached] lookup 102");
        assert!(r.detached);
    }

    #[test]
    fn actions_not_and_family() {
        let r = one("2001:\tnot from 10.0.0.0/8 goto 32765");
        assert!(r.not);
        assert_eq!((r.action.as_str(), r.table), ("goto", None));
        for a in ["blackhole", "unreachable", "prohibit", "nop"] {
            assert_eq!(one(&format!("3: from 10.66.0.0/16 {a}")).action, a);
        }
        let r = one("5:\tfrom fe80:ec2::1 ipproto ipv6-icmp lookup local");
        assert_eq!(r.family, Family::Inet6);
        assert_eq!(r.ipproto.as_deref(), Some("ipv6-icmp"));
        assert_eq!(r.table, Some(255));
        let p = parse_rule_family("32766:\tfrom all lookup main", Family::Inet6).unwrap();
        assert_eq!(p.value[0].family, Family::Inet6);
        assert_eq!(one("32766:from all lookup main").family, Family::Inet);
    }

    #[test]
    fn truncated_rules_are_warnings() {
        let p = parse_rule("0:\tfrom all lookup local\n1536:\tfrom 192.168.7").unwrap();
        assert_eq!(p.value.len(), 1);
        assert_eq!(p.warnings[0].line, 2);
        let p = parse_rule("0:\tfrom all lookup local\n512:\tfrom all to 10.0.0.1 look").unwrap();
        assert_eq!(p.value.len(), 1);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].message.contains("truncated"));
        let p = parse_rule("0:\tfrom all lookup local\n1024:\tfrom all fwmark 0x80/0x").unwrap();
        assert_eq!(p.value.len(), 1);
        assert!(p.warnings[0].message.contains("fwmark"));
    }

    #[test]
    fn annotations_and_blockquotes_are_one_warning() {
        let text = "> 0:\tfrom all lookup local\n512:\tfrom all to 192.168.1.5 lookup main   # <----- Pod's IP\n1536: from 10.0.1.5 lookup 2 --> 注释\n<-- this one\n";
        let p = parse_rule(text).unwrap();
        assert_eq!(p.value.len(), 3, "{:?}", p.warnings);
        assert_eq!(p.value[1].table, Some(254));
        assert_eq!(p.value[1].dst.unwrap().to_string(), "192.168.1.5/32");
        assert_eq!(p.value[2].table, Some(2));
        let lines: Vec<usize> = p.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![2, 3, 4], "{:?}", p.warnings);
        assert!(p.warnings[0].message.contains("# <----- Pod's IP"));
        assert!(p.warnings[1].message.contains("注释"));
    }

    #[test]
    fn two_actions_keep_the_last_without_a_table() {
        // Found by the fuzzer: the table of a `lookup` overridden by a later action must go.
        let p = parse_rule("1536:\tfrom 192.168.1.5 lookup 26 unreachable").unwrap();
        assert_eq!(p.value[0].action, "unreachable");
        assert_eq!(p.value[0].table, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn json_rules() {
        let p = parse_rule_family(
            r#"[{"priority":0,"src":"all","table":"local"},{"priority":10,"src":"all","iif":"vlan.eth.2","iif_detached":null,"table":"102"},{"priority":1024,"src":"all","fwmark":"0x80","fwmask":"0x80","table":"main"},{"priority":1536,"src":"2600:1f14:abc:de00::","srclen":64,"table":"2"},{"priority":2001,"not":null,"src":"10.0.0.0","srclen":8,"goto":32765},{"priority":2005,"src":"10.69.0.0","srclen":16,"nop":null}]"#,
            Family::Inet6,
        )
        .unwrap();
        let r = &p.value;
        assert!(p.warnings.is_empty());
        assert_eq!(r[0].table, Some(255));
        assert_eq!(r[0].family, Family::Inet6);
        assert!(r[1].detached);
        assert_eq!((r[2].fwmark, r[2].fwmask), (Some(0x80), Some(0x80)));
        assert_eq!(r[3].src.unwrap().to_string(), "2600:1f14:abc:de00::/64");
        assert!(r[4].not);
        assert_eq!(r[4].family, Family::Inet);
        assert_eq!(r[4].action, "goto");
        assert_eq!(r[5].action, "nop");
    }
}
