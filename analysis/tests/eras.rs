//! The versioned expected state: healthy nodes of every CNI rule layout since v1.0 (rebuilt from
//! the CNI's `pkg/networkutils/network.go` at the release tags, in
//! `diag/tests/fixtures/realworld/rebuilt-*`) get no warning or error, with and without a known
//! version; the layout selects the expectations when the version is unknown; a version that
//! contradicts the layout still finds faults; and the inferences from partial evidence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{loud, loud_ids};
use model::{
    AgentInfo, CniConfig, CniLogs, IptablesSection, NodeReport, Section, Severity, Snapshot,
};

fn rebuilt(dir: &str, file: &str) -> String {
    let p = format!(
        "{}/../diag/tests/fixtures/realworld/{dir}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A paste-like snapshot: iptables-save, ip rule, ip route, optionally the CNI env + version.
fn paste(ipt: &str, rules: &str, routes: &str, version: Option<&str>) -> Snapshot {
    let mut s = Snapshot::new(AgentInfo {
        name: "test".into(),
        version: "0".into(),
        inputs: vec![],
    });
    s.hostname = "ip-192-168-10-20".into();
    let p = parsers::iptables::parse_save(ipt);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    s.iptables = Section::ok(IptablesSection {
        backends: p.value,
        default_backend: None,
    });
    if !rules.is_empty() {
        let r = parsers::ip::parse_rule(rules).unwrap();
        s.rules = if r.warnings.is_empty() {
            Section::ok(r.value)
        } else {
            let mut sec = Section::partial(r.value, "parse warnings");
            sec.warnings = r.warnings.iter().map(|w| w.to_string()).collect();
            sec
        };
    }
    if !routes.is_empty() {
        s.routes = Section::ok(parsers::ip::parse_route(routes).unwrap().value);
    }
    if let Some(v) = version {
        let mut env = std::collections::BTreeMap::new();
        env.insert("AWS_VPC_ENI_MTU".to_string(), "9001".to_string());
        s.cni = Section::ok(CniConfig {
            version: Some(v.into()),
            env,
            ..Default::default()
        });
    }
    s
}

fn era_snapshot(dir: &str, version: Option<&str>) -> Snapshot {
    paste(
        &rebuilt(dir, "iptables-save.txt"),
        &rebuilt(dir, "ip-rule.txt"),
        &rebuilt(dir, "ip-route.txt"),
        version,
    )
}

const ERAS: &[(&str, &str, &str)] = &[
    ("rebuilt-v1.1.0-single-rule", "v1.1.0", "v1.0–v1.2"),
    ("rebuilt-v1.2.1-single-rule-nodeport", "v1.2.1", "v1.0–v1.2"),
    ("rebuilt-v1.3.4-chained-typo", "v1.3.4", "v1.3–v1.7"),
    ("rebuilt-v1.5.5-chained-hashrandom", "v1.5.5", "v1.3–v1.7"),
    ("rebuilt-v1.6.3-chained-hashrandom", "v1.6.3", "v1.3–v1.7"),
    ("rebuilt-v1.7.10-chained-vlan", "v1.7.10", "v1.3–v1.7"),
    ("rebuilt-v1.8.0-chained-connmark", "v1.8.0", "v1.8–v1.16.0"),
    ("rebuilt-v1.16.2-single-chain", "v1.16.2", "v1.16.2–v1.22"),
];

fn evaluated(r: &NodeReport, id: &str) -> bool {
    r.evaluated.iter().any(|e| e == id)
}

#[test]
fn every_layout_is_healthy_without_a_version_and_names_its_layout() {
    for (dir, _, era) in ERAS {
        let r = analysis::analyze(&era_snapshot(dir, None));
        assert!(loud(&r).is_empty(), "{dir}: {:#?}", loud(&r));
        assert!(
            evaluated(&r, "snat.chain-missing"),
            "{dir}: {:?}",
            r.skipped
        );
        let layout = r.layout.clone().unwrap_or_default();
        assert!(
            layout.contains("inferred layout") && layout.contains(era),
            "{dir}: {layout}"
        );
    }
}

#[test]
fn every_layout_is_healthy_with_its_version() {
    for (dir, tag, era) in ERAS {
        let r = analysis::analyze(&era_snapshot(dir, Some(tag)));
        assert!(loud(&r).is_empty(), "{dir}: {:#?}", loud(&r));
        for id in [
            "snat.chain-missing",
            "connmark.rules-missing",
            "snat.random-mismatch",
        ] {
            assert!(evaluated(&r, id), "{dir}: {id} skipped: {:?}", r.skipped);
        }
        let layout = r.layout.clone().unwrap_or_default();
        assert!(
            layout.starts_with(&format!("CNI {tag}")) && layout.contains(era),
            "{layout}"
        );
    }
}

#[test]
fn todays_version_on_an_old_layout_still_finds_the_differences() {
    // A v1.5 layout claimed to be v1.21.2: --random is not the default, the nat connmark chain
    // and the vlan restore are missing.
    let r = analysis::analyze(&era_snapshot(
        "rebuilt-v1.5.5-chained-hashrandom",
        Some("v1.21.2"),
    ));
    let ids = loud_ids(&r);
    assert!(ids.contains(&"snat.random-mismatch".to_string()), "{ids:?}");
    assert!(
        ids.contains(&"connmark.rules-missing".to_string()),
        "{ids:?}"
    );
}

#[test]
fn v1_5_with_prng_set_explicitly_is_a_mismatch() {
    let mut s = era_snapshot("rebuilt-v1.5.5-chained-hashrandom", Some("v1.5.5"));
    if let Some(c) = s.cni.data.as_mut() {
        c.env
            .insert("AWS_VPC_K8S_CNI_RANDOMIZESNAT".into(), "prng".into());
    }
    let r = analysis::analyze(&s);
    assert_eq!(loud_ids(&r), vec!["snat.random-mismatch".to_string()]);
}

#[test]
fn legacy_layout_without_its_rule_is_snat_missing() {
    let dir = "rebuilt-v1.2.1-single-rule-nodeport";
    let ipt: String = rebuilt(dir, "iptables-save.txt")
        .lines()
        .filter(|l| !l.contains("AWS, SNAT"))
        .map(|l| format!("{l}\n"))
        .collect();
    let s = paste(&ipt, &rebuilt(dir, "ip-rule.txt"), "", Some("v1.2.1"));
    let r = analysis::analyze(&s);
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "snat.chain-missing")
        .collect();
    assert_eq!(f.len(), 1, "{:#?}", r.findings);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].summary.contains("v1.0–v1.2"), "{}", f[0].summary);
}

#[test]
fn lone_snat_rule_whose_to_source_is_not_excluded_snats_the_nodes_own_cidr() {
    // A node in a secondary VPC CIDR (100.64.0.0/16) on a v1.2 node that only knows 10.0.0.0/16.
    let ipt = rebuilt("rebuilt-v1.2.1-single-rule-nodeport", "iptables-save.txt")
        .replace("192.168.0.0/16", "10.0.0.0/16")
        .replace("--to-source 192.168.10.20", "--to-source 100.64.3.4");
    let r = analysis::analyze(&paste(&ipt, "", "", None));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "snat.vpc-cidr-not-excluded")
        .unwrap_or_else(|| panic!("{:#?} {:?}", r.findings, r.skipped));
    assert_eq!(f.severity, Severity::Error);
    assert!(f.summary.contains("100.64.3.4"), "{}", f.summary);
    assert!(!f.inferred.is_empty());
    assert!(f.evidence.iter().any(|e| e.text.starts_with("inferred:")));
    // The same rule with the address inside the excluded CIDR is healthy.
    let ok = rebuilt("rebuilt-v1.2.1-single-rule-nodeport", "iptables-save.txt");
    let r = analysis::analyze(&paste(&ok, "", "", None));
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
}

#[test]
fn chained_layout_without_connmark_is_the_v1_3_to_v1_7_layout_and_its_cidrs_are_read() {
    let s = era_snapshot("rebuilt-v1.3.4-chained-typo", None);
    let f = analysis::Facts::from_snapshot(&s);
    assert_eq!(
        f.rule_era(),
        Some(model::vpccni::RuleEra::ChainedMangleOnly)
    );
    let vpc = f
        .vpc_cidrs
        .expect("vpc cidrs from the \"AWS SNAT CHAN\" rules");
    assert_eq!(vpc.value, vec!["192.168.0.0/16".parse().unwrap()]);
}

#[test]
fn filtered_ip_rule_paste_proves_nothing_missing() {
    let dir = "rebuilt-v1.16.2-single-chain";
    // `ip rule | grep 192.168.10` hides the fwmark rule and the 512 rules of other pods.
    let rules = "[root@ip-192-168-10-20 ~]# ip rule | grep 192.168.10.31\n512:\tfrom all to 192.168.10.31 lookup main \n";
    let s = paste(
        &rebuilt(dir, "iptables-save.txt"),
        rules,
        &rebuilt(dir, "ip-route.txt"),
        Some("v1.16.2"),
    );
    assert_eq!(s.rules.status, model::SectionStatus::Partial);
    let r = analysis::analyze(&s);
    assert!(loud(&r).is_empty(), "{:#?}", loud(&r));
    let skip = r
        .skipped
        .iter()
        .find(|s| s.rule == "route.pod-rule-missing")
        .expect("pod rule check skipped");
    assert!(skip.reason.contains("filtered"), "{}", skip.reason);
    // Unfiltered, the same two lines are a real gap.
    let s = paste(
        &rebuilt(dir, "iptables-save.txt"),
        "512:\tfrom all to 192.168.10.31 lookup main \n32766:\tfrom all lookup main \n",
        &rebuilt(dir, "ip-route.txt"),
        Some("v1.16.2"),
    );
    let ids = loud_ids(&analysis::analyze(&s));
    assert!(
        ids.contains(&"connmark.rules-missing".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"route.pod-rule-missing".to_string()),
        "{ids:?}"
    );
}

fn with_log(mut s: Snapshot, log: &str) -> Snapshot {
    let p = parsers::cnilog::parse_text("ipamd.log", log);
    let mut logs = CniLogs::default();
    logs.files.push(p.value.0);
    logs.events.extend(p.value.1);
    s.cni_logs = Section::ok(logs);
    s
}

#[test]
fn pool_debug_lines_prove_exhaustion_only_when_sustained() {
    let base = || era_snapshot("rebuilt-v1.16.2-single-chain", None);
    let line = |t: &str, used: u32| {
        format!("{{\"level\":\"debug\",\"ts\":\"2024-05-01T10:00:{t}.000Z\",\"caller\":\"ipamd/ipamd.go:1210\",\"msg\":\"IP pool stats: Total IPs/Prefixes = 14/0, AssignedIPs/CooldownIPs: {used}/0, c.maxIPsPerENI = 14\"}}\n")
    };
    let one = with_log(base(), &line("01", 14));
    let r = analysis::analyze(&one);
    assert!(!r.findings.iter().any(|f| f.rule == "ipamd.ip-exhaustion"));
    let three = with_log(
        base(),
        &[line("01", 14), line("02", 14), line("03", 14)].concat(),
    );
    let r = analysis::analyze(&three);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "ipamd.ip-exhaustion")
        .expect("exhaustion from pool lines");
    assert!(
        f.inferred.iter().any(|i| i.contains("pool debug")),
        "{:?}",
        f.inferred
    );
    // Prefix delegation wording, v1.21 per-card prefix.
    let pd = concat!(
        r#"{"level":"debug","ts":"2025-01-01T00:00:00Z","msg":"Prefix pool stats for network card 0: Total IPs/Prefixes = 32/2, AssignedIPs/CooldownIPs: 32/0, c.maxIPsPerENI = 14"}"#,
        "\n",
        r#"{"level":"debug","ts":"2025-01-01T00:00:01Z","msg":"Skipping ENI allocation as the max ENI limit is already reached"}"#,
        "\n"
    );
    let r = analysis::analyze(&with_log(base(), pd));
    assert!(
        r.findings.iter().any(|f| f.rule == "ipamd.ip-exhaustion"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn version_from_the_ipamd_start_line_selects_the_era() {
    let s = with_log(
        era_snapshot("rebuilt-v1.5.5-chained-hashrandom", None),
        "2019-08-01T10:00:00Z [INFO] Starting L-IPAMD v1.5.5  ...\n",
    );
    let f = analysis::Facts::from_snapshot(&s);
    assert_eq!(f.version(), Some((1, 5, 5)));
    let r = analysis::analyze(&s);
    assert!(r.layout.unwrap_or_default().starts_with("CNI v1.5.5"));
}
