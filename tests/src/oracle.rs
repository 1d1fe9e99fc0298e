//! Independent readers of the kernel's own text, for tests that check what the product parsed.
//!
//! The product's parsers are the thing under test, so these oracles do not call them to read
//! the kernel's output: [`save_rule_lines`] takes `iptables-save` text line by line, and
//! [`conntrack_list`] tokenises `conntrack -L` with its own few lines of code. (The iptables
//! check renders the *parsed* rules with `parsers::iptables::to_save_line`, a renderer from the
//! fields, never from the stored raw text, so a field parsed wrongly shows up as a differing
//! line.)

use std::collections::BTreeMap;

use model::IptablesBackendDump;

/// The `-A` rule lines of an `iptables-save` dump, per table in dump order, with the
/// `[packets:bytes] ` counter prefix removed (counters move while a test runs).
pub fn save_rule_lines(save: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in save.lines() {
        let line = line.trim_end();
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            out.entry(table.clone()).or_default();
            continue;
        }
        let rule = match line.strip_prefix('[') {
            Some(rest) if rest.contains("] -A ") => rest.split_once("] ").map(|(_, r)| r),
            _ => Some(line),
        };
        if let Some(r) = rule.filter(|r| r.starts_with("-A ")) {
            out.entry(table.clone()).or_default().push(r.to_string());
        }
    }
    out
}

/// The parsed rules of one backend dump rendered back to save lines from their fields (no
/// counters), per table in chain order: compare with [`save_rule_lines`] of the kernel's dump.
pub fn rendered_rule_lines(dump: &IptablesBackendDump) -> BTreeMap<String, Vec<String>> {
    dump.tables
        .iter()
        .map(|t| {
            let lines = t
                .chains
                .iter()
                .flat_map(|c| c.rules.iter())
                .map(|r| {
                    let mut r = r.clone();
                    r.packets = None;
                    r.bytes = None;
                    // Not from the raw text: render must not be able to copy it.
                    r.raw = String::new();
                    parsers::iptables::to_save_line(&r)
                })
                .collect();
            (t.name.clone(), lines)
        })
        .collect()
}

/// One direction of a conntrack entry as `conntrack -L` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CtTuple {
    pub src: String,
    pub dst: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// ICMP `type=`, `code=`, `id=`.
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub icmp_id: Option<u16>,
}

/// One `conntrack -L` line: protocol name and number, original and reply tuple, and the
/// bracketed flags (`ASSURED`, `UNREPLIED`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CtLine {
    pub protocol: String,
    pub protonum: u8,
    pub original: CtTuple,
    pub reply: CtTuple,
    pub flags: Vec<String>,
}

/// Read `conntrack -L` (or `-o extended`, with the leading `ipv4 2`) output. Lines that are not
/// entries (the `conntrack v1.4 …: N flow entries` trailer) are left out; an entry line whose
/// tuple does not read is an error naming it.
pub fn conntrack_list(text: &str) -> Result<Vec<CtLine>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let toks = match toks.first() {
            Some(&"ipv4") | Some(&"ipv6") => &toks[2.min(toks.len())..],
            _ => &toks[..],
        };
        if toks.len() < 3 || !toks.iter().any(|t| t.starts_with("src=")) {
            continue;
        }
        let mut e = CtLine {
            protocol: toks[0].to_string(),
            protonum: toks[1]
                .parse()
                .map_err(|_| format!("protocol number in {line:?}"))?,
            ..CtLine::default()
        };
        // A second `src=` starts the reply tuple.
        let mut srcs = 0;
        for t in &toks[2..] {
            if let Some(flag) = t.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
                e.flags.push(flag.to_string());
                continue;
            }
            let Some((k, v)) = t.split_once('=') else {
                continue;
            };
            if k == "src" {
                srcs += 1;
            }
            let tuple = match srcs {
                0 => continue,
                1 => &mut e.original,
                _ => &mut e.reply,
            };
            let num = |v: &str| v.parse().map_err(|_| format!("{k}={v} in {line:?}"));
            match k {
                "src" => tuple.src = v.to_string(),
                "dst" => tuple.dst = v.to_string(),
                "sport" => tuple.sport = Some(num(v)?),
                "dport" => tuple.dport = Some(num(v)?),
                "type" => tuple.icmp_type = Some(v.parse().map_err(|_| format!("type={v}"))?),
                "code" => tuple.icmp_code = Some(v.parse().map_err(|_| format!("code={v}"))?),
                "id" => tuple.icmp_id = Some(num(v)?),
                _ => {}
            }
        }
        if e.reply.src.is_empty() {
            return Err(format!("no reply tuple in {line:?}"));
        }
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_conntrack_list_lines() {
        let text = "\
tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=1.1.1.1 sport=40000 dport=443 src=1.1.1.1 dst=10.0.0.10 sport=443 dport=40000 [ASSURED] mark=0 use=1
icmp     1 29 src=10.99.1.5 dst=203.0.113.1 type=8 code=0 id=77 src=203.0.113.1 dst=10.99.0.10 type=0 code=0 id=77 mark=0 use=1
ipv4     2 udp      17 20 src=10.0.0.5 dst=10.0.0.2 sport=5353 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.5 sport=53 dport=5353 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.
";
        let v = conntrack_list(text).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].protocol, "tcp");
        assert_eq!(v[0].original.sport, Some(40000));
        assert_eq!(v[0].reply.dst, "10.0.0.10");
        assert_eq!(v[0].flags, ["ASSURED"]);
        assert_eq!(v[1].original.icmp_type, Some(8));
        assert_eq!(v[1].reply.icmp_type, Some(0));
        assert_eq!(v[1].original.icmp_id, Some(77));
        assert_eq!(v[2].protonum, 17);
        assert_eq!(v[2].reply.sport, Some(53));
        assert_eq!(v[2].flags, ["UNREPLIED"]);
    }

    #[test]
    fn save_lines_drop_counters_and_keep_tables() {
        let text = "*nat\n:POSTROUTING ACCEPT [0:0]\n[3:180] -A POSTROUTING -j X\nCOMMIT\n*filter\n-A INPUT -j ACCEPT\nCOMMIT\n";
        let m = save_rule_lines(text);
        assert_eq!(m["nat"], ["-A POSTROUTING -j X"]);
        assert_eq!(m["filter"], ["-A INPUT -j ACCEPT"]);
    }
}
