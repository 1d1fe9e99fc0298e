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
        async move { (path, http::request(&ep, "GET", path, &[], b"", t).await) }
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
    let Some(l) = logs.get() else {
        return;
    };
    let found = l.events.iter().rev().find_map(|e| startup_version(&e.msg));
    if let Some(v) = found {
        cfg.version = Some(v);
        cni.sources.push("cni_logs:Starting L-IPAMD".to_string());
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
}
