//! Conntrack table and statistics: `conntrack -L [-o extended]`, `/proc/net/nf_conntrack`,
//! `conntrack -S` (per-CPU and the old aggregated format), `/proc/net/stat/nf_conntrack`.
//!
//! Entry lines are tokenised by hand (no regex, no per-token allocation) because a busy
//! node's table has hundreds of thousands of lines; see `benches/conntrack.rs`.
//!
//! Line anatomy (rust-deps-notes §4): `[l3name l3num] l4name l4num [timeout] [STATE]
//! <original tuple> [UNREPLIED] <reply tuple> [ASSURED] [OFFLOAD] mark= [secctx=] [zone=]
//! [delta-time=] use=`. A tuple is `src= dst=` plus `sport= dport=` (tcp/udp/sctp/dccp/
//! udplite), `type= code= id=` (icmp/icmpv6) or `srckey= dstkey=` (gre), then optional
//! `packets= bytes=` when `nf_conntrack_acct=1`. SNAT shows only as the reply `dst` differing
//! from the original `src`; the text formats carry no NAT status bit.

use std::net::IpAddr;

use model::conntrack::{sum_stats, ConntrackEntry, ConntrackSection, ConntrackStats, Tuple};
use model::net::Family;
use model::SummaryBuilder;

use crate::util::{ParseError, ParseWarning, Parsed};

/// Layer-4 protocol names conntrack-tools and the kernel print.
const PROTOCOLS: &[&str] = &[
    "tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "udplite", "gre", "unknown",
];

/// Parse one entry line of `conntrack -L`, `conntrack -L -o extended`, `/proc/net/nf_conntrack`
/// or `conntrack -E`.
///
/// `Ok(None)` for blank lines and anything that is not an entry (tool chatter such as
/// `conntrack v1.4.5 (conntrack-tools): 42 flow entries have been shown.`, shell prompts,
/// markdown fences, stats lines). `Err` for a line that starts like an entry but cannot be
/// read; the message names the offending token.
pub fn parse_entry_line(line: &str) -> Result<Option<ConntrackEntry>, String> {
    let line = strip_paste_residue(line);
    if line.is_empty() {
        return Ok(None);
    }
    let mut toks = Tokens::new(line);

    // Leading bracketed tokens: `-o timestamp` (`[1700000000.123456]`) and event types
    // (`[NEW]`, `[UPDATE]`, `[DESTROY]`).
    let mut first = match toks.next() {
        Some(t) => t,
        None => return Ok(None),
    };
    while first.starts_with('[') {
        first = match toks.next() {
            Some(t) => t,
            None => return Ok(None),
        };
    }

    let mut family: Option<Family> = None;
    if first == "ipv4" || first == "ipv6" {
        family = Some(if first == "ipv4" {
            Family::Inet
        } else {
            Family::Inet6
        });
        match toks.next() {
            Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => {}
            Some(n) => return Err(format!("expected the l3 protocol number, found `{n}`")),
            None => return Err("truncated after the l3 protocol name".into()),
        }
        first = match toks.next() {
            Some(t) => t,
            None => return Err("truncated after the l3 protocol".into()),
        };
    }

    let known = PROTOCOLS.contains(&first);
    if !known {
        // Not an entry unless it plainly has tuples (e.g. a protocol name we do not know).
        if family.is_none() && !line.contains(" src=") {
            return Ok(None);
        }
    }
    let name = first;
    let protonum: u8 = match toks.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("expected the protocol number after `{name}`, found `{n}`"))?,
        None => return Err(format!("truncated after protocol `{name}`")),
    };
    let protocol = if name == "unknown" {
        protonum.to_string()
    } else {
        name.to_string()
    };

    let mut entry = EntryBuilder::default();
    // Header: optional timeout and optional state, then the first `src=`.
    let mut pending: Option<&str> = None;
    for tok in toks.by_ref() {
        if tok.contains('=') {
            pending = Some(tok);
            break;
        }
        if entry.timeout.is_none() && entry.state.is_none() && is_digits(tok) {
            entry.timeout = Some(
                tok.parse()
                    .map_err(|_| format!("timeout out of range: `{tok}`"))?,
            );
        } else if let Some(flag) = bracket_flag(tok) {
            push_flag(&mut entry.status, flag);
        } else if entry.state.is_none() && is_state_word(tok) {
            entry.state = Some(tok.to_string());
        } else {
            return Err(format!("unexpected `{tok}` before the original tuple"));
        }
    }
    let first_kv = match pending {
        Some(t) => t,
        None => return Err("no tuple (`src=`) found".into()),
    };

    entry.kv(first_kv)?;
    while let Some(tok) = toks.next() {
        if let Some(flag) = bracket_flag(tok) {
            entry.in_tuple = false;
            push_flag(&mut entry.status, flag);
        } else if tok.starts_with('[') {
            // `[start=Fri Nov 21 06:27:19 2026]` (ktimestamp): the tokeniser hands us the
            // pieces; skip to the closing bracket.
            entry.in_tuple = false;
            if !tok.ends_with(']') && !toks.by_ref().any(|t| t.ends_with(']')) {
                return Err(format!("unterminated `{tok}`"));
            }
        } else if tok.contains('=') {
            entry.kv(tok)?;
        } else {
            // No format prints bare words after the first tuple; one here is paste damage
            // (a token split by a hard wrap), which `rejoin` then repairs.
            return Err(format!("unexpected `{tok}` among the key=value fields"));
        }
    }
    entry.finish(family, protocol, protonum).map(Some)
}

/// Streams entry lines into `builder`; returns what it had to skip. Never collects entries.
pub fn parse_into(text: &str, builder: &mut SummaryBuilder) -> Vec<ParseWarning> {
    let mut warnings = Vec::new();
    for_each_entry(text, |e| builder.push(e), |w| warnings.push(w));
    warnings
}

/// All entries of a listing, in order.
pub fn parse_entries(text: &str) -> Parsed<Vec<ConntrackEntry>> {
    let mut value = Vec::new();
    let mut warnings = Vec::new();
    for_each_entry(text, |e| value.push(e), |w| warnings.push(w));
    Parsed { value, warnings }
}

/// Most physical lines one hard-wrapped entry may span in a paste.
const MAX_WRAP_LINES: usize = 8;

/// The entry loop shared by [`parse_into`] and [`parse_entries`] (so they cannot disagree).
/// A line that fails is retried joined with the lines after it, for pastes hard-wrapped at a
/// terminal or mail width; it is reported only if no join parses.
fn for_each_entry(
    text: &str,
    mut on_entry: impl FnMut(ConntrackEntry),
    mut on_warning: impl FnMut(ParseWarning),
) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        match parse_entry_line(line) {
            Ok(Some(e)) => {
                // Every listing format ends an entry with `use=N`; a line that parsed without
                // it may have been cut by a wrap that fell just after a complete tuple.
                if !ends_with_use(line) {
                    if let Some((joined, used)) = rejoin(&lines[i..]) {
                        on_entry(joined);
                        i += used;
                        continue;
                    }
                }
                on_entry(e)
            }
            Ok(None) => {}
            Err(msg) => match rejoin(&lines[i..]) {
                Some((e, used)) => {
                    on_entry(e);
                    i += used;
                    continue;
                }
                None => on_warning(ParseWarning::new(i + 1, line, msg)),
            },
        }
        i += 1;
    }
}

/// Join `lines[0]` with the continuation lines after it until the result parses. At each
/// wrap point the cut was either between tokens (join with a space) or inside one (join
/// without); both are tried, the likelier first (a continuation starting with `key=` or
/// `[FLAG]` is a new token). Bare words are errors in an entry, so a wrong guess fails to
/// parse rather than silently dropping a field. Returns the entry and the lines used.
fn rejoin(lines: &[&str]) -> Option<(ConntrackEntry, usize)> {
    let mut conts: Vec<&str> = Vec::new();
    for next in lines.iter().skip(1).take(MAX_WRAP_LINES - 1) {
        let next = strip_paste_residue(next);
        if next.is_empty() || starts_entry(next) || is_chatter(next) {
            break;
        }
        conts.push(next);
    }
    let head = strip_paste_residue(lines.first()?);
    // Longest first: every continuation line found belongs to this entry unless the join
    // fails, e.g. because the last one is unrelated text.
    for n in (1..=conts.len()).rev() {
        if let Some(e) = join_variants(head.to_string(), &conts[..n]) {
            return Some((e, n + 1));
        }
    }
    None
}

/// Depth-first over the separator choices for `rest` (at most 2^5 leaves, error path only).
fn join_variants(acc: String, rest: &[&str]) -> Option<ConntrackEntry> {
    let Some((next, tail)) = rest.split_first() else {
        return parse_entry_line(&acc).ok().flatten();
    };
    let first = Tokens::new(next).next().unwrap_or("");
    let new_token = first.contains('=') || first.starts_with('[');
    let seps: [&str; 2] = if new_token { [" ", ""] } else { ["", " "] };
    for sep in seps {
        let mut j = String::with_capacity(acc.len() + sep.len() + next.len());
        j.push_str(&acc);
        j.push_str(sep);
        j.push_str(next);
        if let Some(e) = join_variants(j, tail) {
            return Some(e);
        }
    }
    None
}

fn ends_with_use(line: &str) -> bool {
    strip_paste_residue(line)
        .rsplit([' ', '\t'])
        .next()
        .is_some_and(|t| t.starts_with("use="))
}

/// The line begins a new entry (so it cannot continue a wrapped one).
fn starts_entry(line: &str) -> bool {
    let mut t = Tokens::new(line);
    let mut first = t.next().unwrap_or("");
    // Event/timestamp prefixes (`[NEW]`, `[1700000000.123456]`); a continuation that starts
    // with `[ASSURED]` is followed by `mark=`, not by a protocol, so it is not mistaken.
    while first.starts_with('[') {
        first = t.next().unwrap_or("");
    }
    first == "ipv4" || first == "ipv6" || PROTOCOLS.contains(&first)
}

/// `conntrack -S` (per-CPU `cpu=N key=value…` lines, or the old aggregated output of one
/// `name value` pair per line, or one line of `key=value` without `cpu=`) and
/// `/proc/net/stat/nf_conntrack` (a header of names, then one row of hex per CPU).
///
/// In the /proc format `entries` is the global table size repeated on every row, so it is kept
/// on the first row only; [`sum_stats`] then yields the right total.
pub fn parse_stats(text: &str) -> Result<Parsed<Vec<ConntrackStats>>, ParseError> {
    let mut st = StatsState::default();
    let mut out = Parsed::new(Vec::new());
    let mut first_other: Option<(usize, String)> = None;
    let mut first_bad: Option<(usize, String)> = None;
    let mut any = false;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_command_prefix(strip_paste_residue(raw));
        if line.is_empty() {
            continue;
        }
        any = true;
        match st.line(line, &mut out.value) {
            StatsLine::Consumed => {}
            StatsLine::Bad(msg) => {
                if first_bad.is_none() {
                    let shown: String = raw.chars().take(160).collect();
                    first_bad = Some((i + 1, format!("{shown} — {msg}")));
                }
                out.warnings.push(ParseWarning::new(i + 1, raw, msg))
            }
            StatsLine::NotStats => {
                if first_other.is_none() {
                    first_other = Some((i + 1, raw.chars().take(200).collect()));
                }
                if !is_chatter(line) {
                    out.warnings
                        .push(ParseWarning::new(i + 1, raw, "not a conntrack stats line"));
                }
            }
        }
    }
    st.flush(&mut out.value);
    if out.value.is_empty() {
        if !any {
            return Err(ParseError::Empty);
        }
        // A damaged data row (a cut /proc row) says more than the first chatter line.
        let (line, text) = first_bad.or(first_other).unwrap_or((1, String::new()));
        return Err(ParseError::NotRecognized {
            expected: "conntrack -S or /proc/net/stat/nf_conntrack",
            line,
            text,
        });
    }
    Ok(out)
}

/// A capture mixing stats and entries (the eks-log-collector `networking/conntrack.txt` is
/// `conntrack -S` then `conntrack -L`). `count` is the number of entries seen.
pub fn parse_capture(text: &str, sample_limit: usize) -> Parsed<ConntrackSection> {
    let mut st = StatsState::default();
    let mut stats = Vec::new();
    let mut builder = SummaryBuilder::new(sample_limit);
    let mut warnings = Vec::new();
    let mut seen: u64 = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_command_prefix(strip_paste_residue(raw));
        if line.is_empty() {
            continue;
        }
        match st.line(line, &mut stats) {
            StatsLine::Consumed => continue,
            StatsLine::Bad(msg) => {
                warnings.push(ParseWarning::new(i + 1, raw, msg));
                continue;
            }
            StatsLine::NotStats => {}
        }
        match parse_entry_line(line) {
            Ok(Some(e)) => {
                seen += 1;
                builder.push(e);
            }
            Ok(None) => {
                if !is_chatter(line) {
                    warnings.push(ParseWarning::new(
                        i + 1,
                        raw,
                        "neither a conntrack entry nor a stats line",
                    ));
                }
            }
            Err(msg) => warnings.push(ParseWarning::new(i + 1, raw, msg)),
        }
    }
    st.flush(&mut stats);
    let (summary, sample) = builder.finish();
    let totals = sum_stats(&stats);
    Parsed {
        value: ConntrackSection {
            source: "capture".to_string(),
            count: Some(seen),
            max: None,
            totals,
            stats,
            summary,
            sample,
            sample_limit: u32::try_from(sample_limit).unwrap_or(u32::MAX),
        },
        warnings,
    }
}

// ---------------------------------------------------------------------------------------------
// Entry internals

/// Whitespace tokeniser over ASCII space/tab (conntrack pads with both).
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens { rest: s }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let b = self.rest.as_bytes();
        let mut i = 0;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i == b.len() {
            self.rest = "";
            return None;
        }
        let mut j = i;
        while j < b.len() && b[j] != b' ' && b[j] != b'\t' {
            j += 1;
        }
        // Splitting at ASCII bytes keeps char boundaries valid.
        let tok = self.rest.get(i..j)?;
        self.rest = self.rest.get(j..).unwrap_or("");
        Some(tok)
    }
}

#[derive(Default)]
struct TupleBuilder {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

impl TupleBuilder {
    fn build(self, which: &str) -> Result<Tuple, String> {
        Ok(Tuple {
            src: self
                .src
                .ok_or_else(|| format!("{which} tuple has no src="))?,
            dst: self
                .dst
                .ok_or_else(|| format!("{which} tuple has no dst="))?,
            sport: self.sport,
            dport: self.dport,
            icmp_type: self.icmp_type,
            icmp_code: self.icmp_code,
            icmp_id: self.icmp_id,
            packets: self.packets,
            bytes: self.bytes,
        })
    }
}

#[derive(Default)]
struct EntryBuilder {
    timeout: Option<u32>,
    state: Option<String>,
    tuples: [TupleBuilder; 2],
    /// How many `src=` seen: 1 = in original, 2 = in reply.
    ntuples: usize,
    /// Still inside a tuple (so `id=` is the ICMP id, not the `-o id` conntrack id).
    in_tuple: bool,
    status: Vec<String>,
    mark: Option<u32>,
    zone: Option<u16>,
}

impl EntryBuilder {
    fn kv(&mut self, tok: &str) -> Result<(), String> {
        let (k, v) = match tok.split_once('=') {
            Some(kv) => kv,
            None => return Ok(()),
        };
        if k == "src" {
            if self.ntuples >= 2 {
                return Err(format!("a third tuple starts at `{tok}`"));
            }
            self.ntuples += 1;
            self.in_tuple = true;
        }
        if self.in_tuple && self.ntuples > 0 {
            let t = &mut self.tuples[self.ntuples - 1];
            let handled = match k {
                "src" => {
                    t.src = Some(parse_addr(v, tok)?);
                    true
                }
                "dst" => {
                    t.dst = Some(parse_addr(v, tok)?);
                    true
                }
                "sport" => {
                    t.sport = Some(num(v, tok)?);
                    true
                }
                "dport" => {
                    t.dport = Some(num(v, tok)?);
                    true
                }
                "type" => {
                    t.icmp_type = Some(num(v, tok)?);
                    true
                }
                "code" => {
                    t.icmp_code = Some(num(v, tok)?);
                    true
                }
                "id" if t.icmp_type.is_some() && t.icmp_id.is_none() => {
                    t.icmp_id = Some(num(v, tok)?);
                    true
                }
                "packets" => {
                    t.packets = Some(num(v, tok)?);
                    true
                }
                "bytes" => {
                    t.bytes = Some(num(v, tok)?);
                    true
                }
                // gre keys, per-direction zones: part of the tuple, not modelled.
                "srckey" | "dstkey" | "zone-orig" | "zone-reply" => true,
                _ => false,
            };
            if handled {
                return Ok(());
            }
            self.in_tuple = false;
        }
        match k {
            "mark" => self.mark = Some(num_radix(v, tok)?),
            "zone" => self.zone = Some(num(v, tok)?),
            // use, secctx, labels, delta-time, id (the conntrack id), helper, timestamps.
            _ => {}
        }
        Ok(())
    }

    fn finish(
        self,
        family: Option<Family>,
        protocol: String,
        protonum: u8,
    ) -> Result<ConntrackEntry, String> {
        if self.ntuples < 2 {
            return Err("no reply tuple (line truncated?)".into());
        }
        let [o, r] = self.tuples;
        let original = o.build("original")?;
        let reply = r.build("reply")?;
        let family = family.unwrap_or_else(|| Family::of(&original.src));
        Ok(ConntrackEntry {
            family,
            protocol,
            protonum,
            timeout: self.timeout,
            state: self.state,
            original,
            reply,
            status: self.status,
            mark: self.mark,
            zone: self.zone,
        })
    }
}

#[inline]
fn parse_addr(v: &str, tok: &str) -> Result<IpAddr, String> {
    v.parse().map_err(|_| format!("invalid address in `{tok}`"))
}

#[inline]
fn num<T: std::str::FromStr>(v: &str, tok: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("invalid number in `{tok}`"))
}

fn num_radix(v: &str, tok: &str) -> Result<u32, String> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).map_err(|_| format!("invalid number in `{tok}`")),
        None => num(v, tok),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// TCP/SCTP/DCCP state words: `ESTABLISHED`, `TIME_WAIT`, `SYN_SENT2`, `COOKIE_WAIT`.
fn is_state_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `[ASSURED]` → `ASSURED`; `None` for anything not a bracketed upper-case word.
fn bracket_flag(tok: &str) -> Option<&str> {
    let inner = tok.strip_prefix('[')?.strip_suffix(']')?;
    is_state_word(inner).then_some(inner)
}

fn push_flag(status: &mut Vec<String>, flag: &str) {
    if !status.iter().any(|f| f == flag) {
        status.push(flag.to_string());
    }
}

/// Trim whitespace, `\r`, quote markers and backticks people leave around pasted lines.
fn strip_paste_residue(line: &str) -> &str {
    let mut l = line.trim();
    loop {
        let before = l.len();
        l = l.trim_start_matches('>').trim_start();
        l = l.trim_matches('`').trim();
        // Markdown bullets.
        for b in ["- ", "* ", "+ "] {
            if let Some(r) = l.strip_prefix(b) {
                l = r.trim_start();
            }
        }
        if l.len() == before {
            return l;
        }
    }
}

/// A prompt and command glued in front of the data, as pastes flattened onto one line show it:
/// `$ conntrack -S cpu=0 found=770 …` or `[root@node ~]# conntrack -S cpu=0 …`. Returns the line
/// from the first `cpu=` token when everything before it is prompt/command words.
fn strip_command_prefix(line: &str) -> &str {
    let Some(at) = line.find("cpu=") else {
        return line;
    };
    if at == 0 || !line[..at].ends_with([' ', '\t']) {
        return line;
    }
    let commandish = |t: &str| {
        matches!(t, "$" | "#" | "sudo" | "conntrack" | "-S" | "--stats")
            || t.ends_with('$')
            || t.ends_with('#')
            || t.contains('@')
    };
    if line[..at].split_ascii_whitespace().all(commandish) {
        &line[at..]
    } else {
        line
    }
}

/// Lines any of these tools print around their data.
fn is_chatter(line: &str) -> bool {
    // A shell prompt such as `vyos@r14:~$ show conntrack statistics` or `[root@node ~]# …`.
    let prompt = line
        .split(' ')
        .take(2)
        .any(|t| t.len() > 1 && (t.ends_with('$') || t.ends_with('#')));
    prompt
        || line.starts_with("conntrack v")
        || line.starts_with('$')
        || line.starts_with('#')
        || line.starts_with("```")
        || line.starts_with("sudo ")
        || line.starts_with("conntrack ")
        || line.starts_with("cat /proc/")
}

// ---------------------------------------------------------------------------------------------
// Stats internals

enum StatsLine {
    Consumed,
    NotStats,
    Bad(String),
}

#[derive(Default)]
struct StatsState {
    /// Column names of a `/proc/net/stat/nf_conntrack` header.
    proc_header: Option<Vec<String>>,
    proc_rows: u32,
    /// Accumulates the old one-counter-per-line `conntrack -S`.
    aggregated: Option<ConntrackStats>,
}

impl StatsState {
    fn line(&mut self, line: &str, out: &mut Vec<ConntrackStats>) -> StatsLine {
        let mut toks = Tokens::new(line);
        let first = match toks.next() {
            Some(t) => t,
            None => return StatsLine::NotStats,
        };

        // Per-CPU `conntrack -S`: `cpu=0   \tfound=0 invalid=2 …`.
        if let Some(cpu) = first.strip_prefix("cpu=") {
            self.flush(out);
            let cpu: u32 = match cpu.parse() {
                Ok(c) => c,
                Err(_) => return StatsLine::Bad(format!("invalid cpu number `{first}`")),
            };
            let mut s = ConntrackStats {
                cpu: Some(cpu),
                counters: Default::default(),
            };
            for t in toks {
                // Pastes collapse several `cpu=` records onto one line.
                if let Some(next) = t.strip_prefix("cpu=") {
                    let next: u32 = match next.parse() {
                        Ok(c) => c,
                        Err(_) => return StatsLine::Bad(format!("invalid cpu number `{t}`")),
                    };
                    let done = std::mem::replace(
                        &mut s,
                        ConntrackStats {
                            cpu: Some(next),
                            counters: Default::default(),
                        },
                    );
                    out.push(done);
                    continue;
                }
                match kv_counter(t) {
                    Some(Ok((k, v))) => {
                        s.counters.insert(k.to_string(), v);
                    }
                    Some(Err(msg)) => return StatsLine::Bad(msg),
                    None => return StatsLine::Bad(format!("unexpected `{t}` in a cpu= line")),
                }
            }
            out.push(s);
            return StatsLine::Consumed;
        }

        // `/proc/net/stat/nf_conntrack` header.
        if first == "entries" {
            let rest: Vec<&str> = toks.collect();
            if rest.len() >= 2 && rest.iter().all(|t| is_counter_name(t)) {
                self.flush(out);
                let mut names = vec![first.to_string()];
                names.extend(rest.iter().map(|s| s.to_string()));
                self.proc_header = Some(names);
                self.proc_rows = 0;
                return StatsLine::Consumed;
            }
        }

        // `/proc/net/stat/nf_conntrack` row.
        if let Some(names) = &self.proc_header {
            if first.len() == 8 && first.bytes().all(|b| b.is_ascii_hexdigit()) {
                let vals: Vec<&str> = Tokens::new(line).collect();
                if vals.len() != names.len() {
                    return StatsLine::Bad(format!(
                        "{} values for {} columns",
                        vals.len(),
                        names.len()
                    ));
                }
                let mut s = ConntrackStats {
                    cpu: Some(self.proc_rows),
                    counters: Default::default(),
                };
                for (name, v) in names.iter().zip(vals) {
                    let v = match u64::from_str_radix(v, 16) {
                        Ok(v) => v,
                        Err(_) => return StatsLine::Bad(format!("invalid hex value `{v}`")),
                    };
                    // `entries` is global, not per CPU: keep it once.
                    if name == "entries" && self.proc_rows > 0 {
                        continue;
                    }
                    s.counters.insert(name.clone(), v);
                }
                self.proc_rows += 1;
                out.push(s);
                return StatsLine::Consumed;
            }
        }

        // Old aggregated `conntrack -S`: `entries   \t\t12      ` one per line.
        if is_counter_name(first) {
            let mut rest = Tokens::new(line).skip(1);
            if let (Some(v), None) = (rest.next(), rest.next()) {
                if is_digits(v) {
                    if let Ok(v) = v.parse::<u64>() {
                        let agg = self.aggregated.get_or_insert_with(Default::default);
                        agg.counters.insert(first.to_string(), v);
                        return StatsLine::Consumed;
                    }
                }
            }
        }

        // One line of `key=value` counters without `cpu=`.
        if first.contains('=') && !line.contains("src=") {
            let mut s = ConntrackStats::default();
            for t in Tokens::new(line) {
                match kv_counter(t) {
                    Some(Ok((k, v))) => {
                        s.counters.insert(k.to_string(), v);
                    }
                    _ => return StatsLine::NotStats,
                }
            }
            self.flush(out);
            out.push(s);
            return StatsLine::Consumed;
        }
        StatsLine::NotStats
    }

    fn flush(&mut self, out: &mut Vec<ConntrackStats>) {
        if let Some(agg) = self.aggregated.take() {
            out.push(agg);
        }
    }
}

fn is_counter_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn kv_counter(t: &str) -> Option<Result<(&str, u64), String>> {
    let (k, v) = t.split_once('=')?;
    if !is_counter_name(k) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map(|v| (k, v))
            .map_err(|_| format!("invalid counter `{t}`")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_paste_icmp_and_tcp() {
        let e = parse_entry_line("icmp 1 28 src=172.30.66.58 dst=8.8.8.8 type=8 code=0 id=34392 src=8.8.8.8 dst=172.30.85.242 type=0 code=0 id=50705 mark=128 use=1")
            .unwrap()
            .unwrap();
        assert_eq!(e.protocol, "icmp");
        assert_eq!(e.protonum, 1);
        assert_eq!(e.timeout, Some(28));
        assert_eq!(e.state, None);
        assert_eq!(e.original.icmp_type, Some(8));
        assert_eq!(e.original.icmp_id, Some(34392));
        assert_eq!(e.reply.icmp_id, Some(50705));
        assert_eq!(e.mark, Some(128));
        assert_eq!(e.nat_source(), Some("172.30.85.242".parse().unwrap()));

        let e = parse_entry_line("tcp 6 23 TIME_WAIT src=172.30.66.58 dst=34.117.59.81 sport=58144 dport=80 src=34.117.59.81 dst=172.30.85.242 sport=80 dport=44768 [ASSURED] mark=128 use=1")
            .unwrap()
            .unwrap();
        assert_eq!(e.state.as_deref(), Some("TIME_WAIT"));
        assert_eq!(e.status, vec!["ASSURED".to_string()]);
        assert_eq!(e.original.sport, Some(58144));
        assert_eq!(e.reply.dport, Some(44768));
        assert!(e.is_snat());
        assert!(!e.is_dnat());
    }

    #[test]
    fn conntrack_id_is_not_icmp_id() {
        let e = parse_entry_line("icmp 1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 use=1 id=2393474049")
            .unwrap()
            .unwrap();
        assert_eq!(e.original.icmp_id, Some(7));
        assert_eq!(e.reply.icmp_id, Some(7));
    }

    #[test]
    fn events_timestamps_and_bullets() {
        let e = parse_entry_line("[1700000000.123456]\t    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=5 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=5")
            .unwrap()
            .unwrap();
        assert_eq!(e.state.as_deref(), Some("SYN_SENT"));
        assert_eq!(e.status, vec!["UNREPLIED".to_string()]);
        let e = parse_entry_line("[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=5 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5 [ASSURED] delta-time=31 [start=Fri Nov 21 06:27:19 2026] [stop=Fri Nov 21 06:27:50 2026]")
            .unwrap()
            .unwrap();
        assert_eq!(e.timeout, None);
        assert_eq!(e.status, vec!["ASSURED".to_string()]);
        let e = parse_entry_line("> - `tcp 6 5 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0x80 use=1`")
            .unwrap()
            .unwrap();
        assert_eq!(e.mark, Some(128));
        assert_eq!(e.state.as_deref(), Some("CLOSE"));
    }

    #[test]
    fn chatter_and_errors() {
        assert_eq!(parse_entry_line(""), Ok(None));
        assert!(is_chatter("[root@ip-192-168-188-7 bin]# conntrack -L"));
        assert!(is_chatter("vyos@r14:~$ show conntrack statistics"));
        assert_eq!(
            parse_entry_line(
                "conntrack v1.4.5 (conntrack-tools): 42 flow entries have been shown."
            ),
            Ok(None)
        );
        assert!(parse_entry_line(
            "tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2"
        )
        .is_err());
        let err = parse_entry_line("tcp 6 5 ESTABLISHED src=10.0.0.999 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1").unwrap_err();
        assert!(err.contains("src=10.0.0.999"), "{err}");
    }

    #[test]
    fn stats_formats() {
        let s = parse_stats(
            "entries  clashres found\n0000000a  00000001 00000010\n0000000a  00000000 00000001\n",
        )
        .unwrap();
        assert_eq!(s.value.len(), 2);
        let t = sum_stats(&s.value);
        assert_eq!(t["entries"], 10);
        assert_eq!(t["found"], 17);
        assert_eq!(t["clashres"], 1);
        let s = parse_stats("entries   \t\t12      \nsearched  \t\t40      \n").unwrap();
        assert_eq!(s.value.len(), 1);
        assert_eq!(s.value[0].cpu, None);
        assert_eq!(s.value[0].get("searched"), 40);
        assert_eq!(parse_stats("  \n"), Err(ParseError::Empty));
        assert!(matches!(
            parse_stats("hello world\n"),
            Err(ParseError::NotRecognized { line: 1, .. })
        ));
    }

    #[test]
    fn prompt_and_rows_flattened_onto_one_line() {
        // imroc/learning-kubernetes#61: a comment system joined prompt, command and rows.
        let s = parse_stats("$ conntrack -S cpu=0 found=770 invalid=3856 insert_failed=0 drop=0 cpu=1 found=784 insert_failed=2 drop=1 error=18\n").unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.value.len(), 2);
        assert_eq!(s.value[1].cpu, Some(1));
        assert_eq!(sum_stats(&s.value)["insert_failed"], 2);
        let s = parse_stats("[root@ip-10-0-1-2 ~]# conntrack -S cpu=0 found=1 drop=3\n").unwrap();
        assert_eq!(s.value[0].get("drop"), 3);
        // Words that are not a prompt/command stay: not stats.
        assert!(parse_stats("insert cpu=0 found=1\n").is_err());
        let c = parse_capture("$ conntrack -S cpu=0 found=1 insert_failed=4\n", 10);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.value.totals["insert_failed"], 4);
    }

    #[test]
    fn cut_proc_row_is_named_in_the_error() {
        // google/nftables#138: `cat /proc/net/stat/nf_conntrack`, the first row cut short.
        let e = parse_stats("cat /proc/net/stat/nf_conntrack\n\nentries  clashres found new\n00000004  00000000 00\n").unwrap_err();
        match e {
            ParseError::NotRecognized { line, text, .. } => {
                assert_eq!(line, 4);
                assert!(text.contains("3 values for 4 columns"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}
