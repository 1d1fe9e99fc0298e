//! The report contract: `diag schema report` is the committed `report.v1.schema.json`, and
//! what `diag analyze -o json` really prints validates against it with a real JSON Schema
//! validator (Python's `jsonschema`, installed by `scripts/install-deps.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn committed_report_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/schema/report.v1.schema.json")
}

#[test]
fn report_schema_is_committed() {
    let r = diag(&["schema", "report"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let path = committed_report_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &r.stdout).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == r.stdout,
        "{} drifted from the report types; run UPDATE_SCHEMA=1 cargo test -p analysis --test report_schema and commit",
        path.display()
    );
}

/// Validate `doc` against `schema` with Python's jsonschema; `Err(message)` when invalid.
/// Without the validator the test fails under CI and is skipped (loudly) elsewhere.
fn validate(schema: &Path, doc: &str) -> Option<Result<(), String>> {
    let probe = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        e2e::prereq::skip(
            "python3 jsonschema is required (scripts/install-deps.sh installs python3-jsonschema)",
        );
        return None;
    }
    let script = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors[:10]:
    print("/".join(map(str, e.absolute_path)), ":", e.message[:300])
sys.exit(1 if errors else 0)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, schema.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

#[test]
fn analyze_json_validates_against_the_report_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = tmp.path().join("report.schema.json");
    let r = diag(&["schema", "report"]);
    assert_eq!(r.code, 0, "{}", r.all());
    std::fs::write(&schema, &r.stdout).unwrap();

    // Inputs of every kind: capture dirs (healthy and broken), an ELC bundle, snapshots, a
    // truncated capture, bad files, and a `diag collect` directory with an unreachable node.
    let snap = write_json(
        &tmp.path().join("node.json"),
        &node_a_snapshot("ip-192-168-1-251"),
    );
    let elc = build_elc(
        tmp.path(),
        "eks_i-0aaaa1111bbbb2222_2026-11-21_0610-UTC_0.7.9.tar.gz",
    );
    std::fs::write(tmp.path().join("bad.json"), "[1, 2").unwrap();
    let dir = tmp.path().join("fleet-out");
    std::fs::create_dir(&dir).unwrap();
    write_json(
        &dir.join("ip-10-0-0-1.json"),
        &node_a_snapshot("ip-10-0-0-1"),
    );
    write_json(
        &dir.join("fleet.json"),
        &serde_json::json!({
            "started_at": "2026-11-21T06:00:00Z", "duration_ms": 1000, "transport": "ssh",
            "nodes": [
                {"name": "ip-10-0-0-1", "target": "10.0.0.1", "outcome": "ok", "snapshot": "ip-10-0-0-1.json"},
                {"name": "ip-10-0-0-2", "target": "10.0.0.2", "outcome": "unreachable", "error": "connect timeout"}
            ]
        }),
    );
    let s = |p: &Path| p.display().to_string();
    let runs: Vec<Vec<String>> = vec![
        vec!["captures/node-a".into()],
        vec!["captures/node-b".into()],
        vec!["captures/node-a".into(), "captures/node-b".into()],
        vec!["captures/node-truncated".into()],
        vec![s(&snap), s(&elc)],
        vec![s(&snap), s(&tmp.path().join("bad.json"))],
        vec![s(&dir)],
    ];
    let mut seen_fleet = false;
    let mut seen_inferred = false;
    let mut seen_errors = false;
    for args in runs {
        let mut argv = vec!["analyze".to_string()];
        argv.extend(args.iter().cloned());
        argv.extend(["-o".into(), "json".into()]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let r = diag(&argv);
        assert!((0..=2).contains(&r.code), "{argv:?}: {}", r.all());
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{argv:?}: not JSON ({e}): {}", r.stdout));
        seen_fleet |= v.get("fleet").is_some();
        seen_errors |= v["input_errors"].as_array().is_some_and(|a| !a.is_empty());
        seen_inferred |= r.stdout.contains("\"source\": \"inferred\"");
        match validate(&schema, &r.stdout) {
            None => return,
            Some(Ok(())) => {}
            Some(Err(e)) => panic!("{argv:?}: output does not match `diag schema report`:\n{e}"),
        }
    }
    assert!(
        seen_fleet && seen_errors && seen_inferred,
        "inputs cover the schema's branches"
    );

    // The validator really validates: a report missing a required field is refused.
    let r = diag(&["analyze", "captures/node-a", "-o", "json"]);
    let mut v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["nodes"][0].as_object_mut().unwrap().remove("facts");
    v["nodes"][0]["report"]["findings"] = serde_json::json!([{"rule": 7}]);
    let broken = serde_json::to_string(&v).unwrap();
    assert!(matches!(validate(&schema, &broken), Some(Err(_))));
}
