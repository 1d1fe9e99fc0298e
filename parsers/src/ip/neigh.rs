//! `ip neigh` text and `ip -j neigh` JSON.

use std::net::IpAddr;

use model::net::Neighbour;
use serde_json::{Map, Value};

use super::common::{
    check_empty, clean_lines, finish, jstr, looks_like_json, parse_json_array, JsonElement,
};
use crate::{ParseError, ParseWarning, Parsed};

/// NUD states as printed (`NUD_*`).
const STATES: &[&str] = &[
    "INCOMPLETE",
    "REACHABLE",
    "STALE",
    "DELAY",
    "PROBE",
    "FAILED",
    "NOARP",
    "PERMANENT",
    "NONE",
];

/// Words that stand alone (no value) on a neighbour line.
const BARE: &[&str] = &["router", "proxy", "extern_learn", "offload", "managed"];

/// `169.254.1.1 dev eth0 lladdr aa:bb:cc:dd:ee:ff PERMANENT`; `ifindex` is 0 (not printed).
pub fn parse_neigh(text: &str) -> Result<Parsed<Vec<Neighbour>>, ParseError> {
    check_empty(text)?;
    if looks_like_json(text) {
        let (n, warnings) = parse_json_array(text, "ip -j neigh", neigh_from_json)?;
        return Ok(Parsed { value: n, warnings });
    }
    let lines = clean_lines(text);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for line in &lines {
        match neigh_from_text(&line.text) {
            Ok((n, notes)) => {
                for msg in notes {
                    warnings.push(ParseWarning::new(line.no, &line.text, msg));
                }
                out.push(n);
            }
            Err(msg) => warnings.push(ParseWarning::new(line.no, &line.text, msg)),
        }
    }
    let (out, warnings) = finish(out, warnings, &lines, "ip neigh")?;
    Ok(Parsed {
        value: out,
        warnings,
    })
}

fn neigh_from_text(text: &str) -> Result<(Neighbour, Vec<String>), String> {
    let toks: Vec<&str> = text.split_whitespace().collect();
    let first = toks.first().copied().unwrap_or_default();
    let dst: IpAddr = first
        .parse()
        .map_err(|_| format!("`{first}` is not an address"))?;
    let mut n = Neighbour {
        ifindex: 0,
        dev: String::new(),
        dst,
        lladdr: None,
        state: Vec::new(),
    };
    let mut notes = Vec::new();
    let mut i = 1;
    while i < toks.len() {
        let val = toks.get(i + 1).copied();
        match toks[i] {
            "dev" => n.dev = val.unwrap_or_default().to_string(),
            "lladdr" => n.lladdr = val.map(str::to_string),
            // `ip -s neigh`: `ref 1 used 10/10/7 probes 4`; `vlan`/`vni`/`port` on bridges.
            "ref" | "used" | "probes" | "vlan" | "vni" | "port" | "protocol" | "proto" => {}
            t if STATES.contains(&t) => {
                n.state.push(t.to_string());
                i += 1;
                continue;
            }
            t if BARE.contains(&t) => {
                i += 1;
                continue;
            }
            t => {
                notes.push(format!("unknown neighbour token `{t}` ignored"));
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok((n, notes))
}

fn neigh_from_json(
    m: &Map<String, Value>,
    el: &JsonElement,
    w: &mut Vec<ParseWarning>,
) -> Option<Neighbour> {
    let Some(dst) = jstr(m, "dst").and_then(|d| d.parse().ok()) else {
        w.push(ParseWarning::new(
            el.line,
            &el.raw,
            "neighbour without a valid dst",
        ));
        return None;
    };
    let state = match m.get("state") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Some(Neighbour {
        ifindex: 0,
        dev: jstr(m, "dev").unwrap_or_default().to_string(),
        dst,
        lladdr: jstr(m, "lladdr").map(str::to_string),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_gateway_neighbour() {
        let p = parse_neigh("169.254.1.1 dev eth0 lladdr 7a:11:22:33:44:55 PERMANENT \n10.0.0.9 dev eth0  FAILED\nfe80::1 dev eth0 lladdr 02:00:00:00:00:01 router STALE").unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let n = &p.value;
        assert_eq!(n[0].dst.to_string(), "169.254.1.1");
        assert_eq!(n[0].dev, "eth0");
        assert_eq!(n[0].lladdr.as_deref(), Some("7a:11:22:33:44:55"));
        assert_eq!(n[0].state, vec!["PERMANENT"]);
        assert_eq!(n[1].lladdr, None);
        assert_eq!(n[1].state, vec!["FAILED"]);
        assert_eq!(n[2].state, vec!["STALE"]);
    }

    #[test]
    fn not_neighbours() {
        assert!(matches!(
            parse_neigh("default via 10.0.0.1 dev eth0"),
            Err(ParseError::NotRecognized { .. })
        ));
    }
}
