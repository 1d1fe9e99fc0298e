//! Helpers shared by the CLI tests: run the built binary, build fixtures (an ELC bundle, a
//! snapshot JSON) from the capture files under `tests/fixtures/`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use model::{AgentInfo, Backend, IptablesSection, NodeIdentity, Section, Snapshot};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout + stderr, for assertions that do not care where a message went.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Run `diag` in `tests/fixtures` with a clean environment (no colour settings, no DIAG_*).
pub fn diag(args: &[&str]) -> Run {
    diag_with(args, &[], None)
}

pub fn diag_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diag"));
    c.args(args).current_dir(fixtures());
    for k in [
        "NO_COLOR",
        "DIAG_OUTPUT",
        "DIAG_COLOR",
        "DIAG_FAIL_ON",
        "DIAG_AGENT_PATH",
        "DIAG_POLICY",
        "CLICOLOR_FORCE",
    ] {
        c.env_remove(k);
    }
    c.env("COLUMNS", "100");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn diag");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const NODE_A_IFCONFIG: &str = "\
eni055ab01821c: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001
        ether 0a:58:0a:00:00:03  txqueuelen 0  (Ethernet)

eni4d5f75c480c: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001
        ether 0a:58:0a:00:00:05  txqueuelen 0  (Ethernet)

eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001
        inet 192.168.1.251  netmask 255.255.224.0  broadcast 192.168.31.255
        ether 0a:ff:01:2b:00:01  txqueuelen 1000  (Ethernet)

eth1: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 9001
        inet 192.168.2.10  netmask 255.255.224.0  broadcast 192.168.31.255
        ether 0a:ff:01:2b:00:02  txqueuelen 1000  (Ethernet)

lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536
        inet 127.0.0.1  netmask 255.0.0.0
        loop  txqueuelen 1000  (Local Loopback)
";

/// An eks-log-collector bundle in the layout of groundtruth §8, built from node-a's captures,
/// with the top directory prefixed as the collector does.
pub fn build_elc(dir: &Path, name: &str) -> PathBuf {
    let top = name.trim_end_matches(".tar.gz");
    let a = |f: &str| read(&format!("captures/node-a/{f}")).into_bytes();
    let members: Vec<(String, Vec<u8>)> = vec![
        ("networking/iptables-save.txt".into(), a("iptables-save.txt")),
        ("networking/iprule.txt".into(), a("ip-rule.txt")),
        ("networking/iproute.txt".into(), a("ip-route.txt")),
        (
            "networking/conntrack.txt".into(),
            [a("conntrack-S.txt"), a("conntrack-L.txt")].concat(),
        ),
        // node-a's interfaces as net-tools 2.x `ifconfig` prints them.
        ("networking/ifconfig.txt".into(), NODE_A_IFCONFIG.as_bytes().to_vec()),
        ("ipamd/enis.json".into(), a("enis.json")),
        (
            "ipamd/networkutils-env-settings.json".into(),
            br#"{"AWS_EXTERNAL_SERVICE_CIDRS":null,"AWS_VPC_CNI_NODE_PORT_SUPPORT":true,"AWS_VPC_ENI_MTU":9001,"AWS_VPC_K8S_CNI_CONNMARK":128,"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":["172.20.0.0/16"],"AWS_VPC_K8S_CNI_EXTERNALSNAT":false,"AWS_VPC_K8S_CNI_RANDOMIZESNAT":2,"AWS_VPC_K8S_CNI_VETHPREFIX":"eni"}"#.to_vec(),
        ),
        ("ipamd/eni-configs.json".into(), br#""default""#.to_vec()),
        (
            "cni/10-aws.conflist".into(),
            br#"{"cniVersion":"0.4.0","name":"aws-cni","plugins":[{"name":"aws-cni","type":"aws-cni","vethPrefix":"eni","mtu":"9001","pluginLogFile":"/var/log/aws-routed-eni/plugin.log","pluginLogLevel":"DEBUG"}]}"#.to_vec(),
        ),
        (
            "cni/cni-configuration-variables-containerd.json".into(),
            br#"{"ID":"aws-node","Image":"602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.21.2-eksbuild.1","Spec":{"process":{"env":["PATH=/usr/bin","AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=172.20.0.0/16","WARM_ENI_TARGET=1"]}}}"#.to_vec(),
        ),
        ("sysctls/sysctl_all.txt".into(), a("sysctl.txt")),
        ("var_log/aws-routed-eni/ipamd.log".into(), a("ipamd.log")),
        (
            "var_log/aws-routed-eni/plugin-2026-11-20T10-00-00.000.log.gz".into(),
            gz(&a("plugin.log")),
        ),
        ("var_log/messages".into(), b"Nov 21 kernel: noise\n".to_vec()),
        ("system/instance-id.txt".into(), b"i-0abc123def4567890\n".to_vec()),
        ("system/availability-zone.txt".into(), b"us-east-1a\n".to_vec()),
    ];
    write_tar_gz(&dir.join(name), top, &members)
}

pub fn write_tar_gz(path: &Path, top: &str, members: &[(String, Vec<u8>)]) -> PathBuf {
    let f = std::fs::File::create(path).unwrap();
    let enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut t = tar::Builder::new(enc);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        let p = if top.is_empty() {
            name.clone()
        } else {
            format!("{top}/{name}")
        };
        t.append_data(&mut h, p, data.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
    path.to_path_buf()
}

/// A node-agent style snapshot of node-a, built with the parsers (so it follows the model).
pub fn node_a_snapshot(hostname: &str) -> Snapshot {
    let mut s = Snapshot::new(AgentInfo {
        name: "node-agent".into(),
        version: "0.1.0".into(),
        inputs: Vec::new(),
    });
    s.hostname = hostname.into();
    s.collected_at = "2026-11-21T06:10:00Z".into();
    s.duration_ms = 1234;
    let mut backends =
        parsers::iptables::parse_save(&read("captures/node-a/iptables-save.txt")).value;
    for b in &mut backends {
        b.command = "iptables-nft-save -c".into();
    }
    s.iptables = Section::ok(IptablesSection {
        backends,
        default_backend: Some(Backend::Nft),
    })
    .with_source("iptables-nft-save -c");
    s.rules = Section::ok(
        parsers::ip::parse_rule(&read("captures/node-a/ip-rule.txt"))
            .unwrap()
            .value,
    );
    s.routes = Section::ok(
        parsers::ip::parse_route(&read("captures/node-a/ip-route.txt"))
            .unwrap()
            .value,
    );
    s.node = Section::ok(NodeIdentity {
        instance_id: Some("i-0aaaa1111bbbb2222".into()),
        primary_ipv4: Some("192.168.1.251".parse().unwrap()),
        primary_interface: Some("eth0".into()),
        vpc_cidrs: vec!["192.168.0.0/16".parse().unwrap()],
        ..Default::default()
    });
    s.conntrack = Section::unavailable("conntrack not installed");
    s
}

pub fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> PathBuf {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.to_path_buf()
}
