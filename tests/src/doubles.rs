//! IMDS and ipamd-introspection doubles, plus tiny traffic helpers, served by the
//! `cni-doubles` binary from inside an emulated node's namespace.
//!
//! The HTTP server is hyper's HTTP/1 server ([`serve_http`]), the same stack the agent uses;
//! the doubles only map a request (method, path, headers) to a status and body.
//!
//! * IMDSv2 on `127.0.0.1:<imds_port>`: `PUT /latest/api/token` (needs
//!   `X-aws-ec2-metadata-token-ttl-seconds`), then `GET /latest/meta-data/…` with
//!   `X-aws-ec2-metadata-token`; a GET without a valid token gets 401, as on real IMDSv2 with
//!   `HttpTokens=required`. Directory paths list their children (`macs/` → `<mac>/`).
//! * ipamd introspection on `127.0.0.1:<ipamd_port>` (61679): the four `/v1/…` paths in the
//!   v1.20+ shapes of groundtruth §4.2–4.3; anything else returns the `AvailableCommands` root.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::netns::{self, NetNs};
use crate::node::{EksNode, NodeConfig};

/// Where the `cni-doubles` binary is: `$EKD_CNI_DOUBLES`, else next to the running executable
/// (`target/<profile>/`), else one level up (test executables live in `target/<profile>/deps/`).
pub fn doubles_bin() -> Result<PathBuf> {
    sibling_bin(
        "cni-doubles",
        "EKD_CNI_DOUBLES",
        "cargo build -p e2e --bins",
    )
}

/// Find a workspace binary next to the current executable (or one level up, from `deps/`).
pub fn sibling_bin(name: &str, env: &str, hint: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("${env} points to {}, which does not exist", p.display());
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let dir = exe.parent().context("executable has no directory")?;
    for cand in [dir.join(name), dir.join("..").join(name)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    bail!(
        "the `{name}` binary was not found next to {} or in its parent directory; \
         run `{hint}` (same profile) or set ${env}",
        exe.display()
    )
}

/// Start `cni-doubles serve` for `node` inside its namespace and wait until it listens.
pub fn start(node: &EksNode, ttl: Duration) -> Result<Child> {
    let cfg = node.config();
    let path = cfg.workdir.join("node.json");
    let ttl = ttl.as_secs().max(1).to_string();
    spawn_ready(
        node.ns(),
        &[
            "serve",
            "--config",
            &path.display().to_string(),
            "--ttl-secs",
            &ttl,
        ],
        Duration::from_secs(10),
        &cfg.workdir.join("doubles.log"),
    )
    .context("starting the IMDS/ipamd doubles")
}

/// Spawn `cni-doubles <args>` inside `ns` (stderr appended to `log`) and wait for its
/// `ready` line on stdout.
pub fn spawn_ready(
    ns: &NetNs,
    args: &[&str],
    timeout: Duration,
    log: &std::path::Path,
) -> Result<Child> {
    let bin = doubles_bin()?.display().to_string();
    let mut argv = vec![bin.as_str()];
    argv.extend_from_slice(args);
    let mut child = ns.spawn(&argv, log)?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(l)) if l.trim() == "ready" => Ok(child),
        other => {
            netns::kill_pid(child.id());
            let _ = child.wait();
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "`cni-doubles {}` in {} did not become ready: {other:?}; log {}:\n{}",
                args.join(" "),
                ns.name(),
                log.display(),
                log_text.trim()
            )
        }
    }
}

/// Leaf paths under `/latest/` and their bodies.
pub fn imds_tree(cfg: &NodeConfig) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    let md = |k: &str| format!("meta-data/{k}");
    let primary = cfg.primary_eni();
    t.insert(md("instance-id"), cfg.instance_id.clone());
    t.insert(md("instance-type"), cfg.instance_type.clone());
    t.insert(md("ami-id"), "ami-0123456789abcdef0".into());
    t.insert(md("local-ipv4"), cfg.primary_ip.to_string());
    t.insert(md("local-hostname"), cfg.hostname.clone());
    t.insert(md("hostname"), cfg.hostname.clone());
    t.insert(md("mac"), primary.mac.clone());
    t.insert(
        md("placement/availability-zone"),
        cfg.availability_zone.clone(),
    );
    t.insert(md("placement/region"), cfg.region.clone());
    let vpc_cidrs: Vec<String> = cfg.vpc_cidrs.iter().map(|c| c.to_string()).collect();
    for eni in &cfg.enis {
        let p = |k: &str| format!("meta-data/network/interfaces/macs/{}/{k}", eni.mac);
        let mut ips = vec![eni.primary_ip.to_string()];
        ips.extend(
            cfg.pods
                .iter()
                .filter(|pod| pod.eni_device == eni.device_number)
                .map(|pod| pod.ip.to_string()),
        );
        ips.extend(eni.free_ips.iter().map(|ip| ip.to_string()));
        t.insert(p("mac"), eni.mac.clone());
        t.insert(p("device-number"), eni.device_number.to_string());
        t.insert(p("network-card"), "0".into());
        t.insert(p("interface-id"), eni.id.clone());
        t.insert(p("subnet-id"), format!("subnet-{}", &eni.id[4..]));
        t.insert(p("subnet-ipv4-cidr-block"), eni.subnet.to_string());
        t.insert(p("vpc-id"), "vpc-0123456789abcdef0".into());
        t.insert(p("vpc-ipv4-cidr-block"), vpc_cidrs[0].clone());
        t.insert(p("vpc-ipv4-cidr-blocks"), vpc_cidrs.join("\n"));
        t.insert(p("local-ipv4s"), ips.join("\n"));
        if !eni.prefixes.is_empty() {
            let pfx: Vec<String> = eni.prefixes.iter().map(|p| p.to_string()).collect();
            t.insert(p("ipv4-prefix"), pfx.join("\n"));
        }
        if let Some(v6) = &eni.ipv6 {
            t.insert(p("ipv6s"), v6.addr.to_string());
            t.insert(p("ipv6-prefix"), v6.prefix.to_string());
            t.insert(p("subnet-ipv6-cidr-blocks"), v6.subnet.to_string());
        }
        if let Some(v) = cfg.vpc_ipv6_cidr {
            t.insert(p("vpc-ipv6-cidr-blocks"), v.to_string());
        }
        t.insert(p("owner-id"), "123456789012".into());
    }
    t.insert(
        "dynamic/instance-identity/document".into(),
        json!({
            "accountId": "123456789012",
            "architecture": "x86_64",
            "availabilityZone": cfg.availability_zone,
            "imageId": "ami-0123456789abcdef0",
            "instanceId": cfg.instance_id,
            "instanceType": cfg.instance_type,
            "privateIp": cfg.primary_ip.to_string(),
            "region": cfg.region,
        })
        .to_string(),
    );
    t
}

/// Body of `GET /latest/<rel>`: a leaf, or the listing of a directory (children, dirs with a
/// trailing `/`), or None.
pub fn imds_lookup(tree: &BTreeMap<String, String>, rel: &str) -> Option<String> {
    let rel = rel.trim_start_matches('/');
    if let Some(v) = tree.get(rel.trim_end_matches('/')) {
        return Some(v.clone());
    }
    let prefix = if rel.is_empty() || rel.ends_with('/') {
        rel.to_string()
    } else {
        format!("{rel}/")
    };
    let mut children: Vec<String> = Vec::new();
    for k in tree.keys() {
        if let Some(rest) = k.strip_prefix(&prefix) {
            let child = match rest.split_once('/') {
                Some((d, _)) => format!("{d}/"),
                None => rest.to_string(),
            };
            if !children.contains(&child) {
                children.push(child);
            }
        }
    }
    (!children.is_empty()).then(|| children.join("\n"))
}

/// Base64 of an IPv4 mask, as Go's `encoding/json` prints `net.IPMask` (`/////w==` = /32).
pub fn mask_b64(prefix_len: u8) -> String {
    use base64::Engine;
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    base64::engine::general_purpose::STANDARD.encode(mask.to_be_bytes())
}

/// Base64 of an IPv6 mask (16 bytes), as Go prints `net.IPMask` for an IPv6 `net.IPNet`.
pub fn mask6_b64(prefix_len: u8) -> String {
    use base64::Engine;
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len.min(128)))
        .unwrap_or(0);
    base64::engine::general_purpose::STANDARD.encode(mask.to_be_bytes())
}

fn ipamd_address(ip: &str, pod: &crate::node::PodConfig) -> Value {
    json!({
        "Address": ip,
        "IPAMKey": {"networkName": "aws-cni", "containerID": pod.container_id, "ifName": "eth0"},
        "IPAMMetadata": {"k8sPodNamespace": pod.namespace, "k8sPodName": pod.name},
        "AssignedTime": "2026-01-01T00:00:02.000000000Z",
        "UnassignedTime": "0001-01-01T00:00:00Z",
    })
}

/// ipamd introspection bodies keyed by path.
pub fn ipamd_responses(cfg: &NodeConfig) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    let excl: Vec<String> = cfg.exclude_snat.iter().map(|c| c.to_string()).collect();
    m.insert(
        "/v1/networkutils-env-settings",
        json!({
            "AWS_EXTERNAL_SERVICE_CIDRS": null,
            "AWS_VPC_CNI_NODE_PORT_SUPPORT": true,
            "AWS_VPC_ENI_MTU": 9001,
            "AWS_VPC_K8S_CNI_CONNMARK": 128,
            "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": if excl.is_empty() { Value::Null } else { json!(excl) },
            "AWS_VPC_K8S_CNI_EXTERNALSNAT": false,
            "AWS_VPC_K8S_CNI_RANDOMIZESNAT": cfg.randomize.snat_type(),
            "AWS_VPC_K8S_CNI_VETHPREFIX": "eni",
        }),
    );
    m.insert(
        "/v1/ipamd-env-settings",
        json!({
            "WARM_IP_TARGET": 0,
            "WARM_ENI_TARGET": 1,
            "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": cfg.mode.custom_networking.is_some(),
            "AWS_MANAGE_ENIS_NON_SCHEDULABLE": false,
            "ENABLE_SUBNET_DISCOVERY": true,
        }),
    );
    m.insert("/v1/eni-configs", json!("default"));
    let mut enis = serde_json::Map::new();
    let mut total = 0u64;
    for eni in &cfg.enis {
        let mut cidrs = serde_json::Map::new();
        let mut cidrs6 = serde_json::Map::new();
        let on_eni =
            |p: &&crate::node::PodConfig| p.eni_device == eni.device_number && p.branch.is_none();
        // Prefix delegation: one entry per /28, `IsPrefix: true`, pods' addresses inside
        // (ipamd `datastore.AddressInfo` keyed by the prefix).
        for pfx in &eni.prefixes {
            total += 16;
            let mut addrs = serde_json::Map::new();
            for pod in cfg
                .pods
                .iter()
                .filter(on_eni)
                .filter(|p| pfx.contains(&p.ip))
            {
                let ip = pod.ip.to_string();
                addrs.insert(ip.clone(), ipamd_address(&ip, pod));
            }
            cidrs.insert(
                pfx.to_string(),
                json!({"Cidr": {"IP": pfx.network().to_string(), "Mask": mask_b64(pfx.prefix_len())},
                       "IPAddresses": addrs, "IsPrefix": true, "AddressFamily": "4"}),
            );
        }
        // IPv6 mode: the /80 in `IPv6Cidrs`.
        if let Some(v6) = &eni.ipv6 {
            let mut addrs = serde_json::Map::new();
            for pod in cfg.pods.iter().filter(on_eni) {
                if let Some(ip6) = pod.ipv6 {
                    let ip = ip6.to_string();
                    addrs.insert(ip.clone(), ipamd_address(&ip, pod));
                }
            }
            cidrs6.insert(
                v6.prefix.to_string(),
                json!({"Cidr": {"IP": v6.prefix.network().to_string(), "Mask": mask6_b64(v6.prefix.prefix_len())},
                       "IPAddresses": addrs, "IsPrefix": true, "AddressFamily": "6"}),
            );
        }
        for pod in cfg
            .pods
            .iter()
            .filter(on_eni)
            .filter(|p| eni.prefixes.is_empty() && p.ipv6.is_none())
        {
            total += 1;
            let ip = pod.ip.to_string();
            cidrs.insert(
                format!("{ip}/32"),
                json!({
                    "Cidr": {"IP": ip, "Mask": mask_b64(32)},
                    "IPAddresses": {ip.clone(): {
                        "Address": ip,
                        "IPAMKey": {"networkName": "aws-cni", "containerID": pod.container_id, "ifName": "eth0"},
                        "IPAMMetadata": {"k8sPodNamespace": pod.namespace, "k8sPodName": pod.name},
                        "AssignedTime": "2026-01-01T00:00:02.000000000Z",
                        "UnassignedTime": "0001-01-01T00:00:00Z",
                    }},
                    "IsPrefix": false,
                    "AddressFamily": "",
                }),
            );
        }
        for ip in &eni.free_ips {
            total += 1;
            let ip = ip.to_string();
            cidrs.insert(
                format!("{ip}/32"),
                json!({"Cidr": {"IP": ip, "Mask": mask_b64(32)}, "IPAddresses": {},
                       "IsPrefix": false, "AddressFamily": ""}),
            );
        }
        enis.insert(
            eni.id.clone(),
            json!({
                "ID": eni.id,
                "IsPrimary": eni.device_number == 0,
                "IsTrunk": eni.is_trunk,
                "IsEFA": false,
                "DeviceNumber": eni.device_number,
                "AvailableIPv4Cidrs": cidrs,
                "IPv6Cidrs": cidrs6,
                "RouteTableID": eni.route_table,
            }),
        );
    }
    m.insert(
        "/v1/enis",
        json!({"0": {"TotalIPs": total, "AssignedIPs": cfg.pods.iter().filter(|p| p.branch.is_none()).count(), "ENIs": enis}}),
    );
    m
}

/// The root listing ipamd returns for unknown paths.
pub fn ipamd_root() -> Value {
    json!({"AvailableCommands": ["/v1/enis", "/v1/eni-configs", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings"]})
}

/// A parsed HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Status code, content type and body for one request.
pub type Response = (u16, &'static str, String);

/// The IMDSv2 state machine: one token, required on every GET.
#[derive(Debug, Clone)]
pub struct Imds {
    tree: BTreeMap<String, String>,
    token: String,
}

impl Imds {
    pub fn new(cfg: &NodeConfig) -> Imds {
        Imds {
            tree: imds_tree(cfg),
            token: format!("AQAEA{}-token", cfg.instance_id),
        }
    }

    pub fn handle(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("PUT", "/latest/api/token") => {
                match req
                    .header("X-aws-ec2-metadata-token-ttl-seconds")
                    .and_then(|v| v.parse::<u32>().ok())
                {
                    Some(ttl) if (1..=21600).contains(&ttl) => {
                        (200, "text/plain", self.token.clone())
                    }
                    _ => (400, "text/plain", "Bad Request".into()),
                }
            }
            ("GET", p) => {
                if req.header("X-aws-ec2-metadata-token") != Some(self.token.as_str()) {
                    return (401, "text/plain", "Unauthorized".into());
                }
                match p
                    .strip_prefix("/latest/")
                    .and_then(|rel| imds_lookup(&self.tree, rel))
                {
                    Some(body) => (200, "text/plain", body),
                    None => (404, "text/plain", "Not Found".into()),
                }
            }
            _ => (405, "text/plain", "Method Not Allowed".into()),
        }
    }
}

/// ipamd introspection.
#[derive(Debug, Clone)]
pub struct Ipamd {
    responses: BTreeMap<&'static str, Value>,
}

impl Ipamd {
    pub fn new(cfg: &NodeConfig) -> Ipamd {
        Ipamd {
            responses: ipamd_responses(cfg),
        }
    }

    pub fn handle(&self, req: &Request) -> Response {
        let body = self
            .responses
            .get(req.path.as_str())
            .cloned()
            .unwrap_or_else(ipamd_root);
        (200, "application/json", body.to_string())
    }
}

/// Serve `handler` on `listener` with hyper's HTTP/1 server until the task is aborted. Each
/// connection is its own task; a connection that stalls is dropped after 5 s.
pub async fn serve_http<F>(listener: tokio::net::TcpListener, handler: F)
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    let handler = std::sync::Arc::new(handler);
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let h = handler.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let h = h.clone();
                    async move {
                        let r = Request {
                            method: req.method().as_str().to_string(),
                            path: req.uri().path().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_string(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                        };
                        let (status, content_type, body) = h(&r);
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status)
                            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(content_type),
                        );
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(sock), svc);
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::EksNode;

    fn cfg() -> NodeConfig {
        EksNode::builder()
            .pods_on_primary(2)
            .pods_on_secondary(1)
            .plan()
            .unwrap()
    }

    #[test]
    fn masks_are_go_base64() {
        assert_eq!(mask_b64(32), "/////w==");
        assert_eq!(mask_b64(28), "////8A==");
        assert_eq!(mask_b64(16), "//8AAA==");
    }

    #[test]
    fn imds_requires_a_token_and_lists_directories() {
        let c = cfg();
        let imds = Imds::new(&c);
        let get = |path: &str, token: Option<&str>| {
            let mut headers = vec![];
            if let Some(t) = token {
                headers.push(("X-aws-ec2-metadata-token".to_string(), t.to_string()));
            }
            imds.handle(&Request {
                method: "GET".into(),
                path: path.into(),
                headers,
            })
        };
        assert_eq!(get("/latest/meta-data/local-ipv4", None).0, 401);
        let tok = imds
            .handle(&Request {
                method: "PUT".into(),
                path: "/latest/api/token".into(),
                headers: vec![("X-aws-ec2-metadata-token-ttl-seconds".into(), "60".into())],
            })
            .2;
        let t = Some(tok.as_str());
        assert_eq!(
            get("/latest/meta-data/local-ipv4", t).2,
            c.primary_ip.to_string()
        );
        let macs = get("/latest/meta-data/network/interfaces/macs/", t).2;
        assert_eq!(
            macs,
            format!("{}/\n{}/", c.enis[0].mac, c.enis[1].mac),
            "listing"
        );
        let d = get(
            &format!(
                "/latest/meta-data/network/interfaces/macs/{}/device-number",
                c.enis[1].mac
            ),
            t,
        );
        assert_eq!(d.2, "1");
        let ips = get(
            &format!(
                "/latest/meta-data/network/interfaces/macs/{}/local-ipv4s",
                c.enis[1].mac
            ),
            t,
        )
        .2;
        assert_eq!(
            ips.lines().next(),
            Some(c.enis[1].primary_ip.to_string().as_str())
        );
        assert!(ips.contains(&c.pods[2].ip.to_string()));
        assert_eq!(get("/latest/meta-data/nope", t).0, 404);
    }

    #[test]
    fn ipamd_enis_shape() {
        let c = cfg();
        let r = ipamd_responses(&c);
        let enis = &r["/v1/enis"]["0"];
        assert_eq!(enis["AssignedIPs"], 3);
        assert_eq!(enis["TotalIPs"], 7);
        let e1 = &enis["ENIs"][&c.enis[1].id];
        assert_eq!(e1["DeviceNumber"], 1);
        assert_eq!(e1["RouteTableID"], 2);
        let ip = c.pods[2].ip.to_string();
        assert_eq!(
            e1["AvailableIPv4Cidrs"][format!("{ip}/32")]["IPAddresses"][&ip]["IPAMMetadata"]
                ["k8sPodName"],
            c.pods[2].name.as_str()
        );
        assert_eq!(
            r["/v1/networkutils-env-settings"]["AWS_VPC_K8S_CNI_RANDOMIZESNAT"],
            2
        );
    }
}
