//! Test builder: snapshots from literal capture text, through the real parsers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use model::{
    AgentInfo, CniConfig, CniLogs, Eni, IptablesSection, NodeIdentity, NodeReport, Section,
    Severity, Snapshot,
};

pub fn fixture(name: &str) -> String {
    let p = format!("{}/fixtures/node-a/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The sample node of `fixtures/node-a`, healthy, single-chain layout, all sections present.
pub struct NodeA {
    pub iptables: String,
    pub rules: String,
    pub routes: String,
    pub links: String,
    pub sysctl: String,
    pub conntrack: String,
    pub enis: Option<String>,
    pub env: BTreeMap<String, String>,
    pub version: Option<String>,
    pub logs: Vec<(String, String)>,
    pub imds: bool,
    pub vpc_cidrs: Vec<&'static str>,
}

impl Default for NodeA {
    fn default() -> Self {
        NodeA {
            iptables: fixture("iptables-single.txt"),
            rules: fixture("ip-rule.txt"),
            routes: fixture("ip-route.txt"),
            links: fixture("ip-link.txt"),
            sysctl: fixture("sysctl.txt"),
            conntrack: fixture("conntrack.txt"),
            enis: Some(fixture("enis.json")),
            env: parsers::ipamd::parse_env_settings(&fixture("env.json")).unwrap(),
            version: Some("v1.21.2".into()),
            logs: vec![("ipamd.log".into(), fixture("ipamd.log"))],
            imds: true,
            vpc_cidrs: vec!["192.168.0.0/16"],
        }
    }
}

impl NodeA {
    pub fn chained() -> Self {
        NodeA {
            iptables: fixture("iptables-chained.txt"),
            version: Some("v1.15.5".into()),
            ..Default::default()
        }
    }

    pub fn set_env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// Replace exactly one occurrence of `from` in the iptables text.
    pub fn ipt_replace(mut self, from: &str, to: &str) -> Self {
        assert_eq!(
            self.iptables.matches(from).count(),
            1,
            "not exactly one {from:?}"
        );
        self.iptables = self.iptables.replace(from, to);
        self
    }

    pub fn build(&self) -> Snapshot {
        let mut s = Snapshot::new(AgentInfo {
            name: "test".into(),
            version: "0".into(),
            inputs: vec![],
        });
        s.hostname = "ip-192-168-1-251.ec2.internal".into();
        if self.imds {
            s.node = Section::ok(NodeIdentity {
                instance_id: Some("i-0123".into()),
                primary_mac: Some("02:aa:bb:cc:dd:01".into()),
                primary_interface: Some("eth0".into()),
                primary_ipv4: Some("192.168.1.251".parse().unwrap()),
                vpc_cidrs: self.vpc_cidrs.iter().map(|c| c.parse().unwrap()).collect(),
                enis: vec![
                    Eni {
                        mac: "02:aa:bb:cc:dd:01".into(),
                        interface_id: Some("eni-0aaa".into()),
                        device_number: Some(0),
                        network_card: Some(0),
                        interface: Some("eth0".into()),
                        subnet_cidr: Some("192.168.0.0/19".parse().unwrap()),
                        ipv4_addresses: vec!["192.168.1.251".parse().unwrap()],
                        ..Default::default()
                    },
                    Eni {
                        mac: "02:aa:bb:cc:dd:02".into(),
                        interface_id: Some("eni-0bbb".into()),
                        device_number: Some(1),
                        network_card: Some(0),
                        interface: Some("eth1".into()),
                        subnet_cidr: Some("192.168.0.0/19".parse().unwrap()),
                        ipv4_addresses: vec!["192.168.7.41".parse().unwrap()],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            });
        } else {
            s.node = Section::unavailable("no IMDS (capture)");
        }
        if !self.iptables.is_empty() {
            let p = parsers::iptables::parse_save(&self.iptables);
            assert!(p.warnings.is_empty(), "iptables warnings: {:?}", p.warnings);
            s.iptables = Section::ok(IptablesSection {
                backends: p.value,
                default_backend: None,
            });
        }
        if !self.rules.is_empty() {
            s.rules = Section::ok(parsers::ip::parse_rule(&self.rules).unwrap().value);
        }
        if !self.routes.is_empty() {
            s.routes = Section::ok(parsers::ip::parse_route(&self.routes).unwrap().value);
        }
        if !self.links.is_empty() {
            s.links = Section::ok(parsers::ip::parse_link(&self.links).unwrap().value);
        }
        if !self.sysctl.is_empty() {
            s.sysctls = Section::ok(parsers::sysctl::parse(&self.sysctl).unwrap().value);
        }
        if !self.conntrack.is_empty() {
            s.conntrack =
                Section::ok(parsers::conntrack::parse_capture(&self.conntrack, 100).value);
        }
        let mut cni = CniConfig {
            version: self.version.clone(),
            env: self.env.clone(),
            ..Default::default()
        };
        if let Some(e) = &self.enis {
            cni.ipamd_enis = Some(parsers::ipamd::parse_enis(e).unwrap());
        }
        if !self.env.is_empty() || cni.ipamd_enis.is_some() || self.version.is_some() {
            s.cni = Section::ok(cni);
        }
        let mut logs = CniLogs::default();
        for (file, text) in &self.logs {
            let p = parsers::cnilog::parse_text(file, text);
            logs.files.push(p.value.0);
            logs.events.extend(p.value.1);
        }
        if !self.logs.is_empty() {
            s.cni_logs = Section::ok(logs);
        }
        s
    }
}

/// Findings of warning or error severity, as `rule: summary` lines.
pub fn loud(r: &NodeReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{} [{}]: {}", f.rule, f.severity, f.summary))
        .collect()
}

/// Rule ids of warning/error findings, deduplicated and sorted.
pub fn loud_ids(r: &NodeReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| f.rule.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[track_caller]
pub fn assert_healthy(s: &Snapshot) -> NodeReport {
    let r = analysis::analyze(s);
    assert!(
        loud(&r).is_empty(),
        "healthy node produced: {:#?}",
        loud(&r)
    );
    r
}

/// Exactly this rule id fires at warning/error; returns its findings.
#[track_caller]
pub fn assert_only(s: &Snapshot, id: &str) -> Vec<model::Finding> {
    let r = analysis::analyze(s);
    assert_eq!(
        loud_ids(&r),
        vec![id.to_string()],
        "findings: {:#?}",
        loud(&r)
    );
    r.findings.into_iter().filter(|f| f.rule == id).collect()
}
