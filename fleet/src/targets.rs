//! Target selection: hosts files, ssh_config Host blocks, EC2 instances, name filters.
//!
//! Nothing read here ever reaches a shell: hosts and users are used as SSH connection
//! parameters only, and every remote command is built from fixed argv (see [`crate::quote`]).

use std::path::{Path, PathBuf};

use regex::Regex;

/// Where a `-J`/ProxyJump bastion is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    /// From the jump host's own ssh_config entry (when it was named by an alias there).
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: Option<PathBuf>,
}

impl std::fmt::Display for JumpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", host_port(&self.host, self.port))
    }
}

/// One node to collect from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Display name: private DNS name, ssh_config alias or host.
    pub name: String,
    /// Address to connect to (host name or IP; SSH only).
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    /// Identity files from ssh_config (tried before the global ones).
    pub identity_files: Vec<PathBuf>,
    /// Per-target bastion (ssh_config ProxyJump); `-J` overrides it.
    pub proxy_jump: Option<JumpSpec>,
    /// Per-target known_hosts (ssh_config UserKnownHostsFile).
    pub known_hosts: Option<PathBuf>,
    /// EC2 instance id, when known (EC2 discovery, `--instance-ids`).
    pub instance_id: Option<String>,
}

impl Target {
    /// `host[:port]` as connected to (IPv6 in brackets when a port is shown).
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, bracketing IPv6 literals; the port is omitted when it is 22.
pub fn host_port(host: &str, port: u16) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == 22 {
        h
    } else {
        format!("{h}:{port}")
    }
}

/// Why a target list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{file}:{line}: {message}: `{text}`")]
    BadLine {
        file: String,
        line: usize,
        text: String,
        message: String,
    },
    #[error("invalid target `{spec}`: {message}")]
    BadSpec { spec: String, message: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid regex `{pattern}` for {option}: {source}")]
    BadRegex {
        option: &'static str,
        pattern: String,
        source: regex::Error,
    },
}

/// Parses `[user@]host[:port]`, `[user@][v6addr]:port` or a bare IPv6 address.
pub fn parse_host_spec(spec: &str) -> Result<(Option<String>, String, Option<u16>), TargetError> {
    let bad = |m: &str| TargetError::BadSpec {
        spec: spec.to_string(),
        message: m.to_string(),
    };
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => {
            if u.is_empty() {
                return Err(bad("empty user before '@'"));
            }
            (Some(u.to_string()), r)
        }
        None => (None, s),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':port' after ']'"))?
                    .parse::<u16>()
                    .map_err(|_| bad("port is not a number 1-65535"))?,
            ),
        };
        (h.to_string(), port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (rest.to_string(), None)
    } else if let Some((h, p)) = rest.split_once(':') {
        let port = p
            .parse::<u16>()
            .map_err(|_| bad("port is not a number 1-65535"))?;
        (h.to_string(), Some(port))
    } else {
        (rest.to_string(), None)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if port == Some(0) {
        return Err(bad("port 0"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("host contains whitespace or control characters"));
    }
    if let Some(u) = &user {
        if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("user contains whitespace or control characters"));
        }
    }
    Ok((user, host, port))
}

/// Parses a `-J` value: `[user@]host[:port]` (only one hop is supported).
pub fn parse_jump(spec: &str) -> Result<JumpSpec, TargetError> {
    if spec.contains(',') {
        return Err(TargetError::BadSpec {
            spec: spec.to_string(),
            message: "only one jump host is supported".to_string(),
        });
    }
    let (user, host, port) = parse_host_spec(spec)?;
    Ok(JumpSpec {
        user,
        host,
        port: port.unwrap_or(22),
        identity_files: Vec::new(),
        known_hosts: None,
    })
}

/// Parses a hosts file: one `[user@]host[:port]` per line, `#` comments, blank lines ignored.
pub fn parse_hosts(text: &str, file: &str) -> Result<Vec<Target>, TargetError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        if line.split_whitespace().count() > 1 {
            return Err(TargetError::BadLine {
                file: file.to_string(),
                line: i + 1,
                text: raw.to_string(),
                message: "expected one [user@]host[:port] per line".to_string(),
            });
        }
        let (user, host, port) = parse_host_spec(line).map_err(|e| TargetError::BadLine {
            file: file.to_string(),
            line: i + 1,
            text: raw.to_string(),
            message: e.to_string(),
        })?;
        out.push(Target {
            name: host.clone(),
            host,
            port: port.unwrap_or(22),
            user,
            ..Default::default()
        });
    }
    Ok(out)
}

pub fn read_hosts_file(path: &Path) -> Result<Vec<Target>, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_hosts(&text, &path.display().to_string())
}

/// Compiles an `--only`/`--exclude` regex.
pub fn compile_filter(option: &'static str, pattern: &str) -> Result<Regex, TargetError> {
    Regex::new(pattern).map_err(|source| TargetError::BadRegex {
        option,
        pattern: pattern.to_string(),
        source,
    })
}

/// Keeps targets whose name matches `only` (if given) and not `exclude`; drops duplicates
/// (same user, address and instance id), keeping the first.
pub fn filter_targets(
    targets: Vec<Target>,
    only: Option<&Regex>,
    exclude: Option<&Regex>,
) -> Vec<Target> {
    let mut seen = std::collections::HashSet::new();
    targets
        .into_iter()
        .filter(|t| only.is_none_or(|r| r.is_match(&t.name)))
        .filter(|t| !exclude.is_some_and(|r| r.is_match(&t.name)))
        .filter(|t| {
            seen.insert((
                t.user.clone(),
                t.host.clone(),
                t.port,
                t.instance_id.clone(),
            ))
        })
        .collect()
}

/// OpenSSH-style pattern match: `*` any run, `?` one character. Case-insensitive like ssh.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A pattern list as on a `Host` line: matches when some positive pattern matches and no
/// negated (`!`) pattern does.
pub fn pattern_list_matches(patterns: &[String], name: &str) -> bool {
    let mut positive = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob_match(neg, name) {
                return false;
            }
        } else if glob_match(p, name) {
            positive = true;
        }
    }
    positive
}

/// The parts of an ssh_config this tool honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    blocks: Vec<HostBlock>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HostBlock {
    patterns: Vec<String>,
    options: Vec<(String, String)>,
}

/// The settings ssh_config gives one alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostParams {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    pub known_hosts: Option<PathBuf>,
}

fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(p)
}

/// Splits an ssh_config line into keyword and arguments (`Key value`, `Key=value`, quotes).
fn split_config_line(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, rest) = match line.find(|c: char| c.is_whitespace() || c == '=') {
        Some(p) => (&line[..p], line[p..].trim_start()),
        None => (line, ""),
    };
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                any = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(cur);
    }
    Some((key.to_ascii_lowercase(), args))
}

impl SshConfig {
    /// Parses the `Host` blocks; options before the first `Host` apply to every host.
    /// `Match` blocks are not supported and are skipped up to the next `Host`.
    pub fn parse(text: &str) -> SshConfig {
        let mut blocks = vec![HostBlock {
            patterns: vec!["*".to_string()],
            options: Vec::new(),
        }];
        let mut skipping = false;
        for line in text.lines() {
            let Some((key, args)) = split_config_line(line) else {
                continue;
            };
            match key.as_str() {
                "host" => {
                    skipping = false;
                    blocks.push(HostBlock {
                        patterns: args,
                        options: Vec::new(),
                    });
                }
                "match" => skipping = true,
                _ if skipping => {}
                _ => {
                    if let Some(b) = blocks.last_mut() {
                        b.options.push((key, args.join(" ")));
                    }
                }
            }
        }
        SshConfig { blocks }
    }

    pub fn read(path: &Path) -> Result<SshConfig, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SshConfig::parse(&text))
    }

    /// Concrete aliases (patterns without wildcards or negation) named on `Host` lines.
    pub fn aliases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for b in &self.blocks[1..] {
            for p in &b.patterns {
                if !p.contains(['*', '?', '!']) && !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Resolves an alias like ssh does: for each option the first value obtained wins,
    /// IdentityFile accumulates.
    pub fn resolve(&self, alias: &str) -> HostParams {
        let mut hp = HostParams::default();
        for b in &self.blocks {
            if !pattern_list_matches(&b.patterns, alias) {
                continue;
            }
            for (k, v) in &b.options {
                match k.as_str() {
                    "hostname" if hp.hostname.is_none() => {
                        hp.hostname = Some(v.replace("%h", alias));
                    }
                    "user" if hp.user.is_none() => hp.user = Some(v.clone()),
                    "port" if hp.port.is_none() => hp.port = v.parse().ok(),
                    "identityfile" => {
                        let p = expand_tilde(v);
                        if !hp.identity_files.contains(&p) {
                            hp.identity_files.push(p);
                        }
                    }
                    "proxyjump" if hp.proxy_jump.is_none() => hp.proxy_jump = Some(v.clone()),
                    "userknownhostsfile" if hp.known_hosts.is_none() => {
                        hp.known_hosts = v.split_whitespace().next().map(expand_tilde);
                    }
                    _ => {}
                }
            }
        }
        hp
    }

    /// Resolves a ProxyJump host through this config, like ssh does for `-J alias`:
    /// HostName, User, Port, IdentityFile and UserKnownHostsFile of its own Host entry.
    pub fn resolve_jump(&self, j: JumpSpec) -> JumpSpec {
        let hp = self.resolve(&j.host);
        JumpSpec {
            user: j.user.or(hp.user),
            host: hp.hostname.unwrap_or(j.host),
            port: if j.port != 22 {
                j.port
            } else {
                hp.port.unwrap_or(22)
            },
            identity_files: hp.identity_files,
            known_hosts: hp.known_hosts,
        }
    }

    /// Targets for `--host PATTERN` values: the aliases on `Host` lines matching a pattern
    /// (with `*`, `?`, `!`), plus any pattern without wildcards taken as an alias itself.
    pub fn targets(&self, host_patterns: &[String]) -> Result<Vec<Target>, TargetError> {
        let mut names: Vec<String> = Vec::new();
        for hp in host_patterns {
            let pats: Vec<String> = hp
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for alias in self.aliases() {
                if pattern_list_matches(&pats, &alias) && !names.contains(&alias) {
                    names.push(alias);
                }
            }
            for p in &pats {
                if !p.contains(['*', '?', '!']) && !names.contains(p) {
                    names.push(p.clone());
                }
            }
        }
        let mut out = Vec::new();
        for alias in names {
            let hp = self.resolve(&alias);
            let jump = match hp.proxy_jump.as_deref() {
                None | Some("none") => None,
                Some(j) => Some(self.resolve_jump(parse_jump(j)?)),
            };
            out.push(Target {
                name: alias.clone(),
                host: hp.hostname.unwrap_or_else(|| alias.clone()),
                port: hp.port.unwrap_or(22),
                user: hp.user,
                identity_files: hp.identity_files,
                proxy_jump: jump,
                known_hosts: hp.known_hosts,
                instance_id: None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn host_specs() {
        assert_eq!(
            parse_host_spec("ec2-user@10.0.0.1:2222").unwrap(),
            (Some("ec2-user".into()), "10.0.0.1".into(), Some(2222))
        );
        assert_eq!(
            parse_host_spec("[::1]:22").unwrap(),
            (None, "::1".into(), Some(22))
        );
        assert_eq!(
            parse_host_spec("root@[fd00::5]").unwrap(),
            (Some("root".into()), "fd00::5".into(), None)
        );
        assert_eq!(
            parse_host_spec("fd00::5").unwrap(),
            (None, "fd00::5".into(), None)
        );
        assert!(parse_host_spec("host:99999").is_err());
        assert!(parse_host_spec("host:0").is_err());
        assert!(parse_host_spec("@host").is_err());
        assert!(parse_host_spec("[::1").is_err());
        assert!(parse_host_spec("[::1]x").is_err());
    }

    #[test]
    fn hosts_file() {
        let text = "# fleet\n\nip-10-0-1-5.ec2.internal\nec2-user@10.0.0.7:2200 # bastion-side\n  [fd00::1]:22\n";
        let t = parse_hosts(text, "hosts").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].name, "ip-10-0-1-5.ec2.internal");
        assert_eq!(t[0].port, 22);
        assert_eq!(t[1].user.as_deref(), Some("ec2-user"));
        assert_eq!(t[1].port, 2200);
        assert_eq!(t[2].host, "fd00::1");
        assert_eq!(t[2].address(), "[fd00::1]");
        let err = parse_hosts("a\nb c\n", "h").unwrap_err().to_string();
        assert!(err.contains("h:2"), "{err}");
    }

    #[test]
    fn globbing() {
        assert!(glob_match("ip-10-*", "ip-10-0-1-5"));
        assert!(glob_match("node?", "node1"));
        assert!(!glob_match("node?", "node12"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        let pats = vec!["node*".to_string(), "!node3".to_string()];
        assert!(pattern_list_matches(&pats, "node1"));
        assert!(!pattern_list_matches(&pats, "node3"));
        assert!(!pattern_list_matches(&["!x".to_string()], "y"));
    }

    #[test]
    fn ssh_config_resolution() {
        let cfg = SshConfig::parse(
            "User default-user\n\
             Host bastion\n  HostName 10.9.0.1\n  User jump\n\
             Host node-a node-b\n  HostName %h.internal\n  Port 2222\n  IdentityFile ~/.ssh/fleet\n\
             Host node-* !node-c\n  ProxyJump jump@10.9.0.1:22\n  UserKnownHostsFile /tmp/kh extra\n\
             Host node-c\n  HostName=10.0.0.3\n  User \"ec2 user\"\n\
             Match host x\n  User ignored\n\
             Host *\n  IdentityFile /keys/all\n  User late\n",
        );
        assert_eq!(cfg.aliases(), vec!["bastion", "node-a", "node-b", "node-c"]);
        let a = cfg.resolve("node-a");
        assert_eq!(a.hostname.as_deref(), Some("node-a.internal"));
        assert_eq!(a.port, Some(2222));
        assert_eq!(a.user.as_deref(), Some("default-user"));
        assert_eq!(a.proxy_jump.as_deref(), Some("jump@10.9.0.1:22"));
        assert_eq!(a.known_hosts, Some(PathBuf::from("/tmp/kh")));
        assert_eq!(a.identity_files.len(), 2);
        let c = cfg.resolve("node-c");
        assert_eq!(c.proxy_jump, None);
        assert_eq!(c.hostname.as_deref(), Some("10.0.0.3"));

        let t = cfg.targets(&["node-*".to_string()]).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["node-a", "node-b", "node-c"]);
        assert_eq!(
            t[0].proxy_jump.as_ref().unwrap().user.as_deref(),
            Some("jump")
        );
        // A ProxyJump naming an alias is resolved through the config.
        let cfg2 = SshConfig::parse(
            "Host bastion\n  HostName 10.9.0.1\n  User jump\n  Port 2200\n  IdentityFile /k/b\n  UserKnownHostsFile /kh/b\n\
             Host w\n  ProxyJump bastion\n",
        );
        let j = cfg2.targets(&["w".to_string()]).unwrap()[0]
            .proxy_jump
            .clone()
            .unwrap();
        assert_eq!(
            (j.host.as_str(), j.port, j.user.as_deref()),
            ("10.9.0.1", 2200, Some("jump"))
        );
        assert_eq!(j.identity_files, vec![PathBuf::from("/k/b")]);
        assert_eq!(j.known_hosts, Some(PathBuf::from("/kh/b")));
        let t = cfg.targets(&["node-*,!node-b".to_string()]).unwrap();
        assert_eq!(t.len(), 2);
        let t = cfg.targets(&["unlisted".to_string()]).unwrap();
        assert_eq!(t[0].host, "unlisted");
        assert_eq!(t[0].user.as_deref(), Some("default-user"));
    }

    #[test]
    fn name_filters() {
        let ts: Vec<Target> = ["a1", "a2", "b1", "a1"]
            .iter()
            .map(|n| Target {
                name: n.to_string(),
                host: n.to_string(),
                port: 22,
                ..Default::default()
            })
            .collect();
        let only = compile_filter("--only", "^a").unwrap();
        let ex = compile_filter("--exclude", "2$").unwrap();
        let out = filter_targets(ts, Some(&only), Some(&ex));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "a1");
        assert!(compile_filter("--only", "(").is_err());
    }
}
