//! One builder per snapshot section from captured files: how several files of one kind
//! merge, what makes a section `partial` or `failed` (through [`SectionBuilder`]), and which
//! file problems are input problems.

use model::{
    Backend, CniConfig, CniLogs, ConntrackSection, IptablesBackendDump, IptablesSection, Link,
    NodeIdentity, Section, Sysctls,
};
use parsers::{ParseError, Parsed};

use crate::status::SectionBuilder;
use crate::{clean_text, CaptureFile, Kind, Problem};

/// Most bytes one (decompressed) log file may have.
pub const MAX_LOG_BYTES: usize = 32 * 1024 * 1024;

/// Where problems go while building one snapshot.
pub struct Ctx<'a> {
    /// The input label (`/path/to/dir`, `bundle.tar.gz`): problems name `<label>/<file>`.
    pub label: &'a str,
    pub problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    fn loc(&self, f: &CaptureFile) -> String {
        format!("{}/{}", self.label, f.name)
    }

    fn add<T>(
        &mut self,
        acc: &mut SectionBuilder<T>,
        f: &CaptureFile,
        p: Parsed<T>,
        merge: impl FnOnce(&mut T, T),
    ) {
        let loc = self.loc(f);
        acc.add_parsed(&f.name, p, merge, &loc, self.problems);
    }

    fn fail<T>(&mut self, acc: &mut SectionBuilder<T>, f: &CaptureFile, message: String) {
        let loc = self.loc(f);
        acc.fail(&f.name, message, &loc, self.problems);
    }
}

fn parse_error_message(e: &ParseError, kind: Kind) -> String {
    match e {
        ParseError::Empty => format!("empty file (expected {})", kind.expected_output()),
        other => other.to_string(),
    }
}

/// A section from files parsed by one text parser whose results concatenate.
fn concatenated<T>(
    files: &[&CaptureFile],
    ctx: &mut Ctx<'_>,
    parse: impl Fn(&str) -> Result<Parsed<T>, ParseError>,
) -> Option<Section<T>>
where
    T: Extendable,
{
    let mut acc = SectionBuilder::new();
    for f in files {
        let text = clean_text(&f.data);
        match parse(&text) {
            Ok(p) => ctx.add(&mut acc, f, p, T::extend_with),
            Err(e) => ctx.fail(&mut acc, f, parse_error_message(&e, f.kind)),
        }
    }
    acc.finish()
}

/// `ip rule` captures.
/// `ip -6 rule` captures (eks-log-collector's `networking/ip6rule.txt`) are parsed as IPv6.
pub fn rules(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<Vec<model::IpRule>>> {
    let mut acc = SectionBuilder::new();
    for f in files {
        let text = clean_text(&f.data);
        let family = if f.kind == Kind::IpRule6 {
            model::Family::Inet6
        } else {
            model::Family::Inet
        };
        match parsers::ip::parse_rule_family(&text, family) {
            Ok(p) => ctx.add(&mut acc, f, p, <Vec<model::IpRule>>::extend_with),
            Err(e) => ctx.fail(&mut acc, f, parse_error_message(&e, f.kind)),
        }
    }
    acc.finish()
}

/// `ip neigh` captures.
pub fn neighbours(
    files: &[&CaptureFile],
    ctx: &mut Ctx<'_>,
) -> Option<Section<Vec<model::Neighbour>>> {
    concatenated(files, ctx, parsers::ip::parse_neigh)
}

/// `sysctl -a` captures.
pub fn sysctls(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<Sysctls>> {
    concatenated(files, ctx, parsers::sysctl::parse)
}

/// The links and addresses sections (either may be absent).
pub type LinksAndAddresses = (
    Option<Section<Vec<Link>>>,
    Option<Section<Vec<model::Address>>>,
);

/// Links and addresses: `ip link` for links; `ip addr` (or, without it, `ifconfig`) for
/// addresses and for links when there is no `ip link`.
pub fn links_and_addresses(
    link_files: &[&CaptureFile],
    addr_files: &[&CaptureFile],
    ctx: &mut Ctx<'_>,
) -> LinksAndAddresses {
    let ip_addr: Vec<&CaptureFile> = addr_files
        .iter()
        .copied()
        .filter(|f| f.kind == Kind::IpAddr)
        .collect();
    let pair = if ip_addr.is_empty() {
        let ifconfig: Vec<&CaptureFile> = addr_files
            .iter()
            .copied()
            .filter(|f| f.kind == Kind::Ifconfig)
            .collect();
        concatenated(&ifconfig, ctx, parsers::ifconfig::parse)
    } else {
        concatenated(&ip_addr, ctx, parsers::ip::parse_addr)
    };
    let links = concatenated(link_files, ctx, parsers::ip::parse_link);
    match pair {
        Some(sec) => {
            let addresses = sec.clone().map(|(_, a)| a);
            let links = links.or_else(|| Some(sec.map(|(l, _)| l)));
            (links, Some(addresses))
        }
        None => (links, None),
    }
}

/// Parsed values that several files can contribute to.
pub trait Extendable {
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
pub fn routes(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<Vec<model::Route>>> {
    let mut acc = SectionBuilder::new();
    for f in files {
        let table = match f.kind {
            Kind::IpRouteTable(t) => t,
            _ => model::net::RT_TABLE_MAIN,
        };
        match parsers::ip::parse_route_in_table(&clean_text(&f.data), table) {
            Ok(p) => ctx.add(&mut acc, f, p, Vec::extend_with),
            Err(e) => ctx.fail(&mut acc, f, parse_error_message(&e, f.kind)),
        }
    }
    acc.finish()
}

/// `iptables-save` files (any backend), per-table `-S` captures and `-L -n -v` listings.
/// A full save wins; a per-table capture of a table the save lacks is added; the counters
/// of a listing are merged into a save taken without `-c` (the eks-log-collector runs
/// `iptables-save` plain and `iptables -nvL -t nat/mangle` beside it).
pub fn iptables(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<IptablesSection>> {
    let mut acc: SectionBuilder<Vec<IptablesBackendDump>> = SectionBuilder::new();
    // Full saves first so that a per-table capture of the same table is only a fallback.
    let mut ordered: Vec<&&CaptureFile> = files.iter().filter(|f| !is_ip6tables(f)).collect();
    ordered.sort_by_key(|f| !matches!(f.kind, Kind::IptablesSave(_)));
    let mut listings: Vec<(&CaptureFile, model::IptTable)> = Vec::new();
    let has_full_save = ordered
        .iter()
        .any(|f| matches!(f.kind, Kind::IptablesSave(_)));
    for f in ordered {
        let mut text = clean_text(&f.data);
        if matches!(f.kind, Kind::IptablesList(_)) {
            // The ELC appends "=======" and "Total Number of Rules: N" to its `iptables
            // -nvL` listings.
            text = text
                .lines()
                .filter(|l| {
                    let t = l.trim();
                    let trailer = t.starts_with("Total Number of Rules")
                        || (t.len() >= 3 && t.bytes().all(|b| b == b'='));
                    !trailer
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        let (table, hint) = match f.kind {
            Kind::IptablesSave(b) => ("filter", b),
            Kind::IptablesSpec(t) | Kind::IptablesList(t) => (t, Backend::Unknown),
            _ => continue,
        };
        match parsers::iptables::parse_any(&text, table) {
            Ok(mut p) => {
                if matches!(f.kind, Kind::IptablesSave(_)) {
                    let cut: Vec<&str> = p
                        .warnings
                        .iter()
                        .filter(|w| w.is_truncation())
                        .map(|w| w.text.trim_start_matches('*'))
                        .collect();
                    if !cut.is_empty() {
                        let msg = format!(
                            "truncated: table(s) {} have no COMMIT line (expected complete iptables-save output)",
                            cut.join(", ")
                        );
                        ctx.problems.push(Problem {
                            location: ctx.loc(f),
                            message: msg.clone(),
                        });
                        acc.note_truncation(&f.name, msg);
                    }
                }
                for d in &mut p.value {
                    if d.backend == Backend::Unknown {
                        d.backend = hint;
                    }
                    if d.command.is_empty() {
                        d.command = format!("file:{}", f.name);
                    }
                }
                // A pasted command line piping into grep/head/… (`iptables -t nat -nvL | grep
                // AWS`): what it hides is not missing. Only for the file whose tables the
                // section uses (a per-table listing beside a full save only lends counters).
                if matches!(f.kind, Kind::IptablesSave(_)) || !has_full_save {
                    if let Some((no, cmd)) = parsers::ip::paste_filter(&text) {
                        p.warnings.push(parsers::ParseWarning::new(
                            no,
                            &cmd,
                            format!("filtered paste: `{cmd}` shows only matching rules; rules it hides are not missing"),
                        ));
                    }
                }
                if let Kind::IptablesList(t) = f.kind {
                    for d in &p.value {
                        if let Some(tab) = d.table(t) {
                            listings.push((f, tab.clone()));
                        }
                    }
                }
                ctx.add(&mut acc, f, p, merge_dumps);
            }
            Err(e) => ctx.fail(&mut acc, f, parse_error_message(&e, f.kind)),
        }
    }
    let full_save = has_full_save;
    let mut sec = acc.finish()?.map(|backends| IptablesSection {
        backends,
        default_backend: None,
    });
    if full_save {
        if let Some(d) = sec.data.as_mut() {
            for (f, listing) in &listings {
                let merged = merge_counters(d, listing);
                if merged > 0 {
                    sec.sources.push(format!(
                        "counters of {} rule(s) of table {} from file:{}",
                        merged, listing.name, f.name
                    ));
                }
            }
        }
    }
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
    Some(sec)
}

/// An `ip6tables-save` file: named so, or an `iptables-save`-named file whose every dump
/// header says `# Generated by ip6tables-save` (a paste of the IPv6 rules).
fn is_ip6tables(f: &CaptureFile) -> bool {
    match f.kind {
        Kind::Ip6tablesSave(_) => true,
        Kind::IptablesSave(_) => {
            let text = clean_text(&f.data);
            let mut headers = text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("# Generated by "))
                .peekable();
            headers.peek().is_some()
                && headers.all(|l| {
                    l.trim_start_matches("# Generated by ")
                        .starts_with("ip6tables")
                })
        }
        _ => false,
    }
}

/// The IPv6 rules (`ip6tables-save`): parsed like an `iptables-save`, kept apart from the
/// IPv4 section so that no IPv4 expectation is checked against them.
pub fn ip6tables(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<IptablesSection>> {
    let mut acc: SectionBuilder<Vec<IptablesBackendDump>> = SectionBuilder::new();
    for f in files.iter().filter(|f| is_ip6tables(f)) {
        let text = clean_text(&f.data);
        // A node without IPv6 netfilter tables loaded dumps nothing (the ELC keeps the empty
        // file): no rules, not a broken input.
        if text.trim().is_empty() {
            continue;
        }
        let hint = match f.kind {
            Kind::Ip6tablesSave(b) | Kind::IptablesSave(b) => b,
            _ => Backend::Unknown,
        };
        match parsers::iptables::parse_any(&text, "filter") {
            Ok(mut p) => {
                for d in &mut p.value {
                    if d.backend == Backend::Unknown {
                        d.backend = hint;
                    }
                    if d.command.is_empty() {
                        d.command = format!("file:{}", f.name);
                    }
                }
                ctx.add(&mut acc, f, p, merge_dumps);
            }
            Err(e) => ctx.fail(
                &mut acc,
                f,
                parse_error_message(&e, Kind::Ip6tablesSave(hint)),
            ),
        }
    }
    Some(acc.finish()?.map(|backends| IptablesSection {
        backends,
        default_backend: None,
    }))
}

/// Copies packet/byte counters from an `iptables -nvL` listing into the same table of a
/// save taken without `-c`: chain by chain, rule by rule in order, only where the chain has
/// the same number of rules with the same targets (otherwise the two were taken at
/// different times and the counters cannot be attributed). Returns the rules updated.
fn merge_counters(section: &mut IptablesSection, listing: &model::IptTable) -> usize {
    let mut merged = 0;
    for dump in &mut section.backends {
        if dump.has_counters {
            continue;
        }
        let Some(table) = dump.tables.iter_mut().find(|t| t.name == listing.name) else {
            continue;
        };
        let mut any = false;
        for chain in &mut table.chains {
            let Some(lc) = listing.chain(&chain.name) else {
                continue;
            };
            let same = lc.rules.len() == chain.rules.len()
                && lc
                    .rules
                    .iter()
                    .zip(&chain.rules)
                    .all(|(a, b)| a.target == b.target);
            if !same {
                continue;
            }
            if chain.packets.is_none() {
                chain.packets = lc.packets;
                chain.bytes = lc.bytes;
            }
            for (r, l) in chain.rules.iter_mut().zip(&lc.rules) {
                if r.packets.is_none() && l.packets.is_some() {
                    r.packets = l.packets;
                    r.bytes = l.bytes;
                    merged += 1;
                    any = true;
                }
            }
        }
        if any {
            dump.has_counters = true;
        }
    }
    merged
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

/// The eks-log-collector frames each command of `networking/conntrack.txt` with a line
/// `*** Output of conntrack -S *** `; it is not data.
fn is_collector_header(line: &str) -> bool {
    let l = line.trim();
    l.starts_with("*** Output of ") && l.ends_with("***")
}

/// `conntrack -L`, `conntrack -S`, or both in one file (the ELC's `conntrack.txt`).
pub fn conntrack(
    files: &[&CaptureFile],
    ctx: &mut Ctx<'_>,
    sample: usize,
) -> Option<Section<ConntrackSection>> {
    let mut acc: SectionBuilder<ConntrackSection> = SectionBuilder::new();
    for f in files {
        let mut text = clean_text(&f.data);
        if text.lines().any(is_collector_header) {
            text = text
                .lines()
                .filter(|l| !is_collector_header(l))
                .collect::<Vec<_>>()
                .join("\n");
        }
        if text.trim().is_empty() {
            ctx.fail(&mut acc, f, parse_error_message(&ParseError::Empty, f.kind));
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
                    ctx.fail(&mut acc, f, parse_error_message(&e, f.kind));
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
            ctx.fail(
                &mut acc,
                f,
                format!("no conntrack entries or statistics recognised ({first})"),
            );
            continue;
        }
        ctx.add(&mut acc, f, p, merge_conntrack);
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

/// The aws-node env (env file, container info, introspection), `/v1/enis`, the ENIConfig
/// name, the conflist and the version from ipamd's metrics.
pub fn cni(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<CniConfig>> {
    let mut acc: SectionBuilder<CniConfig> = SectionBuilder::new();
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
                    Err(e) => Err(format!("{e} (expected {})", f.kind.expected_output())),
                }
            }
            Kind::Enis => match parsers::ipamd::parse_enis(&text) {
                Ok(enis) => {
                    cfg.ipamd_enis = Some(enis);
                    Ok(Parsed::new(()))
                }
                Err(e) => Err(format!("{e} (expected {})", f.kind.expected_output())),
            },
            Kind::IpamdMetrics => match build_info_version(&text) {
                // Only `awscni_build_info{version=…}` maps onto the snapshot; a metrics file
                // without it contributes nothing (and is not a source).
                Some(v) => {
                    cfg.version = Some(v);
                    Ok(Parsed::new(()))
                }
                None => continue,
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
                ctx.add(&mut acc, f, p, merge_cni);
            }
            Err(m) => ctx.fail(&mut acc, f, m),
        }
    }
    acc.finish()
}

/// `awscni_build_info{git_version="…",version="v1.19.2"} 1` in ipamd's Prometheus text.
fn build_info_version(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("awscni_build_info{"))?;
    let labels = line.split_once('{')?.1.split_once('}')?.0;
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == "version")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
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

/// `/var/log/aws-routed-eni/*` files (plain or .gz), oldest first, newest events kept.
pub fn logs(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<CniLogs>> {
    let mut acc: SectionBuilder<CniLogs> = SectionBuilder::new();
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
        ctx.add(&mut acc, f, p, merge_logs);
    }
    let mut sec = acc.finish()?;
    if let Some(d) = sec.data.as_mut() {
        d.keep_newest(model::cni::MAX_LOG_EVENTS);
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

/// Node facts: `imds.json`/`node.json` and the ELC's one-line `system/*.txt` files.
pub fn node(files: &[&CaptureFile], ctx: &mut Ctx<'_>) -> Option<Section<NodeIdentity>> {
    let mut acc: SectionBuilder<NodeIdentity> = SectionBuilder::new();
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
            Ok(n) => ctx.add(&mut acc, f, Parsed::new(n), merge_node),
            Err(m) => ctx.fail(&mut acc, f, m),
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
    fn build_info_gives_the_version() {
        let t = "# HELP awscni_build_info\nawscni_build_info{git_version=\"abc\",version=\"v1.19.2\"} 1\n";
        assert_eq!(build_info_version(t).as_deref(), Some("v1.19.2"));
        assert_eq!(build_info_version("awscni_total_ip_addresses 3\n"), None);
    }

    #[test]
    fn collector_headers_are_not_data() {
        assert!(is_collector_header("*** Output of conntrack -S *** "));
        assert!(!is_collector_header("cpu=0 found=1"));
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
