//! One frame of the fleet view at 1,000 nodes / 50,000 findings: filter + sort + render of
//! the visible rows (target ≤ 16 ms). Results in bench/README.md (TUI section).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use model::{Evidence, EvidenceKind, Finding, NodeReport, Severity, Snapshot};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui::{App, Event, NodeResult, NodeUpdate, Options};

const NODES: usize = 1_000;
const FINDINGS_PER_NODE: usize = 50;

fn fixture() -> Snapshot {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/no-snat-rule.json"
    );
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    Snapshot::from_json(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn fleet() -> App {
    let base = fixture();
    let rules = [
        "snat.exclusion-missing",
        "snat.rule-missing",
        "routing.eni-default-route-missing",
        "conntrack.insert-failed",
        "connmark.rule-missing",
    ];
    let mut app = App::new(Options::default());
    for i in 0..NODES {
        let name = format!(
            "ip-10-{}-{}-{}.ec2.internal",
            i / 250,
            (i / 10) % 25,
            i % 250
        );
        let mut s = base.clone();
        s.hostname = name.clone();
        let findings = (0..FINDINGS_PER_NODE)
            .map(|k| Finding {
                rule: rules[(i + k) % rules.len()].to_string(),
                severity: match (i + k) % 7 {
                    0 => Severity::Error,
                    1 | 2 => Severity::Warning,
                    _ => Severity::Info,
                },
                node: name.clone(),
                summary: format!("finding {k} on node {i}: 172.20.{k}.0/24 is SNATed"),
                evidence: vec![Evidence::new(
                    EvidenceKind::Iptables,
                    format!("[{k}:{i}] -A AWS-SNAT-CHAIN-0 ! -d 172.20.{k}.0/24 -j RETURN"),
                )
                .at("nft nat AWS-SNAT-CHAIN-0 #1")],
                explanation: "pods lose their source address".into(),
                remedy: "set AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS".into(),
                inferred: Vec::new(),
            })
            .collect();
        let report = NodeReport {
            node: name.clone(),
            findings,
            ..Default::default()
        };
        let mut r = NodeResult::ok(name, s);
        r.report = Some(report);
        app.handle_event(Event::Node(NodeUpdate::Finished(Box::new(r))));
    }
    app
}

fn bench(c: &mut Criterion) {
    let mut app = fleet();
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("tui_frame_1000_nodes_50000_findings");
    // A frame where nothing changed: render the visible rows only.
    g.bench_function("render_fleet_200x60", |b| {
        b.iter(|| {
            term.draw(|f| tui::ui::draw(f, &mut app))
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    // A frame after new data: filter + sort all 1,000 nodes, then render.
    g.bench_function("filter_sort_render_200x60", |b| {
        b.iter(|| {
            app.mark_dirty();
            term.draw(|f| tui::ui::draw(f, &mut app))
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    // A keystroke in the `/` filter: a regex over every node's finding text (50,000 findings).
    g.bench_function("regex_filter_keystroke_render_200x60", |b| {
        let mut k = 0u32;
        b.iter(|| {
            k = k.wrapping_add(1);
            let pat = if k.is_multiple_of(2) {
                "172\\.20\\.4[0-9]\\."
            } else {
                "!ip-10-3-"
            };
            app.set_filter(black_box(pat))
                .unwrap_or_else(|e| panic!("{e}"));
            term.draw(|f| tui::ui::draw(f, &mut app))
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    let _ = app.set_filter("");
    // Node view Findings tab of one node with 50 findings, 80x24.
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap_or_else(|e| panic!("{e}"));
    tui::keys::run_command(&mut app, "node ip-10-0-0-0.ec2.internal");
    g.bench_function("render_node_findings_80x24", |b| {
        b.iter(|| {
            small
                .draw(|f| tui::ui::draw(f, &mut app))
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
