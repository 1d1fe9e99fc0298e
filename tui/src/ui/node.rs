//! Node view: a tab bar (Findings / SNAT / Routing / Conntrack / Logs) over one node.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;

use super::{tabs, Theme};
use crate::app::{evidence_lines, finding_key, severity_marker, App, NodeEntry, Tab};
use crate::sanitize;

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme, node: usize, tab: Tab) {
    let [bar, info, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    let titles: Vec<String> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()))
        .collect();
    let sel = Tab::ALL.iter().position(|t| *t == tab).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(sel)
            .highlight_style(theme.selected())
            .divider("|"),
        bar,
    );
    let Some(n) = app.nodes.get(node) else {
        return;
    };
    f.render_widget(Paragraph::new(info_line(n, theme)), info);
    let width = body.width as usize;
    let height = body.height as usize;
    let lines: Vec<Line<'static>> = match (tab, n.snapshot.as_deref(), n.report.as_ref()) {
        (Tab::Findings, _, _) => {
            let (lines, sel_line) = findings_lines(n, app.finding_sel, theme, width);
            // Keep the selected finding's first line on screen.
            super::keep_visible(sel_line, &mut app.scroll, height, lines.len());
            if sel_line < app.scroll + height && app.scroll > sel_line {
                app.scroll = sel_line;
            }
            lines
        }
        (Tab::Changes, _, _) => tabs::changes(n.changes.as_ref(), theme),
        (_, Some(s), Some(r)) => match tab {
            Tab::Snat => tabs::snat(s, r, theme),
            Tab::Routing => tabs::routing(s, r, theme),
            Tab::Conntrack => tabs::conntrack(s, r, theme),
            Tab::Logs => tabs::logs(s, app.log_level, theme),
            Tab::Findings | Tab::Changes => Vec::new(),
        },
        _ => vec![Line::from(Span::styled(
            "no snapshot from this node yet",
            theme.dim(),
        ))],
    };
    if tab != Tab::Findings {
        let max = lines.len().saturating_sub(height);
        app.scroll = app.scroll.min(max);
    }
    let start = app.scroll.min(lines.len());
    let end = (start + height).min(lines.len());
    f.render_widget(Paragraph::new(lines[start..end].to_vec()), body);
}

fn info_line(n: &NodeEntry, theme: Theme) -> Line<'static> {
    let h = n.health();
    let mut spans = vec![
        Span::styled(format!("{} ", h.marker()), theme.health(h)),
        Span::styled(n.name.clone(), theme.title()),
    ];
    let mut facts = Vec::new();
    if let Some(z) = &n.zone {
        facts.push(z.clone());
    }
    if let Some(t) = &n.instance_type {
        facts.push(t.clone());
    }
    if let Some(o) = n.outcome {
        facts.push(o.as_str().to_string());
    }
    if let Some(s) = n.snapshot.as_deref() {
        if !s.collected_at.is_empty() {
            facts.push(format!("collected {}", sanitize::clean(&s.collected_at)));
        }
    }
    if n.collecting {
        facts.push("re-collecting…".into());
    }
    spans.push(Span::raw(format!("  {}", facts.join(" · "))));
    if let Some(e) = &n.error {
        spans.push(Span::styled(format!("  {e}"), theme.bad()));
    }
    Line::from(spans)
}

/// The Findings tab and the line index where the selected finding starts.
fn findings_lines(
    n: &NodeEntry,
    sel: usize,
    theme: Theme,
    width: usize,
) -> (Vec<Line<'static>>, usize) {
    let mut lines = Vec::new();
    let mut sel_line = 0;
    let fs = n.findings();
    if fs.is_empty() && n.cleared.is_empty() {
        let msg = match (&n.report, &n.error) {
            (Some(_), _) => "no findings: SNAT, routing and conntrack look as expected",
            (None, Some(_)) => "no data: the collection failed (see above)",
            (None, None) => "waiting for data",
        };
        lines.push(Line::from(Span::styled(msg, theme.good())));
    }
    for (i, f) in fs.iter().enumerate() {
        if i == sel {
            sel_line = lines.len();
        }
        let is_new = n.rounds > 1 && n.appeared.contains(&finding_key(f));
        let head_style = if i == sel {
            theme.selected()
        } else {
            Style::default()
        };
        let mut spans = vec![
            Span::styled(if i == sel { "> " } else { "  " }, head_style),
            Span::styled(
                format!("{:<4} ", severity_marker(f.severity)),
                theme.severity(f.severity),
            ),
            Span::styled(sanitize::owned(&f.rule), theme.title()),
        ];
        if is_new {
            spans.push(Span::styled(" NEW", theme.bad()));
        }
        spans.push(Span::raw(format!("  {}", sanitize::clean(&f.summary))));
        lines.push(Line::from(spans));
        for e in evidence_lines(f) {
            lines.push(Line::from(Span::styled(format!("      {e}"), theme.bad())));
        }
        for (label, text) in [("why", &f.explanation), ("fix", &f.remedy)] {
            if text.is_empty() {
                continue;
            }
            let prefix = format!("      {label}: ");
            for (k, l) in wrap(&sanitize::clean(text), width.saturating_sub(prefix.len()))
                .into_iter()
                .enumerate()
            {
                let p = if k == 0 {
                    prefix.clone()
                } else {
                    " ".repeat(prefix.len())
                };
                let style = if label == "fix" {
                    theme.good()
                } else {
                    Style::default()
                };
                lines.push(Line::from(vec![
                    Span::styled(p, theme.dim()),
                    Span::styled(l, style),
                ]));
            }
        }
        lines.push(Line::from(""));
    }
    for f in &n.cleared {
        lines.push(Line::from(vec![
            Span::styled("  CLEARED ", theme.good()),
            Span::styled(sanitize::owned(&f.rule), theme.title()),
            Span::raw(format!("  {}", sanitize::clean(&f.summary))),
        ]));
    }
    (lines, sel_line)
}

/// Greedy word wrap to `width` columns (at least 20).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(20);
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
