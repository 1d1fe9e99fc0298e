//! VPC CNI configuration: ipamd introspection, the `aws-k8s-agent` process environment, an
//! optional `--cni-env` file, and `10-aws.conflist`.
//!
//! Precedence per env var (recorded in `env_sources`): `--cni-env` file, then ipamd
//! introspection (the values ipamd actually runs with), then `/proc/<pid>/environ` of
//! `aws-k8s-agent` (fills the many variables introspection does not report).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::vpccni::is_relevant_env;
use model::{CniConfig, CniLogs, Section};

use super::{Deadline, Options};
use crate::http::{self, Endpoint, Timeouts};

pub const CONFLIST: &str = "10-aws.conflist";
const IPAMD_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IPAMD_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const AGENT_COMM: &str = "aws-k8s-agent";

const ENV_ENDPOINTS: &[&str] = &["/v1/networkutils-env-settings", "/v1/ipamd-env-settings"];

pub async fn collect(opts: &Options, deadline: Deadline) -> Section<CniConfig> {
    let mut cfg = CniConfig::default();
    let mut warnings = Vec::new();
    let mut sources = Vec::new();
    let mut problems = Vec::new();

    // ipamd introspection.
    let ipamd = ipamd(&opts.ipamd_endpoint, deadline).await;
    let ipamd_up = ipamd.reachable;
    match &ipamd.unreachable {
        Some(why) => warnings.push(why.clone()),
        None => sources.push(format!("ipamd:{}", opts.ipamd_endpoint)),
    }
    problems.extend(ipamd.errors.iter().cloned());
    for (endpoint, env) in ipamd.env {
        for (k, v) in env {
            cfg.env_sources
                .insert(k.clone(), format!("ipamd:{endpoint}"));
            cfg.env.insert(k, v);
        }
    }
    cfg.ipamd_enis = ipamd.enis;
    cfg.eni_config = ipamd.eni_config;

    // Process environment of aws-k8s-agent.
    match tokio::task::spawn_blocking(|| agent_env(Path::new("/proc"))).await {
        Ok(Some((path, env))) => {
            sources.push(format!("proc:{}", path.display()));
            for (k, v) in env {
                if !cfg.env.contains_key(&k) {
                    cfg.env_sources
                        .insert(k.clone(), format!("proc:{}", path.display()));
                    cfg.env.insert(k, v);
                }
            }
        }
        Ok(None) => warnings.push(format!("no {AGENT_COMM} process found in /proc")),
        Err(e) => warnings.push(format!("scanning /proc for {AGENT_COMM}: {e}")),
    }

    // --cni-env file, applied on top.
    if let Some(path) = &opts.cni_env {
        match tokio::fs::read_to_string(path).await {
            Ok(text) => {
                let parsed = parsers::ipamd::parse_env_file(&text);
                warnings.extend(
                    parsed
                        .warning_strings()
                        .into_iter()
                        .map(|w| format!("{}: {w}", path.display())),
                );
                sources.push(format!("file:{}", path.display()));
                for (k, v) in parsed.value {
                    cfg.env_sources
                        .insert(k.clone(), format!("file:{}", path.display()));
                    cfg.env.insert(k, v);
                }
            }
            Err(e) => problems.push(format!("--cni-env {}: {e}", path.display())),
        }
    }

    // Conflist.
    let conflist = opts.cni_conf_dir.join(CONFLIST);
    match tokio::fs::read_to_string(&conflist).await {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => {
                sources.push(format!("file:{}", conflist.display()));
                cfg.conflist = Some(v);
            }
            Err(e) => problems.push(format!("{} is not valid JSON: {e}", conflist.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(format!("{} not found", conflist.display()))
        }
        Err(e) => problems.push(format!("cannot read {}: {e}", conflist.display())),
    }
    cfg.version = version_from_conflist(cfg.conflist.as_ref());

    let found_anything =
        ipamd_up || !cfg.env.is_empty() || cfg.conflist.is_some() || cfg.ipamd_enis.is_some();
    let mut s = if !found_anything {
        let mut why = vec![format!(
            "no VPC CNI found: {}",
            ipamd
                .unreachable
                .unwrap_or_else(|| "ipamd did not answer".into())
        )];
        why.push(format!("no {AGENT_COMM} process"));
        why.push(format!("no {}", conflist.display()));
        if problems.is_empty() {
            Section::unavailable(why.join("; "))
        } else {
            why.extend(problems.iter().cloned());
            Section::failed(why.join("; "))
        }
    } else if !ipamd_up {
        let mut why = vec!["ipamd introspection unreachable".to_string()];
        why.extend(problems);
        Section::partial(cfg, why.join("; "))
    } else if !problems.is_empty() {
        Section::partial(cfg, problems.join("; "))
    } else {
        Section::ok(cfg)
    };
    for src in sources {
        s = s.with_source(src);
    }
    s.with_warnings(warnings)
}

#[derive(Default)]
struct IpamdResult {
    reachable: bool,
    unreachable: Option<String>,
    errors: Vec<String>,
    env: Vec<(String, BTreeMap<String, String>)>,
    enis: Option<model::IpamdEnis>,
    eni_config: Option<String>,
}

/// One GET on ipamd's introspection (or metrics) port: the one client both the collector and
/// `node-agent bundle` (which keeps the answers verbatim) use.
pub async fn introspection_get(
    ep: &Endpoint,
    path: &str,
    t: Timeouts,
) -> Result<http::Response, http::HttpError> {
    http::request(ep, "GET", path, &[], b"", t).await
}

/// ipamd's introspection paths eks-log-collector saves as `ipamd/<name>.json`
/// (`IPAMD_DATA` in eks-log-collector.sh).
pub const ELC_IPAMD_PATHS: &[&str] = &[
    "enis",
    "pods",
    "networkutils-env-settings",
    "ipamd-env-settings",
    "eni-configs",
];

/// ipamd's Prometheus port (ELC saves `GET :61678/metrics` as `ipamd/metrics.json`).
pub const IPAMD_METRICS_PORT: u16 = 61678;

/// One raw answer for the bundle.
pub struct RawAnswer {
    pub name: String,
    pub url: String,
    pub result: Result<http::Response, String>,
    pub duration: Duration,
}

/// ipamd's answers on the paths eks-log-collector saves, plus `/metrics` on the metrics port
/// of the same host, as served (nothing parsed), fetched concurrently with the collector's
/// timeouts.
pub async fn introspection_raw(endpoint: &str, deadline: Deadline) -> Vec<RawAnswer> {
    let ep = match Endpoint::parse(endpoint) {
        Ok(ep) => ep,
        Err(e) => {
            return vec![RawAnswer {
                name: "enis".into(),
                url: endpoint.to_string(),
                result: Err(e.to_string()),
                duration: Duration::ZERO,
            }]
        }
    };
    let t = Timeouts {
        connect: deadline.cap(IPAMD_CONNECT_TIMEOUT),
        total: deadline.cap(IPAMD_REQUEST_TIMEOUT),
    };
    let metrics = Endpoint {
        addr: std::net::SocketAddr::new(ep.addr.ip(), IPAMD_METRICS_PORT),
        base_path: String::new(),
    };
    let mut wanted: Vec<(String, Endpoint, String)> = ELC_IPAMD_PATHS
        .iter()
        .map(|n| (n.to_string(), ep.clone(), format!("/v1/{n}")))
        .collect();
    wanted.push(("metrics".into(), metrics, "/metrics".into()));
    let fetch = wanted.into_iter().map(|(name, ep, path)| async move {
        let t0 = std::time::Instant::now();
        let result = introspection_get(&ep, &path, t)
            .await
            .map_err(|e| e.to_string());
        RawAnswer {
            name,
            url: ep.url(&path),
            result,
            duration: t0.elapsed(),
        }
    });
    futures::future::join_all(fetch).await
}

async fn ipamd(endpoint: &str, deadline: Deadline) -> IpamdResult {
    let mut r = IpamdResult::default();
    let ep = match Endpoint::parse(endpoint) {
        Ok(ep) => ep,
        Err(e) => {
            r.unreachable = Some(format!("ipamd: {e}"));
            return r;
        }
    };
    let t = Timeouts {
        connect: deadline.cap(IPAMD_CONNECT_TIMEOUT),
        total: deadline.cap(IPAMD_REQUEST_TIMEOUT),
    };
    let get = |path: &'static str| {
        let ep = ep.clone();
        async move { (path, introspection_get(&ep, path, t).await) }
    };
    let paths = [
        "/v1/networkutils-env-settings",
        "/v1/ipamd-env-settings",
        "/v1/enis",
        "/v1/eni-configs",
    ];
    let results = futures::future::join_all(paths.iter().map(|p| get(p))).await;
    let mut unreachable = Vec::new();
    for (path, res) in results {
        let resp = match res {
            Ok(resp) => resp,
            Err(e) if e.is_unreachable() => {
                unreachable.push(format!("ipamd introspection {}: {e}", ep.url(path)));
                continue;
            }
            Err(e) => {
                r.errors.push(format!("ipamd: {e}"));
                continue;
            }
        };
        r.reachable = true;
        if resp.status != 200 {
            r.errors.push(format!(
                "ipamd: GET {} answered HTTP {}",
                ep.url(path),
                resp.status
            ));
            continue;
        }
        let body = resp.text();
        if ENV_ENDPOINTS.contains(&path) {
            match parsers::ipamd::parse_env_settings(&body) {
                Ok(env) => r.env.push((path.to_string(), env)),
                Err(e) => r.errors.push(format!("ipamd {path}: {e}")),
            }
        } else if path == "/v1/enis" {
            match parsers::ipamd::parse_enis(&body) {
                Ok(enis) => r.enis = Some(enis),
                Err(e) => r.errors.push(format!("ipamd {path}: {e}")),
            }
        } else {
            // A bare JSON string: the ENIConfig name.
            match serde_json::from_str::<String>(body.trim()) {
                Ok(name) => r.eni_config = Some(name),
                Err(_) => {
                    let t = body.trim();
                    if !t.is_empty() && !t.starts_with('{') {
                        r.eni_config = Some(t.to_string());
                    } else {
                        r.errors.push(format!(
                            "ipamd {path}: not a JSON string: `{}`",
                            crate::exec::excerpt(t.as_bytes())
                        ));
                    }
                }
            }
        }
    }
    if !r.reachable {
        r.unreachable = unreachable.into_iter().next();
    }
    r
}

/// Relevant env vars of the first `aws-k8s-agent` process under `proc_root`.
pub fn agent_env(proc_root: &Path) -> Option<(PathBuf, BTreeMap<String, String>)> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.trim() != AGENT_COMM {
            continue;
        }
        let path = dir.join("environ");
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        return Some((path, parse_environ(&raw)));
    }
    None
}

/// NUL-separated `KEY=VALUE` pairs, keeping only names the CNI reads.
pub fn parse_environ(raw: &[u8]) -> BTreeMap<String, String> {
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            let (k, v) = s.split_once('=')?;
            is_relevant_env(k).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Some packagers put the CNI release into the conflist (`"version"`, or an `aws-cni`
/// plugin field); `cniVersion` is the CNI *spec* version and is not used.
fn version_from_conflist(conflist: Option<&serde_json::Value>) -> Option<String> {
    let c = conflist?;
    let pick = |v: &serde_json::Value| {
        v.get("vpcCniVersion")
            .or_else(|| v.get("version"))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    pick(c).or_else(|| {
        c.get("plugins")?
            .as_array()?
            .iter()
            .filter(|p| p.get("type").and_then(|t| t.as_str()) == Some("aws-cni"))
            .find_map(pick)
    })
}

/// The release from ipamd's startup line `Starting L-IPAMD v1.21.2  ...`, when the conflist
/// did not give one.
pub fn version_from_logs(cni: &mut Section<CniConfig>, logs: &Section<CniLogs>) {
    let Some(cfg) = cni.get_mut() else {
        return;
    };
    if cfg.version.is_some() {
        return;
    }
    let found = logs
        .get()
        .and_then(|l| l.events.iter().rev().find_map(|e| startup_version(&e.msg)));
    match found {
        Some(v) => {
            cfg.version = Some(v);
            cni.sources.push("cni_logs:Starting L-IPAMD".to_string());
        }
        None => cni.warnings.push(
            "CNI version unknown: not in the conflist and no `Starting L-IPAMD` line in the logs read"
                .to_string(),
        ),
    }
}

/// `v1.21.2` from `Starting L-IPAMD v1.21.2  ...`.
pub fn startup_version(msg: &str) -> Option<String> {
    let rest = &msg[msg.find("Starting L-IPAMD")? + "Starting L-IPAMD".len()..];
    let tok = rest.split_whitespace().next()?;
    let digits = tok.trim_start_matches('v');
    digits
        .chars()
        .next()
        .filter(char::is_ascii_digit)
        .map(|_| tok.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn environ_keeps_relevant_names_only() {
        let raw = b"PATH=/usr/bin\0AWS_VPC_K8S_CNI_EXTERNALSNAT=true\0WARM_IP_TARGET=5\0HOME=/root\0AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/8,172.16.0.0/12\0";
        let env = parse_environ(raw);
        assert_eq!(env.len(), 3);
        assert_eq!(env["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "true");
        assert_eq!(
            env["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"],
            "10.0.0.0/8,172.16.0.0/12"
        );
    }

    #[test]
    fn finds_agent_process_by_comm() {
        let d = tempfile::tempdir().unwrap();
        for (pid, comm, env) in [
            ("1", "systemd\n", "A=1\0"),
            ("42", "aws-k8s-agent\n", "AWS_VPC_ENI_MTU=9001\0SECRET=x\0"),
            ("self", "x", ""),
        ] {
            let p = d.path().join(pid);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("comm"), comm).unwrap();
            std::fs::write(p.join("environ"), env).unwrap();
        }
        let (path, env) = agent_env(d.path()).unwrap();
        assert!(path.ends_with("42/environ"));
        assert_eq!(env.len(), 1);
        assert_eq!(env["AWS_VPC_ENI_MTU"], "9001");
    }

    #[test]
    fn startup_line_gives_version() {
        assert_eq!(
            startup_version("Starting L-IPAMD v1.21.2  ...").as_deref(),
            Some("v1.21.2")
        );
        assert_eq!(
            startup_version("Starting L-IPAMD 1.12.0 ...").as_deref(),
            Some("1.12.0")
        );
        assert_eq!(startup_version("Starting L-IPAMD   ..."), None);
        assert_eq!(startup_version("something else"), None);
    }
    const ENIS: &str = r#"{"0":{"TotalIPs":9,"AssignedIPs":1,"ENIs":{"eni-0aaa":{"ID":"eni-0aaa","IsPrimary":true,"IsTrunk":false,"IsEFA":false,"DeviceNumber":0,"AvailableIPv4Cidrs":{"192.168.5.10/32":{"Cidr":{"IP":"192.168.5.10","Mask":"/////w=="},"IPAddresses":{"192.168.5.10":{"Address":"192.168.5.10","IPAMKey":{"networkName":"aws-cni","containerID":"3f2c","ifName":"eth0"},"IPAMMetadata":{"k8sPodNamespace":"default","k8sPodName":"web"},"AssignedTime":"2024-05-01T10:00:00Z","UnassignedTime":"0001-01-01T00:00:00Z"}},"IsPrefix":false,"AddressFamily":""}},"IPv6Cidrs":{},"RouteTableID":254}}}}"#;

    fn opts(ipamd: String, conf_dir: &Path, cni_env: Option<PathBuf>) -> Options {
        Options {
            ipamd_endpoint: ipamd,
            cni_conf_dir: conf_dir.to_path_buf(),
            cni_env,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn introspection_env_file_and_conflist_with_sources() {
        use crate::http::tests::serve_paths;
        let (addr, server) = serve_paths(vec![
            (
                "/v1/networkutils-env-settings",
                200,
                r#"{"AWS_VPC_K8S_CNI_EXTERNALSNAT":false,"AWS_VPC_K8S_CNI_RANDOMIZESNAT":2,"AWS_VPC_K8S_CNI_CONNMARK":128,"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":null,"AWS_VPC_K8S_CNI_VETHPREFIX":"eni"}"#.to_string(),
            ),
            ("/v1/ipamd-env-settings", 200, r#"{"WARM_IP_TARGET":"5","WARM_ENI_TARGET":"1"}"#.to_string()),
            ("/v1/enis", 200, ENIS.to_string()),
            ("/v1/eni-configs", 200, r#""us-east-1a""#.to_string()),
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFLIST),
            r#"{"cniVersion":"0.4.0","name":"aws-cni","plugins":[{"type":"aws-cni","vethPrefix":"eni","mtu":"9001"}]}"#,
        )
        .unwrap();
        let env_file = dir.path().join("cni-env");
        std::fs::write(&env_file, "# override\nWARM_IP_TARGET=7\n").unwrap();
        let o = opts(format!("http://{addr}"), dir.path(), Some(env_file.clone()));
        let s = collect(&o, Deadline::after(Duration::from_secs(5))).await;
        server.abort();
        assert_eq!(
            s.status,
            model::SectionStatus::Ok,
            "{:?} {:?}",
            s.reason,
            s.warnings
        );
        let c = s.data.unwrap();
        assert_eq!(c.get("AWS_VPC_K8S_CNI_EXTERNALSNAT"), Some("false"));
        assert_eq!(c.get("AWS_VPC_K8S_CNI_RANDOMIZESNAT"), Some("2"));
        assert!(!c.env.contains_key("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"));
        assert_eq!(
            c.env_sources["AWS_VPC_K8S_CNI_CONNMARK"],
            "ipamd:/v1/networkutils-env-settings"
        );
        // The file wins over ipamd.
        assert_eq!(c.get("WARM_IP_TARGET"), Some("7"));
        assert_eq!(
            c.env_sources["WARM_IP_TARGET"],
            format!("file:{}", env_file.display())
        );
        assert_eq!(
            c.env_sources["WARM_ENI_TARGET"],
            "ipamd:/v1/ipamd-env-settings"
        );
        assert_eq!(c.eni_config.as_deref(), Some("us-east-1a"));
        let enis = c.ipamd_enis.unwrap();
        assert_eq!(enis.assigned().count(), 1);
        assert_eq!(c.conflist.unwrap()["plugins"][0]["vethPrefix"], "eni");
    }

    #[tokio::test]
    async fn nothing_there_is_unavailable_and_broken_endpoint_is_partial() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let dir = tempfile::tempdir().unwrap();
        let s = collect(
            &opts(format!("http://{addr}"), dir.path(), None),
            Deadline::after(Duration::from_secs(5)),
        )
        .await;
        // On a machine that runs aws-k8s-agent the process env would make this partial.
        if agent_env(Path::new("/proc")).is_none() {
            assert_eq!(
                s.status,
                model::SectionStatus::Unavailable,
                "{:?}",
                s.reason
            );
            assert!(s.reason.unwrap().contains("no VPC CNI found"));
        }

        use crate::http::tests::serve_paths;
        let (addr, server) = serve_paths(vec![
            (
                "/v1/networkutils-env-settings",
                200,
                r#"{"AWS_VPC_ENI_MTU":9001}"#.to_string(),
            ),
            ("/v1/ipamd-env-settings", 500, "boom".to_string()),
            (
                "/v1/enis",
                200,
                r#"{"AvailableCommands":["/v1/enis"]}"#.to_string(),
            ),
        ])
        .await;
        let s = collect(
            &opts(format!("http://{addr}"), dir.path(), None),
            Deadline::after(Duration::from_secs(5)),
        )
        .await;
        server.abort();
        assert_eq!(s.status, model::SectionStatus::Partial);
        let reason = s.reason.unwrap();
        assert!(reason.contains("HTTP 500"), "{reason}");
        assert!(reason.contains("/v1/enis"), "{reason}");
        assert!(reason.contains("/v1/eni-configs"), "{reason}");
        assert_eq!(s.data.unwrap().get("AWS_VPC_ENI_MTU"), Some("9001"));
    }
    #[test]
    fn version_from_startup_event_or_a_warning() {
        let mut cni = Section::ok(CniConfig::default());
        let logs = Section::ok(CniLogs {
            events: vec![model::LogEvent {
                file: "ipamd.log".into(),
                msg: "Starting L-IPAMD v1.19.6  ...".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        version_from_logs(&mut cni, &logs);
        assert_eq!(
            cni.data.as_ref().unwrap().version.as_deref(),
            Some("v1.19.6")
        );
        assert!(cni.sources.iter().any(|s| s.contains("L-IPAMD")));

        let mut cni = Section::ok(CniConfig::default());
        version_from_logs(&mut cni, &Section::unavailable("no dir"));
        assert!(cni.data.unwrap().version.is_none());
        assert!(cni.warnings[0].contains("CNI version unknown"));
    }
}
