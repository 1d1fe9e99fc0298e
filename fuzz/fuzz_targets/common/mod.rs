//! Shared by the whole-input-path targets: split the fuzzer's bytes into named files, and the
//! checks every target applies to what it got out (analysis runs, reports print safely).
#![allow(dead_code, unused_imports)]

/// diag's input dispatch, compiled in by path (see Cargo.toml).
#[path = "../../../diag/src/input/mod.rs"]
pub mod input;

/// File names that select each capture kind (capture-directory names).
pub const CAPTURE_NAMES: &[&str] = &[
    "iptables-save.txt",
    "iptables-nft-save.txt",
    "iptables-legacy-save.txt",
    "iptables-nat-S.txt",
    "iptables-mangle-S.txt",
    "iptables-nat-L.txt",
    "iptables-mangle-L.txt",
    "ip-rule.txt",
    "ip-route.txt",
    "ip-route-table-2.txt",
    "ip-addr.txt",
    "ip-link.txt",
    "ifconfig.txt",
    "ip-neigh.txt",
    "conntrack-L.txt",
    "conntrack-S.txt",
    "conntrack.txt",
    "sysctl.txt",
    "cni-env.txt",
    "cni-configuration-variables-containerd.json",
    "enis.json",
    "networkutils-env-settings.json",
    "ipamd-env-settings.json",
    "eni-configs.json",
    "10-aws.conflist",
    "node.json",
    "instance-id.txt",
    "availability-zone.txt",
    "region.txt",
    "ipamd.log",
    "plugin.log",
    "ipamd.log.gz",
];

/// eks-log-collector member paths (below the bundle's top directory).
pub const ELC_NAMES: &[&str] = &[
    "networking/iptables-save.txt",
    "networking/iptables-nat.txt",
    "networking/iptables-mangle.txt",
    "networking/iprule.txt",
    "networking/iproute.txt",
    "networking/ifconfig.txt",
    "networking/conntrack.txt",
    "ipamd/metrics.json",
    "ipamd/enis.json",
    "ipamd/networkutils-env-settings.json",
    "ipamd/ipamd-env-settings.json",
    "ipamd/eni-configs.json",
    "sysctls/sysctl_all.txt",
    "cni/10-aws.conflist",
    "system/instance-id.txt",
    "system/region.txt",
    "var_log/aws-routed-eni/ipamd.log",
    "var_log/aws-routed-eni/plugin.log",
    "../escape.txt",
    "/abs/path.txt",
];

/// Split `data` at each `\0\n` into up to `max` files; each file's first byte picks its name.
pub fn files<'a>(data: &'a [u8], names: &[&'a str], max: usize) -> Vec<(&'a str, &'a [u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && out.len() < max {
        let (chunk, tail) = match rest.windows(2).position(|w| w == b"\0\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &[][..]),
        };
        rest = tail;
        if let Some((&sel, body)) = chunk.split_first() {
            out.push((names[sel as usize % names.len()], body));
        }
    }
    out
}

/// Analyse a snapshot and print everything a text report would show through the terminal
/// sanitiser: no finding text may keep a control character once sanitised.
pub fn analyse_and_print(snapshot: &model::Snapshot) {
    let report = analysis::analyze(snapshot);
    let mut texts: Vec<&str> = vec![&report.node];
    for f in &report.findings {
        texts.extend([f.summary.as_str(), &f.remedy, &f.explanation]);
        texts.extend(f.inferred.iter().map(String::as_str));
        for e in &f.evidence {
            texts.push(&e.text);
            texts.extend(e.location.as_deref());
        }
    }
    for s in &report.skipped {
        texts.push(&s.reason);
    }
    for t in texts {
        let shown = model::sanitize::terminal(t);
        assert!(
            !shown.chars().any(model::sanitize::is_unsafe),
            "sanitised text still holds a control character: {shown:?}"
        );
    }
    // The JSON contract must serialise whatever came in.
    let _ = serde_json::to_string(&report);
}
