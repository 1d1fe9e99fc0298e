//! Key handling as state changes: filter, inverted filter, sort, drill-down, back, tabs,
//! freeze, help, command line, re-collect requests, read-only, live marks, copy.

mod common;

use common::*;
use model::Outcome;
use ratatui::crossterm::event::KeyCode;
use tui::app::{Mode, SortKey, Tab, View};
use tui::keys::{handle, Effect};
use tui::{Event, NodeUpdate, Request};

fn visible_names(app: &mut tui::App) -> Vec<String> {
    app.refresh_derived();
    app.visible
        .iter()
        .map(|&i| app.nodes[i].name.clone())
        .collect()
}

#[test]
fn slash_filters_by_regex_over_names_and_findings_and_bang_inverts() {
    let mut app = mixed_fleet(true);
    handle(&mut app, key('/'));
    type_str(&mut app, "ip-192-168-3-");
    assert_eq!(app.mode, Mode::Filter("ip-192-168-3-".into()));
    assert_eq!(
        visible_names(&mut app),
        vec!["ip-192-168-3-30", "ip-192-168-3-31"]
    );
    handle(&mut app, code(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    // Finding text: the rule id of the deleted SNAT rule.
    handle(&mut app, key('/'));
    for _ in 0.."ip-192-168-3-".len() {
        handle(&mut app, code(KeyCode::Backspace));
    }
    type_str(&mut app, "snat\\.");
    let hits = visible_names(&mut app);
    assert!(hits.contains(&"ip-192-168-1-20".to_string()), "{hits:?}");
    assert!(!hits.contains(&"ip-192-168-1-10".to_string()), "{hits:?}");
    // Inverted: everything else.
    handle(&mut app, code(KeyCode::Home));
    let mut inv = app.clone_filter_text();
    inv.insert(0, '!');
    app.set_filter(&inv).unwrap_or_else(|e| panic!("{e}"));
    let rest = visible_names(&mut app);
    assert_eq!(rest.len() + hits.len(), 7, "{rest:?} + {hits:?}");
    assert!(rest.contains(&"ip-192-168-1-10".to_string()));
    // Esc clears.
    handle(&mut app, code(KeyCode::Esc));
    handle(&mut app, code(KeyCode::Esc));
    assert_eq!(visible_names(&mut app).len(), 7);
}

trait FilterText {
    fn clone_filter_text(&self) -> String;
}
impl FilterText for tui::App {
    fn clone_filter_text(&self) -> String {
        self.filter
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default()
    }
}

#[test]
fn typed_inverted_filter_and_bad_regex_keeps_the_last_good_one() {
    let mut app = mixed_fleet(true);
    handle(&mut app, key('/'));
    type_str(&mut app, "!ip-192-168-1-");
    let names = visible_names(&mut app);
    assert!(
        names.iter().all(|n| !n.starts_with("ip-192-168-1-")),
        "{names:?}"
    );
    assert_eq!(names.len(), 4);
    type_str(&mut app, "[");
    assert!(app.status.as_deref().unwrap_or("").contains("bad regex"));
    assert_eq!(visible_names(&mut app).len(), 4);
}

#[test]
fn sort_cycles_columns_and_inverts() {
    let mut app = mixed_fleet(true);
    let worst = visible_names(&mut app);
    assert_eq!(app.sort, SortKey::Worst);
    handle(&mut app, key('O'));
    assert_eq!(app.sort, SortKey::Name);
    let by_name = visible_names(&mut app);
    let mut sorted = by_name.clone();
    sorted.sort();
    assert_eq!(by_name, sorted);
    assert_ne!(worst, by_name);
    handle(&mut app, key('I'));
    let mut rev = sorted.clone();
    rev.reverse();
    assert_eq!(visible_names(&mut app), rev);
    tui::keys::run_command(&mut app, "sort errors");
    assert_eq!(app.sort, SortKey::Errors);
}

#[test]
fn enter_drills_in_tabs_switch_and_esc_goes_back() {
    let mut app = mixed_fleet(true);
    visible_names(&mut app);
    handle(&mut app, key('j'));
    let target = app.visible[1];
    handle(&mut app, code(KeyCode::Enter));
    assert_eq!(
        app.view(),
        &View::Node {
            node: target,
            tab: Tab::Findings
        }
    );
    handle(&mut app, code(KeyCode::Tab));
    assert!(matches!(app.view(), View::Node { tab: Tab::Snat, .. }));
    handle(&mut app, key('5'));
    assert!(matches!(app.view(), View::Node { tab: Tab::Logs, .. }));
    handle(&mut app, code(KeyCode::BackTab));
    assert!(matches!(
        app.view(),
        View::Node {
            tab: Tab::Conntrack,
            ..
        }
    ));
    handle(&mut app, code(KeyCode::Esc));
    assert!(matches!(app.view(), View::Fleet { rule: None }));
    // The selection stayed on the node we opened.
    assert_eq!(app.current_node(), Some(target));
}

#[test]
fn findings_view_enter_lists_the_nodes_of_that_rule() {
    let mut app = mixed_fleet(true);
    tui::keys::run_command(&mut app, "findings");
    app.refresh_derived();
    assert!(matches!(app.view(), View::Findings));
    assert!(!app.rules.is_empty());
    // The first node-level rule (fleet rules such as config drift have no per-node finding).
    let k = app
        .rules
        .iter()
        .position(|r| !r.fleet)
        .unwrap_or(usize::MAX);
    for _ in 0..k {
        handle(&mut app, key('j'));
    }
    let rule = app.rules[k].rule.clone();
    let expected = app.rules[k].nodes.len();
    handle(&mut app, code(KeyCode::Enter));
    assert_eq!(
        app.view(),
        &View::Fleet {
            rule: Some(rule.clone())
        }
    );
    let names = visible_names(&mut app);
    assert_eq!(names.len(), expected, "{names:?}");
    for &i in &app.visible {
        assert!(app.nodes[i].findings().iter().any(|f| f.rule == rule));
    }
    handle(&mut app, code(KeyCode::Esc));
    assert!(matches!(app.view(), View::Findings));
}

#[test]
fn freeze_buffers_updates_until_unfrozen() {
    let mut app = healthy_fleet(true);
    handle(&mut app, key(' '));
    assert!(app.frozen);
    failed(
        &mut app,
        "ip-192-168-9-99",
        Outcome::Timeout,
        "timed out after 60s",
    );
    assert_eq!(app.nodes.len(), 3);
    assert_eq!(app.pending.len(), 1);
    handle(&mut app, ctrl('f'));
    assert!(!app.frozen);
    assert_eq!(app.nodes.len(), 4);
    assert!(app.pending.is_empty());
}

#[test]
fn help_opens_and_closes() {
    let mut app = healthy_fleet(true);
    handle(&mut app, key('?'));
    assert_eq!(app.mode, Mode::Help);
    handle(&mut app, key('j'));
    assert_eq!(app.mode, Mode::Help);
    handle(&mut app, code(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn quit_keys_and_command() {
    for k in [key('q'), ctrl('c')] {
        let mut app = healthy_fleet(true);
        handle(&mut app, k);
        assert!(app.quit);
    }
    let mut app = healthy_fleet(true);
    handle(&mut app, key(':'));
    type_str(&mut app, "q");
    assert!(!app.quit);
    handle(&mut app, code(KeyCode::Enter));
    assert!(app.quit);
}

#[test]
fn command_line_opens_a_node_and_reports_unknowns() {
    let mut app = mixed_fleet(true);
    handle(&mut app, key(':'));
    type_str(&mut app, "node ip-192-168-2-21");
    handle(&mut app, code(KeyCode::Enter));
    match app.view() {
        View::Node { node, .. } => assert_eq!(app.nodes[*node].name, "ip-192-168-2-21"),
        v => panic!("{v:?}"),
    }
    tui::keys::run_command(&mut app, "bogus");
    assert!(app
        .status
        .as_deref()
        .unwrap_or("")
        .contains("unknown command"));
    tui::keys::run_command(&mut app, "node nothing-like-this");
    assert!(app
        .status
        .as_deref()
        .unwrap_or("")
        .contains("no node matches"));
}

#[test]
fn r_and_ctrl_r_recollect_the_selected_node_and_shift_r_the_fleet() {
    let mut app = mixed_fleet(true);
    visible_names(&mut app);
    let first = app.nodes[app.visible[0]].name.clone();
    assert_eq!(
        handle(&mut app, key('r')),
        vec![Effect::Request(Request::Recollect(first.clone()))]
    );
    assert_eq!(
        handle(&mut app, ctrl('r')),
        vec![Effect::Request(Request::Recollect(first))]
    );
    assert_eq!(
        handle(&mut app, key('R')),
        vec![Effect::Request(Request::RecollectAll)]
    );
}

#[test]
fn readonly_refuses_recollect() {
    let mut app = tui::App::new(tui::Options {
        readonly: true,
        ..opts(true)
    });
    finished(&mut app, "n1", named("n1", "healthy"));
    assert!(handle(&mut app, key('r')).is_empty());
    assert!(handle(&mut app, key('R')).is_empty());
    assert!(app.status.as_deref().unwrap_or("").contains("read-only"));
}

#[test]
fn a_finding_that_appears_or_clears_between_rounds_is_marked() {
    let mut app = tui::App::new(opts(true));
    finished(&mut app, "n1", named("n1", "healthy"));
    finished(&mut app, "n2", named("n2", "no-snat-rule"));
    let n1 = app
        .nodes
        .iter()
        .position(|n| n.name == "n1")
        .unwrap_or(usize::MAX);
    let n2 = app
        .nodes
        .iter()
        .position(|n| n.name == "n2")
        .unwrap_or(usize::MAX);
    assert!(app.nodes[n1].appeared.is_empty());
    // Round 2: the fault moves from n2 to n1.
    app.handle_event(Event::Node(NodeUpdate::Started { name: "n1".into() }));
    assert!(app.nodes[n1].collecting);
    finished(&mut app, "n1", named("n1", "no-snat-rule"));
    finished(&mut app, "n2", named("n2", "healthy"));
    assert!(!app.nodes[n1].appeared.is_empty());
    assert!(app.nodes[n1].cleared.is_empty());
    assert!(app.nodes[n2].appeared.is_empty());
    assert!(!app.nodes[n2].cleared.is_empty());
    let s = text(&render(&mut app, 120, 20));
    assert!(
        s.contains(&format!("+{}", app.nodes[n1].appeared.len())),
        "{s}"
    );
    tui::keys::run_command(&mut app, "node n1");
    let s = text(&render(&mut app, 120, 40));
    assert!(s.contains(" NEW"), "{s}");
    tui::keys::run_command(&mut app, "fleet");
    tui::keys::run_command(&mut app, "node n2");
    let s = text(&render(&mut app, 120, 40));
    assert!(s.contains("CLEARED"), "{s}");
}

#[test]
fn y_copies_the_selected_finding_with_evidence_and_remedy() {
    let mut app = mixed_fleet(true);
    tui::keys::run_command(&mut app, "node ip-192-168-1-20");
    let eff = handle(&mut app, key('y'));
    let [Effect::Copy(text)] = eff.as_slice() else {
        panic!("{eff:?}")
    };
    let f = &app.nodes[app.current_node().unwrap_or(0)].findings()[0];
    assert!(text.contains(&f.rule), "{text}");
    assert!(
        text.contains(f.evidence[0].text.lines().next().unwrap_or("")),
        "{text}"
    );
    assert!(text.contains("fix: "), "{text}");
}

#[test]
fn unreachable_nodes_keep_their_outcome_and_error() {
    let app = mixed_fleet(true);
    let n = app
        .nodes
        .iter()
        .find(|n| n.name == "ip-192-168-3-31")
        .unwrap_or_else(|| panic!("node missing"));
    assert_eq!(n.outcome, Some(Outcome::HostkeyMismatch));
    assert_eq!(n.health(), tui::app::Health::Failed);
    assert!(n.top.contains("host key"));
}

/// `b` on a node: a redacted bundle (the `bundle` crate's writer, as `diag bundle`) in the
/// bundle dir with its private map beside it; no original address or id of the node in any
/// byte of the decompressed archive; read back, it gives the same rule ids as the snapshot.
/// Read-only and a node without a snapshot are refused with a reason.
#[test]
fn b_writes_a_redacted_bundle_of_the_selected_node() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut app = mixed_fleet(false);
    app.opts.bundle_dir = dir.path().to_path_buf();
    app.refresh_derived();
    // The first row (worst first) has a snapshot: a broken node.
    let i = app.current_node().unwrap();
    let name = app.nodes[i].name.clone();
    let snap = app.nodes[i].snapshot.as_deref().cloned().unwrap();
    let effects = handle(&mut app, key('b'));
    assert_eq!(effects, vec![Effect::Bundle(name.clone())]);
    let status = tui::bundle::write(&app, &name);
    assert!(status.starts_with("bundle written: "), "{status}");
    let mut archives = Vec::new();
    let mut maps = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        if n.ends_with(".tar.gz") {
            archives.push(p);
        } else {
            maps.push(p);
        }
    }
    assert_eq!(archives.len(), 1, "{archives:?} {maps:?}");
    assert_eq!(
        maps.len(),
        1,
        "one private map beside the archive: {maps:?}"
    );
    assert!(status.contains(&*archives[0].to_string_lossy()), "{status}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&maps[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the map is private");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&archives[0]).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let id = snap.node.get().unwrap();
    let ip = id.primary_ipv4.unwrap().to_string();
    for secret in [
        ip.clone(),
        ip.replace('.', "-"),
        id.instance_id.clone().unwrap(),
        id.primary_mac.clone().unwrap(),
    ] {
        assert!(!text.contains(&secret), "{secret} leaked into the bundle");
    }
    let back = bundle::reader::read(&archives[0]).unwrap();
    let again = back.nodes[0].snapshot.as_ref().unwrap();
    let ids = |r: &model::NodeReport| {
        let mut v: Vec<(String, model::Severity)> = r
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.severity))
            .collect();
        v.sort();
        v
    };
    let want = ids(&analysis::analyze(&snap));
    assert!(!want.is_empty(), "the selected node is a broken one");
    assert_eq!(ids(&analysis::analyze(again)), want);

    // Read-only: no bundle, a reason.
    app.opts.readonly = true;
    assert!(handle(&mut app, key('b')).is_empty());
    assert_eq!(
        app.status.as_deref(),
        Some("read-only: bundles are disabled")
    );
}
