//! Untrusted text never reaches the terminal raw (issue 14): every C0/C1 control, OSC and
//! CSI sequences fed through each input kind (snapshot JSON, capture directory, eks-log-collector
//! tarball member, stdin) and each output format of analyze/snat/routes/check; stdout and
//! stderr carry no control character but `\n` and `\t`, and JSON keeps the exact text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// Every C0 control, DEL, every C1 control, an OSC title change, CSI clear/conceal, and a
/// bidi override.
fn payload() -> String {
    let mut p = String::from("evil");
    for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
        p.push(c);
    }
    p.push_str("\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[8mhidden\u{1b}[0m\u{9b}31m\u{202e}end");
    p
}

/// The first character a terminal would act on, if any.
fn raw_control(s: &str) -> Option<(usize, char)> {
    s.char_indices().find(|(_, c)| {
        *c != '\n' && *c != '\t' && (c.is_control() || model::sanitize::is_unsafe(*c))
    })
}

/// The SGR sequences diag itself writes with `--color always` (diag/src/render/mod.rs
/// `Style::SGR`); nothing else may carry an ESC. The payload's `\x1b[8m`/`[2J` are not in it.
const DIAG_SGR: &[&str] = &[
    "\u{1b}[1m",
    "\u{1b}[2m",
    "\u{1b}[32m",
    "\u{1b}[1;31m",
    "\u{1b}[33m",
    "\u{1b}[36m",
    "\u{1b}[0m",
];

fn assert_clean(what: &str, r: &Run) {
    let colour = what.contains("\"always\"");
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        let mut text = text.clone();
        if colour {
            for sgr in DIAG_SGR {
                text = text.replace(sgr, "");
            }
        }
        let text = &text;
        if let Some((at, c)) = raw_control(text) {
            let from = at.saturating_sub(80);
            panic!(
                "{what}: raw {c:?} at {at} of {stream}: {:?}",
                &text[text.floor_char_boundary(from)..text.ceil_char_boundary(at + 8)]
            );
        }
    }
}

#[test]
fn no_control_character_from_any_input_reaches_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let evil = payload();

    // Snapshot JSON: the hostname, a section reason, a parse warning.
    let mut s = node_a_snapshot(&format!("node-{evil}"));
    s.conntrack = model::Section::unavailable(format!("conntrack said {evil}"));
    s.iptables.warnings.push(format!("line 3: {evil}"));
    s.iptables.status = model::SectionStatus::Partial;
    let snap = write_json(&tmp.path().join("evil.json"), &s);
    let snap_text = std::fs::read_to_string(&snap).unwrap();

    // A capture directory: node-a's files, with the payload in iptables-save and ip rule.
    let cap = tmp.path().join("capture");
    std::fs::create_dir(&cap).unwrap();
    for f in std::fs::read_dir(fixtures().join("captures/node-a")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, cap.join(f.file_name().unwrap())).unwrap();
    }
    let ipt = read("captures/node-a/iptables-save.txt");
    let evil_ipt = ipt.replacen("*nat", &format!("{evil}\n*nat\n-A {evil}"), 1);
    std::fs::write(cap.join("iptables-save.txt"), &evil_ipt).unwrap();
    let rule = read("captures/node-a/ip-rule.txt");
    std::fs::write(cap.join("ip-rule.txt"), format!("{rule}{evil}\n")).unwrap();

    // An eks-log-collector tarball whose iptables-save member carries it.
    let mut members = vec![(
        "networking/iptables-save.txt".to_string(),
        evil_ipt.clone().into_bytes(),
    )];
    members.push((
        "networking/iprule.txt".into(),
        format!("{rule}{evil}\n").into_bytes(),
    ));
    members.push((
        "networking/iproute.txt".into(),
        read("captures/node-a/ip-route.txt").into_bytes(),
    ));
    let elc = write_tar_gz(
        &tmp.path()
            .join("eks_i-0evil_2026-11-21_0610-UTC_0.7.9.tar.gz"),
        "eks_i-0evil_2026-11-21_0610-UTC_0.7.9",
        &members,
    );

    let inputs: Vec<(&str, String, Option<&str>)> = vec![
        ("snapshot", snap.display().to_string(), None),
        ("capture", cap.display().to_string(), None),
        ("elc", elc.display().to_string(), None),
        ("stdin", "-".into(), Some(snap_text.as_str())),
    ];
    let mut escaped_seen = false;
    for (kind, path, stdin) in &inputs {
        for fmt in ["text", "markdown", "json"] {
            let cmds: Vec<Vec<&str>> = vec![
                vec!["analyze", path.as_str()],
                vec!["snat", "--from", path.as_str()],
                vec!["routes", "--from", path.as_str()],
                vec![
                    "check",
                    "--from",
                    path.as_str(),
                    "--expect",
                    "no-findings=error",
                    "--expect",
                    "random=prng",
                ],
            ];
            for mut argv in cmds {
                argv.extend(["-o", fmt]);
                for color in ["never", "always"] {
                    let mut a = argv.clone();
                    if fmt == "text" {
                        a.extend(["--color", color]);
                    } else if color == "always" {
                        continue;
                    }
                    let r = diag_with(&a, &[], *stdin);
                    let what = format!("{kind} {a:?}");
                    assert!((0..=2).contains(&r.code), "{what}: {}", r.all());
                    assert_clean(&what, &r);
                    escaped_seen |= r.stdout.contains("^[]0;pwned\\x07");
                    if fmt == "json" && *kind == "snapshot" && a[0] == "analyze" {
                        // JSON keeps the exact text.
                        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
                        assert_eq!(v["nodes"][0]["node"], format!("node-{evil}"), "{what}");
                    }
                }
            }
        }
    }
    assert!(
        escaped_seen,
        "the payload reached the reports (escaped), so the test exercised the layer"
    );
}
