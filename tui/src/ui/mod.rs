//! Drawing: one file per view; this module lays out header, body and footer and holds the
//! theme. Drawing reads the [`App`] and only adjusts scroll offsets so the selection stays on
//! screen.

mod findings;
mod fleet;
mod help;
mod node;
mod tabs;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, Health, Mode, View};
use model::Severity;

/// Colours when allowed, and the styles that also work without them.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Health::Failed => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            Health::Warning => self.fg(Color::Yellow),
            Health::Info => self.fg(Color::Cyan),
            Health::Ok => self.fg(Color::Green),
            Health::Pending => self.fg(Color::DarkGray),
        }
    }

    pub fn severity(self, s: Severity) -> Style {
        self.health(match s {
            Severity::Error => Health::Error,
            Severity::Warning => Health::Warning,
            Severity::Info => Health::Info,
        })
    }

    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn title(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// The selected row: reverse video reads on any terminal.
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn header(self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}

/// Draw one frame.
pub fn draw(f: &mut Frame<'_>, app: &mut App) {
    app.refresh_derived();
    let theme = Theme {
        color: app.opts.color,
    };
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, head, app, theme);
    match app.view().clone() {
        View::Fleet { rule } => fleet::draw(f, body, app, theme, rule.as_deref()),
        View::Node { node, tab } => node::draw(f, body, app, theme, node, tab),
        View::Findings => findings::draw(f, body, app, theme),
    }
    draw_footer(f, foot, app, theme);
    if app.mode == Mode::Help {
        help::draw(f, body, app, theme);
    }
}

/// `fleet > ip-10-0-1-5 > SNAT` from the navigation stack.
pub fn breadcrumbs(app: &App) -> String {
    let mut parts = Vec::new();
    for v in &app.stack {
        match v {
            View::Fleet { rule: None } => parts.push("fleet".to_string()),
            View::Fleet { rule: Some(r) } => parts.push(format!("nodes with {r}")),
            View::Findings => parts.push("findings".to_string()),
            View::Node { node, tab } => {
                let name = app.nodes.get(*node).map(|n| n.name.as_str()).unwrap_or("?");
                parts.push(name.to_string());
                parts.push(tab.title().to_string());
            }
        }
    }
    parts.join(" > ")
}

fn draw_header(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (n, err, failed, collecting) = app.counts();
    let mut right = format!("{n} nodes  {err} ERR  {failed} FAIL");
    if let Some((done, total)) = app.progress {
        if done < total {
            right.push_str(&format!("  collecting {done}/{total}"));
        }
    } else if collecting > 0 {
        right.push_str(&format!("  collecting {collecting}"));
    }
    if app.frozen {
        right.push_str(&format!("  FROZEN ({} pending)", app.pending.len()));
    }
    if app.opts.readonly {
        right.push_str("  READ-ONLY");
    }
    let left = format!(" diag tui  {}", breadcrumbs(app));
    let width = area.width as usize;
    let pad = width.saturating_sub(left.chars().count() + right.chars().count() + 1);
    let text = format!("{left}{}{right} ", " ".repeat(pad));
    f.render_widget(Paragraph::new(text).style(theme.header()), area);
}

fn draw_footer(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let line = match &app.mode {
        Mode::Filter(t) => Line::from(vec![Span::styled("/", theme.title()), Span::raw(t.clone())]),
        Mode::Command(t) => {
            Line::from(vec![Span::styled(":", theme.title()), Span::raw(t.clone())])
        }
        _ => {
            if let Some(s) = &app.status {
                Line::from(Span::styled(s.clone(), theme.title()))
            } else {
                Line::from(Span::styled(footer_keys(app), theme.dim()))
            }
        }
    };
    if matches!(app.mode, Mode::Filter(_) | Mode::Command(_)) {
        let x = area.x + line.width() as u16;
        f.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
    }
    f.render_widget(Paragraph::new(line), area);
}

fn footer_keys(app: &App) -> String {
    let rc = if app.opts.readonly || !app.opts.can_recollect {
        ""
    } else {
        " r/R re-collect"
    };
    let bundle = if app.opts.readonly { "" } else { "  b bundle" };
    let filter = match &app.filter {
        Some(fl) => format!(" [/{}]", fl.text),
        None => String::new(),
    };
    match app.view() {
        View::Fleet { .. } => format!(
            "Enter open  / filter  O sort:{}{}  I invert  f findings{rc}  space freeze  ? help  q quit{filter}",
            app.sort.name(),
            if app.reverse { "↑" } else { "" }
        ),
        View::Node { .. } => format!(
            "Esc back  Tab/1-6 tabs  j/k move  y copy{bundle}  v log level{rc}  space freeze  ? help  q quit"
        ),
        View::Findings => format!("Enter nodes  Esc back  / filter  y copy  ? help  q quit{filter}"),
    }
}

/// Keep `sel` inside the window [offset, offset + height).
pub fn keep_visible(sel: usize, offset: &mut usize, height: usize, len: usize) {
    if height == 0 {
        return;
    }
    if sel < *offset {
        *offset = sel;
    } else if sel >= *offset + height {
        *offset = sel + 1 - height;
    }
    let max = len.saturating_sub(height);
    if *offset > max {
        *offset = max;
    }
}
