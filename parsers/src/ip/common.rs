//! Shared plumbing for the `ip` parsers: paste clean-up, `ip -j` element scanning, small
//! token helpers.

use std::net::IpAddr;

use ipnet::IpNet;
use model::net::Family;
use serde_json::{Map, Value};

use crate::{ParseError, ParseWarning};

/// One input line after clean-up, with its 1-based number in the original input.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub no: usize,
    /// ANSI codes removed and trimmed.
    pub text: String,
}

/// Removes ANSI SGR/CSI sequences (`ip -c`), also the bare `[36m` residue left when a paste
/// dropped the ESC byte.
pub(crate) fn strip_ansi(s: &str) -> String {
    if !s.contains('\u{1b}') && !s.contains('[') {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\u{1b}' {
            // ESC [ params final  |  ESC other
            if chars.get(i + 1) == Some(&'[') {
                let mut j = i + 2;
                while j < chars.len() && !('@'..='~').contains(&chars[j]) {
                    j += 1;
                }
                i = j + 1;
            } else {
                i += 2;
            }
            continue;
        }
        if c == '[' {
            // Bare `[0m`, `[01;31m`: digits and semicolons, then `m`.
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ';') {
                j += 1;
            }
            if j > i + 1 && chars.get(j) == Some(&'m') {
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Lines that are part of a paste but not of the command's output: shell prompts with the
/// command, for-loop separators (`>> node 1.2.3.4 <<`), `==> file <==` headers, markdown
/// fences and horizontal rules.
pub(crate) fn is_paste_noise(t: &str) -> bool {
    if t.starts_with("```") || t.starts_with("~~~") {
        return true;
    }
    if t.starts_with(">>") && t.ends_with("<<") || t.starts_with("==>") && t.ends_with("<==") {
        return true;
    }
    if t.len() >= 3 && t.chars().all(|c| c == '-' || c == '=' || c == '*') {
        return true;
    }
    is_prompt(t)
}

/// `$ ip rule`, `# ip rule`, `[root@ip-10-0-0-1 ~]# ip rule`, `sh-4.2$ ip rule`,
/// `ubuntu@host:~$ sudo sysctl -a`, `systemd-node-1:/ # iptables -L` (SUSE's prompt).
pub(crate) fn is_prompt(t: &str) -> bool {
    if t == "$" || t == "#" {
        return true;
    }
    let mut words = t.split_whitespace();
    let first = words.next().unwrap_or("");
    if first.ends_with('$') || first.ends_with('#') {
        return true;
    }
    // `host:/ # cmd`, `user@host:~ $ cmd`: a `host:dir` word, then a bare `#`/`$`.
    let is_addr = first
        .split('/')
        .next()
        .is_some_and(|a| a.parse::<IpAddr>().is_ok());
    if first.contains(':') && !is_addr && matches!(words.next(), Some("#" | "$")) {
        return true;
    }
    // `[user@host dir]$ cmd`: a `]` then `$`/`#` then whitespace or the end.
    t.starts_with('[')
        && ["]$", "]#"].iter().any(|p| {
            t.find(p)
                .is_some_and(|i| t[i + 2..].chars().next().is_none_or(char::is_whitespace))
        })
}

/// Strips markdown block-quote markers (`> `, a bare `>`, nested `> > ` or `>> `) from the
/// start of a trimmed line. No line of the command outputs these parsers read starts with `>`;
/// a `>> node 1.2.3.4 <<` loop separator is kept whole (it is paste noise).
pub(crate) fn strip_blockquote(t: &str) -> &str {
    let mut l = t;
    while l.starts_with('>') && !(l.starts_with(">>") && l.ends_with("<<")) {
        l = l[1..].trim_start();
    }
    l
}

/// Where an annotation a person appended to an output line begins: the first word that starts
/// with `#` or is an arrow (`-->`, `<--`, `<-----`, `==>`, `<==`). iproute2 never prints such
/// words. Returns the data part (trimmed) and the annotation, if any.
pub(crate) fn split_annotation(t: &str) -> (&str, Option<&str>) {
    let mut pos = 0;
    for w in t.split_whitespace() {
        // `split_whitespace` yields sub-slices of `t`: find this word's offset.
        let at = t[pos..].find(w).map_or(pos, |i| pos + i);
        pos = at + w.len();
        let arrow = ["-->", "<--", "==>", "<==", "<-"]
            .iter()
            .any(|a| w.starts_with(a))
            || w.starts_with('←')
            || w.starts_with('→');
        if w.starts_with('#') || arrow {
            return (t[..at].trim_end(), Some(t[at..].trim()));
        }
    }
    (t, None)
}

/// Splits, strips ANSI and block-quote markers, trims; drops blank lines and paste noise.
pub(crate) fn clean_lines(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let t = strip_ansi(raw);
            let t = strip_blockquote(t.trim());
            if t.is_empty() || is_paste_noise(t) {
                None
            } else {
                Some(Line {
                    no: i + 1,
                    text: t.to_string(),
                })
            }
        })
        .collect()
}

/// The filter a pasted command line applies to its output, if any: the first shell-prompt line
/// whose command pipes into `grep`/`egrep`/`fgrep`/`head`/`tail`/`awk`/`sed`/`cut`/`less`
/// (`$ ip rule | grep 10.0.1.5` → `Some((line number, "ip rule | grep 10.0.1.5"))`). A filtered
/// paste cannot prove that something is absent.
pub fn paste_filter(text: &str) -> Option<(usize, String)> {
    const FILTERS: &[&str] = &[
        "grep", "egrep", "fgrep", "rg", "head", "tail", "awk", "sed", "cut", "less", "more",
    ];
    for (i, raw) in text.lines().enumerate() {
        let t = strip_ansi(raw);
        let t = strip_blockquote(t.trim());
        if !is_prompt(t) || !t.contains('|') {
            continue;
        }
        let filtered = t.split('|').skip(1).any(|stage| {
            let mut w = stage.split_whitespace();
            let first = w.next().unwrap_or("");
            let cmd = if first == "sudo" {
                w.next().unwrap_or("")
            } else {
                first
            };
            FILTERS.contains(&cmd.rsplit('/').next().unwrap_or(cmd))
        });
        if filtered {
            // Drop the prompt word(s) up to the first `$`/`#` followed by a space.
            let cmd = t
                .find(['$', '#'])
                .map(|p| t[p + 1..].trim())
                .filter(|c| !c.is_empty())
                .unwrap_or(t);
            return Some((i + 1, cmd.to_string()));
        }
    }
    None
}

/// `ip -j` output: the first non-blank, non-noise character is `[`.
pub(crate) fn looks_like_json(text: &str) -> bool {
    for raw in text.lines() {
        let t = strip_ansi(raw);
        let t = t.trim();
        if t.is_empty() || is_paste_noise(t) {
            continue;
        }
        // `[` alone, `[{...`, `[]`; not `[root@host ~]# …` or `[detached]`.
        return t.strip_prefix('[').is_some_and(|r| {
            let r = r.trim_start();
            r.is_empty() || r.starts_with('{') || r.starts_with(']')
        });
    }
    false
}

/// The input with ANSI codes removed and paste-noise lines blanked (line numbers kept), for the
/// JSON scanner.
fn json_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for raw in text.lines() {
        let t = strip_ansi(raw);
        if !is_paste_noise(t.trim()) {
            out.push_str(&t);
        }
        out.push('\n');
    }
    out
}

/// Empty input is `ParseError::Empty`.
pub(crate) fn check_empty(text: &str) -> Result<(), ParseError> {
    if text.trim().is_empty() {
        Err(ParseError::Empty)
    } else {
        Ok(())
    }
}

/// One `{...}` element of an `ip -j` array, with the line it starts on.
pub(crate) struct JsonElement {
    pub line: usize,
    pub raw: String,
    pub value: Option<Map<String, Value>>,
}

/// Finds every object that is a direct element of a top-level JSON array, parsing each on its
/// own so that a truncated or corrupt element costs only itself. Several arrays in one input
/// (a for-loop over nodes) are all read; text between them is ignored.
pub(crate) fn json_elements(text: &str) -> Vec<JsonElement> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth_arr = 0usize; // array nesting outside any object
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => line += 1,
            b'[' => depth_arr += 1,
            b']' => depth_arr = depth_arr.saturating_sub(1),
            b'{' if depth_arr == 1 => {
                let start = i;
                let start_line = line;
                let (end, nl) = scan_object(bytes, i);
                line += nl;
                let raw = &text[start..end];
                let value = serde_json::from_str::<Value>(raw)
                    .ok()
                    .and_then(|v| match v {
                        Value::Object(m) => Some(m),
                        _ => None,
                    });
                out.push(JsonElement {
                    line: start_line,
                    raw: raw.to_string(),
                    value,
                });
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// From `{` at `start`, returns the index just past the matching `}` (or the end of input if
/// truncated) and the number of newlines crossed.
fn scan_object(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let mut nl = 0;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            nl += 1;
        }
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return (i + 1, nl);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    (bytes.len(), nl)
}

/// Runs `f` over every element, collecting values and warnings; NotRecognized when the input
/// had elements but none produced a value.
pub(crate) fn parse_json_array<T>(
    text: &str,
    expected: &'static str,
    mut f: impl FnMut(&Map<String, Value>, &JsonElement, &mut Vec<ParseWarning>) -> Option<T>,
) -> Result<(Vec<T>, Vec<ParseWarning>), ParseError> {
    let cleaned = json_text(text);
    let text = cleaned.as_str();
    let elements = json_elements(text);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for el in &elements {
        match &el.value {
            Some(m) => {
                if let Some(v) = f(m, el, &mut warnings) {
                    out.push(v);
                }
            }
            None => warnings.push(ParseWarning::truncated(
                el.line,
                &el.raw,
                "not a complete JSON object (truncated?)",
            )),
        }
    }
    if out.is_empty() && !elements.is_empty() {
        let (line, t) = warnings
            .first()
            .map(|w| (w.line, w.text.clone()))
            .unwrap_or((1, String::new()));
        return Err(ParseError::NotRecognized {
            expected,
            line,
            text: t,
        });
    }
    if elements.is_empty() {
        // `[]` or a truncated `[` is `ip -j` output with no entries; `[garbage` is not.
        if text
            .chars()
            .any(|c| !c.is_whitespace() && c != '[' && c != ']')
        {
            return Err(ParseError::NotRecognized {
                expected,
                line: 1,
                text: ParseWarning::new(1, text.trim(), "").text,
            });
        }
    }
    Ok((out, warnings))
}

pub(crate) fn jstr<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// The `flags` array of an `ip -j` element (empty when absent).
pub(crate) fn json_flags(m: &Map<String, Value>) -> Vec<String> {
    match m.get("flags") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A number that `ip -j` prints as a number or (for some keys) a string.
pub(crate) fn ju64(m: &Map<String, Value>, k: &str) -> Option<u64> {
    match m.get(k)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_u64_any(s),
        _ => None,
    }
}

/// Decimal or `0x` hex.
pub(crate) fn parse_u64_any(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

pub(crate) fn parse_u32_any(s: &str) -> Option<u32> {
    parse_u64_any(s).and_then(|v| u32::try_from(v).ok())
}

/// `10.0.0.0/8`, `192.168.5.1` (host: /32 or /128), `default`/`all` (the family's /0, given
/// the family hint). Returns None for anything else.
pub(crate) fn parse_prefix(s: &str, family_hint: Option<Family>) -> Option<IpNet> {
    match s {
        "default" | "all" | "any" => {
            return Some(match family_hint.unwrap_or(Family::Inet) {
                Family::Inet => IpNet::V4(ipnet::Ipv4Net::default()),
                Family::Inet6 => IpNet::V6(ipnet::Ipv6Net::default()),
            })
        }
        _ => {}
    }
    if let Some((a, l)) = s.split_once('/') {
        let addr: IpAddr = a.parse().ok()?;
        let len: u8 = l.parse().ok()?;
        IpNet::new(addr, len).ok()
    } else {
        let addr: IpAddr = s.parse().ok()?;
        Some(IpNet::from(addr))
    }
}

/// The family of an address-ish token, if it is one.
pub(crate) fn family_of_token(s: &str) -> Option<Family> {
    let a = s.split('/').next().unwrap_or(s);
    a.parse::<IpAddr>().ok().map(|ip| Family::of(&ip))
}

/// Text parsers: fail with NotRecognized when nothing was produced from a non-empty input.
pub(crate) fn finish<T>(
    items: Vec<T>,
    warnings: Vec<ParseWarning>,
    lines: &[Line],
    expected: &'static str,
) -> Result<(Vec<T>, Vec<ParseWarning>), ParseError> {
    if items.is_empty() {
        return match lines.first() {
            None => Err(ParseError::Empty),
            Some(l) => {
                let (line, text) = warnings
                    .first()
                    .map(|w| (w.line, w.text.clone()))
                    .unwrap_or((l.no, ParseWarning::new(l.no, &l.text, "").text));
                Err(ParseError::NotRecognized {
                    expected,
                    line,
                    text,
                })
            }
        };
    }
    Ok((items, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi_with_and_without_esc() {
        assert_eq!(
            strip_ansi("2: \u{1b}[36meth0: \u{1b}[0m<UP>"),
            "2: eth0: <UP>"
        );
        assert_eq!(strip_ansi("inet [35m10.0.0.1[0m/8"), "inet 10.0.0.1/8");
        assert_eq!(
            strip_ansi("iif x [detached] lookup 1"),
            "iif x [detached] lookup 1"
        );
        assert_eq!(strip_ansi("trail \u{1b}["), "trail ");
    }

    #[test]
    fn recognises_paste_noise() {
        for t in [
            "$ ip rule",
            "# ip route show table all",
            "[root@ip-10-0-0-1 ~]# ip rule",
            "sh-4.2$ ip rule",
            "ubuntu@host:~$ sudo ip -j route",
            ">> node 1.2.3.4 <<",
            "```",
            "---",
        ] {
            assert!(is_paste_noise(t), "{t}");
        }
        for t in [
            "0:\tfrom all lookup local",
            "default via 10.0.0.1 dev eth0",
            "net.ipv4.ip_forward = 1",
            "[{\"dst\":\"default\"}]",
            "[detached]",
        ] {
            assert!(!is_paste_noise(t), "{t}");
        }
        assert!(is_paste_noise(
            "[ec2-user@ip-172-31-7-134 ~]$\tip addr list"
        ));
        assert!(looks_like_json("\n  [\n {\"a\":1}]"));
        assert!(looks_like_json("$ ip -j rule\n[]"));
        assert!(!looks_like_json("[detached] 1"));
    }

    #[test]
    fn blockquotes_prompts_and_annotations() {
        assert_eq!(
            strip_blockquote("> 0:\tfrom all lookup local"),
            "0:\tfrom all lookup local"
        );
        assert_eq!(
            strip_blockquote("> > net.ipv4.ip_forward = 1"),
            "net.ipv4.ip_forward = 1"
        );
        assert_eq!(strip_blockquote(">> default dev eth0"), "default dev eth0");
        assert_eq!(strip_blockquote(">"), "");
        assert_eq!(strip_blockquote(">> node 1.2.3.4 <<"), ">> node 1.2.3.4 <<");
        assert_eq!(strip_blockquote("from all"), "from all");
        let c = clean_lines("> $ ip rule\n> 0:\tfrom all lookup local\n>\n> >> node 1 <<\n");
        let texts: Vec<&str> = c.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, vec!["0:\tfrom all lookup local"]);
        assert_eq!(c[0].no, 2);
        assert!(is_paste_noise("systemd-node-1:/ # iptables -L INPUT"));
        assert!(is_paste_noise("kube11:~# iptables -t nat -L -n -v"));
        assert!(!is_paste_noise("default via 10.0.0.1 dev eth0 # x"));
        assert!(!is_paste_noise("fe80::/64 # link-local"));
        assert_eq!(
            split_annotation("512:\tfrom all to 192.168.1.5 lookup main   # <----- Pod's IP"),
            (
                "512:\tfrom all to 192.168.1.5 lookup main",
                Some("# <----- Pod's IP")
            )
        );
        assert_eq!(
            split_annotation("1536: from 10.0.1.5 lookup 2 --> 注释"),
            ("1536: from 10.0.1.5 lookup 2", Some("--> 注释"))
        );
        assert_eq!(
            split_annotation("default via 10.0.0.1 dev eth0 <-- this one"),
            ("default via 10.0.0.1 dev eth0", Some("<-- this one"))
        );
        assert_eq!(
            split_annotation("10.0.0.0/16 dev eth0 proto kernel"),
            ("10.0.0.0/16 dev eth0 proto kernel", None)
        );
    }

    #[test]
    fn json_elements_survive_truncation_and_multiple_arrays() {
        let t = "[{\"a\":1},{\"b\":\"x}\"},\n{\"c\":[1,{\"d\":2}]}]\n>> n <<\n[{\"e\":1},{\"f\":";
        let els = json_elements(t);
        assert_eq!(els.len(), 5);
        assert!(els[1].value.as_ref().is_some_and(|m| m.contains_key("b")));
        assert_eq!(els[2].line, 2);
        assert!(els[2].value.as_ref().is_some_and(|m| m.contains_key("c")));
        assert_eq!(els[3].line, 4);
        assert!(els[4].value.is_none());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("192.168.5.1", None).map(|n| n.to_string()),
            Some("192.168.5.1/32".into())
        );
        assert_eq!(
            parse_prefix("default", Some(Family::Inet6)).map(|n| n.to_string()),
            Some("::/0".into())
        );
        assert_eq!(
            parse_prefix("fe80::/64", None).map(|n| n.to_string()),
            Some("fe80::/64".into())
        );
        assert_eq!(parse_prefix("192.168.7", None), None);
        assert_eq!(parse_prefix("10.0.0.0/33", None), None);
    }
}
