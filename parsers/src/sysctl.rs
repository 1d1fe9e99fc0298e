//! `sysctl -a` / `sysctl key…` output (`key = value`), `key=value` lines (`sysctl -e -N`-less
//! pastes, `/etc/sysctl.d/*.conf`), and the eks-log-collector's `sysctls/sysctl_all.txt`.
//!
//! Values are kept as printed apart from trimming the ends: `net.ipv4.ip_local_port_range`
//! keeps its tab (`32768\t60999`). Errors that `sysctl -a` prints for unreadable keys
//! (`sysctl: permission denied on key '…'`, `sysctl: reading key "…"`) become warnings.
//! Consecutive lines with the same key are one multi-line value (`kernel.core_modes`), joined
//! with `\n`. Otherwise a later duplicate of a key wins, and a duplicate with a different value
//! is also a warning (two nodes' outputs pasted together?).

use model::sysctl::Sysctls;

use crate::ip::common::{clean_lines, strip_ansi};
use crate::{ParseError, ParseWarning, Parsed};

/// Parses `sysctl -a` output.
pub fn parse(text: &str) -> Result<Parsed<Sysctls>, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let trimmed = strip_ansi(text);
    if trimmed.trim_start().starts_with('{') {
        return parse_json(trimmed.trim());
    }
    let lines = clean_lines(text);
    let mut out = Sysctls::default();
    let mut warnings = Vec::new();
    let mut prev_key: Option<String> = None;
    for line in &lines {
        let t = line.text.as_str();
        if t.starts_with("sysctl:") {
            warnings.push(ParseWarning::new(
                line.no,
                t,
                "sysctl could not read this key",
            ));
            continue;
        }
        if t.starts_with(';') || t.starts_with('#') {
            continue; // sysctl.conf comments
        }
        // `sysctl --system` names each file before its settings: `* Applying /etc/sysctl.conf ...`.
        if t.starts_with("* Applying ") {
            continue;
        }
        // aws-cni-support.sh (v1.3–v1.6) heads its `sysctls.out` with a banner line.
        if t.starts_with("===") && t.trim_end().ends_with("===") {
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            warnings.push(ParseWarning::new(line.no, t, "not `key = value`"));
            continue;
        };
        let key = proc_path_to_key(k.trim());
        let key = key.as_str();
        if !valid_key(key) {
            warnings.push(ParseWarning::new(
                line.no,
                t,
                format!("`{key}` is not a sysctl key"),
            ));
            continue;
        }
        let value = v.trim().to_string();
        // A multi-line value (`kernel.core_modes`, `dev.cdrom.info`) is printed as one
        // `key = line` per line: consecutive repeats of a key continue its value.
        if prev_key.as_deref() == Some(key) {
            if let Some(old) = out.values.get_mut(key) {
                old.push('\n');
                old.push_str(&value);
                continue;
            }
        }
        prev_key = Some(key.to_string());
        if let Some(old) = out.values.get(key) {
            if *old != value {
                warnings.push(ParseWarning::new(
                    line.no,
                    t,
                    format!("duplicate key with a different value (was `{old}`); the last wins"),
                ));
            }
        }
        // `sysctl -a` prints `/` for `.` inside interface names (`vlan/eth/2`); kept as is.
        out.values.insert(key.to_string(), value);
    }
    if out.values.is_empty() {
        let (line, text) = match (warnings.first(), lines.first()) {
            (Some(w), _) if !w.text.starts_with("sysctl:") => (w.line, w.text.clone()),
            (_, Some(l)) => (l.no, ParseWarning::new(l.no, &l.text, "").text),
            (_, None) => return Err(ParseError::Empty),
        };
        return Err(ParseError::NotRecognized {
            expected: "sysctl -a",
            line,
            text,
        });
    }
    Ok(Parsed {
        value: out,
        warnings,
    })
}

/// `aws-cni-support.sh` (v1.3–v1.6 `sysctls.out`) prints `/proc/sys/net/ipv4/conf/eth0/rp_filter
/// = 2`: the /proc path of a key is the key with `/` for `.`.
fn proc_path_to_key(k: &str) -> String {
    match k.strip_prefix("/proc/sys/") {
        Some(rest) if !rest.is_empty() => rest.replace('/', "."),
        _ => k.to_string(),
    }
}

/// Dotted names of printable ASCII, no spaces; at least one dot (every `sysctl -a` key has
/// one: `kernel.pid_max`, `net.ipv4.conf.eth0.rp_filter`).
fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.contains('.')
        && !k.starts_with('.')
        && !k.ends_with('.')
        && k.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

/// The model's own JSON (`{"values": {...}}`) or a flat object of key → string/number.
fn parse_json(text: &str) -> Result<Parsed<Sysctls>, ParseError> {
    let not = |msg: &str| ParseError::NotRecognized {
        expected: "sysctl -a",
        line: 1,
        text: ParseWarning::new(1, msg, "").text,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| not(&format!("invalid JSON: {e}")))?;
    let obj = v
        .get("values")
        .and_then(|x| x.as_object())
        .or_else(|| v.as_object())
        .ok_or_else(|| not("JSON is not an object"))?;
    let mut out = Sysctls::default();
    let mut warnings = Vec::new();
    for (k, val) in obj {
        let s = match val {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                warnings.push(ParseWarning::new(
                    1,
                    &format!("{k}: {other}"),
                    "value is not a string or number",
                ));
                continue;
            }
        };
        if valid_key(k) {
            out.values.insert(k.clone(), s);
        } else {
            warnings.push(ParseWarning::new(1, k, "not a sysctl key"));
        }
    }
    if out.values.is_empty() {
        return Err(not(text));
    }
    Ok(Parsed {
        value: out,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_applying_lines_prompts_and_blockquotes_are_chatter() {
        let t = "[root@ip-10-0-1-5 ~]# sysctl --system\n* Applying /usr/lib/sysctl.d/50-default.conf ...\nnet.ipv4.conf.all.rp_filter = 1\n> * Applying /etc/sysctl.d/99-eks.conf ...\n> net.ipv4.ip_forward = 1\n>\nsystemd-node-1:/ # sysctl -a\n";
        let p = parse(t).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.get_u64("net.ipv4.conf.all.rp_filter"), Some(1));
        assert_eq!(p.value.get_u64("net.ipv4.ip_forward"), Some(1));
        // A line that is neither still warns.
        let p = parse("* Applied x\nnet.ipv4.ip_forward = 1\n").unwrap();
        assert_eq!(p.warnings.len(), 1);
    }

    /// The `sysctls.out` of aws-cni-support.sh v1.3–v1.6 (issue-591 capture).
    #[test]
    fn aws_cni_support_proc_paths_and_banner() {
        let p = parse("================== sysctls ==================\n/proc/sys/net/ipv4/conf/all/rp_filter = 1\n/proc/sys/net/ipv4/conf/eth0/rp_filter = 2\n").unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.rp_filter("all"), Some(1));
        assert_eq!(p.value.rp_filter("eth0"), Some(2));
    }

    #[test]
    fn spaces_tabs_and_errors() {
        let t = "$ sudo sysctl -a\nnet.ipv4.ip_forward = 1\nnet.ipv4.ip_local_port_range = 32768\t60999\nnet.ipv4.conf.eth0.rp_filter=2\nsysctl: permission denied on key 'kernel.cad_pid'\nsysctl: reading key \"net.ipv6.conf.all.stable_secret\"\nkernel.core_pattern = |/usr/lib/systemd/systemd-coredump %P %u = x\n";
        let p = parse(t).unwrap();
        let s = &p.value;
        assert_eq!(s.get_u64("net.ipv4.ip_forward"), Some(1));
        assert_eq!(
            s.values
                .get("net.ipv4.ip_local_port_range")
                .map(String::as_str),
            Some("32768\t60999")
        );
        assert_eq!(s.rp_filter("eth0"), Some(2));
        assert_eq!(
            s.get("kernel.core_pattern"),
            Some("|/usr/lib/systemd/systemd-coredump %P %u = x")
        );
        assert_eq!(p.warnings.len(), 2);
        assert_eq!(p.warnings[0].line, 5);
        assert!(p.warnings[0].text.contains("kernel.cad_pid"));
        assert_eq!(p.warnings[1].line, 6);
    }

    #[test]
    fn multi_line_values() {
        let p = parse("kernel.core_modes = file\nkernel.core_modes = pipe\nkernel.x = 1").unwrap();
        assert!(p.warnings.is_empty());
        assert_eq!(p.value.get("kernel.core_modes"), Some("file\npipe"));
    }

    #[test]
    fn duplicates_and_garbage() {
        let p = parse("a.b = 1\nc.d = 0\na.b = 2\nnot a sysctl line").unwrap();
        assert_eq!(p.value.get("a.b"), Some("2"));
        assert_eq!(p.warnings.len(), 2);
        assert_eq!(parse(" \n"), Err(ParseError::Empty));
        assert!(matches!(
            parse("0:\tfrom all lookup local"),
            Err(ParseError::NotRecognized { line: 1, .. })
        ));
        assert!(matches!(
            parse("sysctl: permission denied on key 'x.y'"),
            Err(ParseError::NotRecognized { .. })
        ));
    }

    #[test]
    fn json_forms() {
        let p = parse(r#"{"values":{"net.ipv4.ip_forward":"1"}}"#).unwrap();
        assert_eq!(p.value.get_u64("net.ipv4.ip_forward"), Some(1));
        let p = parse(r#"{"net.ipv4.ip_forward":1}"#).unwrap();
        assert_eq!(p.value.get_u64("net.ipv4.ip_forward"), Some(1));
    }
}
