//! Golden outputs (insta) of analyze / snat / routes / check in text, JSON and Markdown, the
//! help texts, completions, schema, the rule catalogue, and colour handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// Temp paths, timestamps and durations vary between runs.
fn redact(s: &str, tmp: &std::path::Path) -> String {
    stable(&s.replace(&tmp.display().to_string(), "[TMP]"))
}

fn stable(s: &str) -> String {
    let ts = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").unwrap();
    let ms = regex::Regex::new(r#""(duration_ms|total_ms|connect_ms)": \d+"#).unwrap();
    let s = ts.replace_all(s, "[TIME]");
    ms.replace_all(&s, r#""$1": "[MS]""#).into_owned()
}

#[test]
fn analyze_goldens() {
    for (fmt, ext) in [("text", "txt"), ("json", "json"), ("markdown", "md")] {
        let r = diag(&["analyze", "captures/node-a", "captures/node-b", "-o", fmt]);
        assert_eq!(r.code, 1, "node-b has errors: {}", r.all());
        insta::assert_snapshot!(format!("analyze_two_nodes_{ext}"), stable(&r.stdout));
    }
}

#[test]
fn analyze_snapshot_golden_with_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_json(
        &tmp.path().join("node.json"),
        &node_a_snapshot("ip-192-168-1-251"),
    );
    std::fs::write(tmp.path().join("bad.json"), "[1, 2").unwrap();
    let r = diag(&[
        "analyze",
        s.to_str().unwrap(),
        tmp.path().join("bad.json").to_str().unwrap(),
        "-o",
        "markdown",
    ]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("analyze_snapshot_bad_md", redact(&r.stdout, tmp.path()));
}

#[test]
fn snat_and_routes_goldens() {
    for cmd in ["snat", "routes"] {
        for (fmt, ext) in [("text", "txt"), ("json", "json"), ("markdown", "md")] {
            let r = diag(&[cmd, "--from", "captures/node-a", "-o", fmt]);
            assert_eq!(r.code, 0, "healthy fixture: {}", r.all());
            insta::assert_snapshot!(format!("{cmd}_node_a_{ext}"), stable(&r.stdout));
        }
    }
    let r = diag(&["snat", "--from", "captures/node-b"]);
    insta::assert_snapshot!("snat_node_b_txt", stable(&r.stdout));
}

#[test]
fn check_goldens() {
    let args = [
        "check",
        "--from",
        "captures/node-a",
        "captures/node-b",
        "--expect",
        "external-snat=false",
        "--expect",
        "exclude-snat=172.20.0.0/16",
        "--expect",
        "random=prng",
    ];
    for (fmt, ext) in [("text", "txt"), ("json", "json"), ("markdown", "md")] {
        let mut a = args.to_vec();
        a.extend(["-o", fmt]);
        let r = diag(&a);
        assert_eq!(r.code, 1, "{}", r.all());
        insta::assert_snapshot!(format!("check_two_nodes_{ext}"), stable(&r.stdout));
    }
}

#[test]
fn help_texts() {
    for (name, args) in [
        ("help_main", vec!["--help"]),
        ("help_analyze", vec!["analyze", "--help"]),
        ("help_check", vec!["check", "--help"]),
        ("help_snat", vec!["snat", "--help"]),
    ] {
        let r = diag(&args);
        assert_eq!(r.code, 0);
        insta::assert_snapshot!(name, r.stdout);
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = diag(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}");
        for word in ["analyze", "snat", "routes", "check", "expect"] {
            assert!(r.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert_eq!(diag(&["completions", "tcsh"]).code, 2);
}

#[test]
fn schema_documents_are_json_schemas() {
    for (what, title) in [
        ("snapshot", "Snapshot"),
        ("report", "AnalyzeReport"),
        ("fleet", "FleetReport"),
    ] {
        let r = diag(&["schema", what]);
        assert_eq!(r.code, 0);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["$schema"].is_string(), "{what}");
        assert_eq!(v["title"], title, "{what}");
    }
}

#[test]
fn rules_lists_the_catalogue() {
    let cat = analysis::catalogue();
    let r = diag(&["rules"]);
    assert_eq!(r.code, 0);
    for rule in cat {
        assert!(r.stdout.contains(rule.id), "{} missing", rule.id);
    }
    let v: serde_json::Value =
        serde_json::from_str(&diag(&["rules", "-o", "json"]).stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), cat.len());
    assert!(v[0]["needs"].is_array());
    let md = diag(&["rules", "-o", "markdown"]).stdout;
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| `")).count(),
        cat.len()
    );
}

#[test]
fn colour_follows_flag_env_and_no_color() {
    let esc = |r: &Run| r.stdout.contains('\u{1b}');
    let base = ["analyze", "captures/node-b"];
    // Not a terminal: no colour by default.
    assert!(!esc(&diag(&base)));
    let mut always = base.to_vec();
    always.extend(["--color", "always"]);
    assert!(esc(&diag(&always)));
    // --color=always wins over NO_COLOR; auto honours it.
    assert!(esc(&diag_with(&always, &[("NO_COLOR", "1")], None)));
    assert!(!esc(&diag_with(&base, &[("NO_COLOR", "1")], None)));
    assert!(esc(&diag_with(&base, &[("DIAG_COLOR", "always")], None)));
    let mut never = base.to_vec();
    never.extend(["--color", "never"]);
    assert!(!esc(&diag_with(&never, &[("DIAG_COLOR", "always")], None)));
    // JSON is never coloured.
    let mut json = always.clone();
    json.extend(["-o", "json"]);
    assert!(!esc(&diag(&json)));
}

/// node-a (healthy) plus one SNAT exclusion RETURN that nothing configured: the only finding
/// is `snat.exclusion-unexpected` (info), so the exit code depends on `--fail-on` alone.
fn info_only_capture(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("node-info");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixtures().join("captures/node-a")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let save = dir.join("iptables-save.txt");
    let text = std::fs::read_to_string(&save).unwrap();
    let anchor = "[1:84] -A AWS-SNAT-CHAIN-0 -d 172.20.0.0/16";
    assert!(text.contains(anchor), "node-a's exclusion rule moved");
    let extra = "[0:0] -A AWS-SNAT-CHAIN-0 -d 10.77.0.0/16 -m comment --comment \
                 \"AWS SNAT CHAIN EXCLUSION\" -j RETURN\n";
    std::fs::write(&save, text.replacen(anchor, &format!("{extra}{anchor}"), 1)).unwrap();
    dir
}

#[test]
fn fail_on_and_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let info = info_only_capture(tmp.path());
    let info = info.to_str().unwrap();
    // Precondition, checked against literals (not derived from the output under test).
    let v: serde_json::Value =
        serde_json::from_str(&diag(&["analyze", info, "-o", "json"]).stdout).unwrap();
    let found: Vec<(&str, &str)> = v["nodes"][0]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("snat.exclusion-unexpected", "info")]);
    for (level, code) in [("info", 1), ("warning", 0), ("error", 0)] {
        let r = diag(&["analyze", info, "--fail-on", level]);
        assert_eq!(r.code, code, "--fail-on {level}: {}", r.all());
    }
    assert_eq!(
        diag(&["analyze", info]).code,
        0,
        "default --fail-on is error"
    );
    let r = diag(&["analyze", "captures/node-b", "--fail-on", "info"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let q = diag(&["-q", "analyze", "captures/node-b"]);
    assert!(q.stdout.len() <= r.stdout.len());
    assert!(!q.stdout.contains("skipped checks"));
    let bad = diag(&["analyze", "captures/node-b", "--fail-on", "fatal"]);
    assert_eq!(bad.code, 2);
}
