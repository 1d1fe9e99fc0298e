//! Fleet view: one row per node, worst first; only the rows on screen are built.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{keep_visible, Theme};
use crate::app::{age, App, NodeEntry};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme, rule: Option<&str>) {
    if app.nodes.is_empty() {
        let msg = match app.progress {
            Some((d, t)) => format!(" waiting for the first node ({d}/{t} collected)…"),
            None => " waiting for the first node…".to_string(),
        };
        f.render_widget(Paragraph::new(msg).style(theme.dim()), area);
        return;
    }
    // One header line; the rest are rows.
    let height = area.height.saturating_sub(1) as usize;
    let len = app.visible.len();
    keep_visible(app.fleet_sel, &mut app.fleet_offset, height, len);
    if len == 0 {
        let why = match (rule, &app.filter) {
            (_, Some(fl)) => format!(" no node matches /{}  (Esc clears the filter)", fl.text),
            (Some(r), None) => format!(" no node has {r} any more"),
            _ => " no nodes".to_string(),
        };
        f.render_widget(Paragraph::new(why).style(theme.dim()), area);
        return;
    }
    let wide = area.width >= 140;
    let medium = area.width >= 100;
    let mut header = vec!["", "NODE"];
    let mut widths = vec![Constraint::Length(4), Constraint::Min(16)];
    if medium {
        header.push("ZONE");
        widths.push(Constraint::Length(11));
    }
    if wide {
        header.push("TYPE");
        widths.push(Constraint::Length(11));
    }
    header.extend(["OUTCOME", "SNAT", "ERR", "WRN", "Δ", "TOP FINDING", "AGE"]);
    widths.extend([
        Constraint::Length(if medium { 16 } else { 11 }),
        Constraint::Length(8),
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Length(5),
        Constraint::Fill(if wide { 3 } else { 2 }),
        Constraint::Length(4),
    ]);
    let start = app.fleet_offset.min(len);
    let end = (start + height).min(len);
    let now = app.now;
    let rows: Vec<Row<'_>> = app.visible[start..end]
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let n = &app.nodes[i];
            let row = node_row(n, theme, medium, wide, now);
            if start + k == app.fleet_sel {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.title()))
        .column_spacing(1);
    f.render_widget(table, area);
}

fn node_row<'a>(
    n: &'a NodeEntry,
    theme: Theme,
    medium: bool,
    wide: bool,
    now: std::time::Instant,
) -> Row<'a> {
    let h = n.health();
    let mut cells: Vec<Line<'a>> = vec![
        Line::from(Span::styled(h.marker(), theme.health(h))),
        Line::from(if n.collecting {
            format!("{} *", n.name)
        } else {
            n.name.clone()
        }),
    ];
    if medium {
        cells.push(Line::from(n.zone.as_deref().unwrap_or("-")));
    }
    if wide {
        cells.push(Line::from(n.instance_type.as_deref().unwrap_or("-")));
    }
    let outcome = match (n.outcome, n.collecting) {
        (Some(o), _) => o.as_str(),
        (None, true) => "collecting",
        (None, false) => "pending",
    };
    let outcome_style = match n.outcome {
        Some(o) if !o.is_success() => theme.health(h),
        _ => Style::default(),
    };
    let delta = match (n.appeared.len(), n.cleared.len()) {
        (0, 0) => String::new(),
        (a, 0) => format!("+{a}"),
        (0, c) => format!("-{c}"),
        (a, c) => format!("+{a}-{c}"),
    };
    let count = |c: usize, s: Style| {
        if c == 0 {
            Line::from(Span::styled("0", theme.dim()))
        } else {
            Line::from(Span::styled(c.to_string(), s))
        }
    };
    cells.push(Line::from(Span::styled(outcome, outcome_style)));
    cells.push(Line::from(n.snat_mode.as_str()));
    cells.push(count(n.errors, theme.health(crate::app::Health::Error)));
    cells.push(count(n.warnings, theme.health(crate::app::Health::Warning)));
    cells.push(Line::from(Span::styled(delta, theme.title())));
    cells.push(Line::from(n.top.as_str()));
    cells.push(Line::from(
        n.received
            .map(|t| age(now.saturating_duration_since(t)))
            .unwrap_or_else(|| "-".into()),
    ));
    Row::new(cells)
}
