//! ipamd introspection JSON (`/v1/enis`, `/v1/networkutils-env-settings`,
//! `/v1/ipamd-env-settings`; groundtruth §4) and aws-node environment files.
//!
//! `/v1/enis` shapes:
//! - v1.20+: a map keyed by network card, `{"0":{"TotalIPs":…,"AssignedIPs":…,"ENIs":{…}}}`;
//! - v1.8–v1.19: the single `ENIInfos` object `{"TotalIPs":…,"AssignedIPs":…,"ENIs":{…}}`;
//! - before v1.8 (still in `docs/troubleshooting.md`): `{"ENIIPPools":{…}}` with
//!   `IPv4Addresses` and a boolean `Assigned`; read best-effort.
//!
//! Pastes often carry the `curl` progress meter and the shell prompt around the JSON; both are
//! skipped.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use model::cni::{IpamdAddress, IpamdCidr, IpamdEni, IpamdEnis, IpamdNetworkCard};
use serde_json::{Map, Value};

use crate::util::{ParseWarning, Parsed};

/// Parse `/v1/enis` (any version) into the normalised model.
pub fn parse_enis(json: &str) -> Result<IpamdEnis, String> {
    let root = first_json_value(json)?;
    let obj = match root {
        Value::Object(o) => o,
        other => return Err(format!("expected a JSON object, found {}", kind_of(&other))),
    };
    if obj.contains_key("AvailableCommands") {
        return Err(
            "ipamd answered with its root listing (`AvailableCommands`), not /v1/enis".into(),
        );
    }
    let mut cards = Vec::new();
    if is_eni_infos(&obj) {
        cards.push(network_card(0, &obj)?);
    } else if !obj.is_empty() && obj.keys().all(|k| k.parse::<u32>().is_ok()) {
        for (k, v) in &obj {
            let index: u32 = k
                .parse()
                .map_err(|_| format!("network card key `{k}` is not a number"))?;
            let card = v
                .as_object()
                .ok_or_else(|| format!("network card {k}: expected an object"))?;
            cards.push(network_card(index, card)?);
        }
        cards.sort_by_key(|c| c.index);
    } else if obj.is_empty() {
        // v1.20+ before any ENI was added: `{}`.
    } else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).take(5).collect();
        return Err(format!(
            "not a /v1/enis response (top-level keys: {})",
            keys.join(", ")
        ));
    }
    Ok(IpamdEnis {
        network_cards: cards,
    })
}

/// `/v1/networkutils-env-settings` or `/v1/ipamd-env-settings`, normalised as documented on
/// [`model::cni::CniConfig::env`]: booleans `true`/`false`, numbers in decimal, arrays
/// comma-joined, `null` omitted, strings as-is (objects, which ipamd never sends, as JSON).
pub fn parse_env_settings(json: &str) -> Result<BTreeMap<String, String>, String> {
    match first_json_value(json)? {
        Value::Object(o) => Ok(o
            .into_iter()
            .filter_map(|(k, v)| env_value(&v).map(|s| (k, s)))
            .collect()),
        other => Err(format!("expected a JSON object, found {}", kind_of(&other))),
    }
}

/// Environment of aws-node from any of:
/// - `KEY=VALUE` lines (`cni-env` files, `env` output, `export KEY="v"`, `#` comments);
/// - `kubectl get ds aws-node -o json | jq '.spec.template.spec.containers[0].env'`
///   (`[{"name":…,"value":…}]`; `valueFrom` entries are skipped with a warning);
/// - `kubectl describe ds aws-node` (`      AWS_VPC_K8S_CNI_EXTERNALSNAT:  false`);
/// - `/proc/<pid>/environ` (NUL-separated) passed as text;
/// - an env-settings JSON object.
pub fn parse_env_file(text: &str) -> Parsed<BTreeMap<String, String>> {
    let mut out = Parsed::new(BTreeMap::new());
    if text.contains('\0') {
        for (i, item) in text.split('\0').enumerate() {
            if item.is_empty() {
                continue;
            }
            match item.split_once('=') {
                Some((k, v)) if is_env_name(k) => {
                    out.value.insert(k.to_string(), v.to_string());
                }
                _ => out.warnings.push(ParseWarning::new(
                    i + 1,
                    item,
                    "not a KEY=VALUE environ entry",
                )),
            }
        }
        return out;
    }
    let trimmed = text.trim_start();
    // `[{"name":…}]` or `[]`, not a prompt such as `[root@ip-10-0-0-1 ~]# env`.
    let json_array = trimmed
        .strip_prefix('[')
        .is_some_and(|r| r.trim_start().starts_with(['{', ']']));
    if json_array {
        match serde_json::from_str::<Value>(trimmed.trim_end()) {
            Ok(Value::Array(items)) => {
                env_array(&items, text, &mut out);
                return out;
            }
            Ok(_) | Err(_) => out.warnings.push(ParseWarning::new(
                line_of(text, trimmed),
                trimmed.lines().next().unwrap_or(""),
                "looks like a JSON env array but does not parse; reading lines",
            )),
        }
    } else if trimmed.starts_with('{') {
        match parse_env_settings(trimmed) {
            // `{ "name": …, "value": … }` is one entry of an env array whose brackets were
            // lost, not a settings object: read it (and its siblings) line by line below.
            Ok(m) if m.contains_key("name") && m.len() <= 3 => {}
            Ok(m) => {
                out.value = m;
                return out;
            }
            Err(e) => out.warnings.push(ParseWarning::new(
                line_of(text, trimmed),
                trimmed.lines().next().unwrap_or(""),
                format!("JSON object does not parse ({e}); reading lines"),
            )),
        }
    }
    // `kubectl describe` output is mostly not env; only its env lines are worth a warning.
    let describe = text
        .lines()
        .any(|l| matches!(l.trim(), "Environment:" | "Containers:" | "Pod Template:"));
    // Pieces of a `jq '.spec.template.spec.containers[0].env'` array whose paste lost its
    // brackets or was cut with `...`: `"name": "X",` then `"value": "Y"` lines, or one
    // `{ "name": "X", "value": "Y" },` per line.
    let mut pending: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim().trim_end_matches(',').trim_end();
        if matches!(l, "{" | "}" | "[" | "]" | "..." | "…") {
            continue;
        }
        if let Some((k, v)) = json_member(l) {
            match (k.as_str(), v) {
                ("name", Value::String(n)) => pending = Some(n),
                ("value", v) => match pending.take() {
                    Some(n) => {
                        out.value.insert(n, env_value(&v).unwrap_or_default());
                    }
                    None => out.warnings.push(ParseWarning::new(
                        i + 1,
                        raw,
                        "`\"value\"` without a preceding `\"name\"`",
                    )),
                },
                ("valueFrom", _) => {
                    if let Some(n) = pending.take() {
                        out.warnings.push(ParseWarning::new(
                            i + 1,
                            raw,
                            format!("{n} comes from valueFrom; its value is not in the manifest"),
                        ));
                    }
                }
                _ => {}
            }
            continue;
        }
        if l.starts_with('{') {
            if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(l) {
                env_array(&[Value::Object(o)], text, &mut out);
                continue;
            }
        }
        env_line(i + 1, raw, describe, &mut out);
    }
    out
}

/// One `"key": value` JSON object member on its own line (trailing comma already removed).
fn json_member(l: &str) -> Option<(String, Value)> {
    if !l.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<Value>(&format!("{{{l}}}")).ok()? {
        Value::Object(o) if o.len() == 1 => o.into_iter().next(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// /v1/enis internals

/// The first JSON value in `text`, skipping a `curl` progress meter or prompt before it and
/// anything after it.
fn first_json_value(text: &str) -> Result<Value, String> {
    // Candidates: every line that starts with `{` or `[` (a prompt like `[root@ip-…]# curl`
    // starts with `[` too, so each is tried in turn), then the first brace anywhere.
    let mut starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter_map(|i| {
            let r = text.get(i..)?;
            let pad = r.len() - r.trim_start_matches([' ', '\t']).len();
            r.get(pad..)?.starts_with(['{', '[']).then_some(i + pad)
        })
        .collect();
    if let Some(i) = text.find('{') {
        starts.push(i);
    }
    if starts.is_empty() {
        return Err("no JSON object in the input".into());
    }
    // Of the failed candidates, report the one that got furthest: a `[root@ip-…]#` prompt
    // fails at column 2, the real document where it is damaged or cut.
    let mut best: Option<((usize, usize), String)> = None;
    for &start in &starts {
        let rest = text.get(start..).unwrap_or("");
        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match de.next() {
            Some(Ok(v)) => return Ok(v),
            Some(Err(e)) => {
                let line = text.get(..start).map_or(0, |p| p.matches('\n').count()) + e.line();
                let cut = if e.is_eof() {
                    " (the document ends early: a cut paste?)"
                } else {
                    ""
                };
                let msg = format!(
                    "invalid JSON at line {line} column {}: {e}{cut}",
                    e.column()
                );
                if best.as_ref().is_none_or(|(at, _)| (line, e.column()) > *at) {
                    best = Some(((line, e.column()), msg));
                }
            }
            None => {}
        }
    }
    Err(best.map_or_else(|| "no JSON value in the input".into(), |(_, m)| m))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_eni_infos(o: &Map<String, Value>) -> bool {
    o.contains_key("ENIs") || o.contains_key("ENIIPPools") || o.contains_key("TotalIPs")
}

fn u64_of(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn bool_of(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn network_card(index: u32, o: &Map<String, Value>) -> Result<IpamdNetworkCard, String> {
    let mut enis = Vec::new();
    let (map, legacy) = match (o.get("ENIs"), o.get("ENIIPPools")) {
        (Some(v), _) => (v, false),
        (None, Some(v)) => (v, true),
        (None, None) => (&Value::Null, false),
    };
    match map {
        Value::Object(m) => {
            for (id, e) in m {
                let e = e
                    .as_object()
                    .ok_or_else(|| format!("ENI {id}: expected an object"))?;
                enis.push(if legacy {
                    legacy_eni(id, e)?
                } else {
                    eni(id, e)?
                });
            }
        }
        Value::Null => {}
        other => {
            return Err(format!(
                "network card {index}: `ENIs` is {}, expected an object",
                kind_of(other)
            ))
        }
    }
    enis.sort_by(|a, b| a.device_number.cmp(&b.device_number).then(a.id.cmp(&b.id)));
    Ok(IpamdNetworkCard {
        index,
        total_ips: u64_of(o.get("TotalIPs")),
        assigned_ips: u64_of(o.get("AssignedIPs")),
        enis,
    })
}

fn eni(key: &str, e: &Map<String, Value>) -> Result<IpamdEni, String> {
    let id = str_of(e, "ID").unwrap_or(key).to_string();
    let mut cidrs = Vec::new();
    for field in ["AvailableIPv4Cidrs", "IPv6Cidrs"] {
        if let Some(Value::Object(m)) = e.get(field) {
            for (ckey, c) in m {
                let c = c
                    .as_object()
                    .ok_or_else(|| format!("ENI {id}: {field} `{ckey}`: expected an object"))?;
                cidrs.push(cidr(&id, ckey, c)?);
            }
        }
    }
    cidrs.sort_by_key(|c| c.cidr);
    Ok(IpamdEni {
        id,
        is_primary: bool_of(e.get("IsPrimary")),
        is_trunk: bool_of(e.get("IsTrunk")),
        is_efa: bool_of(e.get("IsEFA")),
        device_number: u32::try_from(u64_of(e.get("DeviceNumber"))).unwrap_or(u32::MAX),
        route_table_id: e
            .get("RouteTableID")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        cidrs,
    })
}

fn cidr(eni: &str, key: &str, c: &Map<String, Value>) -> Result<IpamdCidr, String> {
    // `Cidr` is Go's net.IPNet: {"IP":"192.168.5.10","Mask":"/////w=="} (mask base64).
    let from_obj = c.get("Cidr").and_then(Value::as_object).and_then(|n| {
        let ip: IpAddr = n.get("IP")?.as_str()?.parse().ok()?;
        let len = mask_prefix_len(n.get("Mask")?.as_str()?)?;
        IpNet::new(ip, len).ok()
    });
    let net = match from_obj {
        Some(n) => n,
        None => key
            .parse::<IpNet>()
            .or_else(|_| key.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                format!("ENI {eni}: CIDR `{key}` is neither a valid Cidr object nor key")
            })?,
    };
    let mut addresses = Vec::new();
    if let Some(Value::Object(m)) = c.get("IPAddresses") {
        for (akey, a) in m {
            let a = a
                .as_object()
                .ok_or_else(|| format!("ENI {eni}: address `{akey}`: expected an object"))?;
            addresses.push(address(eni, akey, a)?);
        }
    }
    addresses.sort_by_key(|a| a.address);
    Ok(IpamdCidr {
        cidr: net,
        is_prefix: bool_of(c.get("IsPrefix")),
        addresses,
    })
}

fn address(eni: &str, key: &str, a: &Map<String, Value>) -> Result<IpamdAddress, String> {
    let text = str_of(a, "Address").unwrap_or(key);
    let address: IpAddr = text
        .parse()
        .map_err(|_| format!("ENI {eni}: address `{text}` is not an IP address"))?;
    let ipam_key = a.get("IPAMKey").and_then(Value::as_object);
    let container_id = ipam_key.and_then(|k| str_of(k, "containerID"));
    let network = ipam_key.and_then(|k| str_of(k, "networkName"));
    // AddressInfo.Assigned(): IPAMKey is not the zero value. The legacy shape says it outright.
    let assigned = match a.get("Assigned") {
        Some(Value::Bool(b)) => *b,
        _ => container_id.is_some() || network.is_some(),
    };
    let meta = a.get("IPAMMetadata").and_then(Value::as_object);
    Ok(IpamdAddress {
        address,
        assigned,
        pod_namespace: meta
            .and_then(|m| str_of(m, "k8sPodNamespace"))
            .map(str::to_string),
        pod_name: meta
            .and_then(|m| str_of(m, "k8sPodName"))
            .map(str::to_string),
        container_id: container_id.map(str::to_string),
    })
}

/// Pre-v1.8 `ENIIPPools` entry: `IPv4Addresses` keyed by IP with `Assigned`.
fn legacy_eni(key: &str, e: &Map<String, Value>) -> Result<IpamdEni, String> {
    let id = str_of(e, "ID").unwrap_or(key).to_string();
    let mut cidrs = Vec::new();
    if let Some(Value::Object(m)) = e.get("IPv4Addresses") {
        for (akey, a) in m {
            let a = a
                .as_object()
                .ok_or_else(|| format!("ENI {id}: address `{akey}`: expected an object"))?;
            let addr = address(&id, akey, a)?;
            cidrs.push(IpamdCidr {
                cidr: IpNet::from(addr.address),
                is_prefix: false,
                addresses: vec![addr],
            });
        }
    }
    cidrs.sort_by_key(|c| c.cidr);
    Ok(IpamdEni {
        id,
        is_primary: bool_of(e.get("IsPrimary")),
        is_trunk: false,
        is_efa: false,
        device_number: u32::try_from(u64_of(e.get("DeviceNumber"))).unwrap_or(u32::MAX),
        route_table_id: None,
        cidrs,
    })
}

/// Prefix length of a base64 net.IPMask (`/////w==` → 32, `////8A==` → 28). `None` unless
/// the ones are contiguous.
fn mask_prefix_len(b64: &str) -> Option<u8> {
    let bytes = base64_decode(b64)?;
    if bytes.len() != 4 && bytes.len() != 16 {
        return None;
    }
    let mut len: u32 = 0;
    let mut seen_zero = false;
    for b in bytes {
        for bit in (0..8).rev() {
            if b & (1 << bit) != 0 {
                if seen_zero {
                    return None;
                }
                len += 1;
            } else {
                seen_zero = true;
            }
        }
    }
    u8::try_from(len).ok()
}

/// Standard base64 with padding, small inputs only.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// env internals

fn env_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(a.iter().filter_map(env_value).collect::<Vec<_>>().join(",")),
        Value::Object(_) => Some(v.to_string()),
    }
}

fn is_env_name(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// 1-based line of `sub` (a suffix slice of `text`).
fn line_of(text: &str, sub: &str) -> usize {
    let off = text.len().saturating_sub(sub.len());
    text.get(..off).map_or(1, |p| p.matches('\n').count() + 1)
}

fn env_array(items: &[Value], text: &str, out: &mut Parsed<BTreeMap<String, String>>) {
    for item in items {
        let name = item.get("name").and_then(Value::as_str);
        let name = match name {
            Some(n) => n,
            None => {
                out.warnings.push(ParseWarning::new(
                    1,
                    &item.to_string(),
                    "env entry without a name",
                ));
                continue;
            }
        };
        let line = text
            .find(&format!("\"{name}\""))
            .map_or(1, |i| line_of(text, &text[i..]));
        if item.get("valueFrom").is_some() {
            out.warnings.push(ParseWarning::new(
                line,
                &item.to_string(),
                format!("{name} comes from valueFrom; its value is not in the manifest"),
            ));
            continue;
        }
        let value = item.get("value").and_then(env_value).unwrap_or_default();
        out.value.insert(name.to_string(), value);
    }
}

fn env_line(line_no: usize, raw: &str, describe: bool, out: &mut Parsed<BTreeMap<String, String>>) {
    let l = raw.trim();
    if l.is_empty() || l.starts_with('#') || l.starts_with("```") {
        return;
    }
    // Shell prompts (`$ env`, `[root@ip-10-0-0-1 ~]# cat /proc/1/environ | tr …`); a
    // `KEY=abc$` line is not one.
    let first_has_eq = l.split(' ').next().is_some_and(|t| t.contains('='));
    if l == "$" || l.starts_with("$ ") {
        return;
    }
    if !first_has_eq
        && l.split(' ')
            .take(2)
            .any(|t| t.len() > 1 && (t.ends_with('$') || t.ends_with('#')))
    {
        return;
    }
    let l = l.strip_prefix("export ").map_or(l, str::trim_start);
    // KEY=VALUE
    if let Some((k, v)) = l.split_once('=') {
        if is_env_name(k) {
            match unquote(v) {
                Ok(v) => {
                    out.value.insert(k.to_string(), v);
                }
                Err(msg) => out.warnings.push(ParseWarning::new(line_no, raw, msg)),
            }
            return;
        }
    }
    // `kubectl describe`: `      AWS_VPC_K8S_CNI_EXTERNALSNAT:  false`. Only upper-case names
    // count, so describe's own `Image:`/`Environment:` lines are not taken for env vars.
    if let Some((k, v)) = l.split_once(':') {
        let upper = k
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if is_env_name(k) && upper {
            let v = v.trim();
            if v.starts_with("<set to the key") || v.starts_with("(v1:") || v.starts_with("<set to")
            {
                out.warnings.push(ParseWarning::new(
                    line_no,
                    raw,
                    format!("{k} comes from valueFrom; its value is not in the manifest"),
                ));
            } else {
                out.value.insert(k.to_string(), v.to_string());
            }
            return;
        }
        // Other `Key: value` lines of describe output are not env.
        return;
    }
    if !describe {
        out.warnings.push(ParseWarning::new(
            line_no,
            raw,
            "neither KEY=VALUE nor `KEY: value`",
        ));
    }
}

/// Shell-ish value: `"double \"quoted\""`, `'single'`, or bare (a ` #` comment is cut).
fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return Ok(out),
                c => out.push(c),
            }
        }
        return Err("unterminated double quote".into());
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return rest
            .find('\'')
            .map(|i| rest[..i].to_string())
            .ok_or_else(|| "unterminated single quote".into());
    }
    Ok(match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_prefix_len("/////w=="), Some(32));
        assert_eq!(mask_prefix_len("////8A=="), Some(28));
        assert_eq!(mask_prefix_len("////AA=="), Some(24));
        assert_eq!(mask_prefix_len("/////////////////////w=="), Some(128));
        assert_eq!(mask_prefix_len("AP///w=="), None, "not contiguous");
        assert_eq!(mask_prefix_len("!!"), None);
    }

    #[test]
    fn env_values() {
        let m = parse_env_settings(r#"{"a":true,"b":9001,"c":null,"d":["x","y"],"e":"s","f":2.0}"#)
            .unwrap();
        assert_eq!(m["a"], "true");
        assert_eq!(m["b"], "9001");
        assert!(!m.contains_key("c"));
        assert_eq!(m["d"], "x,y");
        assert_eq!(m["e"], "s");
        assert_eq!(m["f"], "2");
    }

    #[test]
    fn cut_enis_after_a_bracket_prompt_names_the_cut() {
        // olga-mir/k8s notes: `[root@ip-…]# curl … | python -m json.tool | jq .`, cut mid-way.
        let e = parse_enis(
            "[root@ip-10-0-208-27 ~]# curl -s http://localhost:61679/v1/enis | jq .\n{\n  \"AssignedIPs\": 4,\n  \"ENIs\": {\n    \"eni-0\": {\n",
        )
        .unwrap_err();
        assert!(e.contains("ends early"), "{e}");
        assert!(!e.contains("line 1 column 2"), "{e}");
    }

    #[test]
    fn env_array_fragments_and_sh_prompt() {
        // seed 001: the jq env output cut with `...`, brackets and indentation lost.
        let p = parse_env_file(
            "...\n{\n\"name\": \"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS\",\n\"value\": \"172.20.0.0/16\"\n}\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(
            p.value["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"],
            "172.20.0.0/16"
        );
        // One object per line, the array cut before its closing bracket.
        let p = parse_env_file(
            "  { \"name\": \"AWS_VPC_K8S_CNI_EXTERNALSNAT\", \"value\": \"false\" },\n  { \"name\": \"AWS_VPC_ENI_MTU\", \"value\": \"9001\" },\n",
        );
        assert_eq!(p.value["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "false");
        assert_eq!(p.value["AWS_VPC_ENI_MTU"], "9001");
        // #407: `sh-4.2# env | grep CNI` inside the aws-node container.
        let p =
            parse_env_file("sh-4.2# env | grep CNI\nAWS_VPC_K8S_CNI_RANDOMIZESNAT=hashrandom\n");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "hashrandom");
        // A value with no name is reported, not guessed.
        let p = parse_env_file("\"value\": \"x\"\n");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.value.is_empty());
    }
}
