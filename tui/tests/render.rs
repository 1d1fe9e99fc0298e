//! Every view drawn into ratatui's TestBackend, compared with insta snapshots: healthy and
//! mixed fleets, 80x24 and 200x60, node tabs, findings, help, NO_COLOR.

mod common;

use common::*;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Color;

#[test]
fn fleet_healthy_120x30() {
    let mut app = healthy_fleet(true);
    let t = render(&mut app, 120, 30);
    insta::assert_snapshot!(text(&t));
}

#[test]
fn fleet_mixed_80x24_puts_broken_nodes_first() {
    let mut app = mixed_fleet(true);
    let t = render(&mut app, 80, 24);
    let s = text(&t);
    // Worst first: nodes with errors, then the ones that could not be collected, then ok.
    let pos = |n: &str| s.find(n).unwrap_or_else(|| panic!("{n} missing in\n{s}"));
    assert!(pos("ip-192-168-1-20") < pos("ip-192-168-3-30"), "{s}");
    assert!(pos("ip-192-168-3-30") < pos("ip-192-168-1-10"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn fleet_mixed_200x60_shows_zone_and_type() {
    let mut app = mixed_fleet(true);
    let t = render(&mut app, 200, 60);
    let s = text(&t);
    assert!(s.contains("ZONE") && s.contains("TYPE"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn no_color_uses_no_colours_but_keeps_markers() {
    let mut app = mixed_fleet(false);
    let t = render(&mut app, 120, 30);
    let buf = t.backend().buffer();
    for cell in buf.content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "coloured cell {cell:?} with NO_COLOR"
        );
    }
    let s = text(&t);
    for m in ["ERR", "FAIL", "OK"] {
        assert!(s.contains(m), "marker {m} missing:\n{s}");
    }
    insta::assert_snapshot!(s);
}

#[test]
fn colour_marks_errors_red() {
    let mut app = mixed_fleet(true);
    let t = render(&mut app, 120, 30);
    let buf = t.backend().buffer();
    let red = buf.content().iter().filter(|c| c.fg == Color::Red).count();
    assert!(red > 0, "no red cell for the ERR rows");
}

fn open(app: &mut tui::App, name: &str) {
    tui::keys::run_command(app, &format!("node {name}"));
}

#[test]
fn node_findings_tab_shows_evidence_and_remedy() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-1-20");
    let t = render(&mut app, 120, 40);
    let s = text(&t);
    assert!(s.contains("fleet > ip-192-168-1-20 > Findings"), "{s}");
    assert!(s.contains("fix:"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn node_snat_tab_80x24() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-2-21");
    tui::keys::handle(&mut app, key('2'));
    let t = render(&mut app, 80, 24);
    let s = text(&t);
    assert!(s.contains("--to-source"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn node_snat_tab_highlights_the_offending_rule() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-2-21");
    tui::keys::handle(&mut app, key('2'));
    let t = render(&mut app, 200, 60);
    let s = text(&t);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("> ") && l.contains("SNAT"))
        .unwrap_or_else(|| panic!("no highlighted SNAT rule:\n{s}"));
    assert!(line.contains("--to-source"), "{line}");
    insta::assert_snapshot!(s);
}

#[test]
fn node_routing_tab() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-2-22");
    tui::keys::handle(&mut app, key('3'));
    let t = render(&mut app, 160, 50);
    let s = text(&t);
    assert!(
        s.contains("ip rules (by priority)") && s.contains("table"),
        "{s}"
    );
    insta::assert_snapshot!(s);
}

#[test]
fn node_conntrack_tab() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-1-20");
    tui::keys::handle(&mut app, key('4'));
    let t = render(&mut app, 160, 40);
    let s = text(&t);
    assert!(s.contains("entries") && s.contains("insert_failed"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn node_logs_tab() {
    let mut app = mixed_fleet(true);
    open(&mut app, "ip-192-168-1-10");
    tui::keys::handle(&mut app, key('5'));
    let t = render(&mut app, 160, 30);
    let s = text(&t);
    assert!(s.contains("newest first"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn findings_view_counts_nodes_per_rule() {
    let mut app = mixed_fleet(true);
    tui::keys::handle(&mut app, key('f'));
    let t = render(&mut app, 120, 30);
    let s = text(&t);
    assert!(s.contains("fleet > findings"), "{s}");
    assert!(s.contains("/7"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn help_overlay_80x24() {
    let mut app = mixed_fleet(true);
    tui::keys::handle(&mut app, key('?'));
    let t = render(&mut app, 80, 24);
    let s = text(&t);
    assert!(s.contains("re-collect"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn readonly_help_hides_recollect() {
    let mut app = tui::App::new(tui::Options {
        readonly: true,
        ..opts(true)
    });
    finished(&mut app, "n1", named("n1", "healthy"));
    tui::keys::handle(&mut app, key('?'));
    let s = text(&render(&mut app, 100, 30));
    assert!(!s.contains("re-collect"), "{s}");
    assert!(s.contains("READ-ONLY"), "{s}");
}

#[test]
fn control_characters_in_untrusted_text_are_escaped() {
    let mut app = tui::App::new(opts(true));
    let evil = "ip-10-0-0-1\x1b]52;c;ZXZpbA==\x07\x1b[2J";
    finished(&mut app, evil, named(evil, "no-snat-rule"));
    tui::keys::handle(&mut app, code(KeyCode::Enter));
    for (w, h) in [(120, 30), (80, 24)] {
        let t = render(&mut app, w, h);
        for cell in t.backend().buffer().content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "control char {:?} reached the screen",
                cell.symbol()
            );
        }
        assert!(text(&t).contains("\\x1b]52"), "{}", text(&t));
    }
}

#[test]
fn only_visible_rows_are_built_at_1000_nodes() {
    let mut app = tui::App::new(opts(true));
    let s = fixture("no-snat-rule");
    for i in 0..1000 {
        let name = format!("ip-10-1-{}-{}", i / 250, i % 250);
        let mut snap = s.clone();
        snap.hostname = name.clone();
        finished(&mut app, &name, snap);
    }
    tui::keys::handle(&mut app, key('G'));
    let t = render(&mut app, 80, 24);
    let s = text(&t);
    // The last row (equal badness: the greatest name) is selected and on screen.
    assert_eq!(app.fleet_sel, 999);
    let last = app
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .max()
        .unwrap_or_default();
    assert!(s.contains(&last), "{last} not on screen:\n{s}");
    // 80x24: one header, 21 rows, one footer; the first rows are scrolled away.
    assert_eq!(s.matches("ip-10-1-").count(), 21, "{s}");
}

#[allow(clippy::unwrap_used)]
fn change(at: &str, kind: &str, op: &str, subject: &str, content: &str) -> model::diff::Change {
    serde_json::from_value(serde_json::json!({
        "at": at, "kind": kind, "op": op, "subject": subject, "content": content
    }))
    .unwrap()
}

#[test]
fn node_changes_tab_shows_the_daemon_log_newest_first() {
    let mut app = mixed_fleet(true);
    app.handle_event(tui::Event::Node(tui::NodeUpdate::Changes {
        name: "ip-192-168-1-10".into(),
        log: tui::ChangeLog::Changes {
            since: "2026-12-01T13:00:00Z".into(),
            changes: vec![
                change(
                    "2026-12-01T14:02:11Z",
                    "iptables-rule",
                    "removed",
                    "nat/AWS-SNAT-CHAIN-0",
                    "-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN",
                ),
                change(
                    "2026-12-01T14:05:00Z",
                    "cni-env",
                    "changed",
                    "AWS_VPC_K8S_CNI_EXTERNALSNAT",
                    "false -> true",
                ),
            ],
        },
    }));
    open(&mut app, "ip-192-168-1-10");
    tui::keys::handle(&mut app, key('6'));
    let t = render(&mut app, 120, 24);
    let s = text(&t);
    assert!(s.contains("2 change(s) since 2026-12-01T13:00:00Z"), "{s}");
    let newer = s
        .find("AWS_VPC_K8S_CNI_EXTERNALSNAT: ~false -> true")
        .unwrap();
    let older = s
        .find("nat/AWS-SNAT-CHAIN-0: --A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN")
        .unwrap();
    assert!(newer < older, "newest first: {s}");
    insta::assert_snapshot!(s);
}

#[test]
fn node_changes_tab_without_a_daemon() {
    let mut app = mixed_fleet(false);
    app.handle_event(tui::Event::Node(tui::NodeUpdate::Changes {
        name: "ip-192-168-1-10".into(),
        log: tui::ChangeLog::NoDaemon,
    }));
    open(&mut app, "ip-192-168-1-10");
    tui::keys::handle(&mut app, key('6'));
    let s = text(&render(&mut app, 80, 24));
    assert!(s.contains("no daemon on this node"), "{s}");
    insta::assert_snapshot!(s);
}
