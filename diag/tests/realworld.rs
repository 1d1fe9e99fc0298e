//! Real-world captures from public bug reports, blog posts and Q&A threads
//! (`tests/fixtures/realworld/<slug>/`, provenance in each `SOURCE.md`).
//!
//! Every directory is run through the built `diag analyze -o json`, `diag snat --from` and
//! `diag routes --from`; the expectations live in the directory's `expect.toml`, so adding a
//! capture is adding files:
//!
//! ```toml
//! evaluated = ["snat.stale-chains"]    # REQUIRED: rule ids that must run (not be skipped) on
//!                                      # every node; `[]` says no rule can run on this input
//! fires = ["snat.stale-chains"]        # these rule ids must be reported (any severity)
//! not_fires = ["snat.chain-missing"]   # these rule ids must not be reported at all, and must
//!                                      # have been evaluated (a skipped rule reports nothing)
//! healthy = true                       # no finding at warning or error
//! max_exit = 2                         # highest acceptable exit code of `analyze`
//! nodes = 3                            # number of node reports (loop captures)
//! problem_names = ["ip-rule.txt"]      # an input problem or parse warning names this file
//! clean = true                         # no input problem and no parse warning at all
//! map = ["ip-rule.txt=rules.out"]      # passed as `--map`
//! known_issue = "…"                    # a bug outside diag's files: report, do not fail
//! ```
//!
//! Always checked: no panic (exit 101) or signal, no hang, valid JSON whose `exit_code` is the
//! process's, and every input problem / parse warning names the file it is about. `healthy`
//! needs a non-empty `evaluated`: absence of findings means nothing if no rule ran.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realworld")
}

#[derive(Debug, Default)]
struct Expect {
    /// `None` only in the checker's own unit tests; every expect.toml must have it.
    evaluated: Option<Vec<String>>,
    fires: Vec<String>,
    not_fires: Vec<String>,
    healthy: bool,
    max_exit: i32,
    nodes: Option<usize>,
    problem_names: Vec<String>,
    clean: bool,
    map: Vec<String>,
    known_issue: Option<String>,
}

fn strings(v: &toml::Value, key: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{key} must be an array of strings"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{key} must be an array of strings"))
        })
        .collect()
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("expect.toml: {e}"))?;
    let mut e = Expect {
        max_exit: 2,
        ..Expect::default()
    };
    for (k, v) in &table {
        match k.as_str() {
            "evaluated" => e.evaluated = Some(strings(v, k)?),
            "fires" => e.fires = strings(v, k)?,
            "not_fires" => e.not_fires = strings(v, k)?,
            "problem_names" => e.problem_names = strings(v, k)?,
            "map" => e.map = strings(v, k)?,
            "healthy" => e.healthy = v.as_bool().ok_or("healthy must be a bool")?,
            "clean" => e.clean = v.as_bool().ok_or("clean must be a bool")?,
            "max_exit" => e.max_exit = v.as_integer().ok_or("max_exit must be an integer")? as i32,
            "nodes" => e.nodes = Some(v.as_integer().ok_or("nodes must be an integer")? as usize),
            "known_issue" => {
                e.known_issue = Some(v.as_str().ok_or("known_issue must be a string")?.into())
            }
            other => return Err(format!("expect.toml: unknown key `{other}`")),
        }
    }
    Ok(e)
}

struct Out {
    /// None: killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

fn run(args: &[String]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diag"));
    c.args(args)
        .current_dir(root())
        .env_remove("DIAG_OUTPUT")
        .env_remove("DIAG_FAIL_ON")
        .env_remove("DIAG_COLOR")
        .env_remove("DIAG_POLICY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn diag");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        so.read_to_end(&mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        se.read_to_end(&mut s).ok();
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            child.kill().ok();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        timed_out,
    }
}

/// No panic, no signal, no hang, exit ≤ `max_exit`, JSON on stdout.
fn process_problems(
    what: &str,
    o: &Out,
    max_exit: i32,
) -> (Vec<String>, Option<serde_json::Value>) {
    let mut bad = Vec::new();
    if o.timed_out {
        bad.push(format!("{what}: did not finish within {TIMEOUT:?}"));
    }
    match o.code {
        None => bad.push(format!("{what}: killed by a signal; stderr: {}", o.stderr)),
        Some(101) => bad.push(format!("{what}: panicked: {}", o.stderr)),
        Some(c) if c > max_exit => bad.push(format!(
            "{what}: exit {c} > {max_exit}; stderr: {}",
            o.stderr.trim()
        )),
        Some(_) => {}
    }
    if o.stderr.contains("panicked at") {
        bad.push(format!("{what}: panic message on stderr: {}", o.stderr));
    }
    let json = match serde_json::from_str::<serde_json::Value>(&o.stdout) {
        Ok(v) => Some(v),
        Err(e) => {
            bad.push(format!(
                "{what}: stdout is not JSON ({e}): {}",
                o.stdout.chars().take(300).collect::<String>()
            ));
            None
        }
    };
    (bad, json)
}

fn arr<'a>(v: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    v.get(key)
        .and_then(|x| x.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Check one `analyze -o json` report against the expectations.
fn check_report(
    v: &serde_json::Value,
    code: Option<i32>,
    exp: &Expect,
    files: &[String],
) -> Vec<String> {
    let mut bad = Vec::new();
    if let (Some(c), Some(j)) = (code, v.get("exit_code").and_then(|x| x.as_i64())) {
        if i64::from(c) != j {
            bad.push(format!("process exit {c} but JSON exit_code {j}"));
        }
    }
    let nodes = arr(v, "nodes");
    if let Some(n) = exp.nodes {
        if nodes.len() != n {
            bad.push(format!("{} node report(s), expected {n}", nodes.len()));
        }
    }
    let mut fired: Vec<(String, String, String)> = Vec::new();
    let mut messages: Vec<String> = Vec::new();
    for n in nodes {
        let report = n.get("report").cloned().unwrap_or_default();
        if let Some(want) = &exp.evaluated {
            let ran: BTreeSet<&str> = arr(&report, "evaluated")
                .iter()
                .filter_map(|r| r.as_str())
                .collect();
            let node = n["node"].as_str().unwrap_or("?");
            let skipped = |id: &str| {
                arr(&report, "skipped")
                    .iter()
                    .find(|s| s["rule"] == id)
                    .map(|s| s["reason"].as_str().unwrap_or("").to_string())
                    .unwrap_or_else(|| "not in evaluated or skipped".into())
            };
            for id in want {
                if !ran.contains(id.as_str()) {
                    bad.push(format!("{node}: {id} was not evaluated: {}", skipped(id)));
                }
            }
            for id in &exp.not_fires {
                if !ran.contains(id.as_str()) {
                    bad.push(format!(
                        "{node}: not_fires {id} is vacuous, the rule was not evaluated: {}",
                        skipped(id)
                    ));
                }
            }
            if exp.healthy && want.is_empty() {
                bad.push("healthy = true with evaluated = []: asserts nothing".into());
            }
        }
        for f in arr(&report, "findings") {
            fired.push((
                f["rule"].as_str().unwrap_or("?").to_string(),
                f["severity"].as_str().unwrap_or("?").to_string(),
                f["summary"].as_str().unwrap_or("").to_string(),
            ));
        }
        messages.extend(
            arr(n, "input_problems")
                .iter()
                .filter_map(|p| p.as_str().map(String::from)),
        );
        for s in arr(n, "sections") {
            messages.extend(
                arr(s, "warnings")
                    .iter()
                    .filter_map(|w| w.as_str().map(String::from)),
            );
        }
    }
    messages.extend(arr(v, "input_errors").iter().map(|e| e.to_string()));
    let ids: BTreeSet<&str> = fired.iter().map(|(r, _, _)| r.as_str()).collect();
    for want in &exp.fires {
        if !ids.contains(want.as_str()) {
            bad.push(format!("expected {want} to fire; fired: {fired:?}"));
        }
    }
    for not in &exp.not_fires {
        if let Some(f) = fired.iter().find(|(r, _, _)| r == not) {
            bad.push(format!("{not} must not fire, but did: {f:?}"));
        }
    }
    if exp.healthy {
        for f in fired
            .iter()
            .filter(|(_, s, _)| s == "warning" || s == "error")
        {
            bad.push(format!("healthy capture, but {f:?}"));
        }
    }
    for m in &messages {
        if !files.iter().any(|f| m.contains(f.as_str())) {
            bad.push(format!("problem message names no file of the capture: {m}"));
        }
    }
    if exp.clean {
        for m in &messages {
            bad.push(format!("clean capture, but: {m}"));
        }
    }
    for name in &exp.problem_names {
        if !messages.iter().any(|m| m.contains(name.as_str())) {
            bad.push(format!(
                "no input problem or parse warning names {name}: {messages:?}"
            ));
        }
    }
    bad
}

fn capture_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SOURCE.md" && n != "expect.toml")
        .collect();
    v.sort();
    v
}

fn check_dir(dir: &Path) -> Result<Vec<String>, String> {
    let slug = dir.file_name().unwrap().to_string_lossy().into_owned();
    let exp = parse_expect(
        &std::fs::read_to_string(dir.join("expect.toml"))
            .map_err(|e| format!("{slug}: expect.toml: {e}"))?,
    )
    .map_err(|e| format!("{slug}: {e}"))?;
    if exp.evaluated.is_none() {
        return Err(format!(
            "{slug}: expect.toml must list `evaluated = [...]` (rule ids that must run on this \
             capture; `[]` if none can)"
        ));
    }
    let source = std::fs::read_to_string(dir.join("SOURCE.md"))
        .map_err(|e| format!("{slug}: SOURCE.md: {e}"))?;
    let mut bad = Vec::new();
    if !source.contains("Source") || !source.contains("Expect") {
        bad.push("SOURCE.md must say where the capture is from (Source) and what diag should report (Expect)".to_string());
    }
    let files = capture_files(dir);
    let mut map_args = Vec::new();
    for m in &exp.map {
        map_args.push("--map".to_string());
        map_args.push(m.clone());
    }
    let mut args: Vec<String> = vec!["analyze".into(), "-o".into(), "json".into()];
    args.extend(map_args.iter().cloned());
    args.push(slug.clone());
    let o = run(&args);
    let (mut b, json) = process_problems("analyze", &o, exp.max_exit);
    bad.append(&mut b);
    if let Some(v) = json {
        bad.extend(check_report(&v, o.code, &exp, &files));
    }
    for cmd in ["snat", "routes"] {
        let mut args: Vec<String> = vec![cmd.into(), "-o".into(), "json".into()];
        args.extend(map_args.iter().cloned());
        args.push("--from".into());
        args.push(slug.clone());
        let o = run(&args);
        let (mut b, _) = process_problems(cmd, &o, 2);
        bad.append(&mut b);
    }
    // Text output is what people paste back: it must not panic either.
    let mut args: Vec<String> = vec!["analyze".into(), "-o".into(), "text".into()];
    args.extend(map_args);
    args.push(slug);
    let o = run(&args);
    if o.code.is_none() || o.code == Some(101) || o.timed_out {
        bad.push(format!("analyze -o text crashed or hung: {}", o.stderr));
    }
    match (&exp.known_issue, bad.is_empty()) {
        (Some(k), false) => {
            eprintln!(
                "known issue in {}: {k}\n  {}",
                dir.display(),
                bad.join("\n  ")
            );
            Ok(vec![])
        }
        (Some(k), true) => {
            eprintln!("{}: passes now; drop known_issue = {k:?}", dir.display());
            Ok(vec![])
        }
        (None, _) => Ok(bad),
    }
}

#[test]
fn realworld_captures() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 15,
        "expected at least 15 real-world captures, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for d in &dirs {
        match check_dir(d) {
            Ok(bad) => failures.extend(
                bad.into_iter()
                    .map(|b| format!("{}: {b}", d.file_name().unwrap().to_string_lossy())),
            ),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// The checker itself must be able to fail.

fn report(findings: serde_json::Value, problems: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"exit_code": 1, "nodes": [{"node": "n", "input_problems": problems,
        "sections": [], "report": {"findings": findings}}], "input_errors": []})
}

#[test]
fn checker_reports_a_missing_expected_rule() {
    let exp = parse_expect("fires = [\"snat.stale-chains\"]").unwrap();
    let v = report(serde_json::json!([]), serde_json::json!([]));
    let bad = check_report(&v, Some(1), &exp, &[]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("snat.stale-chains"));
}

#[test]
fn checker_reports_a_false_alarm_on_a_healthy_capture() {
    let exp = parse_expect("healthy = true\nnot_fires = [\"route.dangling\"]").unwrap();
    let v = report(
        serde_json::json!([{"rule": "route.dangling", "severity": "warning", "summary": "x"}]),
        serde_json::json!([]),
    );
    let bad = check_report(&v, Some(1), &exp, &[]);
    assert_eq!(bad.len(), 2, "{bad:?}");
}

#[test]
fn checker_reports_anonymous_problems_and_exit_mismatch() {
    let exp = parse_expect("problem_names = [\"ip-rule.txt\"]").unwrap();
    let v = report(
        serde_json::json!([]),
        serde_json::json!(["line 3: garbage"]),
    );
    let bad = check_report(&v, Some(2), &exp, &["ip-rule.txt".to_string()]);
    // exit mismatch, message without a file name, and no message naming ip-rule.txt
    assert_eq!(bad.len(), 3, "{bad:?}");
}

#[test]
fn checker_reports_warnings_on_a_clean_capture() {
    let exp = parse_expect("clean = true").unwrap();
    let v = report(
        serde_json::json!([]),
        serde_json::json!(["x/ip-rule.txt: line 1: not a rule"]),
    );
    let bad = check_report(&v, Some(1), &exp, &["ip-rule.txt".to_string()]);
    assert_eq!(bad.len(), 1, "{bad:?}");
}

fn evaluated_report(evaluated: serde_json::Value, skipped: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"exit_code": 0, "nodes": [{"node": "n", "input_problems": [],
        "sections": [], "report": {"findings": [], "evaluated": evaluated, "skipped": skipped}}],
        "input_errors": []})
}

#[test]
fn checker_reports_a_skipped_rule_and_a_vacuous_not_fires() {
    let exp = parse_expect(
        "evaluated = [\"snat.chain-missing\"]\nnot_fires = [\"route.dangling\"]\nhealthy = true",
    )
    .unwrap();
    let v = evaluated_report(
        serde_json::json!([]),
        serde_json::json!([{"rule": "snat.chain-missing", "reason": "EXTERNALSNAT is unknown"}]),
    );
    let bad = check_report(&v, Some(0), &exp, &[]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("snat.chain-missing") && bad[0].contains("EXTERNALSNAT is unknown"));
    assert!(bad[1].contains("route.dangling"));
    // Both evaluated: nothing to report.
    let v = evaluated_report(
        serde_json::json!(["snat.chain-missing", "route.dangling"]),
        serde_json::json!([]),
    );
    assert!(check_report(&v, Some(0), &exp, &[]).is_empty());
}

#[test]
fn checker_rejects_healthy_with_nothing_evaluated() {
    let exp = parse_expect("evaluated = []\nhealthy = true").unwrap();
    let v = evaluated_report(serde_json::json!([]), serde_json::json!([]));
    let bad = check_report(&v, Some(0), &exp, &[]);
    assert_eq!(bad.len(), 1, "{bad:?}");
}

#[test]
fn checker_rejects_unknown_expect_keys() {
    assert!(parse_expect("fire = [\"x\"]").is_err());
    assert!(parse_expect("healthy = \"yes\"").is_err());
}

#[test]
fn process_checks_catch_panics_and_bad_json() {
    let o = Out {
        code: Some(101),
        stdout: "not json".into(),
        stderr: "thread 'main' panicked at src/x.rs".into(),
        timed_out: false,
    };
    let (bad, json) = process_problems("analyze", &o, 2);
    assert!(json.is_none());
    assert_eq!(bad.len(), 3, "{bad:?}");
    let o = Out {
        code: None,
        stdout: "{}".into(),
        stderr: String::new(),
        timed_out: true,
    };
    let (bad, _) = process_problems("analyze", &o, 2);
    assert_eq!(bad.len(), 2, "{bad:?}");
}
