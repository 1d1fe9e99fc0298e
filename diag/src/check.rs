//! `diag check`: assertions about what the VPC CNI programmed in the kernel, for scripts run
//! after `kubectl set env daemonset aws-node …`. The SNAT assertions read the iptables rules
//! of the analysed backend (not the env), through `analysis::programmed`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use analysis::programmed::{to_source_address, Programmed, ProgrammedEgress, Unavailable};
use ipnet::Ipv4Net;
use model::netfilter::Randomize;
use model::vpccni;
use model::{Evidence, EvidenceKind, NodeReport, Severity};
use serde::Serialize;

/// What an assertion is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Key {
    ExternalSnat,
    ExcludeSnat,
    /// `exclude-snat+=`: the programmed set includes these.
    ExcludeSnatIncludes,
    Random,
    ToSource,
    NoFindings,
    RuleAbsent,
    RulePresent,
}

impl Key {
    fn parse(s: &str) -> Option<Key> {
        Some(match s {
            "external-snat" => Key::ExternalSnat,
            "exclude-snat" => Key::ExcludeSnat,
            "exclude-snat+" => Key::ExcludeSnatIncludes,
            "random" => Key::Random,
            "to-source" => Key::ToSource,
            "no-findings" => Key::NoFindings,
            "rule-absent" => Key::RuleAbsent,
            "rule-present" => Key::RulePresent,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Key::ExternalSnat => "external-snat",
            Key::ExcludeSnat => "exclude-snat",
            Key::ExcludeSnatIncludes => "exclude-snat+",
            Key::Random => "random",
            Key::ToSource => "to-source",
            Key::NoFindings => "no-findings",
            Key::RuleAbsent => "rule-absent",
            Key::RulePresent => "rule-present",
        }
    }
}

/// The expected value, parsed.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Bool(bool),
    Cidrs(BTreeSet<Ipv4Net>),
    Random(Randomize),
    Ip(Ipv4Addr),
    Severity(Severity),
    Rule(String),
}

/// One `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub key: Key,
    /// The value as written.
    pub value: String,
    expected: Expected,
}

impl Assertion {
    /// `external-snat=false`, `exclude-snat+=10.0.0.0/8`.
    pub fn parse(arg: &str) -> Result<Assertion, String> {
        let (k, v) = if let Some((k, v)) = arg.split_once("+=") {
            (format!("{}+", k.trim()), v)
        } else if let Some((k, v)) = arg.split_once('=') {
            (k.trim().to_string(), v)
        } else {
            return Err(format!(
                "--expect {arg}: expected KEY=VALUE (see `diag check --help`)"
            ));
        };
        Assertion::from_kv(&k, v.trim()).map_err(|m| format!("--expect {arg}: {m}"))
    }

    /// Key and value from a policy file.
    pub fn from_kv(key: &str, value: &str) -> Result<Assertion, String> {
        let k = Key::parse(key).ok_or_else(|| {
            format!(
                "unknown key '{key}' (expected external-snat, exclude-snat, exclude-snat+, random, to-source, no-findings, rule-absent or rule-present)"
            )
        })?;
        let expected = match k {
            Key::ExternalSnat => match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Expected::Bool(true),
                "false" | "no" | "0" => Expected::Bool(false),
                _ => return Err(format!("'{value}' is not true or false")),
            },
            Key::ExcludeSnat | Key::ExcludeSnatIncludes => {
                let mut set = BTreeSet::new();
                for c in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    set.insert(parse_cidr(c)?);
                }
                if k == Key::ExcludeSnatIncludes && set.is_empty() {
                    return Err("exclude-snat+ needs at least one CIDR".into());
                }
                Expected::Cidrs(set)
            }
            Key::Random => Expected::Random(
                Randomize::from_name_or_flag(value)
                    .ok_or_else(|| format!("'{value}' is not prng, hashrandom or none"))?,
            ),
            Key::ToSource => Expected::Ip(
                value
                    .parse()
                    .map_err(|_| format!("'{value}' is not an IPv4 address"))?,
            ),
            Key::NoFindings => Expected::Severity(value.parse()?),
            Key::RuleAbsent | Key::RulePresent => {
                if !analysis::catalogue().iter().any(|r| r.id == value) {
                    return Err(format!("unknown rule id '{value}' (see `diag rules`)"));
                }
                Expected::Rule(value.to_string())
            }
        };
        Ok(Assertion {
            key: k,
            value: value.to_string(),
            expected,
        })
    }

    pub fn label(&self) -> String {
        if self.key == Key::ExcludeSnatIncludes {
            format!("exclude-snat+={}", self.value)
        } else {
            format!("{}={}", self.key.name(), self.value)
        }
    }
}

fn parse_cidr(c: &str) -> Result<Ipv4Net, String> {
    if let Ok(n) = c.parse::<Ipv4Net>() {
        return Ok(n.trunc());
    }
    c.parse::<Ipv4Addr>()
        .ok()
        .and_then(|a| Ipv4Net::new(a, 32).ok())
        .ok_or_else(|| format!("'{c}' is not an IPv4 CIDR"))
}

/// A TOML policy: `[default]` for every node, `[[node]] match = "regex"` for some.
#[derive(Debug, Default)]
pub struct Policy {
    default: Vec<Assertion>,
    nodes: Vec<(regex::Regex, Vec<Assertion>)>,
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Policy::parse(&text).map_err(|m| format!("{}: {m}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Policy, String> {
        let doc: toml::Table = text.parse().map_err(|e| format!("invalid TOML: {e}"))?;
        let mut p = Policy::default();
        for (k, v) in &doc {
            match k.as_str() {
                "default" => {
                    let t = v.as_table().ok_or("[default] must be a table")?;
                    p.default = expectations(t, "[default]")?;
                }
                "node" => {
                    let arr = v
                        .as_array()
                        .ok_or("node must be an array of tables: [[node]]")?;
                    for (i, n) in arr.iter().enumerate() {
                        let where_ = format!("[[node]] #{}", i + 1);
                        let t = n.as_table().ok_or(format!("{where_} must be a table"))?;
                        let pat = t
                            .get("match")
                            .and_then(|m| m.as_str())
                            .ok_or(format!("{where_}: missing match = \"regex\""))?;
                        let re = regex::Regex::new(pat)
                            .map_err(|e| format!("{where_}: bad match regex: {e}"))?;
                        for key in t.keys() {
                            if key != "match" && key != "expect" {
                                return Err(format!("{where_}: unknown key '{key}'"));
                            }
                        }
                        p.nodes.push((re, expectations(t, &where_)?));
                    }
                }
                other => {
                    return Err(format!(
                        "unknown top-level key '{other}' (expected [default] and [[node]])"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// True when the policy asserts nothing at all.
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.nodes.iter().all(|(_, a)| a.is_empty())
    }
}

fn expectations(t: &toml::Table, where_: &str) -> Result<Vec<Assertion>, String> {
    let Some(e) = t.get("expect") else {
        return Ok(Vec::new());
    };
    let e = e
        .as_table()
        .ok_or(format!("{where_}: expect must be a table"))?;
    let mut out = Vec::new();
    for (k, v) in e {
        let value = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or(()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format!("{where_}: {k}: array items must be strings"))?
                .join(","),
            _ => {
                return Err(format!(
                    "{where_}: {k}: expected a string, boolean or array"
                ))
            }
        };
        out.push(Assertion::from_kv(k, &value).map_err(|m| format!("{where_}: {k}: {m}"))?);
    }
    Ok(out)
}

/// The assertions that apply to a node: policy default, matching `[[node]]` entries, then
/// `--expect`; a later assertion replaces an earlier one with the same key.
pub fn assertions_for(node: &str, cli: &[Assertion], policy: Option<&Policy>) -> Vec<Assertion> {
    let mut out: Vec<Assertion> = Vec::new();
    let mut add = |a: &Assertion| {
        if a.key != Key::ExcludeSnatIncludes {
            out.retain(|x| x.key != a.key);
        }
        out.push(a.clone());
    };
    if let Some(p) = policy {
        p.default.iter().for_each(&mut add);
        for (re, list) in &p.nodes {
            if re.is_match(node) {
                list.iter().for_each(&mut add);
            }
        }
    }
    cli.iter().for_each(&mut add);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Error,
}

/// One assertion on one node.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub node: String,
    pub assertion: String,
    pub status: Status,
    /// What was found, in the assertion's terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Why it passed/failed, or why it could not be evaluated.
    pub reason: String,
    /// The rule lines (with location) or findings it is based on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// Evaluate one assertion on a prepared snapshot (its facts and nat state derived once for
/// every assertion and the analysis).
pub fn evaluate(p: &analysis::Prepared<'_>, report: &NodeReport, a: &Assertion) -> CheckResult {
    let snap = p.snapshot;
    let mut r = CheckResult {
        node: snap.display_name(),
        assertion: a.label(),
        status: Status::Error,
        observed: None,
        reason: String::new(),
        evidence: Vec::new(),
    };
    match &a.expected {
        Expected::Severity(sev) => {
            let hits: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.severity >= *sev)
                .collect();
            r.observed = Some(format!("{} finding(s) at or above {sev}", hits.len()));
            r.evidence = hits.iter().map(|f| finding_evidence(f)).collect();
            r.status = if hits.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            };
            r.reason = if hits.is_empty() {
                format!(
                    "no finding at or above {sev} ({} checks run)",
                    report.evaluated.len()
                )
            } else {
                format!("{} finding(s) at or above {sev}", hits.len())
            };
            if !report.skipped.is_empty() && hits.is_empty() {
                r.reason.push_str(&format!(
                    "; {} check(s) skipped for lack of data",
                    report.skipped.len()
                ));
            }
        }
        Expected::Rule(id) => {
            let present = a.key == Key::RulePresent;
            if let Some(s) = report.skipped.iter().find(|s| &s.rule == id) {
                r.reason = format!("rule {id} could not be evaluated: {}", s.reason);
                return r;
            }
            let fired: Vec<_> = report.findings.iter().filter(|f| &f.rule == id).collect();
            if fired.is_empty() && !report.evaluated.iter().any(|e| e == id) {
                r.reason = format!("rule {id} was not run on this node");
                return r;
            }
            for f in &fired {
                r.evidence.push(finding_evidence(f));
                r.evidence.extend(f.evidence.iter().cloned());
            }
            r.observed = Some(
                if fired.is_empty() {
                    "absent"
                } else {
                    "present"
                }
                .into(),
            );
            let ok = fired.is_empty() != present;
            r.status = if ok { Status::Pass } else { Status::Fail };
            r.reason = match (fired.is_empty(), present) {
                (true, true) => format!("rule {id} ran and found nothing"),
                (true, false) => format!("rule {id} ran and found nothing"),
                (false, _) => format!("rule {id} fired {} time(s)", fired.len()),
            };
        }
        _ => evaluate_kernel(p, a, &mut r),
    }
    r
}

fn finding_evidence(f: &model::Finding) -> Evidence {
    Evidence::new(
        EvidenceKind::Note,
        format!("{} {}: {}", f.severity, f.rule, f.summary),
    )
    .at("finding")
}

/// SNAT assertions against the programmed iptables rules (read by `analysis::programmed`).
fn evaluate_kernel(prepared: &analysis::Prepared<'_>, a: &Assertion, r: &mut CheckResult) {
    let p = match Programmed::read(prepared.snapshot, prepared.nat.as_ref()) {
        Ok(p) => p,
        Err(Unavailable::NoIptables { status, reason }) => {
            r.reason = format!(
                "no iptables data to check against (iptables section {}{})",
                status,
                reason.map(|x| format!(": {x}")).unwrap_or_default()
            );
            return;
        }
        Err(Unavailable::NoNatTable { source }) => {
            r.reason = format!("the iptables data has no nat table ({source})");
            return;
        }
    };
    let source = p.source();
    let jumped = p.jumped();
    // What the SNAT rule does (its random flag, its address) needs the rule.
    if matches!(a.expected, Expected::Random(_) | Expected::Ip(_)) && p.nat.snat_rules.is_empty() {
        r.status = Status::Fail;
        r.reason = format!(
            "no \"{}\" SNAT rule is programmed ({source})",
            vpccni::COMMENT_SNAT_RULE
        );
        return;
    }
    match &a.expected {
        Expected::Bool(want_external) => {
            r.evidence = p.egress_evidence();
            let observed_external = !jumped;
            r.observed = Some(observed_external.to_string());
            if p.egress() == ProgrammedEgress::Incomplete {
                r.status = Status::Fail;
                r.reason = format!(
                    "nat POSTROUTING jumps to {} but no \"{}\" SNAT rule is programmed ({source})",
                    vpccni::SNAT_CHAIN_0,
                    vpccni::COMMENT_SNAT_RULE
                );
                r.observed = Some("false (incomplete)".into());
                return;
            }
            r.status = if observed_external == *want_external {
                Status::Pass
            } else {
                Status::Fail
            };
            r.reason = if jumped {
                format!(
                    "nat POSTROUTING jumps to {}: the CNI SNATs pod traffic ({source})",
                    vpccni::SNAT_CHAIN_0
                )
            } else {
                format!(
                    "no -j {} in nat POSTROUTING: the CNI does not SNAT ({source})",
                    vpccni::SNAT_CHAIN_0
                )
            };
        }
        Expected::Cidrs(want) => {
            let (got, evidence) = p.exclusions();
            r.evidence = evidence;
            r.observed = Some(if got.is_empty() {
                "none".into()
            } else {
                got.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            });
            let missing: Vec<String> = want.difference(&got).map(ToString::to_string).collect();
            let extra: Vec<String> = got.difference(want).map(ToString::to_string).collect();
            let ok = if a.key == Key::ExcludeSnat {
                missing.is_empty() && extra.is_empty()
            } else {
                missing.is_empty()
            };
            r.status = if ok { Status::Pass } else { Status::Fail };
            let mut why = Vec::new();
            if !missing.is_empty() {
                why.push(format!("not programmed: {}", missing.join(", ")));
            }
            if !extra.is_empty() && a.key == Key::ExcludeSnat {
                why.push(format!("programmed but not expected: {}", extra.join(", ")));
            }
            if why.is_empty() {
                why.push(format!(
                    "{} exclusion RETURN rule(s) in the SNAT chain{}",
                    got.len(),
                    if a.key == Key::ExcludeSnat {
                        " match exactly"
                    } else {
                        " include them"
                    }
                ));
            }
            if !jumped {
                why.push(format!(
                    "note: nat POSTROUTING does not jump to {}",
                    vpccni::SNAT_CHAIN_0
                ));
            }
            r.reason = format!("{} ({source})", why.join("; "));
        }
        Expected::Random(want) => {
            let seen = p.random_modes();
            r.evidence = p.snat_rule_evidence();
            let distinct: BTreeSet<&str> = seen.iter().map(|m| m.as_str()).collect();
            r.observed = Some(distinct.iter().copied().collect::<Vec<_>>().join(","));
            let ok = seen.iter().all(|s| s == want);
            r.status = if ok { Status::Pass } else { Status::Fail };
            r.reason = format!(
                "the SNAT rule has {} ({source})",
                seen.iter()
                    .map(|s| s.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Expected::Ip(want) => {
            let got: Vec<String> = p
                .to_sources()
                .into_iter()
                .map(|t| t.unwrap_or_else(|| "(none)".into()))
                .collect();
            r.evidence = p.snat_rule_evidence();
            r.observed = Some(got.join(","));
            let want_s = want.to_string();
            // --to-source may carry a range or port (`10.0.0.5:1024-65535`); compare the address.
            let ok = got.iter().all(|g| to_source_address(g) == want_s);
            r.status = if ok { Status::Pass } else { Status::Fail };
            r.reason = format!("--to-source {} ({source})", got.join(", "));
        }
        Expected::Severity(_) | Expected::Rule(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assertions() {
        let a = Assertion::parse("exclude-snat=172.20.0.0/16, 10.10.1.0/16").unwrap();
        assert_eq!(a.key, Key::ExcludeSnat);
        let Expected::Cidrs(s) = &a.expected else {
            panic!("not cidrs")
        };
        assert!(s.contains(&"10.10.0.0/16".parse().unwrap()));
        let b = Assertion::parse("exclude-snat+=10.0.0.0/8").unwrap();
        assert_eq!(b.key, Key::ExcludeSnatIncludes);
        assert_eq!(b.label(), "exclude-snat+=10.0.0.0/8");
        assert!(Assertion::parse("random=fast").is_err());
        assert!(Assertion::parse("external-snat").is_err());
        assert!(Assertion::parse("bogus=1").is_err());
        assert!(Assertion::parse("to-source=10.0.0.300").is_err());
        assert_eq!(
            Assertion::parse("external-snat=FALSE").unwrap().expected,
            Expected::Bool(false)
        );
        assert_eq!(
            Assertion::parse("exclude-snat=").unwrap().expected,
            Expected::Cidrs(BTreeSet::new())
        );
    }

    #[test]
    fn policy_merges_default_node_and_cli() {
        let p = Policy::parse(
            r#"
[default]
expect = { external-snat = false, random = "prng" }
[[node]]
match = "^ip-10-0-1-"
expect = { random = "none", exclude-snat = ["172.20.0.0/16"] }
"#,
        )
        .unwrap();
        let cli = vec![Assertion::parse("to-source=10.0.1.5").unwrap()];
        let a = assertions_for("ip-10-0-1-5", &cli, Some(&p));
        let labels: Vec<String> = a.iter().map(Assertion::label).collect();
        assert_eq!(
            labels,
            vec![
                "external-snat=false",
                "exclude-snat=172.20.0.0/16",
                "random=none",
                "to-source=10.0.1.5"
            ]
        );
        let b = assertions_for("ip-10-0-2-5", &[], Some(&p));
        assert_eq!(b.len(), 2);
        assert!(Policy::parse("[[node]]\nexpect = {}\n").is_err());
        assert!(Policy::parse("[bogus]\n").is_err());
        assert!(Policy::parse("[default]\nexpect = { nope = \"1\" }\n").is_err());
    }
}
