//! Every input kind `diag analyze` accepts, and every kind of bad input: exit code 2 with a
//! message naming the file, while the other inputs of the same call are still reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn json_of(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.all()))
}

fn node<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {v:#}"))
}

fn section_status(n: &serde_json::Value, section: &str) -> Option<String> {
    n["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["section"] == section)
        .map(|s| s["status"].as_str().unwrap().to_string())
}

#[test]
fn capture_dir_builds_every_section_it_has_files_for() {
    let r = diag(&["analyze", "captures/node-a", "-o", "json"]);
    assert_eq!(r.code, 0, "healthy fixture: {}", r.all());
    let v = json_of(&r);
    let n = node(&v, "node-a");
    // Only the section without a file is listed as not ok.
    let not_ok: Vec<&str> = n["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["section"].as_str().unwrap())
        .collect();
    assert_eq!(not_ok, vec!["neighbours"], "{n:#}");
    let reason = n["sections"][0]["reason"].as_str().unwrap();
    assert_eq!(reason, "no ip-neigh.txt in captures/node-a");
    assert!(n["agent"].as_str().unwrap().starts_with("diag-capture"));
    // Node facts came from imds.json, so the primary IP is not inferred.
    assert_eq!(
        n["facts"]["primary_ipv4"]["source"], "imds",
        "{:#}",
        n["facts"]
    );
    // Every node rule but the skipped env-less ones: the known count, not "more than a few".
    assert_eq!(
        n["report"]["evaluated"].as_array().unwrap().len(),
        34,
        "{:#}",
        n["report"]["evaluated"]
    );
    assert!(v["input_errors"].as_array().unwrap().is_empty());
}

#[test]
fn capture_without_node_facts_leaves_them_to_inference() {
    let r = diag(&["analyze", "captures/node-b", "-o", "json"]);
    let v = json_of(&r);
    let n = node(&v, "node-b");
    assert_eq!(section_status(n, "node").as_deref(), Some("skipped"));
    let facts = &n["facts"];
    if let Some(p) = facts.get("primary_ipv4") {
        assert_eq!(p["source"], "inferred", "{facts:#}");
    }
    // iptables came from `iptables -t nat -S` only: usable, but partial (no mangle table).
    assert_eq!(section_status(n, "iptables").as_deref(), Some("partial"));
    let reason = n["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["section"] == "iptables")
        .unwrap()["reason"]
        .to_string();
    assert!(reason.contains("mangle"), "{reason}");
    assert_eq!(r.code, 1, "findings but no bad input: {}", r.all());
}

#[test]
fn elc_bundle_is_read_in_memory_with_its_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "eks_i-0abc123def4567890_2026-11-21_0610-UTC_0.7.9.tar.gz";
    let p = build_elc(tmp.path(), name);
    let r = diag(&["analyze", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(r.code, 0, "healthy fixture: {}", r.all());
    let v = json_of(&r);
    let n = node(&v, "i-0abc123def4567890");
    assert_eq!(n["collected_at"], "2026-11-21T06:10:00Z");
    // Present in the bundle: iptables, rules, routes, conntrack, sysctls, cni, cni_logs, node.
    for s in [
        "iptables",
        "rules",
        "routes",
        "conntrack",
        "sysctls",
        "cni",
        "cni_logs",
        "node",
    ] {
        assert_eq!(section_status(n, s), None, "section {s} not ok: {n:#}");
    }
    // ipamd env came from the introspection JSON, so its provenance says ipamd.
    assert_eq!(
        n["facts"]["external_snat"]["source"], "ipamd",
        "{:#}",
        n["facts"]
    );
    let excl = &n["facts"]["exclude_snat_cidrs"]["value"];
    assert_eq!(excl, &serde_json::json!(["172.20.0.0/16"]));
    // The CNI version comes from the aws-node image in the container info.
    assert_eq!(n["facts"]["cni_version"], "v1.21.2", "{:#}", n["facts"]);
}

#[test]
fn snapshot_json_array_stdin_and_collect_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let one = write_json(&tmp.path().join("one.json"), &node_a_snapshot("snap-one"));
    let arr = write_json(
        &tmp.path().join("arr.json"),
        &vec![node_a_snapshot("arr-0"), node_a_snapshot("arr-1")],
    );
    let r = diag(&[
        "analyze",
        one.to_str().unwrap(),
        arr.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let v = json_of(&r);
    for n in ["snap-one", "arr-0", "arr-1"] {
        node(&v, n);
    }
    assert!(v["fleet"]["nodes"].as_array().unwrap().len() == 3);

    let text = serde_json::to_string(&node_a_snapshot("from-stdin")).unwrap();
    let r = diag_with(&["analyze", "-", "-o", "json"], &[], Some(&text));
    node(&json_of(&r), "from-stdin");

    // diag collect output: fleet.json + per-node snapshot files; a failed node is reported.
    let dir = tmp.path().join("fleet-out");
    std::fs::create_dir(&dir).unwrap();
    write_json(
        &dir.join("ip-10-0-0-1.json"),
        &node_a_snapshot("ip-10-0-0-1"),
    );
    let fleet = serde_json::json!({
        "started_at": "2026-11-21T06:00:00Z", "duration_ms": 1000, "transport": "ssh",
        "nodes": [
            {"name": "ip-10-0-0-1", "target": "10.0.0.1", "outcome": "ok", "snapshot": "ip-10-0-0-1.json"},
            {"name": "ip-10-0-0-2", "target": "10.0.0.2", "outcome": "unreachable", "error": "connect timeout"}
        ]
    });
    write_json(&dir.join("fleet.json"), &fleet);
    let r = diag(&["analyze", dir.to_str().unwrap(), "-o", "json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let v = json_of(&r);
    node(&v, "ip-10-0-0-1");
    let errs = v["input_errors"].to_string();
    assert!(
        errs.contains("ip-10-0-0-2") && errs.contains("unreachable"),
        "{errs}"
    );
}

#[test]
fn bad_inputs_exit_2_name_the_file_and_the_rest_is_still_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |n: &str| tmp.path().join(n);
    std::fs::write(t("broken.json"), "{\"schema_version\": 1, \"hostname\": ").unwrap();
    std::fs::write(
        t("future.json"),
        r#"{"schema_version": 99, "hostname": "x"}"#,
    )
    .unwrap();
    std::fs::write(t("notasnapshot.json"), r#"{"hello": "world"}"#).unwrap();
    std::fs::create_dir(t("empty")).unwrap();
    std::fs::create_dir(t("junk")).unwrap();
    std::fs::write(t("junk/notes.md"), "hello").unwrap();
    std::fs::write(t("eks_i-0bad_x.tar.gz"), "plain text, not gzip").unwrap();
    write_tar_gz(
        &t("other.tar.gz"),
        "backup",
        &[("home/user/.bashrc".into(), b"alias ll='ls -l'\n".to_vec())],
    );
    std::fs::write(t("readme.txt"), "hello").unwrap();
    let args: Vec<String> = [
        "broken.json",
        "future.json",
        "notasnapshot.json",
        "empty",
        "junk",
        "eks_i-0bad_x.tar.gz",
        "other.tar.gz",
        "readme.txt",
        "does-not-exist",
    ]
    .iter()
    .map(|n| t(n).display().to_string())
    .collect();
    let mut argv = vec!["analyze", "captures/node-a"];
    argv.extend(args.iter().map(String::as_str));
    let r = diag(&argv);
    assert_eq!(r.code, 2, "{}", r.all());
    let out = r.all();
    assert!(
        out.contains("── node-a"),
        "good input still reported: {out}"
    );
    let expect = [
        ("broken.json", "invalid JSON"),
        ("future.json", "schema_version 99 is not supported"),
        ("notasnapshot.json", "not an eks-diag snapshot"),
        ("empty", "empty directory"),
        ("junk", "no recognised input"),
        ("eks_i-0bad_x.tar.gz", "not gzip-compressed"),
        ("other.tar.gz", "not an eks-log-collector bundle"),
        ("readme.txt", "not a recognised input"),
        ("does-not-exist", "cannot read"),
    ];
    for (file, msg) in expect {
        let line = out
            .lines()
            .find(|l| l.contains(file) && l.contains(msg))
            .unwrap_or_else(|| panic!("no line naming {file} with '{msg}' in:\n{out}"));
        assert!(line.contains(&t(file).display().to_string()), "{line}");
    }
    // JSON: the errors are data, and stderr repeats them for a redirected stdout.
    let mut jargv = argv.clone();
    jargv.extend(["-o", "json"]);
    let r = diag(&jargv);
    assert_eq!(r.code, 2);
    let v = json_of(&r);
    assert_eq!(v["input_errors"].as_array().unwrap().len(), expect.len());
    assert!(r.stderr.contains("future.json"));
}

#[test]
fn truncated_and_unparseable_captures_are_partial_or_failed_and_exit_2() {
    let r = diag(&["analyze", "captures/node-truncated", "-o", "json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let v = json_of(&r);
    let n = node(&v, "node-truncated");
    assert_eq!(section_status(n, "iptables").as_deref(), Some("partial"));
    assert_eq!(section_status(n, "rules").as_deref(), Some("partial"));
    assert_eq!(section_status(n, "cni").as_deref(), Some("failed"));
    let problems = n["input_problems"].to_string();
    assert!(
        problems.contains("iptables-save.txt") && problems.contains("COMMIT"),
        "{problems}"
    );
    assert!(problems.contains("enis.json"), "{problems}");
    // The rules warning names the line.
    let rules = n["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["section"] == "rules")
        .unwrap();
    assert!(
        rules["warnings"].to_string().contains("line 2"),
        "{rules:#}"
    );
}

#[test]
fn map_reads_other_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("odd-names");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("rules.out"), read("captures/node-a/ip-rule.txt")).unwrap();
    std::fs::write(d.join("nat.out"), read("captures/node-a/iptables-save.txt")).unwrap();
    let r = diag(&[
        "analyze",
        d.to_str().unwrap(),
        "--map",
        "ip-rule.txt=rules.out",
        "--map",
        "iptables-save=nat.out",
        "-o",
        "json",
    ]);
    let v = json_of(&r);
    let n = node(&v, "odd-names");
    assert_eq!(section_status(n, "rules"), None, "{n:#}");
    assert_eq!(section_status(n, "iptables"), None, "{n:#}");
    let r = diag(&["analyze", d.to_str().unwrap(), "--map", "bogus=rules.out"]);
    assert_eq!(r.code, 2);
    assert!(r.all().contains("--map bogus=rules.out"), "{}", r.all());
}

#[test]
fn local_runs_the_agent_given_by_agent_path() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = write_json(&tmp.path().join("s.json"), &node_a_snapshot("this-host"));
    let agent = tmp.path().join("fake-agent");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\n[ \"$1\" = collect ] || exit 9\ncat '{}'\n",
            snap.display()
        ),
    )
    .unwrap();
    let failing = tmp.path().join("failing-agent");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'netlink: permission denied' >&2\nexit 3\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&agent, &failing] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let r = diag(&[
        "snat",
        "--local",
        "--agent-path",
        agent.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    assert_eq!(json_of(&r)["nodes"][0]["node"], "this-host");
    let r = diag_with(
        &["analyze", "--local", "-o", "json"],
        &[("DIAG_AGENT_PATH", failing.to_str().unwrap())],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(r.all().contains("permission denied"), "{}", r.all());
}

#[test]
fn directory_of_nodes_is_read_entry_by_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("incident-42");
    for n in ["node-x", "node-y"] {
        let d = root.join(n);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["iptables-save.txt", "ip-rule.txt"] {
            std::fs::write(d.join(f), read(&format!("captures/node-a/{f}"))).unwrap();
        }
    }
    build_elc(
        &root,
        "eks_i-0ddd444455556666_2026-11-21_0700-UTC_0.7.9.tar.gz",
    );
    write_json(&root.join("snap.json"), &node_a_snapshot("from-json"));
    let r = diag(&["analyze", root.to_str().unwrap(), "-o", "json"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    let v = json_of(&r);
    for n in ["node-x", "node-y", "i-0abc123def4567890", "from-json"] {
        node(&v, n);
    }
    assert_eq!(v["fleet"]["nodes"].as_array().unwrap().len(), 4);
}

#[test]
fn a_snapshot_saved_as_node_json_is_not_taken_for_node_facts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cap");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("ip-rule.txt"), read("captures/node-a/ip-rule.txt")).unwrap();
    write_json(&d.join("node.json"), &node_a_snapshot("x"));
    let r = diag(&["analyze", d.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("node.json: this is an eks-diag snapshot"),
        "{}",
        r.stdout
    );
}

#[test]
fn per_table_route_captures_keep_their_table() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("tables");
    std::fs::create_dir(&d).unwrap();
    for f in std::fs::read_dir(fixtures().join("captures/node-a")).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap() != "ip-route.txt" {
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
    }
    let all = read("captures/node-a/ip-route.txt");
    let main: String = all
        .lines()
        .filter(|l| !l.contains(" table "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("ip-route-table-main.txt"), main).unwrap();
    std::fs::write(
        d.join("ip-route-table-2.txt"),
        "default via 192.168.2.1 dev eth1\n192.168.2.1 dev eth1 scope link\n",
    )
    .unwrap();
    let r = diag(&["routes", "--from", d.to_str().unwrap(), "-o", "json"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    let v = json_of(&r);
    let t2 = v["nodes"][0]["enis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["table"] == 2)
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(
        t2["routes"].to_string().contains("default via 192.168.2.1"),
        "{t2:#}"
    );
}

#[test]
fn for_loop_captures_are_split_per_node() {
    // `for i in $N1 $N2; do echo ">> node $i <<"; ssh $i sudo iptables -t nat -S; echo; done`
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("loop");
    std::fs::create_dir(&d).unwrap();
    let a = read("captures/node-b/iptables-nat-S.txt");
    let b = a.replace(
        "--to-source 10.0.9.9 --random",
        "--to-source 10.0.1.5 --random-fully",
    );
    std::fs::write(
        d.join("iptables-nat-S.txt"),
        format!(">> node 10.0.1.4 <<\n{a}\n>> node 10.0.1.5 <<\n{b}\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("ip-rule.txt"),
        format!(
            ">> node 10.0.1.4 <<\n{r}\n>> node 10.0.1.5 <<\n{r}\n",
            r = read("captures/node-b/ip-rule.txt")
        ),
    )
    .unwrap();
    std::fs::write(d.join("cni-env"), read("captures/node-b/cni-env")).unwrap();
    let r = diag(&[
        "check",
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "random=prng",
        "-o",
        "json",
    ]);
    let v = json_of(&r);
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 2, "{v:#}");
    assert_eq!(res[0]["node"], "10.0.1.4");
    assert_eq!(res[0]["status"], "FAIL");
    assert_eq!(res[1]["node"], "10.0.1.5");
    assert_eq!(res[1]["status"], "PASS");
    assert_eq!(r.code, 1, "{}", r.all());
    // The shared env reached both nodes.
    let r = diag(&["analyze", d.to_str().unwrap(), "-o", "json"]);
    let v = json_of(&r);
    for n in ["10.0.1.4", "10.0.1.5"] {
        assert_eq!(section_status(node(&v, n), "cni"), None);
    }
}

#[test]
fn a_cut_bundle_is_reported_and_what_was_read_is_analysed() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_elc(tmp.path(), "eks_i-0abc123def4567890_full.tar.gz");
    let bytes = std::fs::read(&p).unwrap();
    let cut = tmp.path().join("eks_i-0abc123def4567890_cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let r = diag(&["analyze", cut.to_str().unwrap(), "captures/node-a"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let out = r.all();
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    // Where the cut falls decides which member is hit; the message names the bundle either way.
    let named = flat.contains("_cut.tar.gz: not an eks-log-collector bundle")
        || (flat.contains("_cut.tar.gz:") && flat.contains("truncated"));
    assert!(named, "no message naming the bundle: {out}");
    assert!(out.contains("── node-a"), "{out}");
}

/// The snapshot diag builds from one path, through the library's input dispatch.
fn load_one(path: &std::path::Path) -> diag::input::Loaded {
    let opts = diag::input::LoadOptions::new(&[]).unwrap();
    let mut l = diag::input::load_all(vec![diag::input::Input::Path(path.into())], &opts);
    assert_eq!(l.len(), 1, "{l:?}");
    l.remove(0)
}

/// An archive with the layout, file names and framing of eks-log-collector v0.7.9, written
/// from an emulated node (see fixtures/elc/emulated-v0.7.9/SOURCE.md): every networking file
/// it holds is read, nothing is partial because of the collector's own framing.
#[test]
fn collector_archive_from_an_emulated_node_is_read_fully() {
    let dir = fixtures().join("elc/emulated-v0.7.9");
    let tgz = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let l = load_one(&tgz);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    let s = l.outcome.unwrap();
    assert_eq!(s.hostname, "i-0e1c0000000000001");
    // `*** Output of conntrack -S ***` headers are framing, not data.
    assert_eq!(
        s.conntrack.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.conntrack
    );
    let ct = s.conntrack.get().unwrap();
    assert!(!ct.stats.is_empty() && ct.summary.total > 0, "{ct:?}");
    assert!(ct.totals.contains_key("insert_failed"));
    // iptables-save.txt (no -c) plus the counters of iptables-nat/mangle.txt (-nvL).
    assert_eq!(
        s.iptables.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.iptables.reason
    );
    let ipt = s.iptables.get().unwrap();
    let nat = ipt.backends[0].table("nat").unwrap();
    let post = nat.chain("POSTROUTING").unwrap();
    assert!(
        post.rules.iter().all(|r| r.packets.is_some()),
        "nat POSTROUTING rules without counters: {post:?}"
    );
    assert!(
        s.iptables
            .sources
            .iter()
            .any(|x| x.contains("iptables-nat.txt")),
        "{:?}",
        s.iptables.sources
    );
    // Links and addresses come from ifconfig.txt.
    assert_eq!(
        s.links.status,
        model::SectionStatus::Ok,
        "{:?}",
        s.links.reason
    );
    let links = s.links.get().unwrap();
    assert!(links.iter().any(|l| l.ifname == "eth0"), "{links:?}");
    let addrs = s.addresses.get().unwrap();
    assert!(
        addrs.iter().any(|a| a.local.to_string() == "192.168.1.251"),
        "{addrs:?}"
    );
    // What the collector never runs says so, not "no ip-neigh.txt".
    assert_eq!(
        s.neighbours.reason.as_deref(),
        Some("eks-log-collector does not capture ip neigh")
    );
    for sec in [
        &s.rules.status,
        &s.routes.status,
        &s.sysctls.status,
        &s.cni.status,
    ] {
        assert_eq!(*sec, model::SectionStatus::Ok);
    }
    // And the analysis runs on it without input errors.
    let r = diag(&["analyze", tgz.to_str().unwrap(), "-o", "json"]);
    assert_ne!(r.code, 2, "{}", r.all());
}

/// A member over the per-member cap is named with its size and the cap, not reported as
/// "not an eks-log-collector bundle". (The header claims the size; the cap is checked
/// before reading, so the test needs no 256 MiB file.)
#[test]
fn a_member_over_the_cap_names_its_size_and_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("eks_i-0abc123def4567890_big.tar.gz");
    let f = std::fs::File::create(&p).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut h = tar::Header::new_gnu();
    h.set_path("eks_i-0abc/networking/iptables-save.txt")
        .unwrap();
    h.set_size(300 * 1024 * 1024);
    h.set_mode(0o644);
    h.set_cksum();
    use std::io::Write;
    enc.write_all(h.as_bytes()).unwrap();
    enc.write_all(&[b'x'; 4096]).unwrap();
    enc.finish().unwrap();
    let l = load_one(&p);
    let e = l.outcome.unwrap_err().to_string();
    assert!(!e.contains("not an eks-log-collector bundle"), "{e}");
    assert!(
        e.contains("networking/iptables-save.txt: 314572800 bytes is over the 268435456-byte per-member cap"),
        "{e}"
    );
}

#[test]
fn non_regular_files_and_too_deep_directories_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    // A symlink member in a bundle.
    let p = tmp.path().join("eks_i-0abc123def4567890_link.tar.gz");
    {
        let f = std::fs::File::create(&p).unwrap();
        let enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut t = tar::Builder::new(enc);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_cksum();
        t.append_link(&mut h, "b/networking/iprule.txt", "/dev/zero")
            .unwrap();
        let rules = b"0:\tfrom all lookup local\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(rules.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "b/networking/iproute.txt", &rules[..])
            .unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    let l = load_one(&p);
    let all = format!("{:?} {:?}", l.problems, l.outcome.as_ref().err());
    assert!(
        all.contains("networking/iprule.txt: a symlink, not a regular file; skipped"),
        "{all}"
    );
    // A FIFO in a capture directory.
    let d = tmp.path().join("cap");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("ip-route.txt"), "default via 10.0.0.1 dev eth0\n").unwrap();
    let fifo = d.join("ip-rule.txt");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let l = load_one(&d);
    assert!(
        l.problems
            .iter()
            .any(|p| p.ends_with("ip-rule.txt: a FIFO, not a regular file; skipped")),
        "{:?}",
        l.problems
    );
    // A directory of directories of directories: the third level is named, not dropped.
    let top = tmp.path().join("top");
    let deep = top.join("a").join("b");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("ip-rule.txt"), "0:\tfrom all lookup local\n").unwrap();
    let opts = diag::input::LoadOptions::new(&[]).unwrap();
    let l = diag::input::load_all(vec![diag::input::Input::Path(top.clone())], &opts);
    let msgs: Vec<String> = l
        .iter()
        .filter_map(|x| x.outcome.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("1 sub-directory not read (b)") && m.contains("at most 1 level")),
        "{msgs:?}"
    );
}
