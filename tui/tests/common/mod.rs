//! Fixtures: snapshots collected from emulated EKS nodes (see fixtures/README.md).
#![allow(dead_code)]

use std::path::PathBuf;

use model::{Outcome, Snapshot};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui::{App, Event, NodeResult, NodeUpdate, Options};

pub fn fixture(name: &str) -> Snapshot {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Snapshot::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The same snapshot under another node name (the emulated nodes share this machine's
/// hostname; a fleet run names them by target).
pub fn named(name: &str, fixture_name: &str) -> Snapshot {
    let mut s = fixture(fixture_name);
    s.hostname = name.to_string();
    s
}

pub fn finished(app: &mut App, name: &str, s: Snapshot) {
    app.handle_event(Event::Node(NodeUpdate::Finished(Box::new(NodeResult::ok(
        name, s,
    )))));
}

pub fn failed(app: &mut App, name: &str, outcome: Outcome, error: &str) {
    app.handle_event(Event::Node(NodeUpdate::Finished(Box::new(
        NodeResult::failed(name, outcome, error),
    ))));
}

pub fn opts(color: bool) -> Options {
    Options {
        color,
        copy_file: std::env::temp_dir().join(format!("tui-test-copy-{}.txt", std::process::id())),
        source: "test".into(),
        ..Options::default()
    }
}

/// Three healthy nodes.
pub fn healthy_fleet(color: bool) -> App {
    let mut app = App::new(opts(color));
    for n in ["ip-192-168-1-10", "ip-192-168-1-11", "ip-192-168-2-12"] {
        finished(&mut app, n, named(n, "healthy"));
    }
    app
}

/// Healthy nodes, broken nodes (each a different injected fault) and unreachable ones.
pub fn mixed_fleet(color: bool) -> App {
    let mut app = App::new(opts(color));
    finished(
        &mut app,
        "ip-192-168-1-10",
        named("ip-192-168-1-10", "healthy"),
    );
    finished(
        &mut app,
        "ip-192-168-1-11",
        named("ip-192-168-1-11", "healthy"),
    );
    finished(
        &mut app,
        "ip-192-168-1-20",
        named("ip-192-168-1-20", "no-snat-rule"),
    );
    finished(
        &mut app,
        "ip-192-168-2-21",
        named("ip-192-168-2-21", "wrong-to-source"),
    );
    finished(
        &mut app,
        "ip-192-168-2-22",
        named("ip-192-168-2-22", "no-eni-default-route"),
    );
    failed(
        &mut app,
        "ip-192-168-3-30",
        Outcome::Unreachable,
        "connect 192.168.3.30:22: connection refused",
    );
    failed(
        &mut app,
        "ip-192-168-3-31",
        Outcome::HostkeyMismatch,
        "host key for 192.168.3.31 changed (known_hosts line 4)",
    );
    app
}

pub fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| panic!("{e}"));
    t.draw(|f| tui::ui::draw(f, app))
        .unwrap_or_else(|e| panic!("{e}"));
    t
}

/// The buffer as plain text lines.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn key(c: char) -> ratatui::crossterm::event::KeyEvent {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let m = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(KeyCode::Char(c), m)
}

pub fn code(c: ratatui::crossterm::event::KeyCode) -> ratatui::crossterm::event::KeyEvent {
    ratatui::crossterm::event::KeyEvent::new(c, ratatui::crossterm::event::KeyModifiers::NONE)
}

pub fn ctrl(c: char) -> ratatui::crossterm::event::KeyEvent {
    ratatui::crossterm::event::KeyEvent::new(
        ratatui::crossterm::event::KeyCode::Char(c),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )
}

pub fn type_str(app: &mut App, s: &str) -> Vec<tui::keys::Effect> {
    let mut eff = Vec::new();
    for c in s.chars() {
        eff.extend(tui::keys::handle(app, key(c)));
    }
    eff
}
