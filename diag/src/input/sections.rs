//! One builder per snapshot section from captured files: how several files of one kind
//! merge, what makes a section `partial` or `failed`, and which file problems are input
//! problems (exit code 2).

use model::{
    Backend, CniConfig, CniLogs, ConntrackSection, IptablesBackendDump, IptablesSection,
    NodeIdentity, Section, Sysctls,
};
use parsers::{ParseError, Parsed};

use super::capture::{clean_text, relabel, CaptureFile};
use super::names::Kind;

/// Most CNI log events kept per node (newest kept).
const MAX_LOG_EVENTS: usize = 5000;
/// Most bytes one (decompressed) log file may have.
const MAX_LOG_BYTES: usize = 32 * 1024 * 1024;

/// Accumulates one section from several files.
struct Acc<T> {
    data: Option<T>,
    sources: Vec<String>,
    warnings: Vec<String>,
    failures: Vec<String>,
}

impl<T> Acc<T> {
    fn new() -> Self {
        Acc {
            data: None,
            sources: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn add_parsed(
        &mut self,
        f: &CaptureFile,
        p: Parsed<T>,
        merge: impl FnOnce(&mut T, T),
        problems: &mut Vec<String>,
        loc: &str,
    ) {
        self.sources.push(format!("file:{}", f.name));
        for w in p.warning_strings() {
            let already = problems
                .iter()
                .any(|x| x.starts_with(&format!("{loc}: truncated")));
            if w.to_ascii_lowercase().contains("truncat") && !already {
                problems.push(format!("{loc}: {w}"));
            }
            self.warnings.push(format!("{}: {w}", f.name));
        }
        match &mut self.data {
            Some(d) => merge(d, p.value),
            None => self.data = Some(p.value),
        }
    }

    fn fail(&mut self, f: &CaptureFile, message: String, problems: &mut Vec<String>, loc: &str) {
        self.sources.push(format!("file:{}", f.name));
        self.failures.push(format!("{}: {message}", f.name));
        problems.push(format!("{loc}: {message}"));
    }

    fn finish(self) -> Option<Section<T>> {
        if self.sources.is_empty() {
            return None;
        }
        let mut sec = match self.data {
            Some(d) if self.failures.is_empty() && self.warnings.is_empty() => Section::ok(d),
            Some(d) => {
                let reason = if self.failures.is_empty() {
                    let truncated = self
                        .warnings
                        .iter()
                        .any(|w| w.to_ascii_lowercase().contains("truncat"));
                    format!(
                        "{} parse warning(s){}",
                        self.warnings.len(),
                        if truncated { "; input truncated" } else { "" }
                    )
                } else {
                    self.failures.join("; ")
                };
                Section::partial(d, reason)
            }
            None => Section::failed(self.failures.join("; ")),
        };
        sec.sources = self.sources;
        sec.warnings = self.warnings;
        Some(sec)
    }
}

fn parse_error_message(e: &ParseError, kind: Kind) -> String {
    match e {
        ParseError::Empty => format!("empty file (expected {})", expected_output(kind)),
        other => other.to_string(),
    }
}

fn expected_output(kind: Kind) -> &'static str {
    match kind {
        Kind::IptablesSave(_) => "iptables-save output",
        Kind::IptablesSpec(_) => "iptables -S output",
        Kind::IptablesList(_) => "iptables -L -n -v output",
        Kind::IpRule => "ip rule output",
        Kind::IpRoute => "ip route show table all output",
        Kind::IpRouteTable(_) => "ip route show table N output",
        Kind::IpAddr => "ip addr output",
        Kind::IpLink => "ip link output",
        Kind::IpNeigh => "ip neigh output",
        Kind::ConntrackList | Kind::ConntrackStats | Kind::ConntrackBoth => "conntrack output",
        Kind::CniLog => "a CNI log",
        Kind::Sysctl => "sysctl -a output",
        Kind::CniEnv => "KEY=VALUE lines",
        Kind::ContainerInfo => "ctr container info JSON",
        Kind::Enis => "ipamd /v1/enis JSON",
        Kind::NetworkutilsEnv | Kind::IpamdEnv => "ipamd env-settings JSON",
        Kind::EniConfigs => "a JSON string",
        Kind::Conflist => "CNI conflist JSON",
        Kind::NodeFacts => "node facts JSON",
        Kind::InstanceId | Kind::AvailabilityZone | Kind::Region => "one line of text",
    }
}

/// A section from files parsed by one text parser whose results concatenate.
pub(super) fn simple<T>(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
    parse: impl Fn(&str) -> Result<Parsed<T>, ParseError>,
) -> Option<Section<T>>
where
    T: Extendable,
{
    let mut acc = Acc::new();
    for f in files {
        let text = clean_text(&f.data);
        match parse(&text) {
            Ok(p) => acc.add_parsed(f, p, T::extend_with, problems, &loc(f)),
            Err(e) => acc.fail(f, parse_error_message(&e, f.kind), problems, &loc(f)),
        }
    }
    acc.finish()
}

/// Parsed values that several files can contribute to.
pub(super) trait Extendable {
    fn extend_with(&mut self, other: Self);
}

impl<T> Extendable for Vec<T> {
    fn extend_with(&mut self, other: Self) {
        self.extend(other);
    }
}

impl<A, B> Extendable for (Vec<A>, Vec<B>) {
    fn extend_with(&mut self, other: Self) {
        self.0.extend(other.0);
        self.1.extend(other.1);
    }
}

impl Extendable for Sysctls {
    fn extend_with(&mut self, other: Self) {
        self.values.extend(other.values);
    }
}

/// `ip route show table all` and per-table captures (whose lines carry no `table`).
pub(super) fn routes_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
) -> Option<Section<Vec<model::Route>>> {
    let mut acc = Acc::new();
    for f in files {
        let table = match f.kind {
            Kind::IpRouteTable(t) => t,
            _ => model::net::RT_TABLE_MAIN,
        };
        match parsers::ip::parse_route_in_table(&clean_text(&f.data), table) {
            Ok(p) => acc.add_parsed(f, p, Vec::extend_with, problems, &loc(f)),
            Err(e) => acc.fail(f, parse_error_message(&e, f.kind), problems, &loc(f)),
        }
    }
    acc.finish()
}

/// `*table` headers without a matching `COMMIT`: the capture was cut.
fn uncommitted_tables(text: &str) -> Vec<String> {
    let mut open: Option<String> = None;
    let mut cut = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(t) = l.strip_prefix('*') {
            if let Some(prev) = open.replace(t.trim().to_string()) {
                cut.push(prev);
            }
        } else if l == "COMMIT" {
            open = None;
        }
    }
    cut.extend(open);
    cut
}

pub(super) fn iptables_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
) -> (Option<Section<IptablesSection>>, Vec<String>) {
    let mut problems = Vec::new();
    let mut acc: Acc<Vec<IptablesBackendDump>> = Acc::new();
    // Full saves first so that a per-table capture of the same table is only a fallback.
    let mut ordered: Vec<&&CaptureFile> = files.iter().collect();
    ordered.sort_by_key(|f| !matches!(f.kind, Kind::IptablesSave(_)));
    for f in ordered {
        let mut text = clean_text(&f.data);
        if matches!(f.kind, Kind::IptablesList(_)) {
            // The ELC appends "Total Number of Rules: N" to its `iptables -nvL` listings.
            text = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("Total Number of Rules"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let (table, hint) = match f.kind {
            Kind::IptablesSave(b) => ("filter", b),
            Kind::IptablesSpec(t) | Kind::IptablesList(t) => (t, Backend::Unknown),
            _ => continue,
        };
        if matches!(f.kind, Kind::IptablesSave(_)) {
            let cut = uncommitted_tables(&text);
            if !cut.is_empty() {
                let msg = format!(
                    "truncated: table(s) {} have no COMMIT line (expected complete iptables-save output)",
                    cut.join(", ")
                );
                problems.push(format!("{}: {msg}", loc(f)));
                acc.warnings.push(format!("{}: {msg}", f.name));
            }
        }
        match parsers::iptables::parse_any(&text, table) {
            Ok(mut p) => {
                for d in &mut p.value {
                    if d.backend == Backend::Unknown {
                        d.backend = hint;
                    }
                    if d.command.is_empty() {
                        d.command = format!("file:{}", f.name);
                    }
                }
                acc.add_parsed(f, p, merge_dumps, &mut problems, &loc(f));
            }
            Err(e) => acc.fail(f, parse_error_message(&e, f.kind), &mut problems, &loc(f)),
        }
    }
    let full_save = files
        .iter()
        .any(|f| matches!(f.kind, Kind::IptablesSave(_)));
    let sec = acc.finish().map(|s| {
        let data = s.data.clone().map(|backends| IptablesSection {
            backends,
            default_backend: None,
        });
        let mut sec = relabel(&s, data);
        // Per-table captures (`-t nat -S`) say nothing about the tables not captured; the
        // section is honest about that rather than looking complete.
        if !full_save {
            if let Some(d) = sec.data.as_ref() {
                let have: Vec<&str> = d
                    .backends
                    .iter()
                    .flat_map(|b| b.tables.iter().map(|t| t.name.as_str()))
                    .collect();
                let missing: Vec<&str> = ["nat", "mangle"]
                    .into_iter()
                    .filter(|t| !have.contains(t))
                    .collect();
                if !missing.is_empty() {
                    let note = format!(
                        "table(s) {} not in the input (only per-table captures, no iptables-save.txt)",
                        missing.join(", ")
                    );
                    sec.reason = Some(match sec.reason.take() {
                        Some(r) => format!("{r}; {note}"),
                        None => note,
                    });
                    sec.status = model::SectionStatus::Partial;
                }
            }
        }
        sec
    });
    (sec, problems)
}

/// Merge dumps of the same backend: tables not yet present are added (a full save, read
/// first, wins over a per-table capture of the same table).
fn merge_dumps(have: &mut Vec<IptablesBackendDump>, new: Vec<IptablesBackendDump>) {
    for d in new {
        match have.iter_mut().find(|h| h.backend == d.backend) {
            Some(h) => {
                for t in d.tables {
                    if h.table(&t.name).is_none() {
                        h.tables.push(t);
                    }
                }
                h.has_counters |= d.has_counters;
                if !h.command.contains(&d.command) {
                    h.command = format!("{} + {}", h.command, d.command);
                }
            }
            None => have.push(d),
        }
    }
}

pub(super) fn conntrack_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
    sample: usize,
) -> Option<Section<ConntrackSection>> {
    let mut acc: Acc<ConntrackSection> = Acc::new();
    for f in files {
        let text = clean_text(&f.data);
        if text.trim().is_empty() {
            acc.fail(
                f,
                parse_error_message(&ParseError::Empty, f.kind),
                problems,
                &loc(f),
            );
            continue;
        }
        let p = if f.kind == Kind::ConntrackStats {
            match parsers::conntrack::parse_stats(&text) {
                Ok(p) => p.map(|stats| ConntrackSection {
                    source: format!("file:{}", f.name),
                    totals: model::conntrack::sum_stats(&stats),
                    stats,
                    ..Default::default()
                }),
                Err(e) => {
                    acc.fail(f, parse_error_message(&e, f.kind), problems, &loc(f));
                    continue;
                }
            }
        } else {
            let mut p = parsers::conntrack::parse_capture(&text, sample);
            p.value.source = format!("file:{}", f.name);
            p
        };
        if p.value.summary.total == 0 && p.value.stats.is_empty() && !p.warnings.is_empty() {
            let first = p.warning_strings().into_iter().next().unwrap_or_default();
            acc.fail(
                f,
                format!("no conntrack entries or statistics recognised ({first})"),
                problems,
                &loc(f),
            );
            continue;
        }
        acc.add_parsed(f, p, merge_conntrack, problems, &loc(f));
    }
    acc.finish()
}

fn merge_conntrack(have: &mut ConntrackSection, new: ConntrackSection) {
    if have.stats.is_empty() && !new.stats.is_empty() {
        have.stats = new.stats;
        have.totals = new.totals;
    }
    if have.summary.total == 0 && new.summary.total > 0 {
        have.summary = new.summary;
        have.sample = new.sample;
        have.sample_limit = new.sample_limit;
        have.count = new.count.or(have.count);
    }
    have.max = have.max.or(new.max);
    if !have.source.contains(&new.source) {
        have.source = format!("{}, {}", have.source, new.source);
    }
}

pub(super) fn cni_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
) -> Option<Section<CniConfig>> {
    let mut acc: Acc<CniConfig> = Acc::new();
    // The running ipamd's env (introspection) overrides a hand-written env file.
    let mut ordered: Vec<&&CaptureFile> = files.iter().collect();
    ordered.sort_by_key(|f| match f.kind {
        Kind::CniEnv => 0,
        Kind::ContainerInfo => 1,
        Kind::IpamdEnv => 2,
        Kind::NetworkutilsEnv => 3,
        _ => 4,
    });
    for f in ordered {
        let text = clean_text(&f.data);
        let mut cfg = CniConfig::default();
        let res: Result<Parsed<()>, String> = match f.kind {
            Kind::CniEnv => {
                let p = parsers::ipamd::parse_env_file(&text);
                let warnings = p.warnings.clone();
                for (k, v) in p.value {
                    cfg.env_sources
                        .insert(k.clone(), format!("file:{}", f.name));
                    cfg.env.insert(k, v);
                }
                Ok(Parsed {
                    value: (),
                    warnings,
                })
            }
            Kind::ContainerInfo => match container_info(&text) {
                Ok((env, version)) => {
                    for (k, v) in env {
                        cfg.env_sources
                            .insert(k.clone(), format!("container:{}", f.name));
                        cfg.env.insert(k, v);
                    }
                    cfg.version = version;
                    Ok(Parsed::new(()))
                }
                Err(m) => Err(m),
            },
            Kind::NetworkutilsEnv | Kind::IpamdEnv => {
                match parsers::ipamd::parse_env_settings(&text) {
                    Ok(env) => {
                        let endpoint = if f.kind == Kind::IpamdEnv {
                            "ipamd-env-settings"
                        } else {
                            "networkutils-env-settings"
                        };
                        for (k, v) in env {
                            cfg.env_sources.insert(
                                k.clone(),
                                format!("ipamd:/v1/{endpoint} (file:{})", f.name),
                            );
                            cfg.env.insert(k, v);
                        }
                        Ok(Parsed::new(()))
                    }
                    Err(e) => Err(format!("{e} (expected {})", expected_output(f.kind))),
                }
            }
            Kind::Enis => match parsers::ipamd::parse_enis(&text) {
                Ok(enis) => {
                    cfg.ipamd_enis = Some(enis);
                    Ok(Parsed::new(()))
                }
                Err(e) => Err(format!("{e} (expected {})", expected_output(f.kind))),
            },
            Kind::EniConfigs => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::String(s)) => {
                    cfg.eni_config = Some(s);
                    Ok(Parsed::new(()))
                }
                Ok(_) => Err("expected a bare JSON string (the ENIConfig name)".into()),
                Err(e) => Err(format!("invalid JSON at line {}: {e}", e.line())),
            },
            Kind::Conflist => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => {
                    cfg.conflist = Some(v);
                    Ok(Parsed::new(()))
                }
                Err(e) => Err(format!(
                    "invalid JSON at line {}: {e} (expected the CNI conflist)",
                    e.line()
                )),
            },
            _ => continue,
        };
        match res {
            Ok(p) => {
                let p = Parsed {
                    value: cfg,
                    warnings: p.warnings,
                };
                acc.add_parsed(f, p, merge_cni, problems, &loc(f));
            }
            Err(m) => acc.fail(f, m, problems, &loc(f)),
        }
    }
    acc.finish()
}

/// The CNI env and version from `ctr container info` JSON of the aws-node container: every
/// `env`/`Env` array of `KEY=VALUE` strings (relevant CNI variables only) and the image tag of
/// `amazon-k8s-cni:vX.Y.Z`.
fn container_info(
    text: &str,
) -> Result<(std::collections::BTreeMap<String, String>, Option<String>), String> {
    fn walk(
        v: &serde_json::Value,
        env: &mut std::collections::BTreeMap<String, String>,
        version: &mut Option<String>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    if k.eq_ignore_ascii_case("env") {
                        for s in x
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s.as_str())
                        {
                            if let Some((k, val)) = s.split_once('=') {
                                if model::vpccni::is_relevant_env(k) {
                                    env.insert(k.to_string(), val.to_string());
                                }
                            }
                        }
                    } else if k.eq_ignore_ascii_case("image") && version.is_none() {
                        *version = x
                            .as_str()
                            .and_then(|i| i.split_once("amazon-k8s-cni:"))
                            .map(|(_, tag)| tag.split('-').next().unwrap_or(tag).to_string());
                    }
                    walk(x, env, version);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, env, version)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "invalid JSON at line {}: {e} (expected ctr container info)",
            e.line()
        )
    })?;
    let mut env = std::collections::BTreeMap::new();
    let mut version = None;
    walk(&v, &mut env, &mut version);
    if env.is_empty() && version.is_none() {
        return Err(
            "no CNI env or amazon-k8s-cni image found (expected ctr container info of aws-node)"
                .into(),
        );
    }
    Ok((env, version))
}

fn merge_cni(have: &mut CniConfig, new: CniConfig) {
    have.env.extend(new.env);
    have.env_sources.extend(new.env_sources);
    have.ipamd_enis = new.ipamd_enis.or(have.ipamd_enis.take());
    have.eni_config = new.eni_config.or(have.eni_config.take());
    have.conflist = new.conflist.or(have.conflist.take());
    have.version = new.version.or(have.version.take());
}

pub(super) fn logs_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
) -> Option<Section<CniLogs>> {
    let mut acc: Acc<CniLogs> = Acc::new();
    let mut ordered: Vec<&&CaptureFile> = files.iter().collect();
    // Rotated backups (older) first, so that events end newest last.
    ordered.sort_by_key(|f| (!f.name.ends_with(".gz"), f.name.clone()));
    for f in ordered {
        // parse_bytes decompresses .gz members itself (and reports a damaged stream).
        let bytes = &f.data;
        let short = f.name.rsplit('/').next().unwrap_or(&f.name).to_string();
        let p = parsers::cnilog::parse_bytes(&short, bytes, MAX_LOG_BYTES);
        let p = p.map(|(file, events)| CniLogs {
            files: vec![file],
            events,
            events_dropped: 0,
        });
        acc.add_parsed(f, p, merge_logs, problems, &loc(f));
    }
    let mut sec = acc.finish()?;
    if let Some(d) = sec.data.as_mut() {
        if d.events.len() > MAX_LOG_EVENTS {
            let drop = d.events.len() - MAX_LOG_EVENTS;
            d.events.drain(..drop);
            d.events_dropped += drop as u64;
        }
    }
    Some(sec)
}

fn merge_logs(have: &mut CniLogs, new: CniLogs) {
    have.files.extend(new.files);
    have.events.extend(new.events);
    have.events_dropped += new.events_dropped;
}

/// `imds.json` / `node.json`: IMDS key names or the snapshot's own field names.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct NodeFacts {
    #[serde(alias = "instance_id")]
    #[serde(rename = "instance-id")]
    instance_id: Option<String>,
    #[serde(alias = "instance_type")]
    #[serde(rename = "instance-type")]
    instance_type: Option<String>,
    #[serde(alias = "availability_zone")]
    #[serde(rename = "availability-zone")]
    availability_zone: Option<String>,
    region: Option<String>,
    #[serde(alias = "private_dns_name", alias = "local-hostname")]
    #[serde(rename = "private-dns-name")]
    private_dns_name: Option<String>,
    #[serde(alias = "primary_mac")]
    mac: Option<String>,
    #[serde(alias = "primary_interface")]
    #[serde(rename = "primary-interface")]
    primary_interface: Option<String>,
    #[serde(alias = "primary_ipv4")]
    #[serde(rename = "local-ipv4")]
    local_ipv4: Option<std::net::Ipv4Addr>,
    #[serde(alias = "vpc_cidrs")]
    #[serde(rename = "vpc-ipv4-cidr-blocks")]
    vpc_cidrs: Option<CidrList>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum CidrList {
    List(Vec<String>),
    Text(String),
}

fn node_from_facts(text: &str) -> Result<NodeIdentity, String> {
    if serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("schema_version").is_some())
    {
        return Err(
            "this is an eks-diag snapshot, not node facts; pass the file itself to diag".into(),
        );
    }
    let f: NodeFacts = serde_json::from_str(text).map_err(|e| {
        format!(
            "invalid node facts JSON at line {}: {e} (expected an object like {{\"instance-id\": \"i-…\", \"local-ipv4\": \"10.0.0.5\", \"vpc-ipv4-cidr-blocks\": [\"10.0.0.0/16\"]}})",
            e.line()
        )
    })?;
    let mut vpc = Vec::new();
    let raw: Vec<String> = match f.vpc_cidrs {
        Some(CidrList::List(v)) => v,
        Some(CidrList::Text(t)) => t.split_whitespace().map(str::to_string).collect(),
        None => Vec::new(),
    };
    for c in raw {
        let n: ipnet::Ipv4Net = c
            .trim()
            .parse()
            .map_err(|_| format!("vpc-ipv4-cidr-blocks: '{c}' is not an IPv4 CIDR"))?;
        vpc.push(n.trunc());
    }
    Ok(NodeIdentity {
        instance_id: f.instance_id,
        instance_type: f.instance_type,
        availability_zone: f.availability_zone,
        region: f.region,
        private_dns_name: f.private_dns_name,
        primary_mac: f.mac,
        primary_interface: f.primary_interface,
        primary_ipv4: f.local_ipv4,
        vpc_cidrs: vpc,
        ..Default::default()
    })
}

pub(super) fn node_section(
    files: &[&CaptureFile],
    loc: &dyn Fn(&CaptureFile) -> String,
    problems: &mut Vec<String>,
) -> Option<Section<NodeIdentity>> {
    let mut acc: Acc<NodeIdentity> = Acc::new();
    for f in files {
        let text = clean_text(&f.data);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        let res = match f.kind {
            Kind::NodeFacts => node_from_facts(&text),
            Kind::InstanceId | Kind::AvailabilityZone | Kind::Region => match line {
                Some(v) => {
                    let mut n = NodeIdentity::default();
                    let v = Some(v.to_string());
                    match f.kind {
                        Kind::InstanceId => n.instance_id = v,
                        Kind::AvailabilityZone => n.availability_zone = v,
                        _ => n.region = v,
                    }
                    Ok(n)
                }
                None => Err(parse_error_message(&ParseError::Empty, f.kind)),
            },
            _ => continue,
        };
        match res {
            Ok(n) => acc.add_parsed(f, Parsed::new(n), merge_node, problems, &loc(f)),
            Err(m) => acc.fail(f, m, problems, &loc(f)),
        }
    }
    acc.finish()
}

fn merge_node(have: &mut NodeIdentity, new: NodeIdentity) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if have.$f.is_none() { have.$f = new.$f; } )* };
    }
    fill!(
        instance_id,
        instance_type,
        availability_zone,
        region,
        private_dns_name,
        primary_mac,
        primary_interface,
        primary_ipv4
    );
    if have.vpc_cidrs.is_empty() {
        have.vpc_cidrs = new.vpc_cidrs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_info_gives_env_and_version() {
        let (env, v) = container_info(
            r#"{"Image":"602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.21.2-eksbuild.1",
                "Spec":{"process":{"env":["PATH=/usr/bin","AWS_VPC_K8S_CNI_EXTERNALSNAT=true","WARM_ENI_TARGET=1"]}}}"#,
        )
        .unwrap_or_default();
        assert_eq!(v.as_deref(), Some("v1.21.2"));
        assert_eq!(
            env.get("AWS_VPC_K8S_CNI_EXTERNALSNAT").map(String::as_str),
            Some("true")
        );
        assert!(!env.contains_key("PATH"));
        assert!(container_info("{}").is_err());
    }

    #[test]
    fn finds_uncommitted_tables() {
        assert!(uncommitted_tables("*nat\n-A X\nCOMMIT\n").is_empty());
        assert_eq!(
            uncommitted_tables("*nat\n-A X\nCOMMIT\n*mangle\n-A Y\n"),
            vec!["mangle"]
        );
        assert_eq!(uncommitted_tables("*nat\n*filter\nCOMMIT\n"), vec!["nat"]);
    }

    #[test]
    fn node_facts_accept_imds_names_and_text_cidrs() {
        let n = node_from_facts(
            r#"{"instance-id":"i-1","local-ipv4":"10.0.0.5","vpc-ipv4-cidr-blocks":"10.0.0.0/16\n100.64.0.0/16"}"#,
        )
        .unwrap_or_default();
        assert_eq!(n.instance_id.as_deref(), Some("i-1"));
        assert_eq!(n.vpc_cidrs.len(), 2);
        assert!(node_from_facts(r#"{"vpc-ipv4-cidr-blocks":["nope"]}"#).is_err());
    }
}
