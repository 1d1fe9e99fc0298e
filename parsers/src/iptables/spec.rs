//! `iptables [-t T] -S [-v]`: `-P CHAIN POLICY [-c P B]`, `-N CHAIN`, `-A …`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use model::iptables::{IptChain, IptTable};

use super::rule::{parse_rule_with, Tok};
use crate::ip::common::{is_paste_noise, strip_blockquote};
use crate::util::{ParseWarning, Parsed};

/// Table name from a pasted command line (`$ sudo iptables -t nat -S`, `# iptables --table=nat -L`,
/// `$ ssh -t host sudo iptables -t mangle -S`: only words after the `iptables` one count).
pub(crate) fn table_from_command(line: &str) -> Option<&str> {
    if !line.contains("iptables") {
        return None;
    }
    let mut words = line
        .split_whitespace()
        .skip_while(|w| !w.contains("iptables"));
    while let Some(w) = words.next() {
        if w == "-t" || w == "--table" {
            return words.next();
        }
        if let Some(t) = w.strip_prefix("--table=") {
            return Some(t);
        }
        if let Some(t) = w.strip_prefix("-t") {
            if !t.is_empty() && !t.starts_with('-') && w.len() > 2 && !w.starts_with("--") {
                return Some(t);
            }
        }
    }
    None
}

/// A command line (`$ iptables -S`), as opposed to rule output.
pub(crate) fn is_command_line(line: &str) -> bool {
    let l = line.trim_start_matches(['$', '#', '>', ' ']);
    let l = l.strip_prefix("sudo ").unwrap_or(l);
    l.starts_with("iptables") || l.starts_with("ip6tables")
}

/// A pasted line, trimmed and without markdown block-quote markers (`> -P INPUT ACCEPT`,
/// `> > -A …`, a bare `>`): no iptables output line starts with `>`.
pub(crate) fn paste_line(raw: &str) -> &str {
    strip_blockquote(raw.trim())
}

/// Paste chatter around the output: command lines, shell prompts (`$ ssh … sudo iptables -S`,
/// `sh-4.2# iptables-save | grep random`, `[root@ip-10-0-1-5 ~]# …`, `kube11:~# …`,
/// `systemd-node-1:/ # …`), loop separators (`>> node 1.2.3.4 <<`) and markdown fences.
pub(crate) fn is_chatter(line: &str) -> bool {
    is_command_line(line) || is_paste_noise(line)
}

/// The table a paste's rules must belong to, read from the chains and targets of a dump that
/// lost its `*table` header (a grep'd `iptables-save`), or `None` when that is not clear.
///
/// nat: the VPC CNI's `AWS-SNAT-CHAIN-*` / `AWS-CONNMARK-CHAIN-*`, kube-proxy's nat-only
/// chains, or an `SNAT`/`DNAT`/`MASQUERADE`/`REDIRECT`/`NETMAP` target. mangle: a `CONNMARK
/// --set-xmark`/`--set-mark` in `PREROUTING` (the VPC CNI's primary-ENI mark), `TPROXY`,
/// `CHECKSUM`. Evidence for both, or a chain/target the table cannot have (`FORWARD`, `DROP`,
/// `REJECT` in nat), gives `None`.
pub(crate) fn infer_table(chains: &[IptChain]) -> Option<&'static str> {
    fn nat_chain(n: &str) -> bool {
        [
            "AWS-SNAT-CHAIN",
            "AWS-CONNMARK-CHAIN",
            "KUBE-SVC-",
            "KUBE-SEP-",
            "KUBE-EXT-",
            "KUBE-SVL-",
            "KUBE-XLB-",
            "KUBE-FW-",
        ]
        .iter()
        .any(|p| n.starts_with(p))
            || matches!(n, "KUBE-MARK-MASQ" | "KUBE-POSTROUTING" | "KUBE-MARK-DROP")
    }
    let (mut nat, mut mangle, mut not_nat) = (false, false, false);
    for c in chains {
        nat |= nat_chain(&c.name);
        not_nat |= c.name == "FORWARD";
        for r in &c.rules {
            let target = r.target.as_deref().unwrap_or("");
            match target {
                "SNAT" | "DNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP" => nat = true,
                "DROP" | "REJECT" => not_nat = true,
                "TPROXY" | "CHECKSUM" => mangle = true,
                "CONNMARK" if c.name == "PREROUTING" => {
                    mangle |= r
                        .target_options
                        .iter()
                        .any(|o| matches!(o.option.as_str(), "--set-xmark" | "--set-mark"));
                }
                t => nat |= nat_chain(t),
            }
        }
    }
    match (nat && !not_nat, mangle) {
        (true, false) => Some("nat"),
        (false, true) if !nat => Some("mangle"),
        _ => None,
    }
}

/// Guess a table from the built-in chains it has (used only when a paste holds several tables
/// without command lines between them).
pub(crate) fn guess_table(chains: &[IptChain]) -> Option<&'static str> {
    let has = |n: &str| chains.iter().any(|c| c.name == n && c.policy.is_some());
    let (pre, inp, fwd, out, post) = (
        has("PREROUTING"),
        has("INPUT"),
        has("FORWARD"),
        has("OUTPUT"),
        has("POSTROUTING"),
    );
    match (pre, inp, fwd, out, post) {
        (true, true, true, true, true) => Some("mangle"),
        (true, _, false, true, true) => Some("nat"),
        (true, false, false, true, false) => Some("raw"),
        (false, true, true, true, false) => Some("filter"),
        _ => None,
    }
}

/// FNV-1a for the chain-name index: short keys, no untrusted-collision concern worth SipHash's
/// cost (the input is a capture the user gave us).
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Position of a built-in chain in the hook order iptables lists them in.
pub(crate) fn builtin_rank(name: &str) -> Option<u8> {
    Some(match name {
        "PREROUTING" => 0,
        "INPUT" => 1,
        "FORWARD" => 2,
        "OUTPUT" => 3,
        "POSTROUTING" => 4,
        _ => return None,
    })
}

pub(crate) struct TableBuilder {
    pub table: IptTable,
    /// Rank of the last built-in chain seen, to notice where the next table's listing begins.
    pub last_builtin: Option<u8>,
    pub explicit_name: bool,
    pub saw_body: bool,
    pub has_counters: bool,
    /// Line of the first `-A`/`-N` line, for a warning about the table's name.
    pub first_line: Option<usize>,
    last_chain: usize,
    /// Chain name → index (kube-proxy tables have tens of thousands of chains).
    index: HashMap<model::iptables::Name, usize, BuildHasherDefault<Fnv>>,
}

impl TableBuilder {
    pub fn new(name: &str, explicit_name: bool) -> Self {
        TableBuilder {
            table: IptTable {
                name: name.to_string(),
                chains: Vec::new(),
            },
            explicit_name,
            last_builtin: None,
            saw_body: false,
            has_counters: false,
            first_line: None,
            last_chain: usize::MAX,
            index: HashMap::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.table.chains.is_empty()
    }

    /// A command line named table `name`: an empty current table takes the name; otherwise it
    /// is done (pushed to `tables`) and a table of that name starts.
    pub fn start_named(&mut self, tables: &mut Vec<TableBuilder>, name: &str) {
        if self.is_empty() {
            self.table.name = name.to_string();
            self.explicit_name = true;
        } else {
            tables.push(std::mem::replace(self, TableBuilder::new(name, true)));
        }
    }

    /// Index of chain `name`, created if missing.
    pub fn chain_mut(&mut self, name: &str) -> &mut IptChain {
        let hit = self
            .table
            .chains
            .get(self.last_chain)
            .is_some_and(|c| c.name == name);
        if !hit {
            self.last_chain = match self.index.get(name) {
                Some(&i) => i,
                None => {
                    let i = self.table.chains.len();
                    let name = model::iptables::Name::new(name);
                    self.index.insert(name.clone(), i);
                    self.table.chains.push(IptChain {
                        name,
                        ..Default::default()
                    });
                    i
                }
            };
        }
        &mut self.table.chains[self.last_chain]
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// Name unnamed tables of a multi-table paste by their built-in chains.
pub(crate) fn finish_tables(mut tables: Vec<TableBuilder>) -> Vec<TableBuilder> {
    if tables.len() > 1 {
        for t in &mut tables {
            if !t.explicit_name {
                if let Some(g) = guess_table(&t.table.chains) {
                    t.table.name = g.to_string();
                }
            }
        }
    }
    tables
}

/// Parse `-S` output into tables. With `split`, a command line naming a table, or a `-P` line
/// after rules, starts a new table.
pub(crate) fn parse_spec_tables(
    text: &str,
    default_table: &str,
    split: bool,
) -> Parsed<Vec<TableBuilder>> {
    let mut warnings = Vec::new();
    let mut tables: Vec<TableBuilder> = Vec::new();
    let mut cur = TableBuilder::new(default_table, false);
    let mut toks: Vec<Tok<'_>> = Vec::with_capacity(32);
    let mut names = model::name::Interner::with_capacity(text.len() / 100);

    for (n, raw_line) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = paste_line(raw_line);
        if line.is_empty() {
            continue;
        }
        if (line.starts_with("-A ") || line.starts_with("[")) && !is_paste_noise(line) {
            cur.saw_body = true;
            cur.first_line.get_or_insert(lineno);
            match parse_rule_with(line, &mut toks, &mut names) {
                Ok(rule) => {
                    if rule.packets.is_some() {
                        cur.has_counters = true;
                    }
                    let chain = rule.chain.clone();
                    cur.chain_mut(&chain).rules.push(rule);
                }
                Err(e) => warnings.push(ParseWarning::new(lineno, line, e)),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("-P ") {
            let rank = rest.split_whitespace().next().and_then(builtin_rank);
            let out_of_order = matches!((cur.last_builtin, rank), (Some(a), Some(b)) if b <= a);
            if split && (cur.saw_body || out_of_order) {
                tables.push(std::mem::replace(
                    &mut cur,
                    TableBuilder::new(default_table, false),
                ));
            }
            match parse_policy(rest) {
                Ok((name, policy, counters)) => {
                    if !split && cur.table.chain(name).is_some_and(|c| c.policy.is_some()) {
                        warnings.push(ParseWarning::new(
                            lineno,
                            line,
                            "policy given twice (several tables pasted together?)",
                        ));
                    }
                    if rank.is_some() {
                        cur.last_builtin = rank;
                    }
                    let c = cur.chain_mut(name);
                    c.policy = Some(policy.to_string());
                    if let Some((p, b)) = counters {
                        c.packets = Some(p);
                        c.bytes = Some(b);
                    }
                }
                Err(e) => warnings.push(ParseWarning::new(lineno, line, e)),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("-N ") {
            let mut words = rest.split_whitespace();
            match (words.next(), words.next()) {
                (Some(name), None) => {
                    cur.saw_body = true;
                    cur.first_line.get_or_insert(lineno);
                    if cur.has_chain(name) {
                        warnings.push(ParseWarning::new(lineno, line, "chain declared twice"));
                    }
                    cur.chain_mut(name);
                }
                _ => warnings.push(ParseWarning::new(lineno, line, "malformed -N line")),
            }
            continue;
        }
        if line.starts_with('#') && !is_chatter(line) {
            continue;
        }
        if is_chatter(line) {
            if split {
                if let Some(t) = table_from_command(line) {
                    cur.start_named(&mut tables, t);
                }
            }
            continue;
        }
        warnings.push(ParseWarning::new(lineno, line, "not an `iptables -S` line"));
    }
    if !cur.is_empty() || tables.is_empty() {
        tables.push(cur);
    }
    Parsed {
        value: finish_tables(tables),
        warnings,
    }
}

/// Chain name, policy and optional `-c` counters of a `-P` line.
type Policy<'a> = (&'a str, &'a str, Option<(u64, u64)>);

/// `CHAIN POLICY [-c P B]`.
fn parse_policy(rest: &str) -> Result<Policy<'_>, String> {
    let w: Vec<&str> = rest.split_whitespace().collect();
    match w.as_slice() {
        [name, policy] => Ok((name, policy, None)),
        [name, policy, "-c", p, b] => {
            let p = p.parse().map_err(|_| format!("bad packet count `{p}`"))?;
            let b = b.parse().map_err(|_| format!("bad byte count `{b}`"))?;
            Ok((name, policy, Some((p, b))))
        }
        _ => Err("expected `-P CHAIN POLICY [-c PKTS BYTES]`".to_string()),
    }
}
