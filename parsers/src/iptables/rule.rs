//! One rule in `iptables-save` / `iptables -S` syntax: tokenising (iptables-save quoting) and
//! grouping tokens into built-in matches, `-m` module options, the target and its options.

use std::borrow::Cow;

use model::iptables::{IptArg, IptRule, Values};
use model::name::Interner;

/// One word of a rule line. `quoted` words are always values, never options.
#[derive(Debug, Clone)]
pub(crate) struct Tok<'a> {
    pub text: Cow<'a, str>,
    pub quoted: bool,
}

impl Tok<'_> {
    fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }

    /// An option word (`-d`, `--comment`); a lone `-` is a value (the `-` chain policy).
    fn is_option(&self) -> bool {
        !self.quoted && self.text.len() > 1 && self.text.starts_with('-')
    }

    fn is_bang(&self) -> bool {
        self.is("!")
    }
}

/// Split a line into words the way iptables-save quotes them: words are separated by blanks;
/// a word starting with `"` runs to the next unescaped `"`, with `\"` and `\\` unescaped.
/// Tokens borrow from the line unless they had to be unescaped.
pub(crate) fn tokenize<'a>(line: &'a str, out: &mut Vec<Tok<'a>>) -> Result<(), String> {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
            i += 1;
            continue;
        }
        if c == b'"' {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            loop {
                if j >= b.len() {
                    return Err(format!("unterminated quote starting at column {}", i + 1));
                }
                match b[j] {
                    b'\\' if j + 1 < b.len() => {
                        escaped = true;
                        j += 2;
                    }
                    b'"' => break,
                    _ => j += 1,
                }
            }
            // `start` and `j` sit on ASCII quote boundaries, so the slice is valid UTF-8.
            let inner = &line[start..j];
            let text = if escaped {
                Cow::Owned(unescape(inner))
            } else {
                Cow::Borrowed(inner)
            };
            out.push(Tok { text, quoted: true });
            i = j + 1;
        } else {
            let start = i;
            while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            out.push(Tok {
                text: Cow::Borrowed(&line[start..i]),
                quoted: false,
            });
        }
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Built-in (module-less) options, long forms mapped to the short form iptables-save prints.
/// The second field says whether the option takes a value.
pub(crate) fn canonical_builtin(opt: &str) -> Option<(&'static str, bool)> {
    Some(match opt {
        "-s" | "--source" | "--src" => ("-s", true),
        "-d" | "--destination" | "--dst" => ("-d", true),
        "-i" | "--in-interface" => ("-i", true),
        "-o" | "--out-interface" => ("-o", true),
        "-p" | "--protocol" => ("-p", true),
        "-f" | "--fragment" => ("-f", false),
        "-4" | "--ipv4" => ("-4", false),
        "-6" | "--ipv6" => ("-6", false),
        _ => return None,
    })
}

/// `[5:322]` → (5, 322).
pub(crate) fn parse_bracket_counters(s: &str) -> Option<(u64, u64)> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some((p.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Parse one `[-c P B] [ [p:b] ] -A CHAIN …` line (iptables-save, `iptables -S [-v]`).
///
/// The error names the problem and the offending word.
pub fn parse_rule_line(line: &str) -> Result<IptRule, String> {
    let mut toks = Vec::new();
    parse_rule_with(line, &mut toks, &mut Interner::default())
}

/// [`parse_rule_line`] with a caller-owned token buffer (no per-line Vec allocation) and
/// name table (names and values shared across the rules of one dump).
pub(crate) fn parse_rule_with<'a>(
    line: &'a str,
    toks: &mut Vec<Tok<'a>>,
    names: &mut Interner,
) -> Result<IptRule, String> {
    let raw = line.trim();
    tokenize(raw, toks)?;
    let mut rule = rules_from_tokens(toks, names)?;
    rule.raw = raw.to_string();
    Ok(rule)
}

/// Pending `-m NAME` that has not carried an option yet.
struct ModuleState<'t> {
    name: Option<&'t str>,
    used: bool,
}

impl ModuleState<'_> {
    /// A module with no options of its own (`-p tcp -m tcp`) still leaves a trace.
    fn flush(&mut self, out: &mut Vec<IptArg>, names: &mut Interner) {
        if let Some(name) = self.name {
            if !self.used {
                out.push(IptArg {
                    module: Some(names.name(name)),
                    option: names.name("-m"),
                    negated: false,
                    values: Values::new(),
                });
            }
        }
        self.name = None;
        self.used = false;
    }
}

fn rules_from_tokens(toks: &[Tok<'_>], names: &mut Interner) -> Result<IptRule, String> {
    // Size the arg vectors up front: allocation dominates the cost of a rule.
    let target_at = toks
        .iter()
        .position(|t| t.is("-j") || t.is("-g") || t.is("--jump") || t.is("--goto"))
        .unwrap_or(toks.len());
    let count_opts = |ts: &[Tok<'_>]| {
        ts.iter()
            .filter(|t| t.is_option() && !t.is("-m") && !t.is("--match"))
            .count()
    };
    let mut rule = IptRule {
        matches: Vec::with_capacity(count_opts(&toks[..target_at]).saturating_sub(1)),
        target_options: Vec::with_capacity(count_opts(&toks[target_at..]).saturating_sub(1)),
        ..IptRule::default()
    };
    let mut i = 0;
    // Leading `[p:b]` (iptables-save -c) and/or `-c P B`.
    loop {
        match toks.get(i) {
            Some(t) if !t.quoted && t.text.starts_with('[') => {
                let (p, b) = parse_bracket_counters(&t.text)
                    .ok_or_else(|| format!("malformed counters `{}`", t.text))?;
                rule.packets = Some(p);
                rule.bytes = Some(b);
                i += 1;
            }
            Some(t) if t.is("-c") || t.is("--set-counters") => {
                let (p, b) = counters_after(toks, i)?;
                rule.packets = Some(p);
                rule.bytes = Some(b);
                i += 3;
            }
            _ => break,
        }
    }
    match toks.get(i) {
        Some(t) if t.is("-A") || t.is("--append") => {}
        Some(t) => return Err(format!("expected `-A CHAIN`, found `{}`", t.text)),
        None => return Err("empty rule".to_string()),
    }
    let chain = toks
        .get(i + 1)
        .ok_or_else(|| "`-A` without a chain name".to_string())?;
    rule.chain = names.name(&chain.text);
    i += 2;

    let mut module = ModuleState {
        name: None,
        used: false,
    };
    let mut negate = false;
    let mut in_target = false;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_bang() {
            if negate {
                return Err(format!("double `!` at word {}", i + 1));
            }
            negate = true;
            i += 1;
            continue;
        }
        if t.is("-c") || t.is("--set-counters") {
            let (p, b) = counters_after(toks, i)?;
            rule.packets = Some(p);
            rule.bytes = Some(b);
            i += 3;
            continue;
        }
        if !t.is_option() {
            // A stray word: glue it to the previous option (an unquoted multi-word value),
            // or to a `-m NAME` that has no option yet.
            if !in_target && module.name.is_some() && !module.used {
                module.flush(&mut rule.matches, names);
            }
            let last = if in_target {
                rule.target_options.last_mut()
            } else {
                rule.matches.last_mut()
            };
            match last {
                Some(a) => {
                    a.values.push(names.name(&t.text));
                    i += 1;
                    continue;
                }
                None => return Err(format!("unexpected word `{}`", t.text)),
            }
        }
        let opt: &str = &t.text;
        if !in_target && (opt == "-m" || opt == "--match") {
            if negate {
                return Err("`!` before `-m`".to_string());
            }
            let name = toks
                .get(i + 1)
                .filter(|n| !n.is_option())
                .ok_or_else(|| "`-m` without a module name".to_string())?;
            module.flush(&mut rule.matches, names);
            module.name = Some(&name.text);
            i += 2;
            continue;
        }
        if !in_target && matches!(opt, "-j" | "--jump" | "-g" | "--goto") {
            if negate {
                return Err(format!("`!` before `{opt}`"));
            }
            let target = toks
                .get(i + 1)
                .filter(|n| !n.is_option())
                .ok_or_else(|| format!("`{opt}` without a target"))?;
            module.flush(&mut rule.matches, names);
            rule.target = Some(names.name(&target.text));
            rule.goto = matches!(opt, "-g" | "--goto");
            in_target = true;
            i += 2;
            continue;
        }
        let builtin = if in_target {
            None
        } else {
            canonical_builtin(opt)
        };
        let (name, takes_value, arg_module) = match builtin {
            Some((canon, takes)) => {
                module.flush(&mut rule.matches, names);
                (canon, Some(takes), None)
            }
            None => {
                if !in_target && module.name.is_some() {
                    module.used = true;
                }
                let m = if in_target { None } else { module.name };
                (opt, None, m)
            }
        };
        i += 1;
        // Old form `-d ! 10.0.0.0/8`: the `!` after the option.
        if takes_value != Some(false) {
            if let (Some(b), Some(v)) = (toks.get(i), toks.get(i + 1)) {
                if b.is_bang() && !v.is_option() && !v.is_bang() {
                    if negate {
                        return Err(format!("double `!` around `{name}`"));
                    }
                    negate = true;
                    i += 1;
                }
            }
        }
        let values = match takes_value {
            Some(false) => Values::new(),
            Some(true) => match toks.get(i) {
                Some(v) if !v.is_option() && !v.is_bang() => {
                    i += 1;
                    let mut one = Values::new();
                    one.push(names.name(&v.text));
                    one
                }
                _ => return Err(format!("`{name}` without a value")),
            },
            None => {
                let n = toks[i..]
                    .iter()
                    .take_while(|v| !v.is_option() && !v.is_bang())
                    .count();
                let values: Values = toks[i..i + n].iter().map(|v| names.name(&v.text)).collect();
                i += n;
                values
            }
        };
        let arg = IptArg {
            module: arg_module.map(|m| names.name(m)),
            option: names.name(name),
            negated: negate,
            values,
        };
        negate = false;
        if in_target {
            rule.target_options.push(arg);
        } else {
            rule.matches.push(arg);
        }
    }
    if negate {
        return Err("dangling `!` at end of rule".to_string());
    }
    module.flush(&mut rule.matches, names);
    Ok(rule)
}

fn counters_after(toks: &[Tok<'_>], i: usize) -> Result<(u64, u64), String> {
    let p = toks.get(i + 1).and_then(|t| t.text.parse::<u64>().ok());
    let b = toks.get(i + 2).and_then(|t| t.text.parse::<u64>().ok());
    match (p, b) {
        (Some(p), Some(b)) => Ok((p, b)),
        _ => Err(format!("`{}` needs two numbers", toks[i].text)),
    }
}

/// Render a value the way iptables-save does: bare when it is a plain word, else double-quoted
/// with `"` and `\` escaped. Any Unicode blank forces quotes (lines are trimmed before they are
/// parsed, which would eat a bare trailing one).
pub fn quote_value(v: &str) -> Cow<'_, str> {
    let plain = !v.is_empty()
        && !v.starts_with('-')
        && v != "!"
        && !v.starts_with('[')
        && v.chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '\\');
    if plain {
        return Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    Cow::Owned(s)
}

/// Render a rule as an iptables-save line (`[p:b] -A CHAIN …`), from its parsed fields (not
/// from `raw`). Parsing the result gives back the same chain, counters, matches and target.
pub fn to_save_line(rule: &IptRule) -> String {
    let mut s = String::new();
    if let (Some(p), Some(b)) = (rule.packets, rule.bytes) {
        s.push_str(&format!("[{p}:{b}] "));
    }
    s.push_str("-A ");
    s.push_str(&quote_value(&rule.chain));
    let mut cur_module: Option<&str> = None;
    for a in &rule.matches {
        if a.option == "-m" {
            if let Some(m) = &a.module {
                s.push_str(" -m ");
                s.push_str(&quote_value(m));
                for v in &a.values {
                    s.push(' ');
                    s.push_str(&quote_value(v));
                }
                cur_module = None;
                continue;
            }
        }
        match a.module.as_deref() {
            Some(m) if cur_module != Some(m) => {
                s.push_str(" -m ");
                s.push_str(&quote_value(m));
                cur_module = Some(m);
            }
            Some(_) => {}
            None => cur_module = None,
        }
        push_arg(&mut s, a);
    }
    if let Some(t) = &rule.target {
        s.push_str(if rule.goto { " -g " } else { " -j " });
        s.push_str(&quote_value(t));
    }
    for a in &rule.target_options {
        push_arg(&mut s, a);
    }
    s
}

fn push_arg(s: &mut String, a: &IptArg) {
    if a.negated {
        s.push_str(" !");
    }
    s.push(' ');
    s.push_str(&a.option);
    for v in &a.values {
        s.push(' ');
        s.push_str(&quote_value(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(module: Option<&str>, option: &str, negated: bool, values: &[&str]) -> IptArg {
        IptArg {
            module: module.map(Into::into),
            option: option.into(),
            negated,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn aws_snat_rule() {
        let line = r#"[12:720] -A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.1.251 --random-fully"#;
        let r = parse_rule_line(line).unwrap();
        assert_eq!(r.raw, line);
        assert_eq!(r.chain, "AWS-SNAT-CHAIN-0");
        assert_eq!((r.packets, r.bytes), (Some(12), Some(720)));
        assert_eq!(
            r.matches,
            vec![
                arg(None, "-o", true, &["vlan+"]),
                arg(Some("comment"), "--comment", false, &["AWS, SNAT"]),
                arg(Some("addrtype"), "--dst-type", true, &["LOCAL"]),
            ]
        );
        assert_eq!(r.target.as_deref(), Some("SNAT"));
        assert!(!r.goto);
        assert_eq!(
            r.target_options,
            vec![
                arg(None, "--to-source", false, &["192.168.1.251"]),
                arg(None, "--random-fully", false, &[]),
            ]
        );
    }

    #[test]
    fn escaped_quotes_and_unquoted_comment() {
        let r = parse_rule_line(
            r#"-A POSTROUTING -s 169.254.172.10/32 -m comment --comment "name: \"aws-cni\" id: \"abc\"" -j CNI-E4-1"#,
        )
        .unwrap();
        assert_eq!(r.comment(), Some(r#"name: "aws-cni" id: "abc""#));
        let r = parse_rule_line(
            "-A KUBE-SVC-X -m comment --comment kube-system/kube-dns:dns -m udp -p udp --dport 53 -j KUBE-SEP-Y",
        )
        .unwrap();
        assert_eq!(r.comment(), Some("kube-system/kube-dns:dns"));
        // `-p` is built-in: it ends the udp module; `--dport` after it has no module.
        assert_eq!(
            r.matches,
            vec![
                arg(
                    Some("comment"),
                    "--comment",
                    false,
                    &["kube-system/kube-dns:dns"]
                ),
                arg(Some("udp"), "-m", false, &[]),
                arg(None, "-p", false, &["udp"]),
                arg(None, "--dport", false, &["53"]),
            ]
        );
    }

    #[test]
    fn old_negation_form_and_long_options() {
        let r = parse_rule_line(
            "-A X --destination ! 10.0.0.0/8 --in-interface eth0 -p ! tcp -j ACCEPT",
        )
        .unwrap();
        assert_eq!(
            r.matches,
            vec![
                arg(None, "-d", true, &["10.0.0.0/8"]),
                arg(None, "-i", false, &["eth0"]),
                arg(None, "-p", true, &["tcp"]),
            ]
        );
    }

    #[test]
    fn connmark_multi_options_and_goto() {
        let r = parse_rule_line(
            "-A PREROUTING -i eni+ -m comment --comment \"AWS, primary ENI\" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80",
        )
        .unwrap();
        assert_eq!(
            r.target_options,
            vec![
                arg(None, "--restore-mark", false, &[]),
                arg(None, "--nfmask", false, &["0x80"]),
                arg(None, "--ctmask", false, &["0x80"]),
            ]
        );
        let r = parse_rule_line(
            "-A A -m multiport --dports 80,443 -m mark ! --mark 0x4000/0x4000 -g B",
        )
        .unwrap();
        assert!(r.goto);
        assert_eq!(r.target.as_deref(), Some("B"));
        assert_eq!(r.value("--dports"), Some("80,443"));
        assert!(r.arg("--mark").unwrap().negated);
    }

    #[test]
    fn addrtype_flag_then_target() {
        let r = parse_rule_line(
            "-A PREROUTING -i eth0 -m comment --comment \"AWS, primary ENI\" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80",
        )
        .unwrap();
        assert_eq!(
            r.matches[2],
            arg(Some("addrtype"), "--dst-type", false, &["LOCAL"])
        );
        assert_eq!(
            r.matches[3],
            arg(Some("addrtype"), "--limit-iface-in", false, &[])
        );
        assert_eq!(
            r.target_options,
            vec![arg(None, "--set-xmark", false, &["0x80/0x80"])]
        );
    }

    #[test]
    fn spec_verbose_counters() {
        let r = parse_rule_line(
            "-A POSTROUTING -s 10.77.1.0/24 -o gw-srv -c 5 322 -j SNAT --to-source 10.77.2.1",
        )
        .unwrap();
        assert_eq!((r.packets, r.bytes), (Some(5), Some(322)));
        assert_eq!(r.matches.len(), 2);
        assert_eq!(r.target.as_deref(), Some("SNAT"));
    }

    #[test]
    fn no_target_rule() {
        let r = parse_rule_line("-A KUBE-SERVICES -m mark --mark 0x80/0x80").unwrap();
        assert_eq!(r.target, None);
        assert_eq!(r.matches.len(), 1);
        let r = parse_rule_line("-A EMPTY").unwrap();
        assert!(r.matches.is_empty() && r.target.is_none());
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse_rule_line("").unwrap_err().contains("empty"));
        assert!(parse_rule_line("-P INPUT ACCEPT")
            .unwrap_err()
            .contains("-P"));
        assert!(parse_rule_line("-A X -m comment --comment \"open")
            .unwrap_err()
            .contains("unterminated"));
        assert!(parse_rule_line("-A X -d").unwrap_err().contains("-d"));
        assert!(parse_rule_line("-A X -j").unwrap_err().contains("-j"));
        assert!(parse_rule_line("[1:x] -A X").unwrap_err().contains("[1:x]"));
        assert!(parse_rule_line("-A X ! ! -d 1.2.3.4").is_err());
        assert!(parse_rule_line("-A X -d 1.2.3.4 !").is_err());
        assert!(parse_rule_line("-A").is_err());
    }

    #[test]
    fn render_round_trip() {
        let line = r#"[3:4] -A X ! -s 1.2.3.4/32 -m comment --comment "a \"b\" \\ c" -m tcp -p tcp -m multiport --dports 1,2 -g Y --foo "" --bar"#;
        let r = parse_rule_line(line).unwrap();
        let again = parse_rule_line(&to_save_line(&r)).unwrap();
        assert_eq!(again.matches, r.matches);
        assert_eq!(again.target_options, r.target_options);
        assert_eq!(r.comment(), Some(r#"a "b" \ c"#));
    }
}
