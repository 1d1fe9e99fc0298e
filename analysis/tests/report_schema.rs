//! `model/schema/report.v1.schema.json` is the schema of the report with the analysis' facts
//! (what `diag analyze -o json` prints). `UPDATE_SCHEMA=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn report_schema_is_committed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/schema/report.v1.schema.json");
    let schema = model::schema::report_schema_for::<analysis::Facts>();
    let rendered = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == rendered,
        "{} drifted from the report types; run UPDATE_SCHEMA=1 cargo test -p analysis --test report_schema and commit",
        path.display()
    );
}

mod common;

/// The typed inferred-facts list covers every fact whose JSON says `"source": "inferred"`
/// (a new `Known` field in `Facts` must be added to `InferredFacts` too).
#[test]
fn inferred_facts_cover_every_inferred_field() {
    use model::report::InferredFacts;
    let mut s = common::NodeA::default().build();
    // No CNI env and no node identity: everything that can be is inferred from kernel state.
    s.cni = model::Section::unavailable("not collected");
    s.node = model::Section::unavailable("not collected");
    let f = analysis::Facts::from_snapshot(&s);
    let j = serde_json::to_value(&f).unwrap();
    let from_json: Vec<String> = j
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.get("source").and_then(|x| x.as_str()) == Some("inferred"))
        .map(|(k, _)| k.clone())
        .collect();
    let typed: Vec<String> = f.inferred_facts().into_iter().map(|x| x.name).collect();
    assert!(!typed.is_empty(), "the snapshot has inferred facts");
    assert_eq!(typed, from_json);
}
