//! The application state: nodes, views, filter, sort, freeze, live marks. No drawing and no
//! terminal I/O here; [`crate::keys`] changes it, [`crate::ui`] draws it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use model::{Finding, NodeReport, Outcome, Severity, Snapshot};
use regex::Regex;

use crate::event::{Event, NodeResult, NodeUpdate};
use crate::sanitize;

/// Settings fixed for the session.
#[derive(Debug, Clone)]
pub struct Options {
    /// Hide and refuse re-collection.
    pub readonly: bool,
    /// Colours on (off with NO_COLOR); plain-text markers are always drawn.
    pub color: bool,
    /// Re-collect the fleet at this interval.
    pub refresh: Option<Duration>,
    /// Whether a producer accepts re-collect requests at all.
    pub can_recollect: bool,
    /// Where `y` also writes the copied evidence (the fallback when OSC 52 is not honoured).
    pub copy_file: PathBuf,
    /// What the data is (`3 hosts`, `--from out/`), shown in the header.
    pub source: String,
    /// Where `b` writes the selected node's (redacted) bundle and its private map.
    pub bundle_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            readonly: false,
            color: true,
            refresh: None,
            can_recollect: true,
            copy_file: std::env::temp_dir().join("diag-tui-evidence.txt"),
            source: String::new(),
            bundle_dir: PathBuf::from("."),
        }
    }
}

/// Tabs of the node view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Findings,
    Snat,
    Routing,
    Conntrack,
    Logs,
    /// The node daemon's change log.
    Changes,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Findings,
        Tab::Snat,
        Tab::Routing,
        Tab::Conntrack,
        Tab::Logs,
        Tab::Changes,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Findings => "Findings",
            Tab::Snat => "SNAT",
            Tab::Routing => "Routing",
            Tab::Conntrack => "Conntrack",
            Tab::Logs => "Logs",
            Tab::Changes => "Changes",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// One screen in the navigation stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// All nodes; `rule` narrows to the nodes where that rule fired (from the findings view).
    Fleet {
        rule: Option<String>,
    },
    Node {
        node: usize,
        tab: Tab,
    },
    /// Each rule id across the fleet.
    Findings,
}

/// What the keyboard is typing into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// `/` filter being edited (text without the slash).
    Filter(String),
    /// `:` command line being edited.
    Command(String),
    /// `?` help overlay.
    Help,
}

/// Fleet sort columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Errors, then failed collections, then warnings (the default).
    Worst,
    Name,
    Outcome,
    Errors,
    Warnings,
    Age,
    Zone,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Worst,
        SortKey::Name,
        SortKey::Outcome,
        SortKey::Errors,
        SortKey::Warnings,
        SortKey::Age,
        SortKey::Zone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Worst => "worst",
            SortKey::Name => "name",
            SortKey::Outcome => "outcome",
            SortKey::Errors => "errors",
            SortKey::Warnings => "warnings",
            SortKey::Age => "age",
            SortKey::Zone => "zone",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// Minimum log level shown in the Logs tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    All,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn next(self) -> LogLevel {
        match self {
            LogLevel::All => LogLevel::Info,
            LogLevel::Info => LogLevel::Warn,
            LogLevel::Warn => LogLevel::Error,
            LogLevel::Error => LogLevel::All,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::All => "all",
            LogLevel::Info => "info+",
            LogLevel::Warn => "warn+",
            LogLevel::Error => "error+",
        }
    }

    /// Does a line of this level (`debug`, `info`, `warn`, `error`, `fatal`) pass?
    pub fn admits(self, level: &str) -> bool {
        let rank = match level.to_ascii_lowercase().as_str() {
            "debug" | "trace" => 0,
            "info" => 1,
            "warn" | "warning" => 2,
            "error" | "fatal" | "panic" | "dpanic" => 3,
            _ => 1,
        };
        let min = match self {
            LogLevel::All => 0,
            LogLevel::Info => 1,
            LogLevel::Warn => 2,
            LogLevel::Error => 3,
        };
        rank >= min
    }
}

/// How a node row reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Not collected yet.
    Pending,
    Ok,
    Info,
    Warning,
    /// The collection failed (unreachable, timeout, hostkey-…).
    Failed,
    Error,
}

impl Health {
    /// The plain-text marker (readable without colour).
    pub fn marker(self) -> &'static str {
        match self {
            Health::Pending => "..",
            Health::Ok => "OK",
            Health::Info => "INFO",
            Health::Warning => "WARN",
            Health::Failed => "FAIL",
            Health::Error => "ERR",
        }
    }
}

/// Marker of a finding severity.
pub fn severity_marker(s: Severity) -> &'static str {
    match s {
        Severity::Error => "ERR",
        Severity::Warning => "WARN",
        Severity::Info => "INFO",
    }
}

/// One node row (all text already sanitised).
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub name: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    /// A collection is in flight.
    pub collecting: bool,
    /// Outcome of the last finished collection.
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub snapshot: Option<Box<Snapshot>>,
    pub report: Option<NodeReport>,
    /// `snat`, `external-snat`, `ipv6`, `unknown`, or empty without data.
    pub snat_mode: String,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    /// Summary of the worst finding (sanitised).
    pub top: String,
    /// When the last result arrived.
    pub received: Option<Instant>,
    /// Collections finished so far.
    pub rounds: u32,
    /// Findings (rule + summary) that appeared in the last round.
    pub appeared: HashSet<String>,
    /// Findings that were there in the previous round and are gone now.
    pub cleared: Vec<Finding>,
    /// The daemon's change log, once asked (None: not asked, e.g. offline input).
    pub changes: Option<crate::event::ChangeLog>,
    /// What `/` matches against: name, zone, outcome, error, every finding's text.
    haystack: String,
}

/// Identity of a finding across rounds.
pub fn finding_key(f: &Finding) -> String {
    format!("{}\u{0}{}", f.rule, f.summary)
}

impl NodeEntry {
    fn new(name: &str) -> Self {
        let name = sanitize::owned(name);
        NodeEntry {
            haystack: name.clone(),
            name,
            zone: None,
            instance_type: None,
            collecting: false,
            outcome: None,
            error: None,
            snapshot: None,
            report: None,
            snat_mode: String::new(),
            errors: 0,
            warnings: 0,
            infos: 0,
            top: String::new(),
            received: None,
            rounds: 0,
            appeared: HashSet::new(),
            cleared: Vec::new(),
            changes: None,
        }
    }

    pub fn health(&self) -> Health {
        match self.outcome {
            None => Health::Pending,
            Some(o) if !o.is_success() => Health::Failed,
            Some(_) if self.errors > 0 => Health::Error,
            Some(_) if self.warnings > 0 => Health::Warning,
            Some(_) if self.infos > 0 => Health::Info,
            Some(_) => Health::Ok,
        }
    }

    /// Sort rank of "worst first": errors, failed collections, warnings, info, ok, pending.
    fn badness(&self) -> (Health, usize, usize) {
        (self.health(), self.errors, self.warnings)
    }

    pub fn findings(&self) -> &[Finding] {
        self.report
            .as_ref()
            .map(|r| r.findings.as_slice())
            .unwrap_or(&[])
    }

    fn apply(&mut self, mut r: NodeResult, now: Instant) {
        if r.report.is_none() {
            if let Some(s) = &r.snapshot {
                r.report = Some(analysis::analyze(s));
            }
        }
        // Live marks: compare with the previous round's findings.
        if let Some(new) = &r.report {
            let new_keys: HashSet<String> = new.findings.iter().map(finding_key).collect();
            match &self.report {
                Some(old) => {
                    let old_keys: HashSet<String> = old.findings.iter().map(finding_key).collect();
                    self.appeared = new_keys.difference(&old_keys).cloned().collect();
                    self.cleared = old
                        .findings
                        .iter()
                        .filter(|f| !new_keys.contains(&finding_key(f)))
                        .cloned()
                        .collect();
                }
                None => {
                    self.appeared.clear();
                    self.cleared.clear();
                }
            }
        }
        self.collecting = false;
        self.outcome = Some(r.outcome);
        self.error = r.error.as_deref().map(sanitize::owned);
        self.received = Some(now);
        self.rounds += 1;
        if let Some(s) = &r.snapshot {
            if let Some(n) = s.node.get() {
                self.zone = n.availability_zone.as_deref().map(sanitize::owned);
                self.instance_type = n.instance_type.as_deref().map(sanitize::owned);
            }
            self.snat_mode = match &r.report {
                Some(rep) => snat_mode_name(analysis::views::snat_view(s, rep).mode).into(),
                None => String::new(),
            };
        }
        if r.snapshot.is_some() {
            self.snapshot = r.snapshot.map(Box::new);
            self.report = r.report;
        }
        // A failed round keeps the last good snapshot for browsing; the row shows the failure.
        let fs = self.findings();
        let count = |s: Severity| fs.iter().filter(|f| f.severity == s).count();
        let (errors, warnings, infos) = (
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info),
        );
        let top = match (self.outcome, fs.first(), &self.error) {
            (Some(o), _, Some(e)) if !o.is_success() => e.clone(),
            (_, Some(f), _) => sanitize::owned(&format!("{} {}", f.rule, f.summary)),
            _ => String::new(),
        };
        self.errors = errors;
        self.warnings = warnings;
        self.infos = infos;
        self.top = top;
        self.rebuild_haystack();
    }

    fn rebuild_haystack(&mut self) {
        let mut h = String::with_capacity(256);
        h.push_str(&self.name);
        for part in [&self.zone, &self.instance_type, &self.error]
            .into_iter()
            .flatten()
        {
            h.push('\n');
            h.push_str(part);
        }
        if let Some(o) = self.outcome {
            h.push('\n');
            h.push_str(o.as_str());
        }
        if let Some(r) = &self.report {
            for f in &r.findings {
                h.push('\n');
                h.push_str(&f.rule);
                h.push(' ');
                h.push_str(&f.summary);
                for e in &f.evidence {
                    h.push('\n');
                    if let Some(l) = &e.location {
                        h.push_str(l);
                        h.push(' ');
                    }
                    h.push_str(&e.text);
                }
            }
        }
        self.haystack = h;
    }

    pub fn haystack(&self) -> &str {
        &self.haystack
    }
}

fn snat_mode_name(m: analysis::views::SnatMode) -> &'static str {
    use analysis::views::SnatMode;
    match m {
        SnatMode::Snat => "snat",
        SnatMode::ExternalSnat => "external",
        SnatMode::Ipv6 => "ipv6",
        SnatMode::Unknown => "unknown",
    }
}

/// One rule id across the fleet (the findings view).
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub rule: String,
    pub severity: Severity,
    /// Node indices where it fired (sorted, deduplicated).
    pub nodes: Vec<usize>,
    /// A representative summary (sanitised).
    pub summary: String,
    /// A fleet rule (`fleet.config-drift`): the differing lines are in `evidence`.
    pub fleet: bool,
    /// Evidence of the first occurrence, for the detail pane (sanitised).
    pub evidence: Vec<String>,
}

/// The `/` filter.
#[derive(Debug, Clone)]
pub struct Filter {
    pub text: String,
    pub invert: bool,
    regex: Regex,
}

impl Filter {
    /// `foo` or `!foo` (inverted); case-insensitive regex.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, text),
        };
        let regex = regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| format!("bad regex: {}", first_line(&e.to_string())))?;
        Ok(Filter {
            text: text.to_string(),
            invert,
            regex,
        })
    }

    pub fn matches(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack) != self.invert
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// The whole state.
#[derive(Debug)]
pub struct App {
    pub opts: Options,
    pub nodes: Vec<NodeEntry>,
    by_name: HashMap<String, usize>,
    /// Navigation stack; the last entry is on screen. Never empty.
    pub stack: Vec<View>,
    pub mode: Mode,
    pub sort: SortKey,
    pub reverse: bool,
    pub filter: Option<Filter>,
    /// Fleet rows in display order (indices into `nodes`), after filter and sort.
    pub visible: Vec<usize>,
    /// Selected row in `visible`.
    pub fleet_sel: usize,
    /// First row drawn (kept by the drawing code so the selection stays visible).
    pub fleet_offset: usize,
    pub rules: Vec<RuleRow>,
    pub rules_sel: usize,
    pub rules_offset: usize,
    /// Selected finding in the node view's Findings tab.
    pub finding_sel: usize,
    /// Line scroll of the other node tabs.
    pub scroll: usize,
    pub log_level: LogLevel,
    pub frozen: bool,
    /// Events that arrived while frozen, applied on unfreeze.
    pub pending: Vec<Event>,
    pub progress: Option<(usize, usize)>,
    pub status: Option<String>,
    pub quit: bool,
    /// The clock used for ages (set by the event loop; fixed in tests).
    pub now: Instant,
    /// Last refresh round requested (for `--refresh`).
    pub last_round: Instant,
    dirty: bool,
    rules_dirty: bool,
}

impl App {
    pub fn new(opts: Options) -> Self {
        let now = Instant::now();
        App {
            opts,
            nodes: Vec::new(),
            by_name: HashMap::new(),
            stack: vec![View::Fleet { rule: None }],
            mode: Mode::Normal,
            sort: SortKey::Worst,
            reverse: false,
            filter: None,
            visible: Vec::new(),
            fleet_sel: 0,
            fleet_offset: 0,
            rules: Vec::new(),
            rules_sel: 0,
            rules_offset: 0,
            finding_sel: 0,
            scroll: 0,
            log_level: LogLevel::All,
            frozen: false,
            pending: Vec::new(),
            progress: None,
            status: None,
            quit: false,
            now,
            last_round: now,
            dirty: true,
            rules_dirty: true,
        }
    }

    pub fn view(&self) -> &View {
        // The stack is never empty (pop keeps the root).
        self.stack.last().unwrap_or(&View::Fleet { rule: None })
    }

    /// Feed one producer event; buffered while frozen.
    pub fn handle_event(&mut self, ev: Event) {
        if self.frozen {
            self.pending.push(ev);
            return;
        }
        self.apply_event(ev);
    }

    fn apply_event(&mut self, ev: Event) {
        match ev {
            Event::Node(NodeUpdate::Started { name }) => {
                let i = self.entry(&name);
                self.nodes[i].collecting = true;
            }
            Event::Node(NodeUpdate::Finished(r)) => {
                let i = self.entry(&r.name);
                let now = self.now;
                self.nodes[i].apply(*r, now);
            }
            Event::Node(NodeUpdate::Changes { name, log }) => {
                let i = self.entry(&name);
                self.nodes[i].changes = Some(log);
            }
            Event::Progress { done, total } => self.progress = Some((done, total)),
            Event::Message(m) => self.status = Some(sanitize::owned(&m)),
        }
        self.dirty = true;
        self.rules_dirty = true;
    }

    fn entry(&mut self, name: &str) -> usize {
        if let Some(i) = self.by_name.get(name) {
            return *i;
        }
        let i = self.nodes.len();
        self.nodes.push(NodeEntry::new(name));
        self.by_name.insert(name.to_string(), i);
        self.dirty = true;
        i
    }

    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
        if !frozen {
            for ev in std::mem::take(&mut self.pending) {
                self.apply_event(ev);
            }
        }
    }

    /// Set or clear the `/` filter. An invalid regex keeps the previous filter.
    pub fn set_filter(&mut self, text: &str) -> Result<(), String> {
        if text.is_empty() || text == "!" {
            self.filter = None;
        } else {
            self.filter = Some(Filter::parse(text)?);
        }
        self.fleet_sel = 0;
        self.rules_sel = 0;
        self.dirty = true;
        self.rules_dirty = true;
        Ok(())
    }

    pub fn set_sort(&mut self, key: SortKey) {
        self.sort = key;
        self.dirty = true;
    }

    pub fn toggle_reverse(&mut self) {
        self.reverse = !self.reverse;
        self.dirty = true;
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
        self.rules_dirty = true;
    }

    /// Recompute filter and sort of the fleet rows, and the findings view, if anything changed.
    pub fn refresh_derived(&mut self) {
        if self.dirty {
            self.recompute_fleet();
            self.dirty = false;
        }
        if self.rules_dirty && matches!(self.view(), View::Findings) {
            self.recompute_rules();
            self.rules_dirty = false;
        }
    }

    fn recompute_fleet(&mut self) {
        let selected = self.visible.get(self.fleet_sel).copied();
        let rule = match self.view() {
            View::Fleet { rule } => rule.clone(),
            _ => self.stack.iter().rev().find_map(|v| match v {
                View::Fleet { rule } => rule.clone(),
                _ => None,
            }),
        };
        let rule_set: Option<HashSet<usize>> = rule
            .as_deref()
            .map(|r| self.rule_nodes(r).into_iter().collect());
        let mut rows: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                let by_rule = rule_set.as_ref().is_none_or(|s| s.contains(&i));
                by_rule && self.filter.as_ref().is_none_or(|f| f.matches(n.haystack()))
            })
            .collect();
        let nodes = &self.nodes;
        let now = self.now;
        let age = |n: &NodeEntry| n.received.map(|t| now.saturating_duration_since(t));
        rows.sort_by(|&a, &b| {
            let (x, y) = (&nodes[a], &nodes[b]);
            let ord = match self.sort {
                SortKey::Worst => y.badness().cmp(&x.badness()),
                SortKey::Name => std::cmp::Ordering::Equal,
                SortKey::Outcome => x.outcome.cmp(&y.outcome),
                SortKey::Errors => y.errors.cmp(&x.errors),
                SortKey::Warnings => y.warnings.cmp(&x.warnings),
                // Oldest data first: it is the most likely to be stale.
                SortKey::Age => age(y).cmp(&age(x)),
                SortKey::Zone => x.zone.cmp(&y.zone),
            };
            let ord = ord.then_with(|| x.name.cmp(&y.name));
            if self.reverse {
                ord.reverse()
            } else {
                ord
            }
        });
        self.visible = rows;
        self.fleet_sel = match selected.and_then(|s| self.visible.iter().position(|&i| i == s)) {
            Some(p) => p,
            None => self.fleet_sel.min(self.visible.len().saturating_sub(1)),
        };
    }

    /// Nodes where a rule fired (node rules and fleet rules).
    fn rule_nodes(&self, rule: &str) -> Vec<usize> {
        if let Some(r) = self.rules.iter().find(|r| r.rule == rule) {
            return r.nodes.clone();
        }
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].findings().iter().any(|f| f.rule == rule))
            .collect()
    }

    fn recompute_rules(&mut self) {
        let mut by_rule: HashMap<String, RuleRow> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for f in n.findings() {
                let row = by_rule.entry(f.rule.clone()).or_insert_with(|| RuleRow {
                    rule: sanitize::owned(&f.rule),
                    severity: f.severity,
                    nodes: Vec::new(),
                    summary: sanitize::owned(&f.summary),
                    fleet: false,
                    evidence: evidence_lines(f),
                });
                row.severity = row.severity.max(f.severity);
                if row.nodes.last() != Some(&i) {
                    row.nodes.push(i);
                }
            }
        }
        // Cross-node rules (drift from the majority, duplicate pod IPs).
        let snaps: Vec<&Snapshot> = self
            .nodes
            .iter()
            .filter_map(|n| n.snapshot.as_deref())
            .collect();
        if snaps.len() > 1 {
            for f in analysis::analyze_fleet(&snaps) {
                let nodes: Vec<usize> = f
                    .node
                    .split([',', ' '])
                    .filter_map(|n| self.by_name.get(n.trim()).copied())
                    .collect();
                let row = by_rule.entry(f.rule.clone()).or_insert_with(|| RuleRow {
                    rule: sanitize::owned(&f.rule),
                    severity: f.severity,
                    nodes: Vec::new(),
                    summary: sanitize::owned(&f.summary),
                    fleet: true,
                    evidence: Vec::new(),
                });
                row.evidence.extend(evidence_lines(&f));
                for n in nodes {
                    if !row.nodes.contains(&n) {
                        row.nodes.push(n);
                    }
                }
                row.nodes.sort_unstable();
            }
        }
        let mut rows: Vec<RuleRow> = by_rule.into_values().collect();
        if let Some(f) = &self.filter {
            rows.retain(|r| f.matches(&format!("{} {}", r.rule, r.summary)));
        }
        rows.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.nodes.len().cmp(&a.nodes.len()))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        self.rules = rows;
        self.rules_sel = self.rules_sel.min(self.rules.len().saturating_sub(1));
    }

    /// The node under the cursor (fleet view) or on screen (node view).
    pub fn current_node(&self) -> Option<usize> {
        match self.view() {
            View::Node { node, .. } => Some(*node),
            View::Fleet { .. } => self.visible.get(self.fleet_sel).copied(),
            View::Findings => None,
        }
    }

    pub fn push(&mut self, v: View) {
        self.stack.push(v);
        self.scroll = 0;
        self.finding_sel = 0;
        self.dirty = true;
        self.rules_dirty = true;
    }

    /// Esc: one step back; at the root it clears the filter.
    pub fn back(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
            self.scroll = 0;
            self.dirty = true;
        } else if self.filter.is_some() {
            self.filter = None;
            self.dirty = true;
        }
    }

    /// Open a node by name: exact, else the first whose name contains it.
    pub fn open_node(&mut self, name: &str) -> bool {
        let i = self
            .by_name
            .get(name)
            .copied()
            .or_else(|| self.nodes.iter().position(|n| n.name.contains(name)));
        match i {
            Some(i) => {
                self.push(View::Node {
                    node: i,
                    tab: Tab::Findings,
                });
                true
            }
            None => false,
        }
    }

    /// Counts for the header: (nodes, with errors, failed, collecting).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (self.nodes.len(), 0, 0, 0);
        for n in &self.nodes {
            match n.health() {
                Health::Error => c.1 += 1,
                Health::Failed => c.2 += 1,
                _ => {}
            }
            if n.collecting {
                c.3 += 1;
            }
        }
        c
    }

    /// Text that `y` copies: the selected finding with its evidence and remedy (node view),
    /// or the selected node's worst finding / error (fleet view).
    pub fn copy_text(&self) -> Option<String> {
        match self.view() {
            View::Node { node, .. } => {
                let n = self.nodes.get(*node)?;
                let f = n.findings().get(self.finding_sel)?;
                Some(finding_text(&n.name, f))
            }
            View::Fleet { .. } => {
                let n = self.nodes.get(self.current_node()?)?;
                match n.findings().first() {
                    Some(f) => Some(finding_text(&n.name, f)),
                    None => n.error.as_ref().map(|e| format!("{}: {e}\n", n.name)),
                }
            }
            View::Findings => {
                let r = self.rules.get(self.rules_sel)?;
                let mut s = format!("{} on {} node(s): {}\n", r.rule, r.nodes.len(), r.summary);
                for e in &r.evidence {
                    s.push_str(&format!("  {e}\n"));
                }
                Some(s)
            }
        }
    }
}

/// Evidence of a finding as display lines (sanitised, `location: text`).
pub fn evidence_lines(f: &Finding) -> Vec<String> {
    let mut out = Vec::new();
    for e in &f.evidence {
        for (k, line) in e.text.lines().enumerate() {
            match (&e.location, k) {
                (Some(l), 0) => out.push(sanitize::owned(&format!("{l}: {line}"))),
                _ => out.push(sanitize::owned(line)),
            }
        }
    }
    out
}

/// A finding as plain text for the clipboard.
pub fn finding_text(node: &str, f: &Finding) -> String {
    let mut s = format!(
        "{} [{}] {}: {}\n",
        node,
        f.severity,
        sanitize::clean(&f.rule),
        sanitize::clean(&f.summary)
    );
    for e in evidence_lines(f) {
        s.push_str("  ");
        s.push_str(&e);
        s.push('\n');
    }
    if !f.remedy.is_empty() {
        s.push_str(&format!("fix: {}\n", sanitize::clean(&f.remedy)));
    }
    s
}

/// `12s`, `3m`, `2h`, `4d`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
