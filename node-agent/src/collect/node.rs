//! Node identity: IMDSv2 facts, the hostname, and, without IMDS, what the kernel state says.
//!
//! IMDSv2: `PUT /latest/api/token` (TTL header), then `GET /latest/meta-data/...` with the
//! token. The endpoint is `--imds-endpoint`, else `AWS_EC2_METADATA_SERVICE_ENDPOINT` (as for
//! the AWS SDKs), else `http://169.254.169.254`; `--no-imds` / `AWS_EC2_METADATA_DISABLED=true`
//! turn it off. No IMDS is normal off EC2 and is `unavailable`, not an error. The ENI's
//! interface is found by MAC among the links (the CNI does the same and never assumes eth0).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::Ipv4Net;
use model::{Eni, Family, NodeIdentity, Section};

use super::netlink::NetSections;
use super::{Deadline, Options};
use crate::http::{self, Endpoint, HttpError, Timeouts};

const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IMDS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const TOKEN_TTL_SECONDS: &str = "300";
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// `/proc/sys/kernel/hostname` (the UTS namespace's hostname).
pub fn read_hostname() -> Option<String> {
    std::fs::read_to_string(HOSTNAME_FILE)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What IMDS gave.
#[derive(Debug, Clone, Default)]
pub struct ImdsResult {
    pub identity: NodeIdentity,
    /// `Some` when IMDS answered.
    pub available: bool,
    /// Why IMDS was not used, or why it failed.
    pub reason: Option<String>,
    /// True when IMDS exists but collecting failed (not merely absent).
    pub failed: bool,
    pub source: Option<String>,
    pub warnings: Vec<String>,
}

impl ImdsResult {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        ImdsResult {
            reason: Some(reason.into()),
            ..Default::default()
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        ImdsResult {
            reason: Some(reason.into()),
            failed: true,
            ..Default::default()
        }
    }
}

struct Imds {
    ep: Endpoint,
    token: String,
    deadline: Deadline,
}

enum Get {
    Found(String),
    NotFound,
}

impl Imds {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.deadline.cap(IMDS_CONNECT_TIMEOUT),
            total: self.deadline.cap(IMDS_REQUEST_TIMEOUT),
        }
    }

    async fn get(&self, path: &str) -> Result<Get, String> {
        let full = format!("/latest/meta-data/{path}");
        let r = http::request(
            &self.ep,
            "GET",
            &full,
            &[("X-aws-ec2-metadata-token", &self.token)],
            b"",
            self.timeouts(),
        )
        .await
        .map_err(|e| format!("IMDS: {e}"))?;
        match r.status {
            200 => Ok(Get::Found(r.text().trim().to_string())),
            404 => Ok(Get::NotFound),
            s => Err(format!(
                "IMDS: GET {} answered HTTP {s}",
                self.ep.url(&full)
            )),
        }
    }

    /// A value that must exist; a 404 is a warning.
    async fn field(&self, path: &str, warnings: &mut Vec<String>) -> Option<String> {
        match self.get(path).await {
            Ok(Get::Found(v)) if !v.is_empty() => Some(v),
            Ok(Get::Found(_)) => None,
            Ok(Get::NotFound) => {
                warnings.push(format!("IMDS: meta-data/{path} not found (404)"));
                None
            }
            Err(e) => {
                warnings.push(e);
                None
            }
        }
    }

    /// A value that may legitimately be absent (404 is fine).
    async fn optional(&self, path: &str, warnings: &mut Vec<String>) -> Option<String> {
        match self.get(path).await {
            Ok(Get::Found(v)) if !v.is_empty() => Some(v),
            Ok(_) => None,
            Err(e) => {
                warnings.push(e);
                None
            }
        }
    }
}

/// The endpoint to use, or why IMDS is off.
pub fn imds_endpoint(opts: &Options) -> Result<Endpoint, String> {
    if opts.no_imds {
        return Err("IMDS disabled (--no-imds / AWS_EC2_METADATA_DISABLED)".to_string());
    }
    Endpoint::parse(&opts.imds_endpoint).map_err(|e| format!("IMDS: {e}"))
}

/// Query IMDSv2. Never fails: absence and errors are in the result.
pub async fn imds(opts: &Options, deadline: Deadline) -> ImdsResult {
    let ep = match imds_endpoint(opts) {
        Ok(ep) => ep,
        Err(reason) => return ImdsResult::unavailable(reason),
    };
    let source = format!("imds:{}", ep.url(""));
    let token_resp = http::request(
        &ep,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)],
        b"",
        Timeouts {
            connect: deadline.cap(IMDS_CONNECT_TIMEOUT),
            total: deadline.cap(IMDS_REQUEST_TIMEOUT),
        },
    )
    .await;
    let token = match token_resp {
        Ok(r) if r.status == 200 && !r.body.is_empty() => r.text().trim().to_string(),
        Ok(r) => {
            return ImdsResult::failed(format!(
                "IMDS: PUT {} answered HTTP {} (IMDSv2 token refused)",
                ep.url("/latest/api/token"),
                r.status
            ))
        }
        Err(e) if e.is_unreachable() => {
            return ImdsResult::unavailable(format!("no IMDS: {e}"));
        }
        Err(e @ HttpError::Timeout { .. }) => {
            return ImdsResult::unavailable(format!("no IMDS: {e}"));
        }
        Err(e) => return ImdsResult::failed(format!("IMDS: {e}")),
    };
    let imds = Imds {
        ep,
        token,
        deadline,
    };
    let mut w = Vec::new();
    let mut id = NodeIdentity {
        instance_id: imds.field("instance-id", &mut w).await,
        instance_type: imds.field("instance-type", &mut w).await,
        availability_zone: imds.field("placement/availability-zone", &mut w).await,
        region: imds.optional("placement/region", &mut w).await,
        private_dns_name: imds.field("local-hostname", &mut w).await,
        primary_mac: imds
            .field("mac", &mut w)
            .await
            .map(|m| m.to_ascii_lowercase()),
        ..Default::default()
    };
    if let Some(ip) = imds.field("local-ipv4", &mut w).await {
        match ip.parse::<Ipv4Addr>() {
            Ok(a) => id.primary_ipv4 = Some(a),
            Err(_) => w.push(format!("IMDS: local-ipv4 `{ip}` is not an IPv4 address")),
        }
    }
    let macs: Vec<String> = imds
        .field("network/interfaces/macs/", &mut w)
        .await
        .map(|list| {
            list.lines()
                .map(|l| l.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for m in macs {
        let base = format!("network/interfaces/macs/{m}");
        let mut eni = Eni {
            mac: m.clone(),
            ..Default::default()
        };
        eni.device_number = parse_num(
            imds.field(&format!("{base}/device-number"), &mut w).await,
            &mut w,
            "device-number",
        );
        eni.network_card = parse_num(
            imds.optional(&format!("{base}/network-card"), &mut w).await,
            &mut w,
            "network-card",
        );
        eni.interface_id = imds.field(&format!("{base}/interface-id"), &mut w).await;
        eni.subnet_id = imds.field(&format!("{base}/subnet-id"), &mut w).await;
        eni.subnet_cidr = imds
            .field(&format!("{base}/subnet-ipv4-cidr-block"), &mut w)
            .await
            .and_then(|s| parse_net(&s, &mut w));
        eni.vpc_cidrs = imds
            .field(&format!("{base}/vpc-ipv4-cidr-blocks"), &mut w)
            .await
            .map(|s| s.lines().filter_map(|l| parse_net(l, &mut w)).collect())
            .unwrap_or_default();
        eni.ipv4_addresses = imds
            .field(&format!("{base}/local-ipv4s"), &mut w)
            .await
            .map(|s| {
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .filter_map(|l| match l.parse::<Ipv4Addr>() {
                        Ok(a) => Some(a),
                        Err(_) => {
                            w.push(format!(
                                "IMDS: local-ipv4s entry `{l}` is not an IPv4 address"
                            ));
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        eni.ipv4_prefixes = imds
            .optional(&format!("{base}/ipv4-prefix"), &mut w)
            .await
            .map(|s| s.lines().filter_map(|l| parse_net(l, &mut w)).collect())
            .unwrap_or_default();
        if id.primary_mac.as_deref() == Some(m.as_str()) {
            id.vpc_cidrs = eni.vpc_cidrs.clone();
        }
        id.enis.push(eni);
    }
    id.enis.sort_by_key(|e| {
        (
            e.network_card.unwrap_or(0),
            e.device_number.unwrap_or(u32::MAX),
        )
    });
    ImdsResult {
        identity: id,
        available: true,
        reason: None,
        failed: false,
        source: Some(source),
        warnings: w,
    }
}

fn parse_num(v: Option<String>, w: &mut Vec<String>, what: &str) -> Option<u32> {
    let v = v?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            w.push(format!("IMDS: {what} `{v}` is not a number"));
            None
        }
    }
}

fn parse_net(s: &str, w: &mut Vec<String>) -> Option<Ipv4Net> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    match s.parse::<Ipv4Net>() {
        Ok(n) => Some(n),
        Err(_) => {
            w.push(format!("IMDS: `{s}` is not an IPv4 CIDR"));
            None
        }
    }
}

/// Combine the IMDS result with the kernel state: interfaces by MAC, and without IMDS the
/// primary interface and address from the main-table default route.
pub fn assemble(r: ImdsResult, net: &NetSections) -> Section<NodeIdentity> {
    let mut id = r.identity;
    let links = net.links.get().cloned().unwrap_or_default();
    let by_mac = |mac: &str| {
        links
            .iter()
            .find(|l| {
                l.address
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(mac))
            })
            .map(|l| l.ifname.clone())
    };
    for eni in &mut id.enis {
        eni.interface = by_mac(&eni.mac);
    }
    if let Some(mac) = id.primary_mac.clone() {
        id.primary_interface = by_mac(&mac);
    }
    let mut warnings = r.warnings;
    let mut inferred_note = None;
    if !r.available {
        infer(&mut id, net);
        if !id.inferred.is_empty() {
            inferred_note = Some(format!(
                "inferred from kernel state: {}",
                id.inferred.join(", ")
            ));
        }
    } else if id.primary_interface.is_none()
        && id.primary_mac.is_some()
        && net.links.get().is_some()
    {
        warnings.push(format!(
            "no interface has the primary MAC {} from IMDS",
            id.primary_mac.as_deref().unwrap_or_default()
        ));
    }
    let mut s = if r.available {
        if warnings.is_empty() {
            Section::ok(id)
        } else {
            Section::partial(
                id,
                format!("{} IMDS values missing or invalid", warnings.len()),
            )
        }
    } else {
        let reason = r.reason.unwrap_or_else(|| "no IMDS".to_string());
        match inferred_note {
            Some(note) => Section::partial(id, format!("{reason}; {note}")),
            None if r.failed => Section::failed(reason),
            None => Section::unavailable(reason),
        }
    };
    if let Some(src) = r.source {
        s = s.with_source(src);
    }
    // Interfaces (by MAC) and inferred values come from the netlink dump.
    if s.data.is_some() && net.links.get().is_some() {
        s = s.with_source("netlink");
    }
    s.with_warnings(warnings)
}

/// Without IMDS: the main-table IPv4 default route gives the primary interface (its dev) and
/// address (its prefsrc, else the first global IPv4 address of that dev).
pub fn infer(id: &mut NodeIdentity, net: &NetSections) {
    let Some(routes) = net.routes.get() else {
        return;
    };
    let default = routes
        .iter()
        .filter(|r| {
            r.family == Family::Inet
                && r.table == model::net::RT_TABLE_MAIN
                && r.is_default()
                && r.route_type == "unicast"
        })
        .min_by_key(|r| r.metric.unwrap_or(0));
    let Some(default) = default else {
        return;
    };
    if id.primary_interface.is_none() {
        if let Some(dev) = &default.dev {
            id.primary_interface = Some(dev.clone());
            id.inferred.push("primary_interface".to_string());
        }
    }
    if id.primary_ipv4.is_none() {
        let from_src = match default.prefsrc {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let from_addr = || {
            let dev = default.dev.as_deref()?;
            net.addresses.get()?.iter().find_map(|a| match a.local {
                IpAddr::V4(v4) if a.ifname == dev && a.scope == "global" => Some(v4),
                _ => None,
            })
        };
        if let Some(a) = from_src.or_else(from_addr) {
            id.primary_ipv4 = Some(a);
            id.inferred.push("primary_ipv4".to_string());
        }
    }
    if id.primary_mac.is_none() {
        if let Some(dev) = &id.primary_interface {
            if let Some(mac) = net
                .links
                .get()
                .and_then(|ls| ls.iter().find(|l| &l.ifname == dev))
                .and_then(|l| l.address.clone())
            {
                id.primary_mac = Some(mac);
                id.inferred.push("primary_mac".to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::http::tests::serve_raw;
    use model::{Link, Route, SectionStatus};

    fn resp(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn opts_for(addr: std::net::SocketAddr) -> Options {
        Options {
            imds_endpoint: format!("http://{addr}"),
            ..Default::default()
        }
    }

    fn net_with(links: Vec<Link>, routes: Vec<Route>) -> NetSections {
        NetSections {
            links: Section::ok(links),
            routes: Section::ok(routes),
            ..Default::default()
        }
    }

    fn link(name: &str, mac: &str) -> Link {
        Link {
            ifindex: 2,
            ifname: name.into(),
            address: Some(mac.into()),
            ..Default::default()
        }
    }

    /// The full IMDSv2 flow against a canned server: the token is requested with a TTL,
    /// every GET carries it, 404 for `network-card`/`ipv4-prefix` is fine, and ENIs are
    /// matched to links by MAC.
    #[tokio::test]
    async fn imds_token_flow_and_404s() {
        let mac = "0a:1b:2c:3d:4e:5f";
        // Order of requests the collector makes.
        let responses = vec![
            resp("200 OK", "TOKEN123"),
            resp("200 OK", "i-0abc"),
            resp("200 OK", "m5.large"),
            resp("200 OK", "us-east-1a"),
            resp("200 OK", "us-east-1"),
            resp("200 OK", "ip-192-168-1-251.ec2.internal"),
            resp("200 OK", "0A:1B:2C:3D:4E:5F"),
            resp("200 OK", "192.168.1.251"),
            resp("200 OK", &format!("{mac}/\n")),
            resp("200 OK", "0"),
            resp("404 Not Found", "<html>404</html>"),
            resp("200 OK", "eni-0aaa"),
            resp("200 OK", "subnet-1"),
            resp("200 OK", "192.168.0.0/19"),
            resp("200 OK", "192.168.0.0/16\n100.64.0.0/16"),
            resp("200 OK", "192.168.1.251\n192.168.5.10"),
            resp("404 Not Found", ""),
        ];
        let n = responses.len();
        let (addr, h) = serve_raw(responses).await;
        let opts = opts_for(addr);
        let r = imds(&opts, Deadline::after(Duration::from_secs(5))).await;
        assert!(r.available, "{:?}", r.reason);
        let seen = h.await.unwrap();
        assert_eq!(seen.len(), n);
        assert!(seen[0].starts_with("PUT /latest/api/token HTTP/1.1"));
        // Header names are case-insensitive (RFC 9110 §5.1); hyper writes them title-cased.
        let lower = |r: &str| r.to_ascii_lowercase();
        assert!(lower(&seen[0]).contains("x-aws-ec2-metadata-token-ttl-seconds: 300"));
        for req in &seen[1..] {
            assert!(req.starts_with("GET /latest/meta-data/"), "{req}");
            assert!(
                lower(req).contains("x-aws-ec2-metadata-token: token123"),
                "{req}"
            );
        }
        assert!(seen[10].starts_with(&format!(
            "GET /latest/meta-data/network/interfaces/macs/{mac}/network-card "
        )));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);

        let net = net_with(vec![link("ens5", mac)], vec![]);
        let s = assemble(r, &net);
        assert_eq!(s.status, SectionStatus::Ok, "{:?}", s.reason);
        let id = s.data.unwrap();
        assert_eq!(id.instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(id.region.as_deref(), Some("us-east-1"));
        assert_eq!(id.primary_mac.as_deref(), Some(mac));
        assert_eq!(id.primary_interface.as_deref(), Some("ens5"));
        assert_eq!(id.primary_ipv4, Some("192.168.1.251".parse().unwrap()));
        assert_eq!(id.vpc_cidrs.len(), 2);
        assert_eq!(id.enis.len(), 1);
        let eni = &id.enis[0];
        assert_eq!(eni.interface.as_deref(), Some("ens5"));
        assert_eq!(eni.device_number, Some(0));
        assert_eq!(eni.network_card, None);
        assert_eq!(eni.interface_id.as_deref(), Some("eni-0aaa"));
        assert_eq!(eni.subnet_cidr, Some("192.168.0.0/19".parse().unwrap()));
        assert_eq!(eni.ipv4_addresses.len(), 2);
        assert!(eni.ipv4_prefixes.is_empty());
        assert!(id.inferred.is_empty());
    }

    #[tokio::test]
    async fn token_refused_is_failed_and_missing_field_is_partial() {
        let (addr, _h) = serve_raw(vec![resp("403 Forbidden", "")]).await;
        let r = imds(&opts_for(addr), Deadline::after(Duration::from_secs(5))).await;
        assert!(!r.available && r.failed);
        assert!(r.reason.as_deref().unwrap().contains("HTTP 403"));
        let s = assemble(r, &NetSections::default());
        assert_eq!(s.status, SectionStatus::Failed);

        // instance-type 404s: the section is partial and says which value.
        let mut responses = vec![
            resp("200 OK", "T"),
            resp("200 OK", "i-1"),
            resp("404 Not Found", ""),
        ];
        responses.extend((0..5).map(|_| resp("200 OK", "x")));
        responses.push(resp("200 OK", ""));
        let (addr, _h) = serve_raw(responses).await;
        let r = imds(&opts_for(addr), Deadline::after(Duration::from_secs(5))).await;
        assert!(r.available);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("instance-type not found")),
            "{:?}",
            r.warnings
        );
        let s = assemble(r, &NetSections::default());
        assert_eq!(s.status, SectionStatus::Partial);
    }

    #[tokio::test]
    async fn absent_or_disabled_imds_is_unavailable_and_inferred() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let r = imds(&opts_for(addr), Deadline::after(Duration::from_secs(5))).await;
        assert!(!r.available && !r.failed, "{:?}", r.reason);
        let s = assemble(r.clone(), &NetSections::default());
        assert_eq!(s.status, SectionStatus::Unavailable);

        let mut opts = opts_for(addr);
        opts.no_imds = true;
        let r2 = imds(&opts, Deadline::after(Duration::from_secs(5))).await;
        assert!(r2.reason.as_deref().unwrap().contains("disabled"));

        // With a default route the primary interface and address are inferred.
        let default = Route {
            family: Family::Inet,
            table: 254,
            route_type: "unicast".into(),
            dst: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            dev: Some("ens5".into()),
            oif: Some(2),
            prefsrc: Some("10.0.0.10".parse().unwrap()),
            protocol: "dhcp".into(),
            scope: "global".into(),
            metric: Some(512),
            flags: vec![],
        };
        let net = net_with(vec![link("ens5", "02:00:00:00:00:01")], vec![default]);
        let s = assemble(r, &net);
        assert_eq!(s.status, SectionStatus::Partial);
        let id = s.data.unwrap();
        assert_eq!(id.primary_interface.as_deref(), Some("ens5"));
        assert_eq!(id.primary_ipv4, Some("10.0.0.10".parse().unwrap()));
        assert_eq!(id.primary_mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(
            id.inferred,
            ["primary_interface", "primary_ipv4", "primary_mac"]
        );
    }
}
