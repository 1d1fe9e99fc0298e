//! `diag bundle` on saved inputs (capture directories, an eks-log-collector bundle), and
//! `diag analyze` / `diag snat` reading the bundles back: same rule ids and severities,
//! redacted or not; fleet archives with a failed node; `--max-size`; `--map-file`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;

fn ids(stdout: &str) -> Vec<BTreeSet<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["report"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["rule"].as_str().unwrap().to_string(),
                        f["severity"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let f = std::fs::File::open(archive).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (p, b)
        })
        .collect()
}

fn bundle(args: &[&str]) -> (PathBuf, Run) {
    let r = diag(args);
    let line = r.stdout.lines().next().unwrap_or_default().to_string();
    (PathBuf::from(line), r)
}

#[test]
fn capture_dir_bundles_analyse_the_same_redacted_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    let mut compared = 0;
    for fixture in ["captures/node-a", "captures/node-b"] {
        let src = fixtures().join(fixture).display().to_string();
        let direct = diag(&["analyze", &src, "-o", "json"]);
        let want = ids(&direct.stdout);
        compared += want[0].len();
        let (plain, r) = bundle(&["bundle", "--from", &src, "-d", &d, "--no-redact"]);
        assert_eq!(r.code, 0, "{}", r.all());
        let (red, r) = bundle(&["bundle", "--from", &src, "-d", &d]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stderr.contains("private map"), "{}", r.all());
        assert_ne!(plain, red);
        for a in [&plain, &red] {
            let name = a.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("eks-diag_") && name.ends_with("-UTC.tar.gz"),
                "{name}"
            );
            let got = diag(&["analyze", &a.display().to_string(), "-o", "json"]);
            assert_eq!(ids(&got.stdout), want, "{fixture} {name}: {}", got.all());
            assert_eq!(got.code, direct.code);
        }
        // The map is beside the archive, not in it.
        let map = red.with_file_name(
            red.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".tar.gz", ".private_map.json"),
        );
        assert!(map.exists(), "{}", map.display());
        assert!(!members(&red).iter().any(|(p, _)| p.contains("private_map")));
    }
    assert!(compared > 0, "the fixtures have findings to compare");
}

#[test]
fn fleet_bundle_has_one_directory_per_node_and_says_which_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    let a = fixtures().join("captures/node-a").display().to_string();
    let b = fixtures().join("captures/node-b").display().to_string();
    let missing = tmp.path().join("no-such-node").display().to_string();
    let (arch, r) = bundle(&[
        "bundle", "--from", &a, &b, &missing, "-d", &d, "--name", "prod",
    ]);
    assert_eq!(r.code, 1, "a failed node: exit 1: {}", r.all());
    assert!(arch
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("eks-diag_prod_"));
    let ms = members(&arch);
    let top = ms[0].0.split('/').next().unwrap().to_string();
    assert_eq!(ms[0].0, format!("{top}/manifest.json"));
    let m: bundle::Manifest = serde_json::from_slice(&ms[0].1).unwrap();
    assert!(m.fleet);
    assert_eq!(m.nodes.len(), 3);
    assert_eq!(
        m.nodes.iter().filter(|n| n.status == "failed").count(),
        1,
        "{:?}",
        m.nodes
    );
    for n in &m.nodes {
        let want = if n.status == "failed" {
            "error.txt"
        } else {
            "snapshot.json"
        };
        assert!(
            ms.iter()
                .any(|(p, _)| *p == format!("{top}/{}/{want}", n.dir)),
            "{} lacks {want}",
            n.dir
        );
    }
    assert!(ms.iter().any(|(p, _)| *p == format!("{top}/report.md")));
    // Read back: two nodes analysed, the failed one an input error (exit 2).
    let got = diag(&["analyze", &arch.display().to_string(), "-o", "json"]);
    assert_eq!(got.code, 2, "{}", got.all());
    assert_eq!(ids(&got.stdout).len(), 2);
    assert!(got.stdout.contains("not collected"), "{}", got.stdout);
}

#[test]
fn max_size_cuts_are_in_the_manifest_and_the_map_file_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    let elc = build_elc(
        tmp.path(),
        "eks_i-0123456789abcdef0_2026-11-21_0610-UTC_0.7.9.tar.gz",
    );
    let src = elc.display().to_string();
    let (first, r) = bundle(&["bundle", "--from", &src, "-d", &d]);
    assert_eq!(r.code, 0, "{}", r.all());
    let map = first.with_file_name(
        first
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".tar.gz", ".private_map.json"),
    );
    let text = |a: &Path| -> String {
        members(a)
            .into_iter()
            .filter(|(p, _)| p.ends_with("snapshot.json"))
            .map(|(_, d)| String::from_utf8(d).unwrap())
            .collect()
    };
    assert!(!text(&first).contains("i-0123456789abcdef0"));
    let d2 = tmp.path().join("second").display().to_string();
    let (second, r) = bundle(&[
        "bundle",
        "--from",
        &src,
        "-d",
        &d2,
        "--map-file",
        &map.display().to_string(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(text(&first), text(&second), "one map, the same pseudonyms");

    let d3 = tmp.path().join("small").display().to_string();
    let (small, r) = bundle(&["bundle", "--from", &src, "-d", &d3, "--max-size", "2K"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let ms = members(&small);
    let m: bundle::Manifest = serde_json::from_slice(&ms[0].1).unwrap();
    assert_eq!(m.max_size, Some(2048));
    assert!(!m.cuts.is_empty(), "{m:?}");
    let total: u64 = m.files.iter().map(|f| f.bytes).sum();
    assert!(total <= 2048, "{total}");
    for c in &m.cuts {
        assert!(!m.files.iter().any(|f| f.path == c.path) || c.bytes_after > 0);
    }
}
