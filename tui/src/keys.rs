//! Key handling: a key changes the [`App`] and may ask for an [`Effect`] that the event loop
//! carries out (send a request, copy to the clipboard). Nothing here draws or does I/O, so it
//! is tested with plain key events.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{App, Mode, SortKey, Tab, View};
use crate::event::Request;

/// Something the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Request(Request),
    /// Copy this text (OSC 52 + the fallback file).
    Copy(String),
    /// Write a redacted incident bundle of this node (its latest snapshot).
    Bundle(String),
}

/// Rows a page key moves.
const PAGE: usize = 20;

/// Every key, for `?` (key, what it does). Re-collect keys are hidden with --readonly.
pub fn help_lines(readonly: bool) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("j/k, ↓/↑", "move down / up"),
        ("g/G, Home/End", "first / last row"),
        ("ctrl-d/ctrl-u, PgDn/PgUp", "page down / up"),
        (
            "Enter",
            "open the node (fleet) / the rule's nodes (findings)",
        ),
        ("Esc", "back (at the top: clear the filter)"),
        (
            "Tab/shift-Tab, l/h, 1-6",
            "node view: next / previous / pick tab",
        ),
        (
            "/REGEX, /!REGEX",
            "filter nodes by name and finding text (! inverts)",
        ),
        (
            "O",
            "sort by the next column (worst, name, outcome, errors, …)",
        ),
        ("I", "invert the sort"),
        ("f, :findings", "each rule across the fleet"),
        ("v", "Logs tab: minimum level (all, info, warn, error)"),
        ("space, ctrl-f", "freeze / unfreeze updates"),
        ("y", "copy the selected evidence (OSC 52 and a file)"),
        (":", "command: node NAME, findings, fleet, sort COL, q"),
        ("?", "this help"),
        ("q, ctrl-c", "quit"),
    ];
    if !readonly {
        v.insert(
            10,
            ("r/ctrl-r, R", "re-collect the selected node / the fleet"),
        );
        v.insert(11, ("b", "redacted bundle of the node (.tar.gz + map)"));
    }
    v
}

/// Apply one key.
pub fn handle(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    // Keys act on what is (or would be) on screen: rows after the latest filter and sort.
    app.refresh_derived();
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        app.quit = true;
        return Vec::new();
    }
    match app.mode.clone() {
        Mode::Help => {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
            ) {
                app.mode = Mode::Normal;
            }
            Vec::new()
        }
        // Control chords are not text.
        Mode::Filter(_) | Mode::Command(_) if ctrl => Vec::new(),
        Mode::Filter(text) => {
            filter_key(app, text, key);
            Vec::new()
        }
        Mode::Command(text) => command_key(app, text, key),
        Mode::Normal => normal_key(app, key, ctrl),
    }
}

fn filter_key(app: &mut App, mut text: String, key: KeyEvent) {
    match key.code {
        KeyCode::Esc => {
            app.mode = Mode::Normal;
            let _ = app.set_filter("");
            app.status = None;
        }
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            apply_filter(app, &text);
        }
        KeyCode::Backspace => {
            text.pop();
            apply_filter(app, &text);
            app.mode = Mode::Filter(text);
        }
        KeyCode::Char(c) => {
            text.push(c);
            apply_filter(app, &text);
            app.mode = Mode::Filter(text);
        }
        _ => {}
    }
}

fn apply_filter(app: &mut App, text: &str) {
    match app.set_filter(text) {
        Ok(()) => app.status = None,
        // Typing a regex passes through invalid states (`[a`): keep the last good filter.
        Err(e) => app.status = Some(e),
    }
}

fn command_key(app: &mut App, mut text: String, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => app.mode = Mode::Normal,
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            return run_command(app, text.trim());
        }
        KeyCode::Backspace => {
            if text.pop().is_none() {
                app.mode = Mode::Normal;
            } else {
                app.mode = Mode::Command(text);
            }
        }
        KeyCode::Char(c) => {
            text.push(c);
            app.mode = Mode::Command(text);
        }
        _ => {}
    }
    Vec::new()
}

/// `:` commands.
pub fn run_command(app: &mut App, cmd: &str) -> Vec<Effect> {
    let (word, rest) = match cmd.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (cmd, ""),
    };
    match word {
        "q" | "q!" | "quit" | "exit" => app.quit = true,
        "findings" | "f" | "rules" => open_findings(app),
        "fleet" | "nodes" => {
            app.stack.truncate(1);
            app.stack[0] = View::Fleet { rule: None };
            app.mark_dirty();
        }
        "node" | "no" => {
            if rest.is_empty() {
                app.status = Some(":node needs a NAME".into());
            } else if !app.open_node(rest) {
                app.status = Some(format!(
                    "no node matches '{}'",
                    crate::sanitize::clean(rest)
                ));
            }
        }
        "sort" => match SortKey::parse(rest) {
            Some(k) => app.set_sort(k),
            None => {
                let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.name()).collect();
                app.status = Some(format!("sort by one of: {}", names.join(", ")));
            }
        },
        "help" | "h" => app.mode = Mode::Help,
        "" => {}
        other => {
            app.status = Some(format!(
                "unknown command ':{}' (try :node NAME, :findings, :fleet, :sort COL, :q)",
                crate::sanitize::clean(other)
            ))
        }
    }
    Vec::new()
}

fn open_findings(app: &mut App) {
    if !matches!(app.view(), View::Findings) {
        app.push(View::Findings);
    }
}

fn normal_key(app: &mut App, key: KeyEvent, ctrl: bool) -> Vec<Effect> {
    let mut effects = Vec::new();
    match (key.code, ctrl) {
        (KeyCode::Char('q'), false) => app.quit = true,
        (KeyCode::Char('?'), _) => app.mode = Mode::Help,
        (KeyCode::Char('/'), false) => {
            let current = app
                .filter
                .as_ref()
                .map(|f| f.text.clone())
                .unwrap_or_default();
            app.mode = Mode::Filter(current);
        }
        (KeyCode::Char(':'), _) => app.mode = Mode::Command(String::new()),
        (KeyCode::Char(' '), _) | (KeyCode::Char('f'), true) => {
            let f = !app.frozen;
            app.set_frozen(f);
        }
        (KeyCode::Char('j'), false) | (KeyCode::Down, _) => move_sel(app, 1),
        (KeyCode::Char('k'), false) | (KeyCode::Up, _) => move_sel(app, -1),
        (KeyCode::Char('d'), true) | (KeyCode::PageDown, _) => move_sel(app, PAGE as isize),
        (KeyCode::Char('u'), true) | (KeyCode::PageUp, _) => move_sel(app, -(PAGE as isize)),
        (KeyCode::Char('g'), false) | (KeyCode::Home, _) => move_sel(app, isize::MIN / 2),
        (KeyCode::Char('G'), _) | (KeyCode::End, _) => move_sel(app, isize::MAX / 2),
        (KeyCode::Enter, _) => enter(app),
        (KeyCode::Esc, _) => app.back(),
        (KeyCode::Tab, _) | (KeyCode::Right, _) | (KeyCode::Char('l'), false) => {
            set_tab(app, |t| t.next())
        }
        (KeyCode::BackTab, _) | (KeyCode::Left, _) | (KeyCode::Char('h'), false) => {
            set_tab(app, |t| t.prev())
        }
        (KeyCode::Char(c @ '1'..='6'), false) => {
            let i = (c as usize) - ('1' as usize);
            set_tab(app, |_| Tab::ALL[i]);
        }
        (KeyCode::Char('O'), _) | (KeyCode::Char('o'), false) => {
            let k = app.sort.next();
            app.set_sort(k);
            app.status = Some(format!("sorted by {}", k.name()));
        }
        (KeyCode::Char('I'), _) => {
            app.toggle_reverse();
            app.status = Some(format!(
                "sorted by {}{}",
                app.sort.name(),
                if app.reverse { " (inverted)" } else { "" }
            ));
        }
        (KeyCode::Char('f'), false) => open_findings(app),
        (KeyCode::Char('v'), false) => {
            app.log_level = app.log_level.next();
            app.scroll = 0;
        }
        (KeyCode::Char('r'), _) => {
            if let Some(e) = recollect(app, false) {
                effects.push(e);
            }
        }
        (KeyCode::Char('R'), _) => {
            if let Some(e) = recollect(app, true) {
                effects.push(e);
            }
        }
        (KeyCode::Char('b'), false) => {
            if let Some(e) = bundle(app) {
                effects.push(e);
            }
        }
        (KeyCode::Char('y'), false) => match app.copy_text() {
            Some(t) => effects.push(Effect::Copy(t)),
            None => app.status = Some("nothing to copy here".into()),
        },
        _ => {}
    }
    effects
}

fn bundle(app: &mut App) -> Option<Effect> {
    if app.opts.readonly {
        app.status = Some("read-only: bundles are disabled".into());
        return None;
    }
    let Some(n) = app.current_node().and_then(|i| app.nodes.get(i)) else {
        app.status = Some("select a node to bundle".into());
        return None;
    };
    if n.snapshot.is_none() {
        let why = format!("no snapshot of {} to bundle (yet)", n.name);
        app.status = Some(crate::sanitize::owned(&why));
        return None;
    }
    let name = n.name.clone();
    app.status = Some(crate::sanitize::owned(&format!(
        "writing a bundle of {name}…"
    )));
    Some(Effect::Bundle(name))
}

fn recollect(app: &mut App, all: bool) -> Option<Effect> {
    if app.opts.readonly {
        app.status = Some("read-only: re-collection is disabled".into());
        return None;
    }
    if !app.opts.can_recollect {
        app.status = Some("these inputs cannot be re-collected".into());
        return None;
    }
    if all {
        app.status = Some("re-collecting the fleet".into());
        app.last_round = app.now;
        return Some(Effect::Request(Request::RecollectAll));
    }
    let i = app.current_node()?;
    let name = app.nodes.get(i)?.name.clone();
    app.status = Some(format!("re-collecting {name}"));
    Some(Effect::Request(Request::Recollect(name)))
}

fn enter(app: &mut App) {
    match app.view().clone() {
        View::Fleet { .. } => {
            if let Some(i) = app.current_node() {
                app.push(View::Node {
                    node: i,
                    tab: Tab::Findings,
                });
            }
        }
        View::Findings => {
            if let Some(r) = app.rules.get(app.rules_sel) {
                let rule = r.rule.clone();
                app.push(View::Fleet { rule: Some(rule) });
                app.fleet_sel = 0;
            }
        }
        View::Node { .. } => {}
    }
}

fn set_tab(app: &mut App, f: impl Fn(Tab) -> Tab) {
    if let Some(View::Node { tab, .. }) = app.stack.last_mut() {
        *tab = f(*tab);
        app.scroll = 0;
    }
}

fn step(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let next = (cur as isize).saturating_add(delta);
    next.clamp(0, len as isize - 1) as usize
}

fn move_sel(app: &mut App, delta: isize) {
    match app.view().clone() {
        View::Fleet { .. } => app.fleet_sel = step(app.fleet_sel, delta, app.visible.len()),
        View::Findings => app.rules_sel = step(app.rules_sel, delta, app.rules.len()),
        View::Node { node, tab } => {
            if tab == Tab::Findings {
                let n = app.nodes.get(node).map(|n| n.findings().len()).unwrap_or(0);
                app.finding_sel = step(app.finding_sel, delta, n);
            } else {
                // Clamped by the drawing code to the content length.
                app.scroll = step(app.scroll, delta, usize::MAX / 4);
            }
        }
    }
}
