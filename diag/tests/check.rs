//! `diag check`: exit 0 all pass, 1 a failure, 2 cannot evaluate / nothing checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn programmed_state_passes() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "external-snat=false",
        "--expect",
        "exclude-snat=172.20.0.0/16",
        "--expect",
        "exclude-snat+=172.20.0.0/16",
        "--expect",
        "random=prng",
        "--expect",
        "to-source=192.168.1.251",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("PASS")).count(),
        5,
        "{}",
        r.stdout
    );
    // Evidence is the programmed rule line.
    assert!(
        r.stdout
            .contains("--to-source 192.168.1.251 --random-fully"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("5 passed, 0 failed"),
        "{}",
        r.stdout
    );
}

#[test]
fn mismatches_fail_with_evidence() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "exclude-snat=172.20.0.0/16,10.10.0.0/16",
        "--expect",
        "random=hashrandom",
        "--expect",
        "external-snat=true",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("FAIL")).count(),
        3,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("not programmed: 10.10.0.0/16"),
        "{}",
        r.stdout
    );
    // node-b: env says prng, the kernel has --random: the kernel is what counts.
    let r = diag(&[
        "check",
        "--from",
        "captures/node-b",
        "--expect",
        "random=prng",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["results"][0]["status"], "FAIL");
    assert_eq!(v["results"][0]["observed"], "hashrandom");
    assert_eq!(v["summary"]["failed"], 1);
}

#[test]
fn findings_assertions() {
    let r = diag(&[
        "check",
        "--from",
        "captures/node-b",
        "--expect",
        "to-source=10.0.1.5",
        "--expect",
        "no-findings=error",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("FAIL  node-b  to-source=10.0.1.5"),
        "{}",
        r.stdout
    );
    // The failing no-findings assertion lists the findings as its evidence.
    let v: serde_json::Value = serde_json::from_str(
        &diag(&[
            "check",
            "--from",
            "captures/node-b",
            "--expect",
            "no-findings=warning",
            "-o",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(v["results"][0]["status"], "FAIL");
    assert!(v["results"][0]["evidence"]
        .to_string()
        .contains("snat.to-source-mismatch"));
    // A healthy node passes it.
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--expect",
        "no-findings=warning",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn cannot_evaluate_or_nothing_checked_is_exit_2() {
    // No iptables capture at all.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("rules-only");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("ip-rule.txt"), read("captures/node-a/ip-rule.txt")).unwrap();
    let r = diag(&[
        "check",
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "external-snat=false",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.starts_with("ERROR"), "{}", r.stdout);
    assert!(r.stdout.contains("no iptables-save.txt"), "{}", r.stdout);
    // No assertions.
    let r = diag(&["check", "--from", "captures/node-a"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("nothing to check"), "{}", r.stdout);
    // No nodes.
    let r = diag(&[
        "check",
        "--from",
        d.join("missing").to_str().unwrap(),
        "--expect",
        "random=prng",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("nothing was checked"), "{}", r.stdout);
    // Bad assertion / unknown rule id.
    for bad in [
        "random=fast",
        "nope=1",
        "rule-absent=no.such-rule",
        "exclude-snat=10.0.0/8",
    ] {
        let r = diag(&["check", "--from", "captures/node-a", "--expect", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.all());
        assert!(r.stdout.contains(bad), "{}", r.stdout);
    }
    // Neither --local nor --from: a usage error.
    let r = diag(&["check", "--expect", "random=prng"]);
    assert_eq!(r.code, 2);
}

#[test]
fn policy_file_selects_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("policy.toml");
    std::fs::write(
        &p,
        r#"
[default]
expect = { external-snat = false }

[[node]]
match = "^node-a$"
expect = { exclude-snat = ["172.20.0.0/16"], random = "prng" }

[[node]]
match = "^node-b$"
expect = { random = "hashrandom", to-source = "10.0.9.9" }
"#,
    )
    .unwrap();
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "captures/node-b",
        "--policy",
        p.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["passed"], 6, "{v:#}");
    std::fs::write(&p, "[default]\nexpect = { random = \"sometimes\" }\n").unwrap();
    let r = diag(&[
        "check",
        "--from",
        "captures/node-a",
        "--policy",
        p.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("policy.toml"), "{}", r.stdout);
}

#[test]
fn split_backends_are_named_in_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("split");
    std::fs::create_dir(&d).unwrap();
    let save = read("captures/node-a/iptables-save.txt");
    std::fs::write(d.join("iptables-nft-save.txt"), &save).unwrap();
    let legacy = save
        .replace(
            "iptables-nft-save v1.8.8 (nf_tables)",
            "iptables-save v1.8.8 (legacy)",
        )
        .replace(":KUBE-KUBELET-CANARY - [0:0]\n", "")
        .replace("192.168.1.251", "192.168.7.7");
    std::fs::write(d.join("iptables-legacy-save.txt"), legacy).unwrap();
    let r = diag(&[
        "check",
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "to-source=192.168.1.251",
    ]);
    // The kubelet's (nft) backend is checked; the legacy copy is named, not silently ignored.
    assert_eq!(r.code, 0, "{}", r.all());
    let flat = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("also in the legacy backend"), "{}", r.stdout);
}

#[test]
fn rule_present_and_absent() {
    // node-b's SNAT rule points at another host's IP: the to-source rule fires there only.
    let id = "snat.to-source-mismatch";
    assert!(analysis::catalogue().iter().any(|r| r.id == id));
    let present = format!("rule-present={id}");
    let absent = format!("rule-absent={id}");
    let r = diag(&["check", "--from", "captures/node-b", "--expect", &present]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("--to-source 10.0.9.9"),
        "evidence: {}",
        r.stdout
    );
    let r = diag(&["check", "--from", "captures/node-b", "--expect", &absent]);
    assert_eq!(r.code, 1, "{}", r.all());
    let r = diag(&["check", "--from", "captures/node-a", "--expect", &absent]);
    assert_eq!(r.code, 0, "{}", r.all());
}
