//! Findings view: each rule id across the fleet, worst and most widespread first; the
//! selected rule's evidence (for fleet rules: the lines that differ from the majority).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use super::{keep_visible, Theme};
use crate::app::{severity_marker, App};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) {
    if app.rules.is_empty() {
        let msg = if app.filter.is_some() {
            " no rule matches the filter (Esc clears it)"
        } else {
            " no findings on any node"
        };
        f.render_widget(Paragraph::new(msg).style(theme.dim()), area);
        return;
    }
    let detail_h = (area.height / 3).clamp(3, 12);
    let [list, detail] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(detail_h)]).areas(area);
    let height = list.height.saturating_sub(1) as usize;
    let len = app.rules.len();
    keep_visible(app.rules_sel, &mut app.rules_offset, height, len);
    let total = app.nodes.len();
    let start = app.rules_offset.min(len);
    let end = (start + height).min(len);
    let rows: Vec<Row<'_>> = app.rules[start..end]
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let row = Row::new(vec![
                Line::from(Span::styled(
                    severity_marker(r.severity),
                    theme.severity(r.severity),
                )),
                Line::from(r.rule.as_str()),
                Line::from(format!("{}/{}", r.nodes.len(), total)),
                Line::from(r.summary.as_str()),
            ]);
            if start + k == app.rules_sel {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(30),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(vec!["", "RULE", "NODES", "SUMMARY"]).style(theme.title()))
    .column_spacing(1);
    f.render_widget(table, list);

    if let Some(r) = app.rules.get(app.rules_sel) {
        let names: Vec<&str> = r
            .nodes
            .iter()
            .take(8)
            .filter_map(|&i| app.nodes.get(i).map(|n| n.name.as_str()))
            .collect();
        let more = r.nodes.len().saturating_sub(names.len());
        let mut lines = vec![Line::from(vec![
            Span::styled("on: ", theme.title()),
            Span::raw(names.join(", ")),
            Span::raw(if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }),
        ])];
        if r.fleet {
            lines.push(Line::from(Span::styled(
                "differs from the majority:",
                theme.title(),
            )));
        }
        for e in r.evidence.iter().take(detail_h as usize) {
            lines.push(Line::from(Span::styled(format!("  {e}"), theme.bad())));
        }
        f.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::TOP)
                    .title(format!(" {} (Enter lists the nodes) ", r.rule)),
            ),
            detail,
        );
    }
}
