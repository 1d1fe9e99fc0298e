//! `ifconfig` (net-tools) output: links and their addresses. The eks-log-collector's only
//! interface data (`networking/ifconfig.txt`); it never runs `ip addr`.
//!
//! net-tools 2.x prints `eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001` then
//! indented `inet 10.0.0.5  netmask 255.255.255.0  broadcast …`, `inet6 fe80::…  prefixlen 64
//! scopeid 0x20<link>` and `ether 0a:…` lines; 1.60 prints `eth0      Link encap:Ethernet
//! HWaddr 0a:…` and `inet addr:10.0.0.5  Bcast:…  Mask:255.255.255.0`. Both are read.
//! ifconfig shows no ifindex: links are numbered 1, 2, … in output order, and their
//! addresses carry the same number.

use std::net::{IpAddr, Ipv4Addr};

use model::{Address, Family, Link};

use crate::util::{ParseError, ParseWarning, Parsed};

/// Links and addresses, as [`crate::ip::parse_addr`] returns them.
pub type LinksAndAddresses = (Vec<Link>, Vec<Address>);

fn prefix_of_mask(mask: &str) -> Option<u8> {
    let m: Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(m);
    // A netmask is contiguous ones.
    (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
}

fn default_scope(ip: IpAddr) -> &'static str {
    if ip.is_loopback() {
        "host"
    } else {
        "global"
    }
}

/// Value after `key` among whitespace-separated words (`netmask 255.0.0.0`), or of a
/// `key:value` word (`Mask:255.0.0.0`).
fn field<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    for (i, w) in words.iter().enumerate() {
        if *w == key {
            return words.get(i + 1).copied();
        }
        if let Some(v) = w.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

/// Parse `ifconfig [-a]` output.
pub fn parse(text: &str) -> Result<Parsed<LinksAndAddresses>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let mut links: Vec<Link> = Vec::new();
    let mut addrs: Vec<Address> = Vec::new();
    let mut warnings = Vec::new();
    let mut first_bad: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = raw.split_whitespace().collect();
        let indented = raw.starts_with(' ') || raw.starts_with('\t');
        if !indented {
            // A header: `eth0: flags=…  mtu N` (2.x) or `eth0  Link encap:… HWaddr …` (1.60).
            let name = words[0].trim_end_matches(':');
            if name.is_empty() || !(words[0].ends_with(':') || raw.contains("Link encap")) {
                warnings.push(ParseWarning::new(
                    no,
                    raw,
                    "not an ifconfig interface header",
                ));
                first_bad.get_or_insert((no, raw.to_string()));
                continue;
            }
            let mut link = Link {
                ifindex: links.len() as u32 + 1,
                ifname: name.to_string(),
                ..Default::default()
            };
            if let Some(f) = words.iter().find_map(|w| w.strip_prefix("flags=")) {
                if let Some((_, rest)) = f.split_once('<') {
                    link.flags = rest
                        .trim_end_matches('>')
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
            }
            link.mtu = field(&words, "mtu").and_then(|m| m.parse().ok());
            link.address = field(&words, "HWaddr").map(|s| s.to_ascii_lowercase());
            links.push(link);
            continue;
        }
        let Some(link) = links.last_mut() else {
            warnings.push(ParseWarning::new(no, raw, "line before any interface"));
            first_bad.get_or_insert((no, raw.to_string()));
            continue;
        };
        // 1.60 prints the flags on their own line: `UP BROADCAST RUNNING MULTICAST  MTU:9001`.
        if words.iter().any(|w| w.starts_with("MTU:")) {
            link.flags = words
                .iter()
                .take_while(|w| !w.contains(':'))
                .map(|w| w.to_string())
                .collect();
            link.mtu = field(&words, "MTU").and_then(|m| m.parse().ok());
            continue;
        }
        match words[0] {
            "ether" => link.address = words.get(1).map(|s| s.to_ascii_lowercase()),
            "inet" => {
                let ip = words
                    .get(1)
                    .map(|w| w.strip_prefix("addr:").unwrap_or(w))
                    .and_then(|w| w.parse::<Ipv4Addr>().ok());
                let Some(ip) = ip else {
                    warnings.push(ParseWarning::new(no, raw, "inet line without an address"));
                    continue;
                };
                let mask = field(&words, "netmask").or_else(|| field(&words, "Mask"));
                let prefixlen = match mask.map(prefix_of_mask) {
                    Some(Some(p)) => p,
                    Some(None) => {
                        warnings.push(ParseWarning::new(no, raw, "netmask is not a netmask"));
                        continue;
                    }
                    None => 32,
                };
                let broadcast = field(&words, "broadcast")
                    .or_else(|| field(&words, "Bcast"))
                    .and_then(|b| b.parse::<IpAddr>().ok());
                addrs.push(Address {
                    ifindex: link.ifindex,
                    ifname: link.ifname.clone(),
                    family: Family::Inet,
                    local: IpAddr::V4(ip),
                    prefixlen,
                    scope: default_scope(IpAddr::V4(ip)).to_string(),
                    label: None,
                    broadcast,
                    flags: Vec::new(),
                });
            }
            "inet6" => {
                // 2.x: `inet6 fe80::1  prefixlen 64  scopeid 0x20<link>`;
                // 1.60: `inet6 addr: fe80::1/64 Scope:Link`.
                let (ip, prefix) = if words.get(1) == Some(&"addr:") {
                    match words.get(2).and_then(|w| w.split_once('/')) {
                        Some((a, p)) => (a.parse::<IpAddr>().ok(), p.parse::<u8>().ok()),
                        None => (None, None),
                    }
                } else {
                    (
                        words.get(1).and_then(|w| w.parse::<IpAddr>().ok()),
                        field(&words, "prefixlen").and_then(|p| p.parse().ok()),
                    )
                };
                let (Some(ip), Some(prefixlen)) = (ip, prefix) else {
                    warnings.push(ParseWarning::new(no, raw, "inet6 line not understood"));
                    continue;
                };
                let scope = field(&words, "scopeid")
                    .and_then(|s| s.split_once('<'))
                    .map(|(_, s)| s.trim_end_matches('>').to_ascii_lowercase())
                    .or_else(|| field(&words, "Scope").map(|s| s.to_ascii_lowercase()))
                    .unwrap_or_else(|| default_scope(ip).to_string());
                addrs.push(Address {
                    ifindex: link.ifindex,
                    ifname: link.ifname.clone(),
                    family: Family::Inet6,
                    local: ip,
                    prefixlen,
                    scope,
                    label: None,
                    broadcast: None,
                    flags: Vec::new(),
                });
            }
            // Counters, txqueuelen, `loop`, `unspec`, `Interrupt:`: not in the model.
            _ => {}
        }
    }
    if links.is_empty() {
        let (line, text) = first_bad.unwrap_or((1, String::new()));
        return Err(ParseError::NotRecognized {
            expected: "ifconfig",
            line,
            text: ParseWarning::new(line, &text, "").text,
        });
    }
    for l in &mut links {
        let has = |f: &str| l.flags.iter().any(|x| x == f);
        l.operstate = if has("LOOPBACK") {
            "UNKNOWN"
        } else if has("UP") && has("RUNNING") {
            "UP"
        } else {
            "DOWN"
        }
        .to_string();
        if has("RUNNING") && !has("LOWER_UP") {
            // ip's LOWER_UP is ifconfig's RUNNING (carrier).
            l.flags.push("LOWER_UP".to_string());
        }
    }
    Ok(Parsed {
        value: (links, addrs),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_net_tools_2_and_1_60() {
        let t = "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001\n        inet 192.168.1.251  netmask 255.255.224.0  broadcast 192.168.31.255\n        inet6 fe80::8ff:1ff:fe2b:1  prefixlen 64  scopeid 0x20<link>\n        ether 0a:ff:01:2b:00:01  txqueuelen 1000  (Ethernet)\n        RX packets 1  bytes 2 (2.0 B)\n\nlo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536\n        inet 127.0.0.1  netmask 255.0.0.0\n";
        let p = parse(t).unwrap();
        let (links, addrs) = p.value;
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].ifname, "eth0");
        assert_eq!(links[0].mtu, Some(9001));
        assert_eq!(links[0].operstate, "UP");
        assert_eq!(links[0].address.as_deref(), Some("0a:ff:01:2b:00:01"));
        assert_eq!(addrs.len(), 3);
        assert_eq!(addrs[0].prefixlen, 19);
        assert_eq!(addrs[0].scope, "global");
        assert_eq!(addrs[1].scope, "link");
        assert_eq!(addrs[2].ifindex, 2);
        assert_eq!(addrs[2].scope, "host");

        let old = "eth0      Link encap:Ethernet  HWaddr 0A:FF:01:2B:00:01\n          inet addr:10.0.0.5  Bcast:10.0.0.255  Mask:255.255.255.0\n          UP BROADCAST RUNNING MULTICAST  MTU:9001  Metric:1\n";
        let (links, addrs) = parse(old).unwrap().value;
        assert_eq!(links[0].mtu, Some(9001));
        assert_eq!(links[0].address.as_deref(), Some("0a:ff:01:2b:00:01"));
        assert_eq!(addrs[0].prefixlen, 24);
        assert!(parse("").is_err());
        assert!(parse("-A POSTROUTING -j X\n").is_err());
    }
}
